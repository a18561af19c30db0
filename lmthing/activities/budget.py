"""The activity through which a run below the root of a budgeted tree reaches the root's
ledger (``def_constraint``, docs/resilience.md): a workflow cannot send an update to another
workflow, an activity can, and an update (unlike a signal) answers, so the step that
crosses the limit is known to be the last one before the next step starts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import RPCError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from lmthing.resilience.budget import Spend

from .names import BUDGET, BUDGET_UPDATE


class BudgetCall(BaseModel):
    """``spend``: one step's spend; ``slot``: a rate-limit slot for the next model call."""

    root_id: str
    op: Literal["spend", "slot"]
    spend: Spend | None = None
    # For "slot": the asking activity's clock (epoch seconds), the one its request goes by,
    # and a slot it was given but could not use in time (given back).
    now: float | None = None
    release: float | None = None


@activity.defn(name=BUDGET)
async def budget_call(call: BudgetCall) -> dict[str, Any]:
    return await _call(call)


async def _call(call: BudgetCall) -> dict[str, Any]:
    handle = activity.client().get_workflow_handle(call.root_id)
    update_id = None
    if call.op == "spend":
        # The same for every attempt of this activity: when the root took the report but the
        # attempt was lost with its worker, the next attempt gets the first one's answer from
        # Temporal (updates are deduplicated by id) instead of counting the step again.
        info = activity.info()
        update_id = f"spend:{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}"
    try:
        return await handle.execute_update(BUDGET_UPDATE, call.model_dump(mode="json"), result_type=dict, id=update_id)
    except WorkflowUpdateFailedError as err:
        raise ApplicationError(f"The budget's root run {call.root_id!r} refused the report: {err.cause}",
                               type="BudgetRootRefused", non_retryable=True) from None
    except RPCError as err:
        if "not found" in str(err).lower() or "already completed" in str(err).lower():
            # The root has ended: nothing is left to spend from, and nothing waits for this run.
            raise ApplicationError(f"The budget's root run {call.root_id!r} has ended ({err})",
                                   type="BudgetRootGone", non_retryable=True) from None
        raise


async def report_spend(root_id: str, usage: Any, cost_usd: float | None) -> dict[str, Any] | None:
    """In the model activity, once the reply is in: the call's spend to the budget's run, and
    its answer (None when it could not be reached: the workflow then reports it itself).
    The update id is the activity's, the same for each of its attempts, so a report taken
    before the attempt was lost is not counted again."""
    spend = Spend(run_id=activity.info().workflow_id, tokens=usage.input_tokens + usage.output_tokens,
                  cost_usd=cost_usd or 0.0)
    try:
        return await _call(BudgetCall(root_id=root_id, op="spend", spend=spend))
    except ApplicationError as err:  # the root has ended or refuses: nothing left to spend from
        return {"exceeded": {"name": "budget", "action": "stop", "detail": f"the budget's run did not answer: {err}"}}
    except RPCError as err:
        activity.logger.warning("Could not report the call's spend to %s (%s); the run reports it itself", root_id, err)
        return None


# A slot is asked for this far ahead: the root's answer must be back before the slot comes,
# or the request would go out late and bunch up with the ones after it.
SLOT_LEAD_SECONDS = 0.5
# An answer later than this past its slot is not used: the slot is given back and another
# asked for, with twice the lead, up to SLOT_ASKS times; the last answer is used however late.
SLOT_LATE_SECONDS = 0.05
SLOT_ASKS = 4


async def wait_for_slot(root_id: str) -> None:
    """In the model activity, just before the request: take a slot of the tree's rate limit
    from its root run and sleep until it, so the provider sees at most the limit. A slot
    whose answer comes back after it has passed (a loaded worker or server) is given back
    rather than used late, since a late request lands in the next calls' period."""
    release: float | None = None
    lead = SLOT_LEAD_SECONDS
    for ask in range(1, SLOT_ASKS + 1):
        answer = await _call(BudgetCall(root_id=root_id, op="slot", now=time.time() + lead, release=release))
        at = float(answer.get("at", 0.0))
        wait = at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
            return
        if wait >= -SLOT_LATE_SECONDS:
            return
        if ask == SLOT_ASKS:
            activity.logger.warning("Rate-limit slot answered %.2f s late %d times; the request goes out late",
                                    -wait, ask)
            return
        activity.logger.info("Rate-limit slot answered %.2f s late; asking again %.1f s ahead", -wait, lead * 2)
        release, lead = at, lead * 2
