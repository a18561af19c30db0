"""A run's part in its tree's budget (``def_constraint``), workflow side.

The root run keeps the ledger (lmthing/resilience/budget.py) in its own memory and answers
the ``lmthing_budget`` update; a run below it reports each step through the
``lmthing.budget`` activity and learns from the answer whether to stop. A duration budget is
a durable timer in the root (and a deadline every run below checks after each step).
Warnings and the crossing go on the root's stream (``budget`` events) and its step notes.
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
        """The root takes its constraints, once (a sub-agent spends from its root's budget;
        its own def_constraint is ignored)."""
        constraints = self._constraints()
        if self.link is not None or self.ledger is not None or not constraints:
            if self.link is not None and constraints:
                workflow.logger.warning("def_constraint in a sub-agent is ignored: the tree spends from its root's budget")
            return
        kept = list(constraints.values())
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
        """What a child run is given: the same link, or one to this root."""
        if not self.active:
            return None
        if self.link is not None:
            return self.link
        if self.ledger is None:
            return None
        return BudgetLink(root_id=workflow.info().workflow_id, constraints=self.ledger.constraints,
                          deadline=self.ledger.state.deadline)

    def state(self) -> LedgerState | None:
        return self.ledger.state if self.ledger is not None else None

    # --------------------------------------------------------------------- each step
    async def spent(self, usage: Usage, cost: float | None) -> Crossing | None:
        """Report a model step's spend; the crossing when the tree's budget is used up."""
        if not self.active:
            return None
        spend = Spend(run_id=workflow.info().workflow_id, tokens=usage.input_tokens + usage.output_tokens,
                      cost_usd=cost or 0.0)
        if self.ledger is not None:  # the root: its own ledger, without the update's JSON round trip
            exceeded = self._spend(spend).exceeded
        else:
            exceeded = BudgetStatus.model_validate(await self._ask_root("spend", spend)).exceeded
        self.crossing = exceeded or self._past_deadline()
        return self.crossing

    def exceeded(self) -> Crossing | None:
        """The crossing as known now (the root's ledger, the deadline, the last answer)."""
        if self.ledger is not None:
            return self.ledger.status().exceeded or self.ledger.out_of_time(workflow.now().timestamp())
        return self.crossing or self._past_deadline()

    def rate_root(self) -> str | None:
        """The run whose ledger hands out the tree's rate-limit slots (None: no rate limit).
        The model activity takes its slot there, just before its request."""
        if self.ledger is not None and any(c.type == "rate" for c in self.ledger.constraints):
            return workflow.info().workflow_id
        return self.link.root_id if self.link is not None and self.link.rate_limited else None

    def _past_deadline(self) -> Crossing | None:
        link = self.link
        if link is None or link.deadline is None or workflow.now().timestamp() < link.deadline:
            return None
        c = next(c for c in link.constraints if c.type == "duration")
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
    def answer(self, call: Any) -> dict[str, Any]:
        """The root's answer to a report (``lmthing_budget`` update) or its own step."""
        if self.ledger is None:
            raise ApplicationError("This run keeps no budget (its prompt defines no def_constraint)",
                                   type="NoBudget", non_retryable=True)
        if not isinstance(call, dict) or call.get("op") not in ("spend", "slot"):
            raise ApplicationError(f"lmthing_budget takes {{'op': 'spend'|'slot', ...}}; got {call!r}",
                                   type="InvalidBudgetCall", non_retryable=True)
        if call["op"] == "slot":
            # The asker's clock (in the update's input, so replay gives the same slot): the
            # slot is when its request may go out, by the clock it waits with.
            now = call.get("now")
            return {"at": self.ledger.slot(float(now) if isinstance(now, (int, float)) else workflow.now().timestamp())}
        return self._spend(Spend.model_validate(call.get("spend") or {})).model_dump(mode="json")

    def _spend(self, spend: Spend) -> BudgetStatus:
        """Spend in the root's ledger: the status (a limit crossed, or the deadline passed),
        with the warnings and the crossing announced."""
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
        return status

    def _announce(self, crossing: Crossing) -> None:
        verb = "reached its warn mark" if crossing.action == "warn" else "is used up"
        text = f"Budget '{crossing.name}' {verb}: {crossing.detail}"
        workflow.logger.warning(text)
        self._events.budget(self._step(), text)
        self._note({"kind": "budget", "constraint": crossing.name, "action": crossing.action, "detail": crossing.detail})
