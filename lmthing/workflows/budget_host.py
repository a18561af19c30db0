"""A run's part in its tree's budget (``def_constraint``), workflow side.

The root run keeps the ledger (lmthing/resilience/budget.py) in its own memory and answers
the ``lmthing_budget`` update; a run below it reports each step through the
``lmthing.budget`` activity and learns from the answer whether to stop. A duration budget is
a durable timer in the root (and a deadline every run below checks after each step).
Warnings and the crossing go on the root's stream (``budget`` events) and its step notes.

A run below the root that defines constraints of its own keeps a ledger too: a budget for
its subtree inside the tree's. Its subtree reports to it; it counts each report, passes it
on up, and answers with whichever limit was crossed first, its own or one above. Rate
limits stay tree-wide: the outermost run with a rate constraint hands out every slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from lmthing.activities.names import BUDGET
from lmthing.prompt.types import Usage
from lmthing.resilience.budget import BudgetLedger, BudgetLink, BudgetStatus, Constraint, Crossing, LedgerState, Spend

from . import routing
from .events import RunEvents

_CALL_TIMEOUT = timedelta(seconds=30)
# Runs started before a run below the root had its model activity report each call's spend
# (ModelRequest.budget_root) report it through the lmthing.budget activity, on replay too.
REPORT_IN_MODEL_CALL = "lmthing-budget-report-in-model-call"


class RunBudget:
    def __init__(self, link: BudgetLink | None, carried: LedgerState | None, events: RunEvents,
                 note: Callable[[dict[str, Any]], None], step: Callable[[], int],
                 constraints: Callable[[], dict[str, Constraint]]) -> None:
        self._step = step
        # The constraints the prompt function has defined so far: a root takes them as soon as
        # it needs them (a child it starts from the function's body, before its first step).
        self._constraints = constraints
        self.link = link  # set for a run below the root
        self.ledger: BudgetLedger | None = None
        self._carried = carried
        self._events = events
        self._note = note
        self._timer: asyncio.Task[None] | None = None
        self.crossing: Crossing | None = None  # what this run last learned

    @property
    def active(self) -> bool:
        if self.link is None and self.ledger is None:
            self.configure()
        return self.link is not None or self.ledger is not None

    def configure(self) -> None:
        """The run takes its own constraints, once: the root's are the tree's budget, a
        sub-agent's a budget of its subtree within it."""
        constraints = self._constraints()
        if self.ledger is not None or not constraints:
            return
        kept = list(constraints.values())
        if self.link is not None and self.link.rate_limited and any(c.type == "rate" for c in kept):
            workflow.logger.warning("a sub-agent's rate constraint is ignored: its tree already has a rate limit, "
                                    "which every run of the tree keeps")
            kept = [c for c in kept if c.type != "rate"]
        self.ledger = BudgetLedger(kept, self._carried)
        duration = next((c for c in kept if c.type == "duration" and c.max), None)
        if duration is not None:
            if self.ledger.state.deadline is None:
                self.ledger.state.deadline = workflow.now().timestamp() + float(duration.max or 0)
            self._timer = asyncio.create_task(self._run_out(duration))

    async def _run_out(self, duration: Constraint) -> None:
        assert self.ledger is not None and self.ledger.state.deadline is not None
        left = self.ledger.state.deadline - workflow.now().timestamp()
        if left > 0:
            await workflow.sleep(timedelta(seconds=left), summary=f"budget {duration.name}: {duration.max:g} s")
        crossing = self.ledger.out_of_time(workflow.now().timestamp())
        if crossing is not None:
            self._announce(crossing)

    def child_link(self) -> BudgetLink | None:
        """What a child run is given: the same link, or one to this run's own ledger (which
        carries the limits above it too: the nearer deadline, the tree's rate root)."""
        self.configure()  # a child started from the function's body, before this run's first step
        if not self.active:
            return None
        if self.ledger is None:
            return self.link
        me = workflow.info().workflow_id
        above = self.link
        deadlines = [d for d in (self.ledger.state.deadline, above.deadline if above else None) if d is not None]
        own_rate = any(c.type == "rate" for c in self.ledger.constraints)
        return BudgetLink(root_id=me, constraints=[*self.ledger.constraints, *(above.constraints if above else [])],
                          deadline=min(deadlines) if deadlines else None,
                          rate_root_id=(above.rate_root if above else None) or (me if own_rate else None))

    def state(self) -> LedgerState | None:
        return self.ledger.state if self.ledger is not None else None

    # --------------------------------------------------------------------- each step
    def report_root(self) -> str | None:
        """Where the model activity reports a call's spend itself: the run above, for a run
        that keeps no ledger of its own (one activity and workflow task less per step)."""
        if self.link is None or self.ledger is not None or not workflow.patched(REPORT_IN_MODEL_CALL):
            return None
        return self.link.root_id

    async def spent(self, usage: Usage, cost: float | None, reported: dict[str, Any] | None = None) -> Crossing | None:
        """Report a model step's spend; the crossing when the tree's budget is used up.
        ``reported``: the answer the model activity already got (ModelResponse.budget)."""
        if not self.active:
            return None
        spend = Spend(run_id=workflow.info().workflow_id, tokens=usage.input_tokens + usage.output_tokens,
                      cost_usd=cost or 0.0)
        if self.ledger is not None:  # its own ledger, without the update's JSON round trip
            exceeded = (await self._spend(spend)).exceeded
        elif reported is not None:
            exceeded = BudgetStatus.model_validate(reported).exceeded
        else:
            exceeded = BudgetStatus.model_validate(await self._ask_root("spend", spend)).exceeded
        self.crossing = exceeded or self._past_deadline()
        return self.crossing

    def exceeded(self) -> Crossing | None:
        """The crossing as known now (the root's ledger, the deadline, the last answer)."""
        if self.ledger is not None:
            own = self.ledger.status().exceeded or self.ledger.out_of_time(workflow.now().timestamp())
            if own is not None or self.link is None:
                return own
        return self.crossing or self._past_deadline()

    def rate_root(self) -> str | None:
        """The run whose ledger hands out the tree's rate-limit slots (None: no rate limit).
        The model activity takes its slot there, just before its request."""
        if self.link is not None and self.link.rate_limited:
            return self.link.rate_root
        if self.ledger is not None and any(c.type == "rate" for c in self.ledger.constraints):
            return workflow.info().workflow_id
        return None

    def _past_deadline(self) -> Crossing | None:
        link = self.link
        if link is None or link.deadline is None or workflow.now().timestamp() < link.deadline:
            return None
        c = min((c for c in link.constraints if c.type == "duration"), key=lambda c: c.max or 0.0)
        return Crossing(name=c.name, action=c.on_exceeded, detail=f"{c.max:g} s passed")

    async def _ask_root(self, op: str, spend: Spend | None) -> dict[str, Any]:
        assert self.link is not None
        try:
            return await workflow.execute_activity(
                BUDGET, {"root_id": self.link.root_id, "op": op, "spend": spend.model_dump() if spend else None},
                result_type=dict, start_to_close_timeout=_CALL_TIMEOUT, task_queue=routing.tool_task_queue(),
                summary=f"budget {op}",
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
            )
        except ActivityError as err:
            # The root has ended or refuses: this run has nothing left to spend from.
            workflow.logger.warning("budget root %s did not answer: %s", self.link.root_id, err.cause)
            return {"exceeded": {"name": "budget", "action": "stop", "detail": "the root run has ended"}, "at": 0.0}

    # ------------------------------------------------------------------ root's update
    async def answer(self, call: Any) -> dict[str, Any]:
        """The answer to a report (``lmthing_budget`` update) or to this run's own step:
        counted in this run's ledger and, below the root, passed on up."""
        if self.ledger is None:
            raise ApplicationError("This run keeps no budget (its prompt defines no def_constraint)",
                                   type="NoBudget", non_retryable=True)
        if not isinstance(call, dict) or call.get("op") not in ("spend", "slot"):
            raise ApplicationError(f"lmthing_budget takes {{'op': 'spend'|'slot', ...}}; got {call!r}",
                                   type="InvalidBudgetCall", non_retryable=True)
        if call["op"] == "slot":
            # The asker's clock (in the update's input, so replay gives the same slot): the
            # slot is when its request may go out, by the clock it waits with.
            now, release = call.get("now"), call.get("release")
            return {"at": self.ledger.slot(float(now) if isinstance(now, (int, float)) else workflow.now().timestamp(),
                                           float(release) if isinstance(release, (int, float)) else None)}
        return (await self._spend(Spend.model_validate(call.get("spend") or {}))).model_dump(mode="json")

    async def _spend(self, spend: Spend) -> BudgetStatus:
        """Spend in this run's ledger: the status (a limit crossed, or the deadline passed),
        with the warnings and the crossing announced; below the root, passed on up too."""
        assert self.ledger is not None
        before = self.ledger.state.exceeded
        status, warnings = self.ledger.spend(spend)
        for crossing in warnings:
            self._announce(crossing)
        if before is None and self.ledger.state.exceeded is not None and self.ledger.state.exceeded.action != "warn":
            self._announce(self.ledger.state.exceeded)
        out_of_time = self.ledger.out_of_time(workflow.now().timestamp())
        if status.exceeded is None and out_of_time is not None and out_of_time.action != "warn":
            status.exceeded = out_of_time
        if self.link is not None:  # a subtree's budget: the limits above count the spend too
            above = BudgetStatus.model_validate(await self._ask_root("spend", spend))
            self.crossing = above.exceeded or self._past_deadline()
            status.exceeded = status.exceeded or self.crossing
        return status

    def _announce(self, crossing: Crossing) -> None:
        verb = "reached its warn mark" if crossing.action == "warn" else "is used up"
        text = f"Budget '{crossing.name}' {verb}: {crossing.detail}"
        workflow.logger.warning(text)
        self._events.budget(self._step(), text)
        self._note({"kind": "budget", "constraint": crossing.name, "action": crossing.action, "detail": crossing.detail})
