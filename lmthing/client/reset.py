"""Resetting a run to an earlier workflow task (``lmthing reset``).

A Temporal reset starts a new run of the same workflow id whose history is a copy of the
old one up to a chosen WorkflowTaskCompleted event; that workflow task is then decided
again, by whatever code the workers run *now*. Everything before it (model calls, tool
results, sub-agents, state) is replayed from history, not redone. Signals (and updates,
on servers that re-apply them) received after the reset point are re-applied to the new
run (Temporal's default). If the old run was still running, it is terminated.

Reset points lmthing offers:

- ``to_step=N``: the workflow task that scheduled step N's model call (steps are numbered
  from 0, as everywhere in lmthing). Steps 0..N-1 (their model calls and tool calls) are kept; step N's model call runs again, then everything
  after it.
- ``last_failure``: the workflow task that scheduled what failed last, so only that is
  redone. For a failed run: the activity (a tool, a model call) or child workflow whose
  failure ended it, else the workflow task that failed the run (the prompt function
  raised). For a run stuck on failing workflow tasks: the last workflow task that
  completed. For a running run whose activity keeps failing: the task that scheduled it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from .history import (
    HistoryError,
    RunHistory,
    by_id,
    describe_event,
    fetch_run,
    model_steps,
    not_found,
)


@dataclass(frozen=True)
class ResetPoint:
    run_id: str
    event_id: int  # a WorkflowTaskCompleted event: the workflow task that will be decided again
    description: str
    steps_kept: int = 0  # model steps before the reset point (not redone)


@dataclass(frozen=True)
class ResetOutcome:
    workflow_id: str
    base_run_id: str
    new_run_id: str
    point: ResetPoint
    was_running: bool


# ------------------------------------------------------------------------- reset points
async def point_for_step(client: Client, workflow_id: str, step: int, run_id: str | None = None) -> ResetPoint:
    """The workflow task before step ``step`` (numbered from 0), looked up along the continue-as-new
    chain from ``run_id`` (default: the latest run) back to the run that made that call."""
    if step < 0:
        raise HistoryError(f"Steps are numbered from 0 (step 0 is the first model call); got {step}.")
    run = await fetch_run(client, workflow_id, run_id)
    latest = model_steps(run.history)
    while True:
        steps = model_steps(run.history)
        match = next((s for s in steps if s.step == step), None)
        if match is not None:
            return ResetPoint(
                run.run_id,
                match.workflow_task_completed_event_id,
                f"the workflow task that scheduled step {step}'s model call",
                steps_kept=step,
            )
        if steps and step > steps[-1].step or not run.previous_run_id:
            break
        run = await fetch_run(client, workflow_id, run.previous_run_id)
    if not latest:
        raise HistoryError(f"Step {step} is out of range: workflow {workflow_id!r} has not started any model call yet.")
    last = latest[-1].step
    raise HistoryError(
        f"Step {step} is out of range: workflow {workflow_id!r} has run steps 0 to {last} "
        f"(its model calls so far). Choose --to-step between 0 and {last}."
    )


async def point_for_last_failure(client: Client, workflow_id: str, run_id: str | None = None) -> ResetPoint:
    """The workflow task that scheduled what failed last in the run (see the module doc)."""
    run = await fetch_run(client, workflow_id, run_id)
    point = last_failure_point(run)
    if point is None and run.events[-1].event_type not in _CLOSED:
        point = await _failing_pending_activity(client, run)
    if point is None:
        status = _status_of(run.events[-1])
        raise HistoryError(
            f"Found no failure to reset to in workflow {workflow_id!r} (run {run.run_id}, {status}). "
            "Use --to-step N to choose the step to redo."
        )
    return point


def last_failure_point(run: RunHistory) -> ResetPoint | None:
    history = run.history
    events = run.events
    index = by_id(history)
    last = events[-1]
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        # The workflow task that failed the run, and what it was reacting to.
        failed_by = last.workflow_execution_failed_event_attributes.workflow_task_completed_event_id
        previous = max(
            (e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < failed_by),
            default=0,
        )
        causes = [e for e in events if previous < e.event_id < failed_by and _scheduled_by(e, index) is not None]
        if causes:
            return _point_before(run, causes[-1], index)
        return _point(run, failed_by, "the workflow task that failed the run")
    failures = [e for e in events if _is_failure(e)]
    if not failures:
        return None
    return _point_before(run, failures[-1], index)


def _point_before(run: RunHistory, failure: HistoryEvent, index: dict[int, HistoryEvent]) -> ResetPoint:
    scheduled = _scheduled_by(failure, index)
    what = describe_event(failure)
    if scheduled is not None:
        origin = _origin(failure, index)
        started = describe_event(origin) if origin is not None else "it"
        return _point(run, scheduled, f"the workflow task that scheduled what failed: {started}, then {what}")
    completed = max(
        (e.event_id for e in run.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < failure.event_id),
        default=None,
    )
    if completed is None:
        raise HistoryError(f"The run failed before its first workflow task completed ({what}); start it again instead.")
    return _point(run, completed, f"the last workflow task that completed before {what}")


def _point(run: RunHistory, event_id: int, description: str) -> ResetPoint:
    kept = sum(1 for s in model_steps(run.history) if s.scheduled_event_id < event_id)
    return ResetPoint(run.run_id, event_id, description, steps_kept=kept)


def _scheduled_by(event: HistoryEvent, index: dict[int, HistoryEvent]) -> int | None:
    """For an activity or child-workflow failure: the WorkflowTaskCompleted that started it."""
    origin = _origin(event, index)
    if origin is None:
        return None
    which = origin.WhichOneof("attributes")
    return getattr(getattr(origin, which), "workflow_task_completed_event_id", None) if which else None


def _origin(event: HistoryEvent, index: dict[int, HistoryEvent]) -> HistoryEvent | None:
    """The ActivityTaskScheduled / StartChildWorkflowExecutionInitiated event of a failure."""
    origin: HistoryEvent | None = None
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        origin = index.get(event.activity_task_failed_event_attributes.scheduled_event_id)
    elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        origin = index.get(event.activity_task_timed_out_event_attributes.scheduled_event_id)
    elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
        origin = index.get(event.child_workflow_execution_failed_event_attributes.initiated_event_id)
    elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
        origin = index.get(event.child_workflow_execution_timed_out_event_attributes.initiated_event_id)
    elif event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
        origin = index.get(event.start_child_workflow_execution_failed_event_attributes.initiated_event_id)
    return origin


def _is_failure(event: HistoryEvent) -> bool:
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        # A reset leaves one of these behind in the new run: not a failure of the code.
        return event.workflow_task_failed_event_attributes.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    return event.event_type in (
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    )


async def _failing_pending_activity(client: Client, run: RunHistory) -> ResetPoint | None:
    """A running run whose activity is being retried (no failure event is recorded until
    the retries run out): reset to the task that scheduled it."""
    description = await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).describe()
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_id: e
        for e in run.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    for pending in description.raw_description.pending_activities:
        event = scheduled.get(pending.activity_id)
        if event is not None and (pending.attempt > 1 or pending.HasField("last_failure")):
            completed = event.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
            return _point(
                run,
                completed,
                f"the workflow task that scheduled {describe_event(event)}, still retrying "
                f"(attempt {pending.attempt}, last error: {pending.last_failure.message})",
            )
    return None


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


def _status_of(last: HistoryEvent) -> str:
    return _CLOSED.get(last.event_type, "running")


# -------------------------------------------------------------------------------- reset
async def reset_workflow(
    client: Client,
    workflow_id: str,
    *,
    to_step: int | None = None,
    last_failure: bool = False,
    run_id: str | None = None,
    reason: str | None = None,
) -> ResetOutcome:
    """Reset the workflow to the workflow task before step ``to_step``, or before its last
    failure; the new run continues with the workers' current code. Returns the new run id."""
    if (to_step is None) == (not last_failure):
        raise HistoryError("Give exactly one of --to-step N and --last-failure.")
    if to_step is not None:
        point = await point_for_step(client, workflow_id, to_step, run_id)
        default_reason = f"lmthing reset --to-step {to_step}"
    else:
        point = await point_for_last_failure(client, workflow_id, run_id)
        default_reason = "lmthing reset --last-failure"
    base = await fetch_run(client, workflow_id, point.run_id)
    was_running = base.events[-1].event_type not in _CLOSED
    request = ResetWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=point.run_id),
        reason=reason or default_reason,
        workflow_task_finish_event_id=point.event_id,
        request_id=str(uuid.uuid4()),
        identity=client.identity,
    )
    try:
        response = await client.workflow_service.reset_workflow_execution(request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(client, workflow_id, point.run_id) from None
        raise HistoryError(f"Temporal refused the reset of {workflow_id!r} to event {point.event_id}: {err.message}") from None
    return ResetOutcome(workflow_id, point.run_id, response.run_id, point, was_running)


def model_calls_after(history: WorkflowHistory, event_id: int) -> list[int]:
    """Steps whose model call was scheduled after ``event_id`` (for checking what a reset redid)."""
    return [s.step for s in model_steps(history) if s.scheduled_event_id > event_id]
