"""The function plugin: model-written code calling registered functions (runToolCode)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from lmthing.client import start_prompt
from lmthing.plugins.code_interpreter import (
    Limits,
    check_code,
    run_code,
    signature_from_schema,
)
from tests.apps import functions_app
from tests.hostile_snippets import HOSTILE
from tests.support import (
    history,
    new_id,
    run,
    scheduled_activities,
    start,
    worker_process,
)


def _outcome(step) -> dict:
    return step.tool_results[0].result


# ------------------------------------------------------------------ end to end


async def test_a_script_calls_in_workflow_activity_and_namespaced_functions(client, worker):
    handle = await start(client, functions_app.functions_script)
    result = await handle.result()
    steps = await handle.steps()
    first = _outcome(steps[0])
    assert first == {
        "success": True,
        "result": {"sum": 42, "product": 84.0, "score": 50, "square": 9.0, "names": ["A", "B"]},
        "output": "product=84.0 50 9.0\n",
    }
    assert _outcome(steps[1]) == {"success": True, "result": 3, "output": ""}
    assert result.text == "done"
    assert result.state == {"calls": ["calculate", "calculate"]}  # in-workflow, once per call
    # Activity functions ran as activities; in-workflow ones did not schedule anything.
    assert scheduled_activities(await history(handle)) == [
        "lmthing.model_call", "lmthing.tool.lookup", "lmthing.tool.square",
        "lmthing.model_call", "lmthing.model_call",
    ]


async def test_run_tool_code_is_offered_at_every_step_with_the_signatures(client, worker):
    _, steps = await run(client, functions_app.functions_script)
    assert len(steps) == 3
    for step in steps:
        assert [t.name for t in step.request.tools] == ["runToolCode"]
        system = step.request.system
        assert "<available_functions>\n# Available Functions\n" in system
        assert '## calculate\nAdd two numbers\n- Parameters: a: int, b: int\n- Returns: {"sum": int}\n' in system
        assert "## lookup\n" in system and "- Parameters: item: str\n- Returns: dict\n" in system
        assert "## math (namespace)\n\n### math.multiply\n" in system
        assert '- Parameters: a: float, b: float\n- Returns: {"product": float}' in system
        assert "### math.square\n" in system and "- Parameters: x: float\n- Returns: dict" in system


async def test_static_errors_come_back_with_line_numbers_and_nothing_runs(client, worker):
    result, steps = await run(client, functions_app.functions_static_errors)
    first = _outcome(steps[0])
    assert first["success"] is False
    assert first["message"] == "Python validation failed. Fix the errors and try again."
    errors = first["errors"]
    assert "Line 1: calculate() argument 'a' expects int, got a literal of type str" in errors
    assert any(e.startswith("Line 1: calculate() got an unknown argument 'c'") for e in errors)
    assert any(e.startswith("Line 1: calculate() is missing required argument(s): b") for e in errors)
    assert any(e.startswith("Line 2: unknown function 'nope'.") for e in errors)
    assert any(e.startswith("Line 3: unknown function 'math.divide'. Available in 'math': math.multiply") for e in errors)
    assert any(e.startswith("Line 4: math.multiply() is missing required argument(s): b") for e in errors)
    assert any(e.startswith("Line 5: call calculate with keyword arguments") for e in errors)
    assert [int(e.split(":")[0].split()[1]) for e in errors] == sorted(int(e.split(":")[0].split()[1]) for e in errors)
    syntax = _outcome(steps[1])
    assert syntax["success"] is False and syntax["errors"] == ["Line 2: syntax error: invalid syntax"]
    assert result.state == {"calls": 0}  # nothing ran
    assert [t.name for t in steps[2].request.tools] == ["runToolCode"]


async def test_callbacks_and_response_schema_apply_to_every_call(client, worker):
    result, steps = await run(client, functions_app.functions_callbacks)
    assert _outcome(steps[0]) == {
        "success": True,
        "result": [{"sum": -1}, {"sum": 30}, {"sum": 0, "note": "bad input"}],  # on_error got the error (lmthing: an Error)
        "output": "",
    }
    shape = _outcome(steps[1])
    assert shape["success"] is False
    assert shape["error"].startswith("Line 2: bad_shape: Tool 'bad_shape' returned a result that does not match its response schema: sum: Field required")
    kept = _outcome(steps[2])
    assert kept["success"] is False and kept["output"] == "before\n"
    assert kept["error"] == "Line 2: kept_error: bad input"
    # "short" was short-circuited by before_call; "replaced" ran twice.
    assert result.state["calls"] == ["real:1+2", "real:2+2"]


async def test_hostile_code_is_contained_end_to_end(client, worker):
    result, steps = await run(client, functions_app.functions_hostile)
    escape, loop, bomb = (_outcome(s) for s in steps[:3])
    assert escape["success"] is False and any("'__subclasses__' is not allowed" in e for e in escape["errors"])
    assert loop["success"] is False and "stopped after 100000 evaluation steps" in loop["error"]
    assert bomb["success"] is False and "too large" in bomb["error"]
    assert result.text == "contained"


async def test_function_agents_run_as_child_workflows(client, worker):
    handle = await start(client, functions_app.functions_agents)
    result = await handle.result()
    steps = await handle.steps()
    outcome = _outcome(steps[0])
    assert outcome == {
        "success": True,
        "result": {"r": {"findings": ["the moon pulls"], "confidence": 0.9}, "s": "Tides: the moon pulls."},
        "output": "",
    }, outcome
    # The agents are reachable from code only: the model sees just runToolCode.
    assert [t.name for t in steps[0].request.tools] == ["runToolCode"]
    assert '## researcher (agent)\nResearch a topic\n- Parameters: topic: str\n- Returns: {"findings": list[str], "confidence": float}' in steps[0].request.system
    events = await history(handle)
    children = [e for e in events if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    assert len(children) == 2
    assert result.text == "done"


# ------------------------------------------------------------------ crash mid-script


async def _wait_for_activity(handle, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = list((await handle.handle.fetch_history()).events)
        if name in scheduled_activities(events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was never scheduled")


async def test_a_crash_mid_script_does_not_repeat_completed_calls(dev_env, client: Client, worker, tmp_path: Path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("functions-q")
    app = "tests.apps.functions_app"
    async with worker_process(address, queue, "fn-first", tmp_path, app=app) as first:
        handle = await start_prompt(client, functions_app.functions_crash, id=new_id("functions-crash"), task_queue=queue)
        await _wait_for_activity(handle, functions_app.slow_step.activity_name)
        await asyncio.sleep(0.5)  # the slow call is running on the first worker
        assert (await handle.state())["notes"] == ["after one"]
        first.kill()
        await first.proc.wait()
    async with worker_process(address, queue, "fn-second", tmp_path, app=app) as second:
        try:
            result = await asyncio.wait_for(handle.result(), 60)
        except TimeoutError:
            raise AssertionError(f"the run did not finish after the restart:\n{second.stderr()}") from None
        steps = await handle.steps()
    assert _outcome(steps[0]) == {"success": True, "result": 23, "output": ""}
    assert result.text == "done"
    # The in-workflow call was replayed, not repeated: its state change happened once.
    assert result.state == {"notes": ["after one"]}

    scheduled: dict[int, str] = {}
    starts: dict[str, list[tuple[int, str]]] = {}
    for e in (await handle.handle.fetch_history()).events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = e.activity_task_started_event_attributes
            starts.setdefault(scheduled[a.scheduled_event_id], []).append((a.attempt, a.identity))
    one, slow, three = (f"lmthing.tool.{n}" for n in ("step_one", "slow_step", "step_three"))
    assert starts[one] == [(1, "fn-first")]  # completed before the kill: never run again
    assert list(scheduled.values()).count(one) == 1
    assert list(scheduled.values()).count(slow) == 1
    assert starts[slow] == [(2, "fn-second")]  # the attempt in flight was lost and retried once
    assert [who for _, who in starts[three]] == ["fn-second"]


# ------------------------------------------------------------------ interpreter unit tests

SIGS = {
    "calculate": signature_from_schema(
        "calculate", {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    ),
    "math.multiply": signature_from_schema(
        "math.multiply", {"properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}
    ),
}


async def _fake_call(name, kwargs, line):
    if name == "calculate":
        return {"sum": kwargs["a"] + kwargs["b"]}
    return {"product": kwargs["a"] * kwargs["b"]}


def test_the_corpus_is_large_enough():
    assert len(HOSTILE) >= 30
    assert len({i for i, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("code", "fragment"), [(c, f) for _, c, f in HOSTILE], ids=[i for i, _, _ in HOSTILE])
async def test_hostile_snippet_is_rejected_or_stopped(code, fragment):
    started = time.monotonic()
    out = await run_code(code, SIGS, _fake_call)
    assert out["success"] is False
    message = out.get("error") or " | ".join(out.get("errors", []))
    assert message.startswith("Line ") or " | Line " in message
    assert fragment in message, message
    assert time.monotonic() - started < 5


async def test_the_safe_subset_works():
    code = """total = 0
xs = []
for i in range(10):
    if i % 2 == 0:
        continue
    xs.append(i)
    total += i
while total > 20:
    total -= 5
d = {"k": [1, 2, 3]}
d["k"][0] = 7
a, b = 1, 2
word = "Hi there"
r = calculate(a=a, b=b)
m = math.multiply(a=r["sum"], b=1.5)
print(len(xs), sorted(xs, reverse=True)[0], word.lower().split(" "), sep=",")
{"xs": xs, "total": total, "d": d, "m": m["product"], "max": max(xs), "sum": sum(xs), "t": (a, b), "dc": {k: v for k, v in d.items()}}
"""
    out = await run_code(code, SIGS, _fake_call)
    assert out == {
        "success": True,
        "result": {"xs": [1, 3, 5, 7, 9], "total": 20, "d": {"k": [7, 2, 3]}, "m": 4.5, "max": 9, "sum": 25, "t": [1, 2], "dc": {"k": [7, 2, 3]}},
        "output": "5,9,['hi', 'there']\n",
    }


async def test_runtime_errors_carry_line_numbers():
    out = await run_code("x = 1\ny = {}\nz = y['missing']", SIGS, _fake_call)
    assert out["success"] is False and out["error"].startswith("Line 3: KeyError")
    out = await run_code("x = 1\n\nz = x / 0", SIGS, _fake_call)
    assert out["error"] == "Line 3: ZeroDivisionError: division by zero"


def test_a_smaller_step_budget_applies():
    _, errors = check_code("while True:\n    pass", SIGS)
    assert errors == []
    out = asyncio.run(run_code("for i in range(100):\n    x = i", SIGS, _fake_call, Limits(max_steps=50)))
    assert "stopped after 50 evaluation steps" in out["error"]
