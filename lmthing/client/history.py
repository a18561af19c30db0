"""Reading workflow histories: fetch a run (or its whole continue-as-new chain), read and
write history JSON, and map history events onto lmthing's model steps.

Shared by :mod:`lmthing.client.replay` and :mod:`lmthing.client.reset` (and the
``lmthing replay / history export / reset`` commands over them).

Steps are numbered from 1, as ``lmthing run`` prints them. A step's number is read from
the input of its ``lmthing.model_call`` activity (``ModelRequest.step`` + 1), so it stays
right across continue-as-new, where the step counter is carried into the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseError
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from lmthing.activities.names import MODEL_CALL, TOOL_ACTIVITY_PREFIX


class HistoryError(Exception):
    """A problem the user can fix: unknown workflow id, unreadable file, step out of range..."""


@dataclass
class RunHistory:
    """One run of a workflow: its id, its real run id and its history.

    ``WorkflowHistory.run_id`` is the *original* run id of the chain (a run created by a
    reset starts with a copy of its base run's first event), so the run id is kept here."""

    workflow_id: str
    run_id: str
    history: WorkflowHistory

    @property
    def events(self) -> list[HistoryEvent]:
        return list(self.history.events)

    @property
    def previous_run_id(self) -> str | None:
        """The run this one continued as new from, if any."""
        return started(self.history).continued_execution_run_id or None


@dataclass(frozen=True)
class ModelStep:
    """One model call of a run, as its history recorded it."""

    step: int  # 1-based, as `lmthing run` prints it
    scheduled_event_id: int
    workflow_task_completed_event_id: int  # the workflow task that scheduled the call


# ------------------------------------------------------------------------------ fetching
def not_found(client: Client, workflow_id: str, run_id: str | None = None) -> HistoryError:
    run = f" (run {run_id})" if run_id else ""
    return HistoryError(
        f"No workflow with id {workflow_id!r}{run} in namespace {client.namespace!r}. "
        "Check the id (lmthing run prints it; `temporal workflow list` lists them), --namespace and --address."
    )


async def fetch_run(client: Client, workflow_id: str, run_id: str | None = None) -> RunHistory:
    """The history of ``run_id``, or of the workflow's latest run."""
    try:
        if run_id is None:
            run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found(client, workflow_id, run_id) from None
        raise HistoryError(f"Cannot read the history of {workflow_id!r}: {err.message}") from None
    if not history.events:
        raise not_found(client, workflow_id, run_id)
    return RunHistory(workflow_id, run_id, history)


async def fetch_chain(client: Client, workflow_id: str, run_id: str | None = None) -> list[RunHistory]:
    """Every run of a continue-as-new chain up to ``run_id`` (default: the latest run),
    oldest first."""
    run = await fetch_run(client, workflow_id, run_id)
    chain = [run]
    while run.previous_run_id:
        run = await fetch_run(client, workflow_id, run.previous_run_id)
        chain.insert(0, run)
    return chain


# ------------------------------------------------------------------------------ JSON files
def file_name_for(workflow_id: str) -> str:
    """``<workflow id>.json`` with ``/`` (sub-agent ids) as ``__``, like tests/histories/."""
    return f"{workflow_id.replace('/', '__')}.json"


def to_json(history: WorkflowHistory) -> str:
    """The history as JSON (``WorkflowHistory.to_json()``: what the Replayer and
    ``WorkflowHistory.from_json`` read; the same shape as `temporal workflow show -o json`)."""
    return history.to_json() + "\n"


def load_history_file(path: Path, workflow_id: str | None = None) -> WorkflowHistory:
    """Read a history JSON file (from ``lmthing history export``, ``WorkflowHistory.to_json``,
    `temporal workflow show --output json` or the UI's download).

    The workflow id matters on replay (a sub-agent's id derives from its parent's): it is
    ``workflow_id`` if given, else the id recorded in the first event (recent servers
    record it), else the file name (``a__b.json`` is ``a/b``)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise HistoryError(f"No such file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HistoryError(f"{path} is not a history JSON file: {err}") from None
    try:
        history = WorkflowHistory.from_json(workflow_id or "", data)
    except (ParseError, ValueError, KeyError, TypeError, AttributeError) as err:  # a foreign JSON shape
        raise HistoryError(f"{path} is not a workflow history: {type(err).__name__}: {err}") from None
    if not history.events or not history.events[0].HasField("workflow_execution_started_event_attributes"):
        raise HistoryError(f"{path} is not a workflow history: its first event must be WorkflowExecutionStarted.")
    wid = workflow_id or started(history).workflow_id or path.stem.replace("__", "/")
    return WorkflowHistory(wid, history.events)


# ---------------------------------------------------------------------------------- events
def started(history: WorkflowHistory) -> Any:
    return history.events[0].workflow_execution_started_event_attributes


def event_name(event: HistoryEvent) -> str:
    """``ActivityTaskScheduled`` for EVENT_TYPE_ACTIVITY_TASK_SCHEDULED."""
    raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in raw.split("_"))


def attributes(event: HistoryEvent) -> Any:
    which = event.WhichOneof("attributes")
    return getattr(event, which) if which else None


def model_call_step(event: HistoryEvent) -> int | None:
    """The step (numbered from 0, as everywhere) of a scheduled ``lmthing.model_call`` (``None`` for other events)."""
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return None
    attrs = event.activity_task_scheduled_event_attributes
    if attrs.activity_type.name != MODEL_CALL:
        return None
    try:
        request = json.loads(attrs.input.payloads[0].data)
        return int(request.get("step", 0))
    except (IndexError, ValueError, TypeError, AttributeError):
        return -1  # an input we cannot read (an encrypting codec?): numbered by position instead


def model_steps(history: WorkflowHistory) -> list[ModelStep]:
    """Every model call the run scheduled, in order."""
    steps: list[ModelStep] = []
    for event in history.events:
        step = model_call_step(event)
        if step is None:
            continue
        if step < 0:  # unreadable input: one more than the previous step
            step = steps[-1].step + 1 if steps else 0
        attrs = event.activity_task_scheduled_event_attributes
        steps.append(ModelStep(step, event.event_id, attrs.workflow_task_completed_event_id))
    return steps


def by_id(history: WorkflowHistory) -> dict[int, HistoryEvent]:
    return {e.event_id: e for e in history.events}


def commands_of(history: WorkflowHistory, workflow_task_completed_id: int) -> list[HistoryEvent]:
    """The events recorded for the commands of one workflow task (activities scheduled,
    timers started, children started, completion...): those whose attributes point back at
    its WorkflowTaskCompleted event."""
    out = []
    for event in history.events:
        attrs = attributes(event)
        if event.event_id > workflow_task_completed_id and getattr(attrs, "workflow_task_completed_event_id", None) == workflow_task_completed_id:
            out.append(event)
    return out


def describe_event(event: HistoryEvent) -> str:
    """One line for a person: the event type and what it is about."""
    name = event_name(event)
    attrs = attributes(event)
    detail = ""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        activity_type = attrs.activity_type.name
        step = model_call_step(event)
        if activity_type == MODEL_CALL:
            detail = f"{activity_type} (model call of step {step})" if step and step > 0 else activity_type
        elif activity_type.startswith(TOOL_ACTIVITY_PREFIX):
            detail = f"{activity_type} (tool {activity_type.removeprefix(TOOL_ACTIVITY_PREFIX)!r})"
        else:
            detail = activity_type
    elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
        detail = f"timer {attrs.timer_id} ({attrs.start_to_fire_timeout.ToTimedelta()})"
    elif event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        detail = f"{attrs.workflow_type.name} child {attrs.workflow_id}"
    elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        detail = attrs.marker_name  # e.g. core_patch, for workflow.patched()
        for key, payloads in sorted(attrs.details.items()):
            try:
                detail += f" {key}={json.dumps(json.loads(payloads.payloads[0].data))[:80]}"
            except (IndexError, ValueError):
                pass
    elif event.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        detail = f"signal {attrs.signal_name!r} to {attrs.workflow_execution.workflow_id}"
    elif event.event_type in (
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    ):
        return f"{name} (event {event.event_id}): {attrs.failure.message}"
    return f"{name} {detail}".strip() + f" (event {event.event_id})"
