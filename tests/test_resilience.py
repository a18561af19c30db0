"""Retry policies, model cascades, tool fallbacks, guards and validators (docs/resilience.md),
in real runs on the dev server; the cascade against the fake OpenAI and Anthropic wire
servers through the official SDKs."""

from __future__ import annotations

import json

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError

from lmthing import RunConfig
from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.resilience.plugin import resilience_plugin
from lmthing.resilience.specs import RetrySpec
from tests.apps import resilience_app as app
from tests.fakes import FakeModelServer, Fault, Reply
from tests.support import history, pending_of, run, scheduled_activities, start


@pytest.fixture(autouse=True)
def fresh_counts():
    app.CALLS.clear()
    app.FAILURES_BEFORE_SUCCESS.clear()


def _timers(events) -> list[str]:
    return [json.loads(e.user_metadata.summary.data) for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]


def _tool_results(steps, name):
    return [r for s in steps for r in s.tool_results if r.name == name]


def _notes(steps, kind):
    return [n for s in steps for n in s.orchestration if n.get("kind") == kind]


# ------------------------------------------------------------------------ retry policies
async def test_a_linear_policy_with_jitter_runs_each_attempt_as_an_activity_with_a_timer_between(client, worker):
    app.FAILURES_BEFORE_SUCCESS["flaky_fetch"] = 2
    handle = await start(client, app.linear_retry)
    await handle.result()
    steps = await handle.steps()
    assert _tool_results(steps, "flaky_fetch")[0].result == {"answer": "fetched x", "calls": 3}
    events = await history(handle)
    assert scheduled_activities(events).count("lmthing.tool.flaky_fetch") == 3  # one activity per attempt
    assert _timers(events) == ["retry net: attempt 2 of 4", "retry net: attempt 3 of 4"]


async def test_an_error_type_off_the_allow_list_is_not_retried(client, worker):
    result, steps = await run(client, app.allow_list)
    assert app.CALLS["broken_search"] == 1
    assert "the search index is corrupt" in str(_tool_results(steps, "broken_search")[0].result)
    assert result.text == "done"


async def test_a_policy_temporal_can_express_becomes_the_activitys_retry_policy(client, worker):
    app.FAILURES_BEFORE_SUCCESS["flaky_fetch"] = 2
    handle = await start(client, app.native_retry)
    await handle.result()
    events = await history(handle)
    scheduled = [e.activity_task_scheduled_event_attributes for e in events
                 if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "lmthing.tool.flaky_fetch"]
    assert len(scheduled) == 1 and app.CALLS["flaky_fetch"] == 3  # Temporal ran the attempts
    policy = scheduled[0].retry_policy
    assert policy.initial_interval.ToMilliseconds() == 100 and policy.backoff_coefficient == 3
    assert policy.maximum_interval.ToMilliseconds() == 500 and list(policy.non_retryable_error_types) == ["ValueError"]


# ---------------------------------------------------------------------------- cascades
@pytest.fixture
async def two_providers(monkeypatch):
    """openai -> one fake server, anthropic -> another, through the worker's environment."""
    async with FakeModelServer() as first, FakeModelServer() as second:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", first.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", second.anthropic_base_url)
        yield first, second


async def test_a_cascade_asks_the_next_model_when_one_fails_for_good(client, worker, two_providers):
    first, second = two_providers
    first.script(*[Fault.server_error(500)] * 10)  # answers 500 to everything
    second.script(Reply(text="hello from the second model"))
    handle = await start(client, app.cascading, config=RunConfig(model_timeout_seconds=10))
    result = await handle.result()
    assert result.text == "hello from the second model"
    assert len(first.requests) == 2 and len(second.requests) == 1  # the policy's two attempts, then the next model
    step = (await handle.steps())[0]
    assert step.answered_by == "anthropic:claude-haiku-4-5"
    assert [(f["model"], f["type"]) for f in step.model_failures] == [("openai:gpt-4o", "ServerError")]
    assert _timers(await history(handle)) == ["fallback models: next model anthropic:claude-haiku-4-5"]


async def test_when_every_model_of_the_cascade_fails_the_run_fails_naming_each(client, worker, two_providers):
    first, second = two_providers
    first.script(*[Fault.server_error(500)] * 10)
    second.script(Fault.bad_request("this model does not take that"))
    handle = await start(client, app.cascading, config=RunConfig(model_timeout_seconds=10))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    message = info.value.cause.message
    assert info.value.cause.type == "ModelCallFailed" and "every model of fallback 'models'" in message
    assert "openai:gpt-4o" in message and "this model does not take that" in message


async def test_a_sub_agents_cascade_comes_from_its_def_agent(client, worker, two_providers):
    first, second = two_providers
    from tests.fakes import Call

    first.script(Reply(tool_calls=[Call("helper", {"q": "tea"})]), Fault.server_error(503), Reply(text="the helper said: green"))
    second.script(Reply(text="green tea"))
    handle = await start(client, app.cascading_agent, model="openai:gpt-4o", config=RunConfig(model_timeout_seconds=10))
    result = await handle.result()
    assert result.text == "the helper said: green"
    assert "green tea" in str(_tool_results(await handle.steps(), "helper")[0].result)


# --------------------------------------------------------------------------- fallbacks
async def test_an_alternative_tool_answers_when_the_tool_fails(client, worker):
    result, steps = await run(client, app.alternative)
    assert _tool_results(steps, "broken_search")[0].result == {"hits": ["backup hit for tea"]}
    note = _notes(steps, "fallback")[0]
    assert note["answered_by"] == "backup_search" and "corrupt" in note["errors"][0]["error"]


async def test_a_default_fallback_returns_its_value_instead_of_the_error(client, worker):
    result, steps = await run(client, app.default_value)
    res = _tool_results(steps, "broken_search")[0]
    assert (res.result, res.is_error) == ({"hits": []}, False)
    assert _notes(steps, "fallback")[0]["answered_by"] == "default"


# ------------------------------------------------------------------------------ guards
async def test_a_guard_that_skips_tells_the_model_and_the_tool_does_not_run(client, worker):
    result, steps = await run(client, app.guard_skips)
    res = _tool_results(steps, "delete_file")[0]
    assert res.result == {"skipped": True, "guard": "auth", "reason": "Authentication required"} and not res.is_error
    assert result.state["deleted"] == []
    assert _notes(steps, "guard") == [{"kind": "guard", "guard": "auth", "tool": "delete_file", "action": "skip"}]


async def test_a_guard_that_asks_waits_for_a_person_and_runs_when_approved(client, worker):
    handle = await start(client, app.guard_asks)
    [item] = await pending_of(handle)
    assert item.kind == "approval" and "safe_mode" in item.message and "text files are protected" in item.message
    await handle.decide(item.id, "approve", by="alice")
    result = await handle.result()
    assert result.state["deleted"] == ["b.txt"]
    assert [d.by for d in result.decisions] == ["alice"]


async def test_a_guard_that_throws_fails_the_call(client, worker):
    result, steps = await run(client, app.guard_throws)
    res = _tool_results(steps, "delete_file")[0]
    assert res.is_error and "Guard 'never' failed: deleting is off today" in str(res.result)
    assert result.state["deleted"] == []


# -------------------------------------------------------------------------- validators
async def test_a_validator_makes_the_model_call_again_and_then_accepts(client, worker):
    result, steps = await run(client, app.validated_tool)
    first, second = _tool_results(steps, "generate_code")
    assert first.is_error and "the code deletes files" in str(first.result) and "Call the tool again" in str(first.result)
    assert (second.result, second.is_error) == ({"code": "print('hi')"}, False)  # sanitized
    assert result.text == "here is the code"


async def test_an_answer_validator_asks_again_then_accepts(client, worker):
    result, steps = await run(client, app.validated_answer)
    assert result.text == "a much longer answer" and result.validation_error is None
    assert "write more than 10" in steps[1].request.messages[-1].content
    assert _notes(steps, "validation")[0]["target"] == "answer"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("prompt_fn", "needle"), [
    (app.unknown_retry, "retry='nosuch' names no policy; define it with p.def_retry('nosuch'"),
    (app.guard_on_unknown_tool, "tools= names 'delete_everything', which is not a tool or agent"),
])
async def test_an_unknown_name_fails_the_run_before_a_model_call_naming_the_fix(client, worker, prompt_fn, needle):
    handle = await start(client, prompt_fn)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert info.value.cause.type == "PromptError" and needle in info.value.cause.message
    assert "lmthing.model_call" not in scheduled_activities(await history(handle))


def _prompt() -> StatefulPrompt:
    return StatefulPrompt(plugins=[resilience_plugin])


@pytest.mark.parametrize(("call", "needle"), [
    (lambda p: p.def_retry("r", max_attempts=0), "max_attempts"),
    (lambda p: p.def_retry("r", base_delay=-1), "base_delay"),
    (lambda p: p.def_retry("r", base_delay=5, max_delay=1), "raise max_delay"),
    (lambda p: p.def_retry("r", backoff="fibonacci"), "backoff"),
    (lambda p: p.def_retry("r", retryable_errors=[]), "retry nothing"),
    (lambda p: p.def_fallback("f", "cascade"), "cascade=[model, ...]"),
    (lambda p: p.def_fallback("f", "sideways"), "strategy is 'cascade'"),
    (lambda p: p.def_fallback("f", "alternative"), "alternatives="),
    (lambda p: p.def_guard("g", "not a function"), "condition is a function"),
    (lambda p: p.def_guard("g", lambda c: True, on_fail="redirect"), "on_fail is 'throw', 'skip' or 'ask'"),
    (lambda p: p.def_validator("v"), "give a schema"),
    (lambda p: p.def_constraint("c", "tokens", max=-5), "positive number"),
    (lambda p: p.def_constraint("c", "tokens", max=10, warn=20), "warn (20) is above max (10)"),
    (lambda p: p.def_constraint("c", "rate"), "requests="),
    (lambda p: p.def_constraint("c", "calories", max=1), "type is 'tokens'"),
])
def test_bad_definitions_are_refused_where_they_are_written(call, needle):
    with pytest.raises(PromptError) as info:
        call(_prompt())
    assert needle in str(info.value)


def test_tool_options_of_the_wrong_type_are_refused():
    p = _prompt()
    with pytest.raises(TypeError, match="guards= is a list of def_guard names"):
        p.def_tool("t", "A tool", None, lambda a: 1, guards=[3])
    with pytest.raises(TypeError, match="retry_on_failure/max_retries need validator="):
        p.def_tool("t", "A tool", None, lambda a: 1, retry_on_failure=True)


def test_retry_delays_follow_the_backoff():
    linear = RetrySpec(name="l", backoff="linear", base_delay=1, max_delay=2.5)
    assert [linear.delay(n) for n in (1, 2, 3)] == [1, 2, 2.5]
    exp = RetrySpec(name="e", base_delay=1, multiplier=3, max_delay=100)
    assert [exp.delay(n) for n in (1, 2, 3)] == [1, 3, 9]
    jittered = RetrySpec(name="j", base_delay=2, jitter=True)
    assert jittered.delay(1, random=0.0) == 1.0 and jittered.delay(1, random=0.99) == pytest.approx(2.98)
    assert not RetrySpec(name="a", retryable_errors=("ConnectionError",)).retries("ValueError")
