"""Tools: activities vs in-workflow functions, concurrency, validation, failures, callbacks."""

import pytest
from temporalio.client import WorkflowFailureError

from tests.apps import tools_app
from tests.support import activity_attempts, event_kinds, history, run, scheduled_activities, start


async def test_decorated_tools_run_as_activities_and_closures_in_the_workflow(client, worker):
    handle = await start(client, tools_app.mixed)
    result = await handle.result()
    steps = await handle.steps()
    events = await history(handle)
    assert scheduled_activities(events) == ["lmthing.model_call", "lmthing.tool.add", "lmthing.model_call"]
    add_result, note_result = steps[0].tool_results
    assert add_result.result["sum"] == 5
    assert add_result.result["key"] == f"{handle.id}:call_0_0"  # idempotency key: workflow id + call id
    assert note_result.result == {"ok": True}
    assert result.state == {"notes": ["hi"]}
    # Tool results reach the model in call order, as tool messages.
    tool_messages = [m for m in steps[1].request.messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_messages] == ["call_0_0", "call_0_1"]


async def test_tool_schemas_come_from_the_signature(client, worker):
    _, steps = await run(client, tools_app.mixed)
    add_def = next(t for t in steps[0].request.tools if t.name == "add")
    assert add_def.description == "Add two integers."
    assert add_def.parameters["required"] == ["a", "b"]
    assert set(add_def.parameters["properties"]) == {"a", "b"}  # the ToolContext parameter is hidden


async def test_tool_calls_of_one_reply_run_concurrently_and_return_in_call_order(client, worker):
    handle = await start(client, tools_app.concurrent)
    await handle.result()
    kinds = event_kinds(await history(handle))
    # Both tool activities are scheduled before either completes.
    scheduled = [i for i, k in enumerate(kinds) if k == "ACTIVITY_TASK_SCHEDULED"][1:3]
    first_completed_tool = [i for i, k in enumerate(kinds) if k == "ACTIVITY_TASK_COMPLETED"][1]
    assert len(scheduled) == 2 and max(scheduled) < first_completed_tool
    steps = await handle.steps()
    assert [r.result for r in steps[0].tool_results] == [{"echo": "first"}, {"echo": "second"}]


async def test_invalid_arguments_go_back_to_the_model_without_scheduling(client, worker):
    handle = await start(client, tools_app.invalid_args)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "recovered"
    bad_type, bad_json, unknown = (s.tool_results[0] for s in steps[:3])
    assert bad_type.is_error and bad_type.result["error"].startswith("Invalid input for tool add: Type validation failed: Value: ")
    assert bad_json.is_error and bad_json.result["error"].startswith("Invalid input for tool add: JSON parsing failed: Text: ")
    assert unknown.is_error and unknown.result["error"] == "Model tried to call unavailable tool 'missing'. Available tools: add."
    assert "lmthing.tool.add" not in scheduled_activities(await history(handle))
    # The model sees the error as the tool's result: the bare message, as lmthing's did.
    assert steps[1].request.messages[-1].content == bad_type.result["error"]


async def test_a_failing_tool_is_retried_then_its_error_goes_to_the_model(client, worker):
    handle = await start(client, tools_app.failing)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "it failed"
    error = steps[0].tool_results[0]
    assert error.is_error and error.result == {"error": "upstream is down"}
    events = await history(handle)
    attempts = activity_attempts(events)
    assert max(attempts) == 3  # the tool's retry policy: 3 attempts


async def test_a_critical_activity_tool_fails_the_run(client, worker):
    handle = await start(client, tools_app.critical)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert info.value.cause.type == "CriticalToolFailed"
    assert "Critical tool 'must_work' failed: Tool 'must_work' failed: disk full" in info.value.cause.message
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(await history(handle))


async def test_a_critical_in_workflow_tool_fails_the_run(client, worker):
    handle = await start(client, tools_app.critical_in_workflow)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert "ZeroDivisionError" in info.value.cause.message


async def test_callbacks_short_circuit_replace_recover_and_schema_errors(client, worker):
    result, steps = await run(client, tools_app.callbacks)
    results = [s.tool_results[0] for s in steps[:5]]
    assert results[0].result == {"cached": True}
    assert results[1].result == {"sum": 30}
    assert results[2].result == {"fallback": "bad input"}  # on_error got {"error": message}, as in lmthing
    assert results[3].is_error and results[3].result == {"error": "bad input"}
    assert results[4].is_error
    assert "does not match its response schema: sum: Field required" in results[4].result["error"]
    assert result.state["calls"] == ["executed"]  # by "replaced" only: "short" was short-circuited


async def test_composite_tool_runs_sub_calls_in_order_and_isolates_failures(client, worker):
    handle = await start(client, tools_app.composite)
    result = await handle.result()
    steps = await handle.steps()
    file_def = steps[0].request.tools[0]
    assert file_def.description == (
        "File operations\n\nAvailable sub-tools:\n  - write: Write a file\n  - read: Read a file\n"
        "  - add: Add numbers (an activity)"
    )
    assert steps[0].tool_results[0].result == {
        "results": [
            {"name": "write", "result": {"success": True}},
            {"name": "read", "result": {"error": "missing.txt"}},
            {"name": "read", "result": {"content": "Hello"}},
            {"name": "delete", "result": {"error": "Unknown sub-tool: delete"}},
            {"name": "add", "result": {"sum": 9, "key": f"{handle.id}:call_0_0:4", "attempt": 1}},
        ]
    }
    assert result.state == {"files": {"a.txt": "Hello"}}


async def test_a_tool_the_worker_does_not_know_fails_fast_instead_of_waiting(client, worker):
    handle = await start(client, tools_app.uses_unregistered_tool)
    result = await handle.result()
    error = (await handle.steps())[0].tool_results[0].result["error"]
    assert result.text == "went on"
    assert error.startswith("Activity 'lmthing.tool.forgotten' is not registered on this worker.")
    assert "create_worker(tools=[...])" in error
    assert activity_attempts(await history(handle))[-2] == 1  # not retried
