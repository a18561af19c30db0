"""Moderation of inputs and outputs (``p.def_moderation``, docs/resilience.md) in real runs
on the dev server: with a check function, and with OpenAI's moderation endpoint through the
official SDK against the fake wire server."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.resilience.plugin import resilience_plugin
from tests.apps import moderation_app as app
from tests.fakes import FakeModelServer, Fault
from tests.support import history, run, scheduled_activities, start


@pytest.fixture(autouse=True)
def fresh_counts():
    app.CALLS.clear()


@pytest.fixture
async def moderation_server(monkeypatch):
    """OpenAI's moderation endpoint -> the fake server, through the worker's environment."""
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        server.moderation_words = {"violence": ["attack"], "harassment": ["idiot"]}
        yield server


async def test_a_blocked_input_ends_the_run_before_any_model_call(client, worker):
    handle = await start(client, app.blocked_input, "Tell me the LAUNCH CODE.")
    result = await handle.result()
    assert result.stop_reason == "moderation" and result.text == "Refused (secrets): ask something else."
    assert "lmthing.model_call" not in scheduled_activities(await history(handle))  # the model never saw it
    [step] = await handle.steps()
    assert step.response is None
    [note] = step.moderation
    assert (note["moderation"], note["target"], note["categories"], note["action"]) == ("secrets", "input", ["secrets"], "block")
    assert result.moderation == [note]


async def test_a_clean_input_passes(client, worker):
    result, steps = await run(client, app.blocked_input, "What is the weather?")
    assert result.stop_reason == "answer" and result.text == "This should never be said."
    assert result.moderation == [] and steps[0].moderation == []


async def test_a_flag_is_recorded_and_the_run_goes_on(client, worker):
    result, steps = await run(client, app.flagged_output)
    assert result.stop_reason == "answer" and result.text == "The launch code is 0000."  # flagged, not blocked
    [note] = steps[0].moderation
    assert (note["target"], note["action"], note["by"]) == ("output", "flag", "check")
    assert note["excerpt"] == "The launch code is 0000."
    assert result.moderation == [note]


async def test_a_blocked_output_runs_none_of_its_tool_calls(client, worker):
    handle = await start(client, app.blocked_output)
    result = await handle.result()
    assert result.stop_reason == "moderation" and "Blocked by moderation 'secrets' (secrets)" in result.text
    assert "launch code" not in result.text.lower()
    assert app.CALLS["send_email"] == 0
    assert "lmthing.tool.send_email" not in scheduled_activities(await history(handle))
    [step] = await handle.steps()
    assert step.moderation[0]["target"] == "output" and step.tool_results == []


async def test_a_filter_cleans_the_text_the_conversation_and_the_caller_get(client, worker):
    result, steps = await run(client, app.filtered_output)
    assert result.text == "Done: call [redacted] again."
    assert app.CALLS["send_email"] == 1  # a filtered output's tool calls still run
    said = [m.content for m in steps[1].request.messages if m.role == "assistant"]
    assert said == ["Call [redacted]."]  # the next model call sees the cleaned text
    assert [n["action"] for n in result.moderation] == ["filter", "filter"]


async def test_a_filtering_moderation_holds_the_stream_back_until_the_text_is_checked(client, worker):
    handle = await start(client, app.filtered_output)
    events = [e async for e in handle.full_stream()]
    assert not [e for e in events if e.type == "text_delta"]  # no unchecked text went out
    said = [e.text for e in events if e.type == "step_finish"]
    assert said == ["Call [redacted].", "Done: call [redacted] again."]
    assert [e.text for e in events if e.type == "moderation"] == ["output filtered by moderation 'pii' (pii)"] * 2


async def test_a_flagging_moderation_leaves_the_stream_as_it_is(client, worker):
    handle = await start(client, app.flagged_output)
    events = [e async for e in handle.full_stream()]
    assert "".join(e.text for e in events if e.type == "text_delta") == "The launch code is 0000."


async def test_the_openai_endpoint_blocks_a_flagged_input(client, worker, moderation_server):
    handle = await start(client, app.openai_moderated, "Plan an attack on the castle.")
    result = await handle.result()
    assert result.stop_reason == "moderation" and "violence" in result.text
    assert moderation_server.moderation_requests == [
        {"model": "omni-moderation-latest", "input": ["Plan an attack on the castle."]}]
    events = await history(handle)
    assert scheduled_activities(events) == ["lmthing.moderate"]  # one activity, and no model call
    [note] = (await handle.steps())[0].moderation
    assert (note["by"], note["categories"]) == ("openai:omni-moderation-latest", ["violence"])


async def test_the_openai_endpoint_checks_each_text_once_and_ignores_unwatched_categories(client, worker, moderation_server):
    # "idiot" flags harassment, which this moderation does not watch (categories=violence, hate).
    result, _ = await run(client, app.openai_moderated, "Email my idiot cousin.")
    assert result.stop_reason == "answer" and result.text == "All sent, nothing violent here."
    assert app.CALLS["send_email"] == 1 and result.moderation == []
    # Step 0: the user message (its output is only a tool call); step 1: no new input, its text.
    assert [r["input"] for r in moderation_server.moderation_requests] == [
        ["Email my idiot cousin."], ["All sent, nothing violent here."]]


async def test_a_moderation_endpoint_that_refuses_the_key_fails_the_run_naming_the_fix(client, worker, moderation_server):
    moderation_server.moderation_faults.append(Fault.unauthorized())
    handle = await start(client, app.openai_moderated, "Hello.")
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert cause.type == "ModerationFailed" and "Moderation 'safety'" in cause.message and "OPENAI_API_KEY" in cause.message
    assert len(moderation_server.moderation_requests) == 1  # a bad key is not retried


async def test_a_server_error_of_the_endpoint_is_retried(client, worker, moderation_server):
    moderation_server.moderation_faults.append(Fault.server_error(503))
    result, _ = await run(client, app.openai_moderated, "Hello.")
    assert result.stop_reason == "answer"
    assert len(moderation_server.moderation_requests) == 3  # the 503, the retry, the answer's text


async def test_a_check_returning_nonsense_fails_the_run_naming_it(client, worker):
    handle = await start(client, app.bad_check)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert info.value.cause.type == "ModerationError" and "returned 42" in info.value.cause.message


def _prompt() -> StatefulPrompt:
    return StatefulPrompt(plugins=[resilience_plugin])


@pytest.mark.parametrize(("call", "needle"), [
    (lambda p: p.def_moderation("m"), "give check=function or model="),
    (lambda p: p.def_moderation("m", app.no_secrets, model="openai:omni-moderation-latest"), "one of them"),
    (lambda p: p.def_moderation("m", model="omni-moderation-latest"), "'provider:model'"),
    (lambda p: p.def_moderation("m", app.no_secrets, on="tools"), "on is 'input', 'output' or both"),
    (lambda p: p.def_moderation("m", app.no_secrets, action="delete"), "action is 'block', 'flag' or 'filter'"),
    (lambda p: p.def_moderation("m", model="openai:omni-moderation-latest", action="filter", on="output"),
     "needs check= returning the cleaned text"),
    (lambda p: p.def_moderation("m", app.redact_phone, action="filter"), "cleans outputs only"),
    (lambda p: p.def_moderation("m", app.no_secrets, threshold=0.5), "threshold= applies to a moderation model"),
    (lambda p: p.def_moderation("m", model="openai:omni-moderation-latest", threshold=2), "threshold is a score in (0, 1]"),
    (lambda p: p.def_moderation("m", app.no_secrets, message="Blocked: {reason}"), "{name} and {categories} are filled in"),
    (lambda p: p.def_moderation("m", app.no_secrets, message=3), "message is the text a blocked run ends with"),
])
def test_bad_moderations_are_refused_where_they_are_written(call, needle):
    with pytest.raises(PromptError) as info:
        call(_prompt())
    assert needle in str(info.value)
