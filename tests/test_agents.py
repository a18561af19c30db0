"""Sub-agents as child workflows: inheritance, effects, schemas, composites, nesting,
usage roll-up, failures and cancellation."""

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from lmthing.client import get_handle
from tests.apps import agents_app
from tests.support import event_kinds, history, start


def child_starts(events) -> list[tuple[str, str]]:
    return [
        (
            e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name,
            e.start_child_workflow_execution_initiated_event_attributes.workflow_id,
        )
        for e in events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]


async def test_agent_runs_as_a_child_workflow_and_returns_only_its_response(client, worker):
    handle = await start(client, agents_app.single)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "The moon drives the tides."
    child_id = f"{handle.id}/researcher/call_0_0"
    assert child_starts(await history(handle)) == [("single", child_id)]
    assert steps[0].tool_results[0].result == {"response": "Tides come from the moon's pull."}

    child = get_handle(client, child_id)
    child_result = await child.result()
    child_steps = await child.steps()
    request = child_steps[0].request
    # The child is a full prompt: its own system part, and its effect ran.
    assert request.system == (
        "<role>\nYou are a research specialist.\n</role>\n<variables>\n  <STEP>\n 0\n  </STEP>\n</variables>"
    )
    assert request.messages[0].content == "Research: tides"
    # It inherits the parent's model and options.
    assert request.model == "scripted:agents-single"
    assert request.options.temperature == 0.2
    assert request.agent == "researcher"
    # Usage rolls up: the parent's total includes the child's.
    own = sum((s.response.usage.input_tokens for s in steps), 0)
    assert result.usage.input_tokens == own + child_result.usage.input_tokens


async def test_agent_options_override_the_inherited_ones(client, worker):
    handle = await start(client, agents_app.override_model)
    await handle.result()
    child = get_handle(client, f"{handle.id}/researcher/call_0_0")
    request = (await child.steps())[0].request
    assert request.model == "scripted:agents-override-child"
    # lmthing gave an agent's system= its own part, first.
    assert request.system.startswith("<agentSystem>\nBase system for the child.\n</agentSystem>\n<role>")


async def test_response_schema_is_enforced_with_a_bounded_re_prompt(client, worker):
    handle = await start(client, agents_app.schema_agents)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "done"
    assert steps[0].tool_results[0].result == {"response": '{"findings": ["x"], "confidence": 0.9}'}
    stubborn = steps[1].tool_results[0].result
    assert stubborn["response"] == '{"confidence": 1}'
    assert stubborn["validationError"] == "Response does not match the schema: findings: Field required"

    analyst_steps = await get_handle(client, f"{handle.id}/analyst/call_0_0").steps()
    assert len(analyst_steps) == 2
    assert "You must respond with a valid JSON object that matches this schema:" in analyst_steps[0].request.system
    retry_message = analyst_steps[1].request.messages[-1]
    assert retry_message.role == "user" and retry_message.content.startswith(
        "Your previous response could not be used: Response is not valid JSON"
    )
    assert len(await get_handle(client, f"{handle.id}/stubborn/call_1_0").steps()) == 3


async def test_composite_agents_run_concurrently_and_answer_in_call_order(client, worker):
    handle = await start(client, agents_app.team)
    await handle.result()
    steps = await handle.steps()
    assert steps[0].request.tools[0].description == (
        "A team of agents\n\nAvailable sub-agents:\n  - slow: Slow worker\n  - fast: Fast worker"
    )
    assert steps[0].tool_results[0].result == {
        "results": [
            {"name": "slow", "response": "slow answer"},
            {"name": "fast", "response": "fast answer"},
            {"name": "ghost", "response": "Error: Unknown sub-agent: ghost"},
        ]
    }
    kinds = event_kinds(await history(handle))
    started = [i for i, k in enumerate(kinds) if k == "START_CHILD_WORKFLOW_EXECUTION_INITIATED"]
    completed = [i for i, k in enumerate(kinds) if k == "CHILD_WORKFLOW_EXECUTION_COMPLETED"]
    assert len(started) == 2 and max(started) < min(completed)  # both started before either finished


async def test_nested_agents_find_their_closures_through_the_parent_chain(client, worker):
    handle = await start(client, agents_app.nested)
    result = await handle.result()
    assert result.text == "nested done"
    outer_id = f"{handle.id}/outer/call_0_0"
    inner_steps = await get_handle(client, f"{outer_id}/inner/call_0_0").steps()
    assert inner_steps[0].request.messages[0].content == "Inner on deeper at depth 2"
    assert inner_steps[0].request.agent == "outer/inner"


async def test_a_failing_child_returns_its_error_to_the_parent_model(client, worker):
    handle = await start(client, agents_app.failing_child)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "parent went on"
    error = steps[0].tool_results[0]
    assert error.is_error
    assert error.result["error"].startswith("Prompt 'failing_child' raised KeyError")


async def test_cancelling_the_parent_cancels_the_running_child(client, worker):
    handle = await start(client, agents_app.cancellable)
    child_id = f"{handle.id}/sleeper/call_0_0"
    for _ in range(100):
        status = await handle.status()
        if status.running_agents == ["sleeper"]:
            break
        await asyncio.sleep(0.05)
    assert (await handle.status()).running_agents == ["sleeper"]
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    child = client.get_workflow_handle(child_id)
    for _ in range(100):
        if (await child.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.05)
    assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_workflow_code_can_run_sub_agents_as_child_workflows(client, worker):
    handle = await start(client, agents_app.calls_agents_from_code)
    result = await handle.result()
    out = (await handle.steps())[0].tool_results[0].result
    assert result.text == "both done"
    assert out["first"] == {"response": "a finding"} and out["second"] == {"response": "fast answer"}
    assert out["bad"]["error"].startswith("Invalid arguments for tool 'researcher': topic: Field required")
    assert "call_agent: no agent 'ghost' is defined (defined: researcher, team)" in out["missing"]
    started = sorted(child_id for _, child_id in child_starts(await history(handle)))
    assert started == [f"{handle.id}/researcher/t1", f"{handle.id}/team/fast/t2"]
