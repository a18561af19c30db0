"""Ready-made ``stop_when`` conditions (the AI SDK's ``stepCountIs`` / ``hasToolCall``).

A condition receives the step records of the current run so far and returns True to stop
the run after the current step's tools have run. After continue-as-new those are the
records since then (``record.step`` keeps counting across the chain). It runs inside the
workflow, so it must be deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .types import StepRecord

StopCondition = Callable[[Sequence[StepRecord]], bool]


def step_count_is(n: int) -> StopCondition:
    # By step number, not len(steps): after continue-as-new a run holds only its own records.
    return lambda steps: bool(steps) and steps[-1].step + 1 >= n


def has_tool_call(name: str) -> StopCondition:
    def condition(steps: Sequence[StepRecord]) -> bool:
        last = steps[-1].response if steps else None
        return bool(last and any(c.name == name for c in last.tool_calls))

    return condition
