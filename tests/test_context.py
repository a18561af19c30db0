"""Context windows (``p.def_context``, docs/context.md): what the model receives stays under
the limit however long the run.

Long tool loops run on the dev server against the fake OpenAI wire server (through the real
``openai`` SDK), which records every request it receives: each is measured with the same
token estimate the policy uses. A long-lived chat (scripted model) shows what continue-as-new
carries; the policy's pure parts are checked on their own too.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from lmthing.client.messaging import start_agent
from lmthing.memory.context import SUMMARY_HEADER, SUMMARY_INSTRUCTIONS, ContextSpec, fit, request_tokens
from lmthing.memory.context_plugin import ContextBook, context_plugin
from lmthing.prompt.conversation import RequestSender, assemble
from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.prompt.types import Conversation, Message, ModelRequest, ToolCall, ToolDefinition
from tests.apps import context_app as app
from tests.fakes import Call, FakeModelServer, Reply
from tests.support import TEST_TASK_QUEUE, history, new_id, start

TURNS = 60
LIMIT = app.MAX_TOKENS - app.RESERVED
SUMMARY_CALL = "summarize context"


# ----------------------------------------------------------------- the fake model's side
def _wire_request(body: dict[str, Any]) -> tuple[str | None, list[Message], list[ToolDefinition]]:
    """An OpenAI chat-completions body back in our shapes, to measure it like the policy does."""
    system, messages = None, []
    for m in body["messages"]:
        if m["role"] == "system" and system is None and not messages:
            system = m["content"]
            continue
        calls = [ToolCall(id=c["id"], name=c["function"]["name"], args=json.loads(c["function"]["arguments"]))
                 for c in m.get("tool_calls") or []]
        messages.append(Message(role=m["role"], content=m.get("content") or None, tool_calls=calls or None,
                                tool_call_id=m.get("tool_call_id")))
    tools = [ToolDefinition(name=t["function"]["name"], description=t["function"]["description"],
                            parameters=t["function"]["parameters"]) for t in body.get("tools") or []]
    return system, messages, tools


def _is_summary_call(body: dict[str, Any]) -> bool:
    first = body["messages"][0]
    return first["role"] == "system" and first["content"].startswith(SUMMARY_INSTRUCTIONS[:40])


def _loop_reply(recorded: Any) -> Reply:
    """The model of the loops: one note per turn, the turn read from the newest tool result
    (so it needs nothing but its request), then an answer; and summaries when asked."""
    body = recorded.body
    if _is_summary_call(body):
        turns = [int(t) for t in re.findall(r"turn (\d+):", body["messages"][-1]["content"])]
        return Reply(text=f"Turns {min(turns)} to {max(turns)} are noted: shelves {min(turns)}-{max(turns)} hold maps.")
    done = [int(t) for m in body["messages"] if m["role"] == "tool" for t in re.findall(r"turn (\d+):", m["content"])]
    turn = max(done, default=-1) + 1
    if turn < TURNS:
        return Reply(tool_calls=[Call("note", {"text": f"turn {turn}: shelf {turn} holds maps of the coast"})])
    return Reply(text="Every shelf is noted.")


@pytest.fixture
async def model_server(monkeypatch):
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        server.script(*[_loop_reply] * 200)
        yield server


def _model_inputs(events: list[Any]) -> list[tuple[int, str | None, int]]:
    """(step, activity summary, input bytes) of every model-call activity in a history."""
    out = []
    for e in events:
        if not e.HasField("activity_task_scheduled_event_attributes"):
            continue
        attrs = e.activity_task_scheduled_event_attributes
        if attrs.activity_type.name != "lmthing.model_call":
            continue
        payload = attrs.input.payloads[0]
        summary = json.loads(e.user_metadata.summary.data) if e.user_metadata.HasField("summary") else None
        out.append((json.loads(payload.data)["step"], summary, payload.ByteSize()))
    return out


def _tool_turn(message: Message) -> int:
    found = re.search(r"turn (\d+):", message.content or "")
    assert message.role == "tool" and found, message
    return int(found.group(1))


# ---------------------------------------------------------------------- sliding window
async def test_a_sliding_window_keeps_every_request_of_a_60_turn_run_under_the_limit(client, worker, model_server):
    handle = await start(client, app.context_sliding, model="openai:gpt-4o")
    result = await handle.result()
    assert result.text == "Every shelf is noted." and result.steps == TURNS + 1
    requests = model_server.requests
    assert len(requests) == TURNS + 1  # one per step: a sliding window makes no extra calls
    for k, recorded in enumerate(requests):
        system, messages, tools = _wire_request(recorded.body)
        assert request_tokens(system, messages, tools) <= LIMIT, f"request {k} is over the limit"
        assert system is not None and f"<role>\n{app.ROLE}\n</role>" in system  # the system parts are always sent
        assert messages[0] == Message(role="user", content=app.TASK)  # keep_first=1: the task stays
        if k >= 2:  # the last 4 messages: the two newest notes, each call with its result
            last = messages[-app.KEEP_LAST:]
            assert [m.role for m in last] == ["assistant", "tool", "assistant", "tool"]
            assert [_tool_turn(last[1]), _tool_turn(last[3])] == [k - 2, k - 1]
            assert [c.id for c in last[0].tool_calls] == [last[1].tool_call_id]
        # Never a tool result without its call: every tool message follows its assistant call.
        for i, m in enumerate(messages):
            if m.role == "tool":
                caller = next(x for x in reversed(messages[:i]) if x.role == "assistant")
                assert m.tool_call_id in [c.id for c in caller.tool_calls or []]
    # Without a window the last request would hold all 121 messages; this one holds what fits.
    _, last_messages, _ = _wire_request(requests[-1].body)
    assert len(last_messages) < 40
    steps = await handle.steps()
    assert steps[-1].context["strategy"] == "sliding_window" and steps[-1].context["dropped"] > 80
    assert steps[-1].context["total_tokens"] > 3 * LIMIT and not steps[-1].context["over_limit"]
    assert steps[0].context["dropped"] == 0
    # History: a window that slid by one turn is sent as a layout of the previous call, so a
    # step's model-call input stays the size of one turn, not of the window.
    sizes = [size for _, _, size in _model_inputs(await history(handle))]
    assert max(sizes[20:]) < 1500, sizes


async def test_without_def_context_the_requests_grow_with_the_run(client, worker, model_server):
    """The same loop without def_context, for contrast: the model receives everything."""
    handle = await start(client, app.context_unbounded, model="openai:gpt-4o")
    await handle.result()
    tokens = [request_tokens(*_wire_request(r.body)) for r in model_server.requests]
    assert tokens == sorted(tokens) and tokens[-1] > 3 * LIMIT


# --------------------------------------------------------------------------- summarize
async def test_summaries_replace_older_turns_and_keep_requests_and_history_bounded(client, worker, model_server):
    handle = await start(client, app.context_summarize, model="openai:gpt-4o")
    result = await handle.result()
    assert result.text == "Every shelf is noted." and result.steps == TURNS + 1
    summary_calls = [r for r in model_server.requests if _is_summary_call(r.body)]
    step_calls = [r for r in model_server.requests if not _is_summary_call(r.body)]
    assert len(step_calls) == TURNS + 1 and len(summary_calls) >= 3
    # Each summary call saw a transcript of older turns (no tools: any provider takes it).
    for recorded in summary_calls:
        assert "tools" not in recorded.body and "Assistant called note(" in recorded.body["messages"][-1]["content"]
        assert recorded.body["max_completion_tokens"] == 80
    for k, recorded in enumerate(step_calls):
        assert request_tokens(*_wire_request(recorded.body)) <= LIMIT, f"request {k} is over the limit"

    # Recorded: an activity with its own summary in history, and the summary on its step.
    events = await history(handle)
    inputs = _model_inputs(events)
    summarized_steps = [step for step, summary, _ in inputs if summary == SUMMARY_CALL]
    assert len(summarized_steps) == len(summary_calls)
    steps = await handle.steps()
    noted = {s.step: s.context["summary"] for s in steps if s.context and "summary" in s.context}
    assert sorted(noted) == summarized_steps
    first = summarized_steps[0]
    assert noted[first]["text"].startswith("Turns 0 to ") and noted[first]["replaced"] >= 6
    assert noted[first]["tokens_before"] > LIMIT and noted[first]["model"] == "openai:gpt-4o"

    # Later requests hold the summary in place of the turns it replaced.
    for k, recorded in enumerate(step_calls):
        _, messages, _ = _wire_request(recorded.body)
        summaries = [m for m in messages if (m.content or "").startswith(SUMMARY_HEADER)]
        if k < first:
            assert summaries == []
        else:
            latest = noted[max(s for s in noted if s <= k)]["text"]
            assert [m.content for m in summaries] == [f"{SUMMARY_HEADER}\n{latest}"]
            assert messages[0].content == app.TASK and messages[1] is summaries[0]
    # The run's conversation holds the summary, not the turns it replaced.
    conversation = await handle.handle.query("conversation")
    assert len(conversation) < 45 and any(SUMMARY_HEADER in (m["content"] or "") for m in conversation)
    # The summary calls' cost is the run's too.
    assert result.usage.input_tokens == sum(r.item.usage.input_tokens for r in model_server.requests)

    # History: every model-call input (a step's, a summary's) is a delta of the run's
    # conversation; what a summary replaced is never sent again, so the bytes per step
    # stop growing: the second half of the run costs what the first did.
    per_step: dict[int, int] = {}
    for step, _, size in inputs:
        per_step[step] = per_step.get(step, 0) + size
    bytes_by_step = [per_step[s] for s in sorted(per_step)]
    middle, late = bytes_by_step[10:35], bytes_by_step[35:]
    assert max(late) <= 1.25 * max(middle) and sum(late) / len(late) <= 1.25 * sum(middle) / len(middle), bytes_by_step
    summary_inputs = [size for _, summary, size in inputs if summary == SUMMARY_CALL]
    assert max(summary_inputs) < 1500 < noted[first]["replaced_tokens"] * 4  # smaller than what it summarized


# --------------------------------------------------------------------------- relevance
async def test_relevance_keeps_the_related_turns_and_drops_the_unrelated_one(client, worker):
    handle = await start(client, app.context_relevance)
    result = await handle.result()
    [step] = await handle.steps()
    sent = [m.content for m in step.request.messages]
    assert sent == [app.VET, "Noted: a morning vet appointment for Miso.", "Which morning suits the vet appointment for Miso?"]
    assert app.BUDGET not in sent and result.text == "I see 3 messages."
    assert step.context["strategy"] == "relevance" and step.context["dropped"] == 2


def test_a_sliding_window_would_have_kept_the_newest_instead():
    """The relevance test's conversation under a sliding window: the unrelated turn is newer."""
    p = _prompt()
    messages = [Message(role="user", content=app.VET), Message(role="assistant", content="Noted: a morning vet appointment for Miso."),
                Message(role="user", content=app.BUDGET),
                Message(role="assistant", content="Understood, forty rows of quarterly totals to reconcile by Friday."),
                Message(role="user", content="Which morning suits the vet appointment for Miso?")]
    spec = p.def_context("sliding_window", max_tokens=70, keep_last=1)
    assert fit(spec, None, messages, []).kept == [2, 3, 4]


# ----------------------------------------------------------- continue-as-new and a chat
@pytest.mark.parametrize("strategy", ["sliding_window", "summarize"])
async def test_continue_as_new_carries_the_shorter_conversation(client, worker, strategy):
    agent = await start_agent(client, app.context_chat, app.Chat(strategy=strategy), id=new_id(f"chat-{strategy}"),
                              config={"turns_per_run": 8}, task_queue=TEST_TASK_QUEUE)
    for i in range(20):  # runs of 8, 8 and 4 turns
        reply = await agent.ask(f"question {i} about shelf {i}", id=f"q{i}")
        assert reply.text.startswith(f"About 'question {i} about shelf {i}'")
    status = await agent.status()
    assert status.continued_runs >= 2
    carried = []
    runs = [*status.earlier_runs, (await agent.handle.describe()).run_id]
    for run_id in runs[1:]:  # each later run starts from what the one before carried
        events = await client.get_workflow_handle(agent.id, run_id=run_id).fetch_history()
        start_event = events.events[0].workflow_execution_started_event_attributes
        carried.append(json.loads(start_event.input.payloads[2].data)["messages"])
    steps = await agent.steps()
    assert len(steps) == 20 and all(s.context["tokens"] <= 200 for s in steps)
    for messages in carried:
        assert len(messages) < 16  # 8 turns of question and answer would be 16 messages, 16 turns 32
        if strategy == "summarize":
            assert messages[0]["content"].startswith(SUMMARY_HEADER)
    await agent.stop()


# ------------------------------------------------------------------------- bad input
def _prompt() -> StatefulPrompt:
    return StatefulPrompt(plugins=[context_plugin])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_tokens": -5}, "max_tokens must be an int >= 1; got -5"),
    ({"max_tokens": 1000, "reserved_tokens": -1}, "reserved_tokens must be an int >= 0; got -1"),
    ({"max_tokens": 1000, "reserved_tokens": 1000}, "reserved_tokens (1000) must be below max_tokens (1000)"),
    ({"max_tokens": 1000, "keep_last": 0}, "keep_last must be an int >= 1"),
    ({"max_tokens": 1000, "keep_last": -2}, "keep_last must be an int >= 1; got -2"),
    ({"strategy": "lru", "max_tokens": 1000}, "strategy is one of 'sliding_window', 'summarize', 'relevance'; got 'lru'"),
    ({"strategy": "hierarchical", "max_tokens": 1000}, "strategy 'hierarchical' is not built; use strategy='summarize'"),
    ({"max_tokens": 1000, "model": "openai:gpt-4o-mini"}, "model is for strategy='summarize'"),
    ({"strategy": "summarize", "max_tokens": 1000, "summarize_after": 1.5}, "summarize_after is a fraction of the limit in (0, 1]"),
    ({"strategy": "summarize", "max_tokens": 1000, "summary_tokens": 1000}, "summary_tokens (1000) must be below the limit"),
    ({"strategy": "summarize", "max_tokens": 1000, "model": "gpt-4o"}, "model is 'provider:model'"),
    ({"max_tokens": 1000, "task": "vet"}, "task= and scorer= are for strategy='relevance'"),
])
def test_bad_input_names_the_option_and_the_fix(kwargs, message):
    with pytest.raises(PromptError) as info:
        _prompt().def_context(**kwargs)
    assert message in str(info.value)


def test_the_seed_spellings_are_taken():
    assert _prompt().def_context("sliding-window", max_tokens=100).strategy == "sliding_window"
    assert _prompt().def_context("relevance-based", max_tokens=100).strategy == "relevance"


def test_two_different_windows_in_one_run_are_refused():
    book = ContextBook()
    p = StatefulPrompt(plugins=[context_plugin], services={"context": book})
    p.def_context(max_tokens=100)
    p.def_context(max_tokens=100)  # the same one again (a helper called twice) is fine
    with pytest.raises(PromptError, match="declared twice in one run"):
        p.def_context(max_tokens=200)


async def test_a_bad_window_fails_the_run_with_the_fix(client, worker):
    handle = await start(client, app.context_bad_window)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert "reserved_tokens (1000) must be below max_tokens (1000)" in info.value.cause.message


# ------------------------------------------------------------------------ pure parts
def test_a_tool_call_and_its_results_are_never_split():
    calls = [ToolCall(id=f"c{i}", name="note", args={"text": "x" * 40}) for i in range(3)]
    messages = [Message(role="user", content="start"), Message(role="assistant", tool_calls=calls),
                *[Message(role="tool", tool_call_id=c.id, name="note", content="y" * 80) for c in calls],
                Message(role="assistant", content="z" * 60), Message(role="user", content="next")]
    spec = ContextSpec(strategy="sliding_window", max_tokens=90, keep_last=2)
    kept = fit(spec, None, messages, []).kept
    assert kept == [5, 6]  # the 3-result group does not fit whole, so none of it is sent
    spec = ContextSpec(strategy="sliding_window", max_tokens=140, keep_last=4)
    window = fit(spec, None, messages, [])
    assert window.kept == [1, 2, 3, 4, 5, 6]  # keep_last=4 pulls in the whole group, even over the limit
    assert window.tokens > 140 and window.note(spec, len(messages))["over_limit"]


def test_a_layout_rebuilds_the_window_from_the_previous_call():
    sender, previous = RequestSender(), None
    spec = ContextSpec(strategy="sliding_window", max_tokens=200, keep_last=2, keep_first=1)
    conversation = [Message(role="user", content="task")]
    for turn in range(20):
        conversation += [Message(role="assistant", content=f"turn {turn} " * 6), Message(role="user", content=f"ok {turn}")]
        sent = [conversation[i] for i in fit(spec, None, conversation, []).kept]
        wire = sender.wire(ModelRequest(model="m", conversation=Conversation(messages=sent)), rearranged=True)
        base = wire.conversation.base
        if base is not None and base.layout is not None:
            assert assemble(previous, base.layout, wire.conversation.delta) == sent
            assert len(wire.conversation.delta) == 2  # the turn that is new, nothing else
        previous = sent


def test_the_recorded_summarize_history_holds_its_summary_calls():
    """tests/histories/replay-context.json (``python -m tests.histories.record replay-context``),
    which tests/test_replay.py replays: summary calls between the steps' own, and the calls
    after a summary sent as layouts of the previous call."""
    import base64
    from pathlib import Path

    events = json.loads((Path(__file__).parent / "histories" / "replay-context.json").read_text())["events"]
    calls = [(json.loads(base64.b64decode(e["userMetadata"]["summary"]["data"])) if "summary" in e.get("userMetadata", {}) else None,
              json.loads(base64.b64decode(e["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]["data"])))
             for e in events if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
             and e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "lmthing.model_call"]
    summaries = [request for summary, request in calls if summary == SUMMARY_CALL]
    assert summaries and all(r["summarize"]["ranges"] for r in summaries)
    assert any((r["conversation"].get("base") or {}).get("layout") for summary, r in calls if summary is None)


@pytest.mark.parametrize("strategy", ["sliding_window", "summarize"])
async def test_a_worker_that_did_not_serve_the_previous_call_rebuilds_it_from_the_run(client, strategy, caplog):
    """Each ask on a fresh worker: no model worker holds the run's previous call, so every
    layout (and every summary call) is rebuilt from the run through the model_request query,
    and the run's history is replayed from the start by each new worker."""
    from lmthing.workers import create_worker

    caplog.set_level(logging.INFO, logger="temporalio.activity")
    queue = new_id("context-cold")
    agent_id = new_id(f"cold-{strategy}")
    replies = []
    for i in range(7):
        async with create_worker(client, app="tests.apps.context_app", task_queue=queue):
            agent = await start_agent(client, app.context_chat, app.Chat(strategy=strategy), id=agent_id, task_queue=queue)
            replies.append((await agent.ask(f"question {i} about shelf {i}", id=f"q{i}")).text)
            if i == 6:  # a query needs a worker too
                steps = await agent.steps()
                await agent.stop()
    assert [r.split("'")[1] for r in replies] == [f"question {i} about shelf {i}" for i in range(7)]
    assert len(steps) == 7 and all(s.context["tokens"] <= 200 for s in steps)
    rebuilt = [r for r in caplog.records if "rebuilt its input from the run" in r.getMessage()]
    assert len(rebuilt) >= 6  # every turn's first call, on a worker that never saw the run
    if strategy == "summarize":
        assert any("summary" in s.context for s in steps)
    else:
        assert steps[-1].context["dropped"] > 0


async def test_summary_calls_count_in_the_runs_usage_and_budget(client, worker):
    handle = await start(client, app.context_budgeted)
    result = await handle.result()
    assert result.text == "turn 11" and result.steps == 12
    steps = await handle.steps()
    summaries = [s.context["summary"] for s in steps if "summary" in s.context]
    assert summaries, [s.context for s in steps]
    of_steps = sum(s.response.usage.input_tokens + s.response.usage.output_tokens for s in steps)
    of_summaries = sum(s["usage"]["input_tokens"] + s["usage"]["output_tokens"] for s in summaries)
    assert result.usage.total_tokens == of_steps + of_summaries
    ledger = await handle.handle.query("budget")
    assert ledger["tokens"] == of_steps + of_summaries
