"""Run-level behaviour against the real dev server: starting by name, inputs, queries,
stop conditions, continue-as-new, and clear non-retryable failures."""

import asyncio
import json

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from lmthing import RunConfig
from lmthing.client import get_handle
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server
from tests.apps import runs_app, tools_app
from tests.support import activity_attempts, TEST_TASK_QUEUE, event_kinds, history, new_id, run, start, temporal_cli


async def test_start_by_prompt_name_from_a_plain_temporal_client(client, worker, dev_env):
    target = client.service_client.config.target_host
    plain = await Client.connect(target)  # default data converter, no lmthing involved
    result = await plain.execute_workflow(
        "greet", {"name": "Ann", "excited": True}, id=new_id("plain"), task_queue=TEST_TASK_QUEUE
    )
    assert result["text"] == "Replying to: Greet Ann!"
    assert result["stop_reason"] == "answer"


async def test_start_by_prompt_name_from_the_temporal_cli(client, worker):
    workflow_id = new_id("cli")
    code, shown = await temporal_cli(
        client, "workflow", "start", "--type", "greet", "--task-queue", TEST_TASK_QUEUE,
        "--workflow-id", workflow_id, "--input", '{"name": "Bo"}',
    )
    assert code == 0, shown
    result = await get_handle(client, workflow_id).result()
    assert result.text == "Replying to: Greet Bo."
    description = await client.get_workflow_handle(workflow_id).describe()
    assert description.workflow_type == "greet"  # what the Temporal UI shows as the type


async def test_invalid_prompt_input_fails_the_run_with_the_field_errors(client, worker):
    handle = await start(client, runs_app.greet, {"excited": "very"})
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert info.value.cause.type == "InvalidPromptInput"
    assert info.value.cause.message == (
        "Invalid input for prompt 'greet': name: Field required; excited: Input should be a valid boolean, "
        "unable to interpret input"
    )


async def test_queries_show_state_steps_and_running_tools_mid_run(client, worker):
    handle = await start(client, tools_app.slow)
    for _ in range(100):
        status = await handle.status()
        if status.running_tools:
            break
        await asyncio.sleep(0.05)
    assert status.prompt == "slow" and status.phase == "tools" and status.step == 0
    assert status.running_tools == ["slow_echo"]
    assert status.usage.input_tokens > 0
    assert await handle.state() == {"phase": "started"}
    steps = await handle.steps()
    assert len(steps) == 1 and steps[0].response.tool_calls[0].name == "slow_echo"
    await handle.result()
    final = await handle.status()
    assert final.phase == "finished" and final.running_tools == []
    # A follower asks only for the steps it has not seen.
    assert [s.step for s in await handle.steps(since=1)] == [1]


async def test_stop_when_ends_the_run_after_that_step(client, worker):
    result, steps = await run(client, runs_app.stops_on_finish)
    assert result.stop_reason == "stop_when"
    assert len(steps) == 2 and steps[1].tool_results[0].result == {"final": "42"}


async def test_max_steps_ends_a_run_that_keeps_calling_tools(client, worker):
    result, steps = await run(client, runs_app.loops)
    assert result.stop_reason == "max_steps" and result.steps == 3 and len(steps) == 3
    result, steps = await run(client, runs_app.loops, max_steps=2)
    assert result.steps == 2


async def _failure(client, prompt, **kwargs):
    handle = await start(client, prompt, **kwargs)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    events = await history(handle)
    # Never a workflow task retried forever: the run itself fails, at once.
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(events)
    return info.value.cause, events


async def test_a_prompt_without_a_model_fails_with_the_fix(client, worker):
    cause, _ = await _failure(client, runs_app.no_model)
    assert cause.type == "ConfigError"
    assert "has no model: pass model= to @prompt" in cause.message


async def test_unknown_provider_fails_fast_listing_the_available_ones(client, worker):
    cause, events = await _failure(client, runs_app.unknown_provider)
    assert cause.type == "ModelCallFailed"
    assert "Unknown model provider 'nope' in 'nope:some-model'. Available providers: anthropic, local, openai, scripted." in cause.message
    attempts = activity_attempts(events)
    assert attempts == [1]  # non-retryable


async def test_missing_alias_names_the_variable_to_set(client, worker):
    cause, _ = await _failure(client, runs_app.missing_alias)
    assert "set LM_MODEL_MISSING_ALIAS_XYZ=provider:model_id on the worker" in cause.message


async def test_a_prompt_function_error_fails_the_run_clearly(client, worker):
    cause, _ = await _failure(client, runs_app.raises)
    assert cause.type == "PromptFunctionError"
    assert cause.message == "Prompt 'raises' raised KeyError: 'language'"


@pytest.mark.parametrize("prompt", [runs_app.reads_clock, runs_app.clock_tool])
async def test_non_deterministic_code_fails_naming_the_rule_and_the_fix(client, worker, prompt):
    cause, _ = await _failure(client, prompt)
    assert cause.type == "NonDeterministicPrompt"
    assert "is not deterministic: it used datetime.datetime.now" in cause.message
    assert "use workflow.now()" in cause.message and "@tool function, which runs as an activity" in cause.message


async def test_state_that_cannot_live_in_history_is_rejected_clearly(client, worker):
    cause, _ = await _failure(client, runs_app.bad_state)
    assert cause.type == "PromptError"
    assert "def_state('handle')" in cause.message and "must be JSON-compatible" in cause.message


async def test_api_misuse_names_the_right_call(client, worker):
    cause, _ = await _failure(client, runs_app.bad_api)
    assert "def_message: role must be 'user' or 'assistant', got 'system'; use def_system" in cause.message


async def test_continue_as_new_is_transparent_to_the_prompt_and_the_caller():
    """A dev server that suggests continue-as-new after a few events: the run continues as
    new several times, and state, conversation and result are as if it never did."""
    env = await start_dev_server(dynamic_config={"limit.historyCount.suggestContinueAsNew": 20})
    try:
        queue = new_id("can")
        async with create_worker(env.client, app="tests.apps.runs_app", task_queue=queue):
            handle = await start(env.client, runs_app.counter, task_queue=queue)
            result = await handle.result()  # follows the chain of runs
            status = await handle.status()
            steps = await handle.steps()
            first_run = env.client.get_workflow_handle(handle.id, run_id=handle.handle.result_run_id)
            first = await first_run.describe()
    finally:
        await env.shutdown()
    assert status.continued_runs >= 2
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert result.text == "counted" and result.steps == runs_app.COUNT_STEPS
    assert result.state["total"] == sum(range(1, runs_app.COUNT_STEPS))
    # The [] effect ran once in the whole chain, not once per run.
    assert result.state["seen_steps"] == [0]
    assert [s.step for s in steps] == list(range(runs_app.COUNT_STEPS))
    last = steps[-1].request
    # The conversation was carried whole: one user message, every exchange since.
    assert [m.role for m in last.messages].count("user") == 1
    assert len([m for m in last.messages if m.role == "tool"]) == runs_app.COUNT_STEPS - 1
    assert last.system == f"<total>\nTotal so far: {result.state['total']}\n</total>"
    assert json.dumps(result.usage.model_dump())  # usage carried too
    assert result.usage.input_tokens == sum(s.response.usage.input_tokens for s in steps)


async def test_a_reply_too_large_for_a_payload_fails_once_not_forever(client, worker):
    cause, events = await _failure(client, runs_app.huge_reply, config=RunConfig(stream=False))
    assert "The model's reply is 1600" in cause.message and "Lower max_output_tokens" in cause.message
    assert activity_attempts(events) == [1]  # non-retryable


async def test_a_misspelt_workflow_type_fails_at_once_with_the_closest_name(client, worker):
    """A run of a type the worker lacks fails at once with the types it has (no workflow task
    retried forever, no traceback per attempt)."""
    from temporalio.api.enums.v1 import EventType

    workflow_id = new_id("misspelt")
    code, shown = await temporal_cli(
        client, "workflow", "start", "--type", "standalone_reveiw", "--task-queue", TEST_TASK_QUEUE,
        "--workflow-id", workflow_id, "--input", '{"files": []}',
    )
    assert code == 0, shown
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    message = str(info.value.cause)
    assert info.value.cause.type == "UnknownWorkflowType"
    assert "No prompt or workflow named 'standalone_reveiw' on task queue 'lmthing-tests'. Did you mean 'standalone_review'?" in message
    assert "greet" in message  # the known types are listed
    kinds = [e.event_type for e in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds


async def test_with_unknown_workflows_retry_another_worker_can_take_the_run(client):
    """A pool during a rolling deploy: a worker that lacks the type lets Temporal retry the
    workflow task, and a worker that has it finishes the run."""
    import asyncio

    from temporalio.api.enums.v1 import EventType

    from lmthing.client import start_orchestration
    from lmthing.workers import create_worker
    from tests.apps import orchestration_app

    queue = new_id("rolling")
    async with create_worker(client, app="tests.apps.basics", task_queue=queue, unknown_workflows="retry"):
        handle = await start_orchestration(client, orchestration_app.standalone_review, {"files": ["a.py"]},
                                           id=new_id("rolling-run"), task_queue=queue)
        for _ in range(100):  # the old worker takes the task and fails it (retried by Temporal)
            kinds = [e.event_type for e in (await handle.handle.fetch_history()).events]
            if EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in kinds:
                break
            await asyncio.sleep(0.1)
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in kinds
    async with create_worker(client, app="tests.apps.orchestration_app", task_queue=queue):
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.output == {"text": "FIXED IT"}


def test_unknown_workflows_must_be_fail_or_retry(client):
    from lmthing.workers import create_worker

    with pytest.raises(ValueError, match="unknown_workflows is 'fail' or 'retry', not 'ignore'"):
        create_worker(client, app="tests.apps.basics", task_queue="x", unknown_workflows="ignore")
