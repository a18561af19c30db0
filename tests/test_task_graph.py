"""The task graph plugin against the real dev server: model tools, askHuman waiting for a
person, and durable engine runs (fan-out/fan-in, failure policies, cancellation, crash)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from lmthing import RunConfig
from lmthing.client import get_handle, start_prompt
from lmthing.plugins.task_graph import TaskGraphError, normalize
from tests.apps import task_graph_app as app
from tests.support import history, new_id, pending_of, start, worker_process


def child_events(events):
    """(kind, child workflow id) for child starts and closes, in history order."""
    out = []
    for e in events:
        if e.HasField("start_child_workflow_execution_initiated_event_attributes"):
            out.append(("start", e.start_child_workflow_execution_initiated_event_attributes.workflow_id))
        elif e.HasField("child_workflow_execution_completed_event_attributes"):
            out.append(("done", e.child_workflow_execution_completed_event_attributes.workflow_execution.workflow_id))
        elif e.HasField("child_workflow_execution_failed_event_attributes"):
            a = e.child_workflow_execution_failed_event_attributes
            out.append(("failed", a.workflow_execution.workflow_id, a.failure.message, a.failure.cause.message))
    return out


def tail(wid: str) -> str:
    return wid.rsplit("task-", 1)[-1]


def by_id(graph):
    return {n["id"]: n for n in graph}


def test_validation_messages_name_the_ids():
    # lmthing's validateTaskGraph texts (taskGraph.ts), joined by "; ".
    with pytest.raises(TaskGraphError, match="^Invalid task graph: Circular dependency detected involving tasks: x, y, z$"):
        normalize(app.CYCLE)
    with pytest.raises(TaskGraphError) as refs:
        normalize(app.BAD_REF)
    assert str(refs.value) == 'Invalid task graph: Task "a" depends on unknown task "ghost"; Task "b" unblocks unknown task "phantom"'
    with pytest.raises(TaskGraphError, match='Duplicate task ID: "a"'):
        normalize([{"id": "a", "title": "1"}, {"id": "a", "title": "2"}])
    g = by_id(normalize(app.DIAMOND))
    assert g["A"]["unblocks"] == ["B", "C"] and g["B"]["dependencies"] == ["A"] and g["C"]["unblocks"] == ["D"]


async def test_model_tools_shapes_errors_and_status_block_every_step(client, worker):
    handle = await start(client, app.graph_tools)
    result = await handle.result()
    assert result.text == "done"
    steps = await handle.steps()
    r = [s.tool_results[0].result for s in steps[:-1]]
    # lmthing's results and messages (taskGraph.ts); tests/test_parity.py has more of them.
    assert r[0] == {"success": False, "message": "Invalid task graph: Circular dependency detected involving tasks: x, y, z"}
    assert r[1]["success"] is False and 'Task "a" depends on unknown task "ghost"' in r[1]["message"]
    assert r[2]["success"] is True and r[2]["taskCount"] == 4
    assert r[2]["message"] == "Task graph created with 4 tasks. 1 task(s) are immediately ready for execution."
    assert by_id(r[2]["tasks"])["B"]["dependencies"] == ["A"]
    assert [t["id"] for t in r[3]["tasks"]] == ["A"] and r[3]["message"] == "1 task(s) are ready for execution."
    assert r[4]["success"] is False and r[4]["message"] == 'Cannot start task "Assemble". Unmet dependencies: B, C'
    assert r[5] == {"success": False, "taskId": "nope", "message": 'Task "nope" not found. Available IDs: A, B, C, D'}
    assert r[6]["message"] == 'Task "Research" is now in progress.' and r[6]["task"]["status"] == "in_progress"
    assert r[7]["message"] == 'Task "Research" completed. Newly unblocked: Draft, Figures.'
    assert [t["id"] for t in r[7]["newlyUnblockedTasks"]] == ["B", "C"]
    assert r[7]["newlyUnblockedTasks"][0]["input_context"] == "[From Research]: facts"
    assert r[8]["message"] == 'Task "Research" is already completed and cannot be changed to "failed".'
    assert r[9]["message"] == 'Task "Figures" marked as failed.' and r[9]["task"]["output_result"] == "no data"
    assert r[10]["message"] == 'Spawned task "Publish" (E). Dependencies: D.' and r[10]["task"]["dependencies"] == ["D"]
    assert r[11] == {"success": False, "message": "Invalid task: Circular dependency detected involving tasks: A, B, C, D, E, task-6"}
    assert r[12]["message"] == (
        'Forked task "Synthesis" (F) added. It will inherit ALL completed task outputs when unblocked. Dependencies: B.')
    assert r[13]["message"] == 'Question node "Q" created: "Which year?". Downstream tasks (none) are blocked until answered.'
    assert r[14]["message"] == 'Task "C" is not an ask node (type: spawn).'
    assert r[15]["message"] == 'Cannot answer "[ASK] Which year?" yet. Unmet dependencies: C'
    assert r[16]["message"] == (
        "7 tasks: 1 completed, 0 in progress, 5 pending, 1 failed | 1 unanswered question(s) — use answerQuestion to unblock.")
    assert r[16]["tree"] == (
        "✓ [completed] SPAWN Research\n"
        "  result: facts\n"
        "  ○ [pending] SPAWN Draft blocked-by: A\n"
        "    ○ [pending] SPAWN Assemble blocked-by: B, C\n"
        "      ○ [pending] SPAWN Publish blocked-by: D\n"
        "    ○ [FORK] [pending] FORK Synthesis blocked-by: B\n"
        "  ✗ [failed] SPAWN Figures\n"
        "    ○ [ASK] [pending] ASK [ASK] Which year? blocked-by: C\n"
        "      ? Which year?"
    )
    # The status block reaches the model on every step, next to the other system parts.
    for s in steps:
        assert "<role>\nYou are a planner.\n</role>" in s.request.system
        assert s.request.system.count("## Task Graph Status") == 1
    assert "### Ready to Start (1)\n  - [seed] Seed" in steps[0].request.system
    assert "### Completed (1)\n  - [A] Research [web-search]" in steps[8].request.system
    assert "### Failed (1)\n  - [C] Figures" in steps[10].request.system
    assert "- [D] Assemble (depends on: B, C)" in steps[8].request.system


async def test_ask_human_waits_for_the_answer(client, worker):
    handle = await start(client, app.graph_ask)
    [item] = await pending_of(handle)
    assert item.message == "Which city?" if hasattr(item, "message") else True
    await asyncio.sleep(0.3)
    assert (await handle.status()).phase != "finished"  # still waiting for the person
    await handle.answer(item.id, "Oslo")
    result = await handle.result()
    assert result.text == "asked"
    steps = await handle.steps()
    # The ask node (lmthing's askHuman) is completed with the person's answer, as
    # answerQuestion would; its downstream task gets the answer as context.
    asked = steps[0].tool_results[0].result
    assert asked["message"] == 'Question answered: "Oslo". No tasks newly unblocked.' and asked["answer"] == "Oslo"
    assert asked["task"]["id"] == "city" and asked["task"]["status"] == "completed" and asked["task"]["output_result"] == "Oslo"
    assert steps[1].tool_results[0].result == {
        "success": False, "message": 'Invalid ask node: Task "ask-6" depends on unknown task "ghost"'}
    assert by_id(result.state["taskGraph"])["B"]["input_context"] == "[From [ASK] Which city?]: Oslo"
    assert result.decisions[0].answer == "Oslo"


async def test_diamond_runs_concurrently_in_order_with_context(client, worker):
    handle = await start(client, app.diamond)
    result = await handle.result()
    assert result.text == "graph done"
    out = (await handle.steps())[0].tool_results[0].result
    assert out["success"], out
    g = by_id(out["tasks"])
    assert all(n["status"] == "completed" for n in g.values())
    assert g["B"]["output_result"] == "out-B"
    assert "[From Draft]: out-B" in g["D"]["input_context"] and "[From Figures]: out-C" in g["D"]["input_context"]
    ev = child_events(await history(handle))
    starts = [tail(w) for k, w, *_ in ev if k == "start"]
    dones = [tail(w) for k, w, *_ in ev if k == "done"]
    assert sorted(starts) == ["A", "B", "C", "D"] and dones == ["A", "C", "B", "D"]
    pos = {(k, tail(w)): i for i, (k, w, *_) in enumerate(ev)}
    assert max(pos["start", "B"], pos["start", "C"]) < min(pos["done", "B"], pos["done", "C"])  # B and C overlapped
    assert pos["start", "D"] > pos["done", "B"]
    # D's sub-agent received both upstream outputs.
    d_child = get_handle(client, next(w for k, w, *_ in ev if k == "start" and tail(w) == "D"))
    first = (await d_child.steps())[0].request.messages[0].content
    assert "out-B" in first and "out-C" in first


@pytest.mark.parametrize(
    "prompt_fn, statuses, started",
    [
        (app.fail_fast, {"A": "completed", "B": "failed", "C": "pending", "D": "pending", "E": "pending"}, ["A", "B"]),
        (app.keep_going, {"A": "completed", "B": "failed", "C": "completed", "D": "pending", "E": "completed"}, ["A", "B", "C", "E"]),
        (app.skip_dependents, {"A": "completed", "B": "failed", "C": "completed", "D": "skipped", "E": "completed"}, ["A", "B", "C", "E"]),
    ],
)
async def test_failure_policies(client, worker, prompt_fn, statuses, started):
    handle = await start(client, prompt_fn)
    assert (await handle.result()).text == "over"
    out = (await handle.steps())[0].tool_results[0].result
    g = by_id(out["graph"])
    assert {k: v["status"] for k, v in g.items()} == statuses
    assert "B cannot be done" in g["B"]["error"]
    ev = child_events(await history(handle))
    assert [tail(w) for k, w, *_ in ev if k == "start"] == started
    if prompt_fn is app.fail_fast:
        assert out["failed"] == ["B"] and "task B failed" in out["raised"] and "not started: C, D, E" in out["raised"]
    else:
        assert "raised" not in out
    if prompt_fn is app.skip_dependents:
        assert g["D"]["error"] == "skipped: depends on failed task 'B'"


async def test_cancelling_the_run_cancels_running_tasks(client, worker):
    handle = await start(client, app.cancellable_graph)
    ids = [f"{handle.id}/sleeper/call_0_0/task-S1", f"{handle.id}/sleeper/call_0_0/task-S2"]
    for _ in range(200):
        if len([k for k, *_ in child_events(await history(handle)) if k == "start"]) == 2:
            break
        await asyncio.sleep(0.05)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    for cid in ids:
        child = client.get_workflow_handle(cid)
        for _ in range(100):
            if (await child.describe()).status == WorkflowExecutionStatus.CANCELED:
                break
            await asyncio.sleep(0.05)
        assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED
    assert not any(w.endswith("task-S3") for _, w, *_ in child_events(await history(handle)))


async def test_worker_crash_mid_graph_does_not_rerun_finished_tasks(dev_env, client, worker, tmp_path: Path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("tg-crash")
    async with worker_process(address, queue, "tg-w1", tmp_path, app="tests.apps.task_graph_app") as w1:
        handle = await start_prompt(client, app.crash_graph, config=RunConfig(model_timeout_seconds=5), id=new_id("tg-crash"), task_queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ev = child_events(await history(handle))
            done = {tail(w) for k, w, *_ in ev if k == "done"}
            started = {tail(w) for k, w, *_ in ev if k == "start"}
            if "A" in done and {"B", "C"} <= started and "B" not in done:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"never reached the middle of the graph: {ev}")
        w1.kill()
    async with worker_process(address, queue, "tg-w2", tmp_path, app="tests.apps.task_graph_app"):
        result = await asyncio.wait_for(handle.result(), 45)
        out = (await handle.steps())[0].tool_results[0].result
    assert result.text == "reported"
    ev = child_events(await history(handle))
    starts = [tail(w) for k, w, *_ in ev if k == "start"]
    assert sorted(starts) == ["A", "B", "C", "D"]  # each task's child started exactly once
    assert out == {"result": "A=completed, B=completed, C=completed, D=completed"}
