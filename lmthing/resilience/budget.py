"""Budgets over a whole agent tree (``def_constraint``), engine-neutral: the ledger the root
run keeps, and what a sub-agent's run is told after each of its steps.

The root (the outermost run whose function defines a constraint) holds the one ledger.
Every run below it, sub-agents, task-graph children and parallel branches alike, reports
each model step's spend to the root as it happens and is told whether the budget is used
up, so a tree stops at the step that crosses the limit rather than when its children
finish. A rate limit is a sliding window of model calls in the same ledger: the model activity of
any run of the tree asks the root for a slot just before its request and waits until then.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConstraintType = Literal["tokens", "cost", "duration", "rate"]
Action = Literal["stop", "warn", "graceful_stop", "summarize"]

FINAL_INSTRUCTIONS = {
    "graceful_stop": "The budget '{name}' is used up ({detail}). Give your final answer now, from what you have, without calling tools.",
    "summarize": "The budget '{name}' is used up ({detail}). Summarize what you did and found so far, without calling tools.",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Constraint(_Model):
    """A ``def_constraint`` (durations in seconds): in the run's book, the root's ledger, and
    the link a run below the root gets."""

    name: str
    type: ConstraintType
    max: float | None = None
    warn: float | None = None
    on_exceeded: Action = "stop"
    requests: int | None = None
    period: float | None = None



class BudgetLink(_Model):
    """What a run below the root knows of the tree's budget (in its run config)."""

    # The nearest run above that keeps a ledger: reports go there (and it reports on up).
    root_id: str
    constraints: list[Constraint]
    # Seconds since the epoch when a duration budget runs out (None: no duration budget).
    deadline: float | None = None
    # The run that hands out the tree's rate-limit slots, when it is not root_id (links
    # made before nested budgets: root_id, if a constraint is a rate).
    rate_root_id: str | None = None

    @property
    def rate_limited(self) -> bool:
        return self.rate_root_id is not None or any(c.type == "rate" for c in self.constraints)

    @property
    def rate_root(self) -> str | None:
        return self.rate_root_id or (self.root_id if self.rate_limited else None)


class Spend(_Model):
    """One model step's spend, reported to the root."""

    run_id: str
    tokens: int = 0
    cost_usd: float = 0.0


class Crossing(_Model):
    """A limit crossed: which constraint, what it does, and how far it got."""

    name: str
    action: Action
    detail: str


class BudgetStatus(_Model):
    """The root's answer to a report: a limit crossed (None: within budget)."""

    exceeded: Crossing | None = None
    tokens: int = 0
    cost_usd: float = 0.0


class LedgerState(_Model):
    """The root's ledger (carried across continue-as-new)."""

    tokens: int = 0
    cost_usd: float = 0.0
    by_run: dict[str, int] = Field(default_factory=dict)
    warned: list[str] = Field(default_factory=list)
    exceeded: Crossing | None = None
    deadline: float | None = None
    # Start times (epoch seconds) of the model calls in the rate window.
    calls: list[float] = Field(default_factory=list)


class BudgetLedger:
    """The root's ledger: spend of the whole tree, warnings given, the first limit crossed."""

    def __init__(self, constraints: list[Constraint], state: LedgerState | None = None) -> None:
        self.constraints = constraints
        self.state = state or LedgerState()

    def spend(self, spend: Spend) -> tuple[BudgetStatus, list[Crossing]]:
        """Add one step's spend; the status, and the warnings this spend set off (each
        constraint warns once)."""
        s = self.state
        s.tokens += spend.tokens
        s.cost_usd += spend.cost_usd
        s.by_run[spend.run_id] = s.by_run.get(spend.run_id, 0) + spend.tokens
        warnings: list[Crossing] = []
        for c in self.constraints:
            used = self._used(c)
            if used is None:
                continue
            if c.warn is not None and used >= c.warn and c.name not in s.warned:
                s.warned.append(c.name)
                warnings.append(Crossing(name=c.name, action="warn", detail=self._detail(c, used, c.warn)))
            if c.max is not None and used >= c.max and s.exceeded is None:
                s.exceeded = Crossing(name=c.name, action=c.on_exceeded, detail=self._detail(c, used, c.max))
                if c.on_exceeded == "warn":
                    warnings.append(s.exceeded)
        return self.status(), warnings

    def out_of_time(self, now: float) -> Crossing | None:
        """The duration budget, when it has run out by ``now`` (it is then the crossing)."""
        for c in self.constraints:
            if c.type == "duration" and self.state.deadline is not None and now >= self.state.deadline:
                if self.state.exceeded is None:
                    self.state.exceeded = Crossing(name=c.name, action=c.on_exceeded, detail=f"{c.max:g} s passed")
        return self.state.exceeded

    def status(self) -> BudgetStatus:
        s = self.state
        stopping = s.exceeded if s.exceeded is not None and s.exceeded.action != "warn" else None
        return BudgetStatus(exceeded=stopping, tokens=s.tokens, cost_usd=s.cost_usd)

    def slot(self, now: float, release: float | None = None) -> float:
        """The time (epoch seconds) a model call asked for at ``now`` may start under the
        rate limits; the slot is taken. Slots are handed out in order, each at least one
        period after the call ``requests`` places before it.

        ``release``: a slot this asker was given but did not use (its answer came too late
        to go out on time); it is given back first. The slots left are a subset of ones that
        kept the limit, so they still keep it, and no request goes out on a released slot."""
        if release is not None and release in self.state.calls:
            calls = list(self.state.calls)
            del calls[len(calls) - 1 - calls[::-1].index(release)]
            self.state.calls = calls
        calls = self.state.calls
        start = max([now, *calls[-1:]])
        rates = [c for c in self.constraints if c.type == "rate" and c.requests and c.period]
        if not rates:
            return now
        for c in rates:
            if len(calls) >= (c.requests or 0):
                start = max(start, calls[-(c.requests or 0)] + (c.period or 0))
        keep = max(c.requests or 0 for c in rates)
        self.state.calls = [*calls, start][-keep:]
        return start

    def _used(self, c: Constraint) -> float | None:
        if c.type == "tokens":
            return self.state.tokens
        if c.type == "cost":
            return self.state.cost_usd
        return None

    @staticmethod
    def _detail(c: Constraint, used: float, limit: float) -> str:
        unit = "tokens" if c.type == "tokens" else "USD"
        return f"{used:g} {unit} of {limit:g}"
