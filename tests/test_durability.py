"""Durability: a run survives the SIGKILL of its worker and ends exactly as an undisturbed run.

The worker runs in a subprocess (tests/worker_process.py) on a task queue of its own, so
the session worker never sees these runs. When the ``status`` query shows the run in the
middle (step >= 2, the slow activity tool running), the process is killed with SIGKILL: no
graceful shutdown, the activity attempt in flight is lost and the workflow's cached state
is gone. A second worker process then picks the run up: the lost attempt times out and is
retried, the workflow is rebuilt by replaying its history (in-workflow tool calls and
``def_state`` included), and the run goes on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from lmthing import RunConfig
from lmthing.activities.names import MODEL_CALL
from lmthing.client import PromptHandle, data_converter, start_prompt
from lmthing.prompt.types import RunStatus, StepRecord
from lmthing.workers import sandbox_runner
from tests.apps import durable
from tests.support import TEST_TASK_QUEUE, new_id, worker_process

# Model calls take milliseconds; a short timeout means that even a kill that lands on a
# model-call attempt costs seconds, not the default five minutes.
CONFIG = RunConfig(model_timeout_seconds=5)
SLOW_TOOL = durable.slow_lookup.activity_name


async def start_run(client: Client, task_queue: str) -> PromptHandle:
    return await start_prompt(client, durable.durable_counter, config=CONFIG, id=new_id("durable"), task_queue=task_queue)


async def wait_until_mid_run(handle: PromptHandle, timeout: float = 30.0) -> RunStatus:
    """Poll ``status`` until step >= 2 with the slow activity tool running."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await handle.status()
        except Exception as err:  # e.g. queried before the first workflow task completed
            last = err
        else:
            if last.step >= 2 and "slow_lookup" in last.running_tools:
                return last
            assert last.phase != "finished", f"the run finished before it could be interrupted: {last}"
        await asyncio.sleep(0.02)
    raise AssertionError(f"the run never reached the middle; last status: {last!r}")


def comparable_steps(steps: list[StepRecord]) -> list[dict[str, Any]]:
    """Step records without what differs between two runs of the same prompt (the id)."""
    return [s.model_dump(mode="json", exclude={"request": {"workflow_id"}}) for s in steps]


def activity_starts(history: WorkflowHistory) -> list[tuple[str, int, str]]:
    """(activity type, attempt, worker identity) of every activity that was started."""
    scheduled: dict[int, str] = {}
    out: list[tuple[str, int, str]] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = e.activity_task_started_event_attributes
            out.append((scheduled[a.scheduled_event_id], a.attempt, a.identity))
    return out


def event_types(history: WorkflowHistory) -> list[str]:
    return [EventType.Name(e.event_type) for e in history.events]


async def test_run_survives_worker_sigkill(dev_env, client: Client, worker, tmp_path: Path) -> None:
    address = dev_env.client.service_client.config.target_host
    queue = new_id("durable-q")

    # The undisturbed reference run, on the session worker, meanwhile.
    reference_handle = await start_run(client, TEST_TASK_QUEUE)
    reference_result = asyncio.create_task(reference_handle.result())

    async with worker_process(address, queue, "first-worker", tmp_path) as first:
        handle = await start_run(client, queue)
        status = await wait_until_mid_run(handle)
        state_before_kill = await handle.state()
        first.kill()
        await first.proc.wait()
    killed_at_step = status.step
    assert 2 <= killed_at_step < durable.EXPECTED_STEPS - 1, status
    # The in-workflow tool of the step being killed ran already (tools run concurrently).
    assert state_before_kill["count"] >= killed_at_step + 1, state_before_kill
    assert state_before_kill["log"] == durable.ITEMS[: state_before_kill["count"]]
    events_at_kill = len((await handle.handle.fetch_history()).events)

    async with worker_process(address, queue, "second-worker", tmp_path) as second:
        try:
            result = await asyncio.wait_for(handle.result(), 45)
        except TimeoutError:
            raise AssertionError(
                f"the run did not finish after the restart; history: {event_types(await handle.handle.fetch_history())}\n"
                f"second worker stderr:\n{second.stderr()}"
            ) from None
        # Queries on the finished run are answered by the second worker from a replay.
        final_state = await handle.state()
        steps = await handle.steps()
    reference = await asyncio.wait_for(reference_result, 30)
    reference_steps = await reference_handle.steps()

    # The interrupted run ends exactly as the undisturbed one: answer, state, step count,
    # usage, and what the model saw and returned at every step.
    assert result.stop_reason == "answer"
    assert result.steps == durable.EXPECTED_STEPS
    total = sum(len(item) * 10 for item in durable.ITEMS)
    assert result.text.startswith(f"Looked up {len(durable.ITEMS)} items, total score {total}. Context:")
    assert f"<recorded>\n {len(durable.ITEMS)}\n" in result.text and "<last_entry>\n zeta\n" in result.text
    assert result == reference
    assert comparable_steps(steps) == comparable_steps(reference_steps)

    # State intact: every in-workflow tool call counted once, none lost, none repeated,
    # although the ones before the kill ran again (in replay) on the second worker.
    assert result.state == {"count": len(durable.ITEMS), "log": durable.ITEMS}
    assert final_state == result.state

    # The history shows the kill: work before it by the first worker, after it by the second,
    # and the lost attempt of the slow tool (or a lost workflow task) redone.
    history = await handle.handle.fetch_history()
    assert len(history.events) > events_at_kill
    types = event_types(history)
    assert types[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    starts = activity_starts(history)
    model_calls = [(attempt, who) for name, attempt, who in starts if name == MODEL_CALL]
    tool_calls = [(attempt, who) for name, attempt, who in starts if name == SLOW_TOOL]
    assert len(model_calls) == durable.EXPECTED_STEPS
    assert len(tool_calls) == len(durable.ITEMS)
    # (the kill follows the status query by milliseconds; the slow tool rarely ends between)
    assert sum(who == "first-worker" for _, who in model_calls) >= killed_at_step + 1, model_calls
    assert sum(who == "second-worker" for _, who in model_calls) >= 1, model_calls
    retried = [attempt for attempt, _ in tool_calls if attempt > 1]
    lost_tasks = [t for t in types if t in ("EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT", "EVENT_TYPE_WORKFLOW_TASK_FAILED")]
    assert retried or lost_tasks, f"no trace of the kill in the history: {starts} {types}"
    # Normally the kill lands while the slow tool runs: its attempt 1 was lost, attempt 2
    # ran on the second worker.
    if retried:
        assert tool_calls[killed_at_step] == (2, "second-worker"), tool_calls
    task_completions = [
        e.workflow_task_completed_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert "first-worker" in task_completions and task_completions[-1] == "second-worker"
    assert "ACTIVITY_TASK_FAILED" not in " ".join(types) and "ACTIVITY_TASK_TIMED_OUT" not in " ".join(types)

    # And the interrupted history (lost workflow task, retried attempt) replays cleanly.
    replay = await Replayer(
        workflows=[durable.durable_counter], workflow_runner=sandbox_runner(), data_converter=data_converter()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
