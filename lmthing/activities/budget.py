"""The activity through which a run below the root of a budgeted tree reaches the root's
ledger (``def_constraint``, docs/resilience.md): a workflow cannot send an update to another
workflow, an activity can, and an update (unlike a signal) answers, so the step that
crosses the limit is known to be the last one before the next step starts.
"""

from __future__ import annotations

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


@activity.defn(name=BUDGET)
async def budget_call(call: BudgetCall) -> dict[str, Any]:
    handle = activity.client().get_workflow_handle(call.root_id)
    try:
        return await handle.execute_update(BUDGET_UPDATE, call.model_dump(mode="json"), result_type=dict)
    except WorkflowUpdateFailedError as err:
        raise ApplicationError(f"The budget's root run {call.root_id!r} refused the report: {err.cause}",
                               type="BudgetRootRefused", non_retryable=True) from None
    except RPCError as err:
        if "not found" in str(err).lower() or "already completed" in str(err).lower():
            # The root has ended: nothing is left to spend from, and nothing waits for this run.
            raise ApplicationError(f"The budget's root run {call.root_id!r} has ended ({err})",
                                   type="BudgetRootGone", non_retryable=True) from None
        raise
