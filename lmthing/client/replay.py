"""Replaying recorded runs against the current code (``lmthing replay``).

Temporal's Replayer re-runs a workflow from its history, with the same sandbox and data
converter as the worker, and checks that the code issues the same commands (activities,
timers, child workflows, completion) in the same order. A prompt change that would break
runs in flight shows up here before it is deployed.

When a history does not replay, the Replayer says *what* diverged (the
``NondeterminismError`` message) but not *where*. We find the workflow task by replaying
prefixes of the history, each cut just after a WorkflowTaskStarted event (the last workflow
task of a prefix runs but its commands are not compared): the first prefix that fails
contains the diverging workflow task as its second-to-last one. A binary search needs a few
replays of a few milliseconds each. The step is then read from the model calls around that
workflow task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from .connect import data_converter
from .history import (
    HistoryError,
    RunHistory,
    commands_of,
    describe_event,
    fetch_chain,
    fetch_run,
    model_call_step,
    model_steps,
)

_RUNTIME: Runtime | None = None


def _quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors: the Replayer's divergence would otherwise also
    be logged as a 'Failing workflow task' warning for every replay (we report it ourselves)."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime(
            telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))
        )
    return _RUNTIME


def replayer(workflows: Sequence[type]) -> Replayer:
    """A Replayer set up like the worker (lmthing.workers.create_worker): same sandbox, same
    data converter."""
    # Imported here: the worker factory pulls in the activities (provider SDKs), which a
    # client that never replays should not pay for.
    from lmthing.workers.factory import sandbox_runner

    seen: dict[str, str] = {}
    for w in workflows:
        name = getattr(getattr(w, "spec", None), "name", None) or w.__name__
        if name in seen:
            raise HistoryError(
                f"Two prompts are registered as workflow {name!r} ({seen[name]} and {w.__name__}); "
                "replay against a module that defines each prompt name once."
            )
        seen[name] = w.__name__
    return Replayer(
        workflows=list(workflows),
        workflow_runner=sandbox_runner(),
        data_converter=data_converter(),
        runtime=_quiet_runtime(),
    )


@dataclass
class Divergence:
    """Where and how the current code left the recorded history."""

    message: str  # the NondeterminismError's own text: which command the code issues now
    workflow_task_event_id: int | None = None  # WorkflowTaskCompleted of the diverging task
    step: int | None = None  # model step, numbered from 0
    phase: str = ""  # "model call" | "tool calls" | "start" ...
    recorded: list[str] = field(default_factory=list)  # what that workflow task recorded

    def where(self) -> str:
        if self.step is None:
            return "unknown step"
        task = f", workflow task completed at event {self.workflow_task_event_id}" if self.workflow_task_event_id else ""
        return f"step {self.step} ({self.phase}{task})"


@dataclass
class ReplayReport:
    workflow_id: str
    run_id: str
    events: int
    deterministic: bool
    divergence: Divergence | None = None
    error: str | None = None  # a replay failure that is not a divergence (unknown workflow type...)


async def replay_history(history: WorkflowHistory, workflows: Sequence[type], run_id: str | None = None) -> ReplayReport:
    """Replay one run's history against ``workflows``; locate the divergence if any."""
    r = replayer(workflows)
    run = run_id or history.run_id
    result = await r.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    report = ReplayReport(history.workflow_id, run, len(history.events), failure is None)
    if failure is None:
        return report
    if not isinstance(failure, workflow.NondeterminismError):
        report.error = _failure_text(failure)
        return report
    report.divergence = await _locate(r, history, _failure_text(failure))
    return report


async def replay_workflow(
    client: Client,
    workflow_id: str,
    workflows: Sequence[type],
    *,
    run_id: str | None = None,
    children: bool = False,
) -> list[ReplayReport]:
    """Replay a workflow from the server: with ``run_id``, that run only; otherwise every run
    of its continue-as-new chain (oldest first). ``children`` also replays the sub-agent
    child workflows each run started (recursively)."""
    runs = [await fetch_run(client, workflow_id, run_id)] if run_id else await fetch_chain(client, workflow_id)
    reports: list[ReplayReport] = []
    for run in runs:
        reports.append(await replay_history(run.history, workflows, run.run_id))
        if children:
            for child_id, child_run in _children(run):
                reports += await replay_workflow(client, child_id, workflows, run_id=child_run, children=True)
    return reports


def _children(run: RunHistory) -> list[tuple[str, str]]:
    return [
        (e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id,
         e.child_workflow_execution_started_event_attributes.workflow_execution.run_id)
        for e in run.events
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    ]


# ------------------------------------------------------------------- locating a divergence
async def _locate(r: Replayer, history: WorkflowHistory, message: str) -> Divergence:
    events = list(history.events)
    cuts = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]

    async def fails(i: int) -> bool:
        """Does the prefix up to the i-th cut (len(cuts): the whole history) fail to replay?"""
        prefix = events if i >= len(cuts) else events[: cuts[i] + 1]
        result = await r.replay_workflow(WorkflowHistory(history.workflow_id, prefix), raise_on_replay_failure=False)
        return isinstance(result.replay_failure, workflow.NondeterminismError)

    # Smallest i whose prefix fails; the whole history (i = len(cuts)) is known to fail.
    lo, hi = 1, len(cuts)
    while lo < hi:
        mid = (lo + hi) // 2
        if await fails(mid):
            hi = mid
        else:
            lo = mid + 1
    # The diverging workflow task is the one started at cuts[lo - 1].
    start = cuts[lo - 1] if cuts else 0
    end = cuts[lo] if lo < len(cuts) else len(events)
    completed = next(
        (e.event_id for e in events[start:end] if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), None
    )
    divergence = Divergence(message=message, workflow_task_event_id=completed)
    recorded = commands_of(history, completed) if completed else []
    divergence.recorded = [describe_event(e) for e in recorded]
    divergence.step, divergence.phase = _step_of(history, completed or events[start].event_id, recorded)
    return divergence


def _step_of(history: WorkflowHistory, task_event_id: int, recorded: list[HistoryEvent]) -> tuple[int, str]:
    """The model step a workflow task belongs to: the step whose model call it scheduled,
    else the step whose reply it was acting on (running its tool calls, finishing...)."""
    for event in recorded:
        step = model_call_step(event)
        if step is not None and step >= 0:
            return step, "model call"
    before = [s for s in model_steps(history) if s.scheduled_event_id < task_event_id]
    if not before:
        return 1, "before its model call"
    if any(e.event_type in _CLOSING for e in recorded):
        return before[-1].step, "after its model reply: finishing the run"
    return before[-1].step, "tool calls, after its model reply"


_CLOSING = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
)


_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _failure_text(err: BaseException) -> str:
    """The core's message without the Rust struct around it."""
    text = str(err)
    found = _MESSAGE.search(text)
    if found:
        return found.group(1).replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")
    return text
