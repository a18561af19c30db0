"""Resilience survives the SIGKILL of its worker (docs/resilience.md, docs/failures.md).

As in tests/test_durability.py, the run's worker is a subprocess (tests/worker_process.py)
on a task queue of its own; it is killed with SIGKILL in the middle of the run, a second
worker process picks the run up, and the run ends as an undisturbed one (run on the session
worker) does:

- a model cascade killed while its second model is being asked: the first model's
  failures are not asked again, the step records still name both models;
- retries the workflow runs, killed during the backoff timer: the attempts go on from
  where they were, and the flaky service sees exactly ``max_attempts`` calls;
- a guard that asks, killed while the run waits for the person: the same question is
  pending after the restart, and the guarded tool runs once if approved, never if denied;
- a budgeted tree, killed while a sub-agent spends: the tree stops at the same step of the
  same agent with the same spend, no report counted twice.

What the tools did is counted where they did it (tests/apps/resilience_durable.py keeps a
file per run and tool); what the models were asked, at the fake wire servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from lmthing import RunConfig
from lmthing.activities.budget import BudgetCall, budget_call
from lmthing.activities.names import BUDGET, MODEL_CALL
from lmthing.client import PromptHandle
from lmthing.prompt.types import RunResult, RunStatus, StepRecord
from lmthing.resilience.budget import Spend
from tests.apps import resilience_durable as app
from tests.fakes import Call, FakeModelServer, Fault, Reply
from tests.support import new_id, pending_of, scheduled_activities, start, worker_process
from tests.test_durability import activity_starts, comparable_steps

APP = "tests.apps.resilience_durable"
# A model-call attempt lost with its worker is retried after six seconds, not five minutes.
# (Not less: a fresh worker's first call to a provider imports its SDK, ~2.5 s on a busy
# machine, before its request goes out.)
CONFIG = RunConfig(model_timeout_seconds=6)
FIRST, SECOND = "openai:gpt-4o", "anthropic:claude-haiku-4-5"


@pytest.fixture(autouse=True)
def tool_records(monkeypatch, tmp_path: Path) -> Path:
    """Where the test app's tools record their calls (the subprocess workers inherit it)."""
    monkeypatch.setenv(app.DIR_VARIABLE, str(tmp_path))
    return tmp_path


def address_of(dev_env: Any) -> str:
    return dev_env.client.service_client.config.target_host


async def events(handle: PromptHandle) -> list[Any]:
    return list((await handle.handle.fetch_history()).events)


def timer_summaries(history: list[Any]) -> list[str]:
    return [json.loads(e.user_metadata.summary.data) for e in history
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.user_metadata.HasField("summary")]


def activity_outcomes(history: list[Any], activity_type: str) -> Counter[str]:
    """How the activities of ``activity_type`` ended: completed / failed / timed out."""
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name for e in history
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    ends = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: ("completed", "activity_task_completed_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: ("failed", "activity_task_failed_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: ("timed out", "activity_task_timed_out_event_attributes"),
    }
    out: Counter[str] = Counter()
    for e in history:
        if e.event_type in ends:
            kind, field = ends[e.event_type]
            if scheduled[getattr(e, field).scheduled_event_id] == activity_type:
                out[kind] += 1
    return out


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except Exception:  # e.g. queried before the first workflow task completed
            pass
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def finish(handle: PromptHandle, worker: Any, timeout: float = 40.0) -> RunResult:
    try:
        return await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        raise AssertionError(f"the run did not finish after the restart; worker stderr:\n{worker.stderr()}") from None


# ----------------------------------------------------------------------------- cascade
def point_providers(monkeypatch, first: FakeModelServer, second: FakeModelServer) -> None:
    """openai -> ``first``, anthropic -> ``second`` (read by every worker when it calls)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", first.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", second.anthropic_base_url)


def final_answer(request: Any) -> Reply:
    """The second model's last reply says what it was sent: a conversation damaged by the
    restart (a repeated or lost message) answers differently."""
    return Reply(text=f"I noted tea; I was sent {len(request.messages)} messages")


async def test_a_cascade_killed_while_its_second_model_is_asked_asks_no_finished_call_again(
        dev_env, client: Client, worker, tmp_path: Path, monkeypatch) -> None:
    # Undisturbed, on the session worker: per step, the first model twice (500), then the second.
    async with FakeModelServer() as first, FakeModelServer() as second:
        point_providers(monkeypatch, first, second)
        first.script(*[Fault.server_error(500)] * 20)
        second.script(Reply(tool_calls=[Call("note", {"text": "tea"})]), final_answer)
        reference_handle = await start(client, app.resdur_cascade, config=CONFIG)
        reference = await asyncio.wait_for(reference_handle.result(), 30)
        reference_steps = await reference_handle.steps()
        reference_asked = (len(first.requests), len(second.requests))
    assert reference.text == "I noted tea; I was sent 3 messages" and reference.state == {"notes": ["tea"]}
    assert reference_asked == (4, 2)

    queue = new_id("resdur-cascade-q")
    async with FakeModelServer() as first, FakeModelServer() as second:
        point_providers(monkeypatch, first, second)
        first.script(*[Fault.server_error(500)] * 20)
        # Step 1's request to the second model hangs until the worker dies; its retry answers.
        second.script(Reply(tool_calls=[Call("note", {"text": "tea"})]), Reply(text="too late", first_byte_delay=30),
                      final_answer)
        async with worker_process(address_of(dev_env), queue, "first-worker", tmp_path, app=APP) as w1:
            handle = await start(client, app.resdur_cascade, config=CONFIG, task_queue=queue)
            await second.wait_for_requests(2, timeout=30)  # step 1: the first model failed twice already
            w1.kill()
            await w1.proc.wait()
        lost = await second.wait_disconnect(1)
        assert lost.disconnected and not lost.completed
        assert len(first.requests) == 4  # both steps' failures were over before the kill
        async with worker_process(address_of(dev_env), queue, "second-worker", tmp_path, app=APP) as w2:
            result = await finish(handle, w2)
            steps = await handle.steps()
            recorded = await handle.handle.fetch_history()
        history = list(recorded.events)

        # The same run as the undisturbed one: answer, state, usage, and every step record.
        assert result == reference
        assert comparable_steps(steps) == comparable_steps(reference_steps)
        for step in steps:
            assert step.answered_by == SECOND
            assert [(f["model"], f["type"]) for f in step.model_failures] == [(FIRST, "ServerError")]
        # No finished call was made again: the first model was asked 2 + 2 times, as without
        # the kill; the second model once per step, plus the one request the kill cut off.
        assert len(first.requests) == reference_asked[0]
        assert [r.completed for r in second.requests] == [True, False, True]
    assert timer_summaries(history) == [f"fallback models: next model {SECOND}"] * 2  # neither wait ran again
    assert activity_outcomes(history, MODEL_CALL) == {"completed": 2, "failed": 2}
    # Four model activities (history keeps the last attempt of each): the first model's two
    # attempts and the second model, per step; step 1's second model ran again on the second
    # worker, as attempt 2, its first attempt lost with the first worker.
    model_starts = [(attempt, who) for name, attempt, who in activity_starts(recorded) if name == MODEL_CALL]
    assert model_starts == [(2, "first-worker"), (1, "first-worker"), (2, "first-worker"), (2, "second-worker")]


# ----------------------------------------------------------------------- run retries
async def test_retries_killed_during_the_backoff_timer_go_on_counting(dev_env, client: Client, worker, tmp_path: Path) -> None:
    reference_handle = await start(client, app.resdur_retry, config=CONFIG)
    reference_result = asyncio.create_task(reference_handle.result())

    queue = new_id("resdur-retry-q")
    first_timer = f"retry net: attempt 2 of {app.RETRY_ATTEMPTS}"
    async with worker_process(address_of(dev_env), queue, "first-worker", tmp_path, app=APP) as w1:
        handle = await start(client, app.resdur_retry, config=CONFIG, task_queue=queue)

        async def waiting_to_retry() -> bool:
            return first_timer in timer_summaries(await events(handle))

        await wait_for("the first backoff timer started", waiting_to_retry)
        w1.kill()
        await w1.proc.wait()
    # Killed after the first attempt, before the second: one call so far.
    assert app.calls_of(handle.id, "resdur_flaky") == [w1.proc.pid]
    assert scheduled_activities(await events(handle)).count(app.resdur_flaky.activity_name) == 1

    async with worker_process(address_of(dev_env), queue, "second-worker", tmp_path, app=APP) as w2:
        result = await finish(handle, w2)
        history = await events(handle)
    reference = await asyncio.wait_for(reference_result, 30)

    # The attempts went on from the second: four calls in all, the last three after the restart.
    assert app.calls_of(handle.id, "resdur_flaky") == [w1.proc.pid] + [w2.proc.pid] * (app.RETRY_ATTEMPTS - 1)
    assert len(app.calls_of(reference_handle.id, "resdur_flaky")) == app.RETRY_ATTEMPTS
    assert timer_summaries(history) == [f"retry net: attempt {n} of {app.RETRY_ATTEMPTS}" for n in range(2, app.RETRY_ATTEMPTS + 1)]
    assert activity_outcomes(history, app.resdur_flaky.activity_name) == {"failed": app.RETRY_ATTEMPTS}
    # The model read the last attempt's error, as in the undisturbed run.
    assert f"connection reset (call {app.RETRY_ATTEMPTS})" in result.text
    assert result == reference


# ------------------------------------------------------------------------- guard asks
@pytest.mark.parametrize("action", ["approve", "deny"])
async def test_a_guard_killed_while_it_waits_for_a_person_asks_the_same_and_runs_the_tool_at_most_once(
        dev_env, client: Client, worker, tmp_path: Path, action: str) -> None:
    queue = new_id("resdur-guard-q")
    async with worker_process(address_of(dev_env), queue, "first-worker", tmp_path, app=APP) as w1:
        handle = await start(client, app.resdur_guard, config=CONFIG, task_queue=queue)
        [asked] = await pending_of(handle)
        w1.kill()
        await w1.proc.wait()
    assert "safe_mode" in asked.message and "text files are protected" in asked.message
    assert app.calls_of(handle.id, "resdur_remove") == []  # the guard held it back

    async with worker_process(address_of(dev_env), queue, "second-worker", tmp_path, app=APP) as w2:
        [again] = await pending_of(handle)  # answered from a replay on the second worker
        assert (again.id, again.message) == (asked.id, asked.message)
        await handle.decide(asked.id, action, by="alice", reason="checked")
        result = await finish(handle, w2)
        history = await events(handle)

    assert [(d.action, d.by) for d in result.decisions] == [(action, "alice")]
    tool_runs = scheduled_activities(history).count(app.resdur_remove.activity_name)
    told = json.loads(result.text.removeprefix("the store said: "))  # what the model read
    if action == "approve":
        # Ran once, after the approval, on the second worker.
        assert app.calls_of(handle.id, "resdur_remove") == [w2.proc.pid] and tool_runs == 1
        assert told == {"removed": "notes.txt", "removals": 1}
    else:
        assert app.calls_of(handle.id, "resdur_remove") == [] and tool_runs == 0
        assert told["denied"] is True and told["guard"] == "safe_mode" and told["by"] == "alice"


# ---------------------------------------------------------------------- budgeted tree
def step_tokens(steps: list[StepRecord]) -> list[int]:
    return [s.response.usage.input_tokens + s.response.usage.output_tokens for s in steps]


async def children(client: Client, root: PromptHandle) -> dict[str, PromptHandle]:
    """The root's sub-agent runs by agent name (their ids are ``<root>/<agent>/<call>``)."""
    ids = [e.start_child_workflow_execution_initiated_event_attributes.workflow_id for e in await events(root)
           if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    return {i.split("/")[1]: PromptHandle(client.get_workflow_handle(i, result_type=RunResult), client) for i in ids}


async def tree_outcome(client: Client, root: PromptHandle) -> dict[str, Any]:
    """What a user of the tree sees: its result, each agent's result and the root's ledger
    (spend per agent, not per workflow id, so two runs compare)."""
    result = await root.result()
    runs = await children(client, root)
    ledger = await root.handle.query("budget")
    agent_of = {h.id: name for name, h in runs.items()} | {root.id: "root"}
    return {
        "result": result,
        "agents": {name: await h.result() for name, h in runs.items()},
        "spent": ledger["tokens"],
        "by_agent": {agent_of[run_id]: tokens for run_id, tokens in ledger["by_run"].items()},
        "exceeded": ledger["exceeded"],
    }


async def test_a_budgeted_tree_killed_while_a_sub_agent_spends_stops_where_it_would_have(
        dev_env, client: Client, worker, tmp_path: Path) -> None:
    # Without a limit the tree spends this much per step; the limit is crossed by agent c's
    # third step (c stops there, its tool call not run, and the root after it).
    unlimited = await start(client, app.resdur_tree, {"task": "1000000"}, config=CONFIG)
    assert (await unlimited.result()).stop_reason == "answer"
    spend = {name: step_tokens(await h.steps()) for name, h in (await children(client, unlimited)).items()}
    root_spend = step_tokens(await unlimited.steps())
    limit = sum(root_spend[:3]) + sum(spend["a"]) + sum(spend["b"]) + sum(spend["c"][:2]) + 1

    reference_handle = await start(client, app.resdur_tree, {"task": str(limit)}, config=CONFIG)
    reference_outcome = asyncio.create_task(tree_outcome(client, reference_handle))

    queue = new_id("resdur-tree-q")
    async with worker_process(address_of(dev_env), queue, "first-worker", tmp_path, app=APP) as w1:
        handle = await start(client, app.resdur_tree, {"task": str(limit)}, config=CONFIG, task_queue=queue)

        async def b_ponders_after_spending() -> bool:
            b = (await children(client, handle)).get("b")
            status = await b.handle.query("status", result_type=RunStatus) if b else None
            return status is not None and status.step >= 1 and "resdur_ponder" in status.running_tools

        await wait_for("agent b pondering after its first step", b_ponders_after_spending)
        w1.kill()
        await w1.proc.wait()

    async with worker_process(address_of(dev_env), queue, "second-worker", tmp_path, app=APP):
        got = await asyncio.wait_for(tree_outcome(client, handle), 45)
        runs = await children(client, handle)
        histories = {name: await events(h) for name, h in runs.items()}
    reference = await asyncio.wait_for(reference_outcome, 30)

    # b was under way when the first worker died, and the second one finished it.
    b_tasks = [e.workflow_task_completed_event_attributes.identity for e in histories["b"]
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    assert b_tasks[0] == "first-worker" and b_tasks[-1] == "second-worker"

    assert got == reference
    result = got["result"]
    assert result.stop_reason == "budget" and got["exceeded"]["name"] == "tokens"
    # c crossed the limit at its third step; a and b had finished.
    assert [(n, a.stop_reason, a.steps) for n, a in got["agents"].items()] == [
        ("a", "answer", app.PONDER_STEPS + 1), ("b", "answer", app.PONDER_STEPS + 1), ("c", "budget", 3)]
    assert got["spent"] == limit - 1 + spend["c"][2]
    # Each agent's spend counted once: what its steps used, one report per step, sent by
    # the step's model activity (ModelRequest.budget_root), not by an activity of its own.
    for name, history in histories.items():
        agent_steps = got["agents"][name].steps
        assert got["by_agent"][name] == sum(spend[name][:agent_steps])
        assert activity_outcomes(history, MODEL_CALL) == {"completed": agent_steps}, name
        assert activity_outcomes(history, BUDGET) == {}, name
    root_history = await events(handle)
    reports = [e for e in root_history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
    assert len(reports) == sum(a.steps for a in got["agents"].values())  # one per sub-agent step, none twice



async def test_a_budget_report_sent_again_by_the_next_attempt_of_its_activity_is_counted_once(client: Client, worker) -> None:
    """The window the kill above rarely hits: the root took a sub-agent's report, and the
    worker of the reporting ``lmthing.budget`` activity died before it could say so. Temporal
    runs the activity again (attempt 2, same activity); the root must not count it twice.
    The activity runs in the SDK's ActivityEnvironment as that worker would run it, against
    a real budgeted root run."""
    root = await start(client, app.resdur_waiting_root, config=CONFIG)
    [asked] = await pending_of(root)  # the root is alive, waiting for a person
    child = f"{root.id}/helper/call_0_0"
    env = ActivityEnvironment(client=client)
    env.info = dataclasses.replace(env.info, workflow_id=child, workflow_run_id="run-1", activity_id="4",
                                   activity_type=BUDGET, workflow_type=app.resdur_waiting_root.spec.name)
    report = BudgetCall(root_id=root.id, op="spend", spend=Spend(run_id=child, tokens=40))
    first = await env.run(budget_call, report)
    env.info = dataclasses.replace(env.info, attempt=2)
    again = await env.run(budget_call, report)
    ledger = await root.handle.query("budget")
    assert ledger["by_run"][child] == 40, ledger  # once
    assert again == first
    await root.decide(asked.id, "deny")
    await asyncio.wait_for(root.result(), 30)
