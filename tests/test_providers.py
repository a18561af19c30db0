"""Real model providers (OpenAI, Anthropic, custom OpenAI-compatible ones from env, LM_MODEL_*
aliases) through the official SDKs against the local fake server, in real runs on the
dev server: what each provider receives per step, usage and cost, every failure class
with its retry behaviour, and no API key in workflow history.

The session worker runs in this process, so ``monkeypatch.setenv`` is the worker's
environment: providers read it when they are called."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from lmthing import RunConfig
from lmthing.activities.providers import (
    AnthropicProvider,
    ModelCallError,
    ModelConfigError,
    OpenAIProvider,
    default_registry,
)
from lmthing.activities.providers._http import parse_retry_after
from lmthing.activities.providers.anthropic_provider import to_anthropic_messages
from lmthing.activities.providers.prices import PRICES, estimate_cost, price_of
from lmthing.prompt.types import (
    Conversation,
    Message,
    ModelOptions,
    ModelRequest,
    ToolCall,
    ToolDefinition,
    Usage,
)
from tests.apps import providers_app
from tests.fakes import Call, FakeModelServer, Fault, RecordedRequest, Reply
from tests.fakes import Usage as FakeUsage
from tests.support import activity_attempts, event_kinds, history, start

FAST = RunConfig(model_timeout_seconds=10, model_max_attempts=3)

OPTIONS = {
    "temperature": 0.3,
    "max_output_tokens": 256,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["END"],
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "tool_choice": "auto",
    "headers": {"X-Trace": "t-123"},
}


@pytest.fixture
async def fake():
    async with FakeModelServer() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No provider settings from the machine leak into these tests."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "LMTHING_MODEL_READ_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)


def use(monkeypatch, fake: FakeModelServer, kind: str, key: str | None = None) -> str:
    """Point provider ``kind`` at the fake through the worker's env; return the model string."""
    if kind == "openai":
        monkeypatch.setenv("OPENAI_API_KEY", key or "sk-test-openai")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        return "openai:gpt-4o"
    if kind in ("anthropic", "alias"):
        monkeypatch.setenv("ANTHROPIC_API_KEY", key or "sk-ant-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
        if kind == "alias":
            monkeypatch.setenv("LM_MODEL_SMART", "careful")  # aliases chain
            monkeypatch.setenv("LM_MODEL_CAREFUL", "anthropic:claude-haiku-4-5")
            return "smart"
        return "anthropic:claude-haiku-4-5"
    if kind == "custom":
        monkeypatch.setenv("ZAI_API_KEY", key or "zai-test-key")
        monkeypatch.setenv("ZAI_API_BASE", fake.openai_base_url)
        monkeypatch.setenv("ZAI_API_TYPE", "openai")
        return "zai:glm-4.6"
    raise AssertionError(kind)


# ----------------------------------------------------------------------- what was sent
def seen(req: RecordedRequest) -> dict[str, Any]:
    """A recorded request in a protocol-neutral shape: system, turns, tools."""
    body = req.body
    turns: list[tuple] = []
    if req.protocol == "openai":
        msgs = list(body["messages"])
        system = msgs.pop(0)["content"] if msgs and msgs[0]["role"] == "system" else None
        for m in msgs:
            if m["role"] == "user":
                turns.append(("user", m["content"]))
            elif m["role"] == "assistant":
                calls = [(c["id"], c["function"]["name"], _loads(c["function"]["arguments"])) for c in m.get("tool_calls") or []]
                turns.append(("assistant", m["content"] or "", calls))
            elif m["role"] == "tool":
                turns.append(("tool", m["tool_call_id"], _loads(m["content"])))
        tools = [(t["function"]["name"], t["function"]["parameters"]) for t in body.get("tools") or []]
    else:
        system = body.get("system")
        for m in body["messages"]:
            blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            if m["role"] == "user":
                for b in blocks:
                    if b["type"] == "tool_result":
                        turns.append(("tool", b["tool_use_id"], _loads(b["content"])))
                    else:
                        turns.append(("user", b["text"]))
            else:
                text = "".join(b["text"] for b in blocks if b["type"] == "text")
                calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
                turns.append(("assistant", text, calls))
        tools = [(t["name"], t["input_schema"]) for t in body.get("tools") or []]
    return {"system": system, "turns": turns, "tools": tools}


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return text


def expected_options(kind: str) -> dict[str, Any]:
    """The generation options as the provider's wire protocol names them."""
    if kind in ("anthropic", "alias"):
        return {
            "max_tokens": 256, "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
            "tool_choice": {"type": "auto"},
        }
    out = {
        "temperature": 0.3, "top_p": 0.9, "stop": ["END"], "seed": 7, "presence_penalty": 0.1,
        "frequency_penalty": 0.2, "tool_choice": "auto",
    }
    if kind == "custom":
        out.update(max_tokens=256, top_k=40)
    else:
        out["max_completion_tokens"] = 256
    return out


STEP_USAGE = [FakeUsage(1000, 50, 400), FakeUsage(1200, 20, 800), FakeUsage(1500, 30, 1000)]


def calc_script() -> list[Reply]:
    return [
        Reply(
            text="Adding both.",
            tool_calls=[Call("add", {"a": 2, "b": 3}, id="call_1"), Call("add", {"a": 4, "b": 5}, id="call_2")],
            usage=STEP_USAGE[0],
        ),
        Reply(tool_calls=[Call("note", {"text": "5 and 9"}, id="call_3")], usage=STEP_USAGE[1]),
        Reply(text="The sums are 5 and 9.", usage=STEP_USAGE[2]),
    ]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom", "alias"])
async def test_a_multi_step_tool_run_through_each_provider(client, worker, fake, monkeypatch, kind):
    model = use(monkeypatch, fake, kind)
    fake.script(*calc_script())
    handle = await start(client, providers_app.calc, model=model, options=OPTIONS, config=FAST)
    result = await handle.result()
    steps = await handle.steps()

    assert result.text == "The sums are 5 and 9." and result.stop_reason == "answer" and result.steps == 3
    assert result.state == {"notes": ["5 and 9"]}
    assert len(fake.requests) == 3
    protocol = "anthropic" if kind in ("anthropic", "alias") else "openai"
    assert {r.protocol for r in fake.requests} == {protocol}
    model_id = "claude-haiku-4-5" if protocol == "anthropic" else ("glm-4.6" if kind == "custom" else "gpt-4o")

    views = [seen(r) for r in fake.requests]
    for n, (req, view) in enumerate(zip(fake.requests, views)):
        assert req.body["model"] == model_id and req.stream
        # System prompt, tools with their pydantic JSON schemas, options and headers, every step.
        assert providers_app.SYSTEM_ROLE in view["system"]
        assert [name for name, _ in view["tools"]] == ["add", "note"]
        add_schema = view["tools"][0][1]
        assert add_schema == steps[n].request.tools[0].parameters
        assert add_schema["type"] == "object" and add_schema["required"] == ["a", "b"]
        assert add_schema["properties"]["a"]["type"] == "integer"
        assert {k: req.body.get(k) for k in expected_options(kind)} == expected_options(kind)
        assert req.headers["x-trace"] == "t-123"
        if protocol == "anthropic":
            assert not {"seed", "presence_penalty", "frequency_penalty"} & set(req.body)
        elif kind == "openai":
            assert "top_k" not in req.body and "max_tokens" not in req.body
            assert req.body["stream_options"] == {"include_usage": True}

    user = ("user", "Add 2 and 3, and 4 and 5, then note the results.")
    first = ("assistant", "Adding both.", [("call_1", "add", {"a": 2, "b": 3}), ("call_2", "add", {"a": 4, "b": 5})])
    results = [("tool", "call_1", {"sum": 5}), ("tool", "call_2", {"sum": 9})]
    second = ("assistant", "", [("call_3", "note", {"text": "5 and 9"})])
    assert views[0]["turns"] == [user]
    assert views[1]["turns"] == [user, first, *results]
    assert views[2]["turns"] == [user, first, *results, second, ("tool", "call_3", {"ok": True})]
    if protocol == "anthropic":
        # Roles alternate: both tool results travel in one user turn.
        assert [m["role"] for m in fake.requests[2].body["messages"]] == ["user", "assistant", "user", "assistant", "user"]

    # What came back, per step: text, several tool calls in one reply, usage, cost.
    assert [len(s.response.tool_calls) for s in steps] == [2, 1, 0]
    assert steps[0].response.tool_calls[1].args == {"a": 4, "b": 5}
    assert [s.response.finish_reason for s in steps] == ["tool_calls", "tool_calls", "stop"]
    for s, u in zip(steps, STEP_USAGE):
        assert s.response.usage == Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens, cached_tokens=u.cached_tokens)
    assert result.usage == Usage(input_tokens=3700, output_tokens=100, cached_tokens=2200)
    provider_name = "zai" if kind == "custom" else protocol
    assert steps[0].response.model == f"{provider_name}:{model_id}"
    if kind == "custom":
        # No price for a custom provider's model: unknown, not zero.
        assert [s.response.cost_usd for s in steps] == [None, None, None] and result.cost_usd is None
    else:
        price = PRICES[f"{protocol}:{model_id}"]
        costs = [
            ((u.input_tokens - u.cached_tokens) * price.input + u.cached_tokens * price.cached_input + u.output_tokens * price.output) / 1e6
            for u in STEP_USAGE
        ]
        assert [s.response.cost_usd for s in steps] == pytest.approx(costs)
        assert result.cost_usd == pytest.approx(sum(costs))


async def test_text_reaches_the_caller_while_the_provider_streams(client, worker, fake, monkeypatch):
    model = use(monkeypatch, fake, "openai")
    answer = "Tokens arrive one small piece at a time."
    fake.script(Reply(text=answer, chunk_chars=3, chunk_delay=0.03))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    pieces = [p async for p in handle.text_stream()]
    assert "".join(pieces) == answer and len(pieces) >= 2
    assert (await handle.result()).text == answer


# ----------------------------------------------------------------------- failures
async def _run_failing(handle):
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    events = await history(handle)
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(events)
    return info.value.cause, events


def _model_attempt(events) -> Any:
    """The started event of the run's (only) model call: its attempt and last failure."""
    return next(e.activity_task_started_event_attributes for e in events if e.HasField("activity_task_started_event_attributes"))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_429_is_retried_after_the_retry_after_delay(client, worker, fake, monkeypatch, kind):
    model = use(monkeypatch, fake, kind)
    fake.script(Fault.rate_limited(retry_after=2), Reply(text="after the wait"))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    result = await handle.result()
    assert result.text == "after the wait"
    started = _model_attempt(await history(handle))
    assert started.attempt == 2
    assert started.last_failure.application_failure_info.type == "RateLimited"
    assert "rate limit" in started.last_failure.message and "retrying after 2s" in started.last_failure.message
    gap = fake.requests[1].received_at - fake.requests[0].received_at
    # The policy's own first backoff is 1 s: the 2 s of Retry-After won.
    assert 1.8 <= gap < 6, gap


@pytest.mark.parametrize(
    "kind, fault, error_type",
    [
        ("openai", Fault.server_error(500), "ServerError"),
        ("anthropic", Fault.server_error(503), "ServerError"),
        ("custom", Fault.server_error(502), "ServerError"),
        ("openai", Reply(text="a reply that will be cut off", cut_after_events=3), "StreamInterrupted"),
        ("anthropic", Reply(text="a reply that will be cut off", cut_after_events=4), "StreamInterrupted"),
        ("openai", Reply(text="ends without a finish", cut_after_events=3, cut_clean=True), "StreamInterrupted"),
        ("anthropic", Reply(text="ends without message_stop", cut_after_events=4, cut_clean=True), "StreamInterrupted"),
    ],
    ids=["openai-500", "anthropic-503", "custom-502", "openai-cut", "anthropic-cut", "openai-clean-cut", "anthropic-clean-cut"],
)
async def test_transient_failures_are_retried_then_succeed(client, worker, fake, monkeypatch, kind, fault, error_type):
    model = use(monkeypatch, fake, kind)
    fake.script(fault, Reply(text="second time lucky"))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    pieces = [p async for p in handle.text_stream()]
    result = await handle.result()
    assert result.text == "second time lucky"
    started = _model_attempt(await history(handle))
    assert started.attempt == 2 and started.last_failure.application_failure_info.type == error_type
    assert not started.last_failure.application_failure_info.non_retryable
    if isinstance(fault, Reply):
        # The caller saw the cut attempt's partial text, then the retry's, marked as restarted.
        assert pieces[0].attempt == 1 and "".join(p for p in pieces if p.attempt == 2) == "second time lucky"
        assert next(p for p in pieces if p.attempt == 2).restarted


async def test_a_slow_first_token_within_the_timeout_is_waited_for(client, worker, fake, monkeypatch):
    model = use(monkeypatch, fake, "anthropic")
    fake.script(Reply(text="worth the wait", first_byte_delay=2.5, chunk_delay=0.05))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    assert (await handle.result()).text == "worth the wait"
    assert activity_attempts(await history(handle)) == [1]


async def test_a_silent_provider_times_out_and_is_retried(client, worker, fake, monkeypatch):
    model = use(monkeypatch, fake, "openai")
    monkeypatch.setenv("LMTHING_MODEL_READ_TIMEOUT", "0.5")
    fake.script(Reply(text="too late", first_byte_delay=3), Reply(text="in time"))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    assert (await handle.result()).text == "in time"
    started = _model_attempt(await history(handle))
    assert started.attempt == 2 and started.last_failure.application_failure_info.type == "Timeout"
    assert "LMTHING_MODEL_READ_TIMEOUT" in started.last_failure.message
    assert fake.requests[0].disconnected  # the timed-out request was closed


@pytest.mark.parametrize(
    "kind, fault, error_type, fix",
    [
        ("openai", Fault.bad_request("Invalid value for 'temperature'."), "InvalidRequest", "Invalid value for 'temperature'"),
        ("openai", Fault.unauthorized(), "AuthenticationError", "OPENAI_API_KEY is missing or invalid"),
        ("anthropic", Fault.unauthorized("invalid x-api-key"), "AuthenticationError", "ANTHROPIC_API_KEY is missing or invalid"),
        ("custom", Fault.unauthorized(), "AuthenticationError", "ZAI_API_KEY is missing or invalid"),
        ("anthropic", Fault.forbidden(), "AuthenticationError", "lacks permission: fix ANTHROPIC_API_KEY"),
        ("openai", Fault.not_found("gpt-4o"), "ModelNotFound", "Model 'gpt-4o' not found at openai"),
        ("alias", Fault.not_found("claude-haiku-4-5"), "ModelNotFound", "Model 'claude-haiku-4-5' not found at anthropic (from 'smart')"),
    ],
    ids=["openai-400", "openai-401", "anthropic-401", "custom-401", "anthropic-403", "openai-404", "alias-404"],
)
async def test_permanent_failures_fail_fast_naming_the_fix(client, worker, fake, monkeypatch, kind, fault, error_type, fix):
    model = use(monkeypatch, fake, kind)
    fake.script(fault, Reply(text="never reached"))
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    cause, events = await _run_failing(handle)
    assert cause.type == "ModelCallFailed"
    assert fix in cause.message
    assert activity_attempts(events) == [1] and len(fake.requests) == 1
    failed = next(e.activity_task_failed_event_attributes for e in events if e.HasField("activity_task_failed_event_attributes"))
    assert failed.failure.application_failure_info.type == error_type
    assert failed.failure.application_failure_info.non_retryable


@pytest.mark.parametrize(
    "kind, env, missing",
    [("openai", {}, "OPENAI_API_KEY"), ("anthropic", {}, "ANTHROPIC_API_KEY"), ("custom", {"ZAI_API_KEY": ""}, "ZAI_API_KEY"),
     ("custom", {"ZAI_API_BASE": ""}, "ZAI_API_BASE")],
    ids=["openai-key", "anthropic-key", "custom-key", "custom-base"],
)
async def test_missing_settings_fail_before_calling_naming_the_variable(client, worker, fake, monkeypatch, kind, env, missing):
    model = use(monkeypatch, fake, kind)
    if kind != "custom":
        monkeypatch.delenv(missing)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    cause, events = await _run_failing(handle)
    assert f"{missing} is not set on the worker" in cause.message
    assert activity_attempts(events) == [1] and fake.requests == []


async def test_unknown_provider_lists_builtins_and_env_defined_ones(client, worker, fake, monkeypatch):
    use(monkeypatch, fake, "custom")
    monkeypatch.setenv("GITHUB_MODELS_API_TYPE", "openai")
    monkeypatch.setenv("GITHUB_MODELS_API_NAME", "github")
    handle = await start(client, providers_app.chat, model="nope:some-model", config=FAST)
    cause, events = await _run_failing(handle)
    assert "Unknown model provider 'nope' in 'nope:some-model'. Available providers: " in cause.message
    listed = cause.message.split("Available providers: ")[1].split(".")[0].split(", ")
    assert {"anthropic", "openai", "scripted", "zai", "github"} <= set(listed)
    assert "NOPE_API_KEY, NOPE_API_BASE and NOPE_API_TYPE=openai" in cause.message
    assert activity_attempts(events) == [1]


async def test_a_custom_provider_named_by_api_name(client, worker, fake, monkeypatch):
    monkeypatch.setenv("GITHUB_MODELS_API_KEY", "gh-token")
    monkeypatch.setenv("GITHUB_MODELS_API_BASE", fake.openai_base_url)
    monkeypatch.setenv("GITHUB_MODELS_API_TYPE", "openai")
    monkeypatch.setenv("GITHUB_MODELS_API_NAME", "github")
    fake.script(Reply(text="hi from github"))
    handle = await start(client, providers_app.chat, model="github:gpt-4o-mini", config=FAST)
    assert (await handle.result()).text == "hi from github"
    assert fake.requests[0].headers["authorization"] == "Bearer gh-token"
    assert fake.requests[0].body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_malformed_tool_json_goes_back_to_the_model_and_the_run_goes_on(client, worker, fake, monkeypatch, kind):
    model = use(monkeypatch, fake, kind)
    fake.script(
        Reply(tool_calls=[Call("add", '{"a": 2, "b": ', id="call_bad")]),
        Reply(tool_calls=[Call("add", {"a": 2, "b": 3}, id="call_good")]),
        Reply(text="5"),
    )
    handle = await start(client, providers_app.calc, model=model, config=FAST)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "5" and result.steps == 3
    assert steps[0].response.tool_calls[0].args == '{"a": 2, "b": '  # kept raw
    error = steps[0].tool_results[0]
    assert error.is_error and error.result["error"].startswith('Invalid input for tool add: JSON parsing failed: Text: {"a": 2, "b": .')
    view = seen(fake.requests[1])
    tool_turn = view["turns"][-1]
    # The model reads the bare message (lmthing: the AI SDK's error text).
    assert tool_turn[0] == "tool" and tool_turn[1] == "call_bad" and tool_turn[2] == error.result["error"]
    # The malformed call itself is sent back as the model made it (Anthropic: wrapped in an object).
    sent_args = view["turns"][1][2][0][2]
    assert sent_args == ('{"a": 2, "b": ' if kind == "openai" else {"invalid_json": '{"a": 2, "b": '})
    assert activity_attempts(await history(handle)) == [1, 1, 1]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
async def test_the_api_key_never_enters_workflow_history(client, worker, fake, monkeypatch, kind):
    secret = f"sk-LMTHING-SECRET-{kind}-4f2a9c"
    model = use(monkeypatch, fake, kind, key=secret)
    fake.script(Reply(tool_calls=[Call("add", {"a": 1, "b": 1})]), Reply(text="2"))
    handle = await start(client, providers_app.calc, model=model, config=FAST)
    assert (await handle.result()).text == "2"
    auth = fake.requests[0].headers
    assert secret in (auth.get("authorization", "").removeprefix("Bearer "), auth.get("x-api-key"))  # it was used
    exported = (await handle.handle.fetch_history()).to_json()
    assert len(exported) > 1000 and secret not in exported and "4f2a9c" not in exported


async def test_cancelling_the_run_closes_the_http_request(client, worker, fake, monkeypatch):
    model = use(monkeypatch, fake, "openai")
    fake.script(Reply(text="x" * 400, chunk_chars=1, chunk_delay=0.05))
    # The default heartbeat timeout (10 s): the worker caps heartbeat throttling at 1 s, so
    # the cancellation reaches the model call within a couple of seconds anyway.
    handle = await start(client, providers_app.chat, model=model, config=FAST)
    await fake.wait_for_requests(1)
    await asyncio.sleep(0.5)
    await handle.cancel()
    req = await fake.wait_disconnect(0, timeout=4)
    assert req.disconnected and not req.completed


# ----------------------------------------------------------------------- providers alone
class Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, delta: str) -> None:
        self.parts.append(delta)


def request(model: str = "openai:gpt-4o", **kw: Any) -> ModelRequest:
    return ModelRequest(model=model, conversation=Conversation(messages=[Message(role="user", content="hi")]), **kw)


async def test_provider_streams_text_deltas_to_the_sink_as_they_arrive(fake):
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake.openai_base_url, "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake.anthropic_base_url}
    for provider in (OpenAIProvider(env=env), AnthropicProvider(env=env)):
        fake.script(Reply(text="one two three", chunk_chars=4))
        sink = Sink()
        response = await provider.complete("m", request(), sink)
        assert sink.parts == ["one ", "two ", "thre", "e"] and response.text == "one two three"


async def test_cancelling_a_provider_call_closes_its_request(fake):
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake.anthropic_base_url}
    fake.script(Reply(text="y" * 200, chunk_chars=1, chunk_delay=0.02))
    sink = Sink()
    task = asyncio.create_task(AnthropicProvider(env=env).complete("m", request(), sink))
    while len(sink.parts) < 3:
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    req = await fake.wait_disconnect(0)
    assert req.disconnected and not req.completed


@pytest.mark.parametrize(
    "fault, error_type, retryable",
    [
        (Fault.server_error(529), "ServerError", True),
        (Fault("invalid_request", "prompt is too long", status=413), "InvalidRequest", False),
        (Fault.rate_limited(retry_after=None), "RateLimited", True),
    ],
)
async def test_error_classes_directly(fake, fault, error_type, retryable):
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake.anthropic_base_url}
    fake.script(fault)
    with pytest.raises(ModelCallError) as info:
        await AnthropicProvider(env=env).complete("m", request(), Sink())
    assert (info.value.error_type, info.value.retryable) == (error_type, retryable)
    assert info.value.retry_after is None


async def test_an_unreachable_server_is_a_retryable_connection_error():
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    with pytest.raises(ModelCallError) as info:
        await OpenAIProvider(env=env).complete("gpt-4o", request(), Sink())
    assert info.value.error_type == "ConnectionError" and info.value.retryable
    assert "OPENAI_BASE_URL" in str(info.value)


def test_retry_after_in_seconds_milliseconds_or_an_http_date():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:20 GMT"}, now=1445412490.0) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "garbage"}) is None and parse_retry_after({}) is None


def test_prices_known_models_snapshots_and_unknown_ones():
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=500_000)
    assert estimate_cost("openai", "gpt-4o", usage) == pytest.approx(0.5 * 2.5 + 0.5 * 1.25 + 10.0)
    assert price_of("openai", "gpt-4o-2024-08-06") == PRICES["openai:gpt-4o"]
    assert price_of("anthropic", "claude-haiku-4-5-20251001") == PRICES["anthropic:claude-haiku-4-5"]
    assert price_of("openai", "gpt-4o-audio-preview") is None  # not a snapshot of gpt-4o
    assert estimate_cost("zai", "glm-4.6", usage) is None
    assert estimate_cost("openai", "my-finetune", usage, served_model="gpt-4o-mini") == pytest.approx(
        0.5 * 0.15 + 0.5 * 0.075 + 0.6
    )


def test_anthropic_turns_alternate_and_system_messages_join_the_system_prompt():
    messages = [
        Message(role="system", content="Extra rules."),
        Message(role="user", content="q1"),
        Message(role="user", content="q2"),
        Message(role="assistant", content=None, tool_calls=[ToolCall(id="t1", name="f", args={}), ToolCall(id="t2", name="f", args="[1]")]),
        Message(role="tool", tool_call_id="t1", content="r1"),
        Message(role="tool", tool_call_id="t2", content="r2"),
        Message(role="user", content="go on"),
    ]
    system, turns = to_anthropic_messages("Base.", messages)
    assert system == "Base.\n\nExtra rules."
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[0]["content"]] == ["text", "text"]
    assert turns[1]["content"][1]["input"] == {"invalid_json": "[1]"}
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]


def test_tool_choice_mapping():
    tools = [ToolDefinition(name="add", description="Add", parameters={"properties": {}})]
    for choice, oa, an in [
        ("auto", "auto", {"type": "auto"}),
        ("required", "required", {"type": "any"}),
        ("none", "none", {"type": "none"}),
        ("add", {"type": "function", "function": {"name": "add"}}, {"type": "tool", "name": "add"}),
    ]:
        req = request(tools=tools, options=ModelOptions(tool_choice=choice))
        assert OpenAIProvider().build_params("gpt-4o", req)["tool_choice"] == oa
        params = AnthropicProvider().build_params("claude-haiku-4-5", req)
        assert params["tool_choice"] == an and params["tools"][0]["input_schema"]["type"] == "object"
    # No tools: no tool_choice (OpenAI rejects one without tools); Anthropic's required max_tokens has a default.
    assert "tool_choice" not in OpenAIProvider().build_params("gpt-4o", request(options=ModelOptions(tool_choice="auto")))
    assert AnthropicProvider().build_params("claude-haiku-4-5", request())["max_tokens"] == 4096


def test_registry_resolves_env_providers_at_call_time_and_keeps_builtins():
    registry = default_registry()
    env = {"ZAI_API_TYPE": "openai", "OPENAI_API_TYPE": "azure", "ODD_API_TYPE": "cohere", "LM_MODEL_FAST": "zai:glm-4.6"}
    provider, model_id = registry.resolve("fast", env)
    assert isinstance(provider, OpenAIProvider) and provider.name == "zai" and model_id == "glm-4.6"
    assert isinstance(registry.resolve("openai:gpt-4o", env)[0], OpenAIProvider)
    assert registry.resolve("openai:gpt-4o", env)[0].name == "openai"  # OPENAI_API_TYPE does not shadow it
    assert registry.names(env) == ["anthropic", "local", "openai", "scripted", "zai"]  # unsupported types are not listed
    with pytest.raises(ModelConfigError, match="ODD_API_TYPE='cohere' is not a supported API type"):
        registry.resolve("odd:m", env)
    assert registry.names({}) == ["anthropic", "local", "openai", "scripted"]


def test_importing_lmthing_does_not_import_the_sdks():
    import subprocess
    import sys

    code = "import lmthing, lmthing.activities.providers, sys; print(sorted({'openai', 'anthropic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


async def test_structured_output_goes_to_openai_as_a_json_schema(client, worker, fake, monkeypatch):
    model = use(monkeypatch, fake, "openai")
    fake.script(
        Reply(tool_calls=[Call("judge", {"text": "the sky is green"})]),  # the parent asks the agent
        Reply(text='{"verdict": "false", "confidence": 0.97}'),  # the agent answers
        Reply(text="It is not."),  # the parent concludes
    )
    handle = await start(client, providers_app.judge, model=model, config=FAST)
    result = await handle.result()
    assert result.text == "It is not."
    parent_first, child, parent_last = (r.body for r in fake.requests)
    assert child["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": providers_app.Verdict.model_json_schema()},
    }
    assert "response_format" not in parent_first and "response_format" not in parent_last
    assert (await handle.steps())[0].tool_results[0].result == {"response": '{"verdict": "false", "confidence": 0.97}'}
