"""The fake model server speaks the real wire protocols: the official ``openai`` and
``anthropic`` SDKs, pointed at it over HTTP and not patched in any way, parse what it
sends (streamed and not) and raise their own exception classes for its faults."""

from __future__ import annotations

import asyncio
import email.utils
import time

import anthropic
import httpx2
import openai
import pytest

from tests.fakes import Call, FakeModelServer, Fault, Reply, Usage

TOOLS_REPLY = Reply(
    text="Let me add.",
    tool_calls=[Call("add", {"a": 2, "b": 3}, id="call_a"), Call("note", '{"text": "broken', id="call_b")],
    usage=Usage(input_tokens=120, output_tokens=30, cached_tokens=64),
)
USER = [{"role": "user", "content": "Add 2 and 3"}]


@pytest.fixture
async def fake():
    async with FakeModelServer() as server:
        yield server


def oa(server: FakeModelServer, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-fake", max_retries=0, **kw)


def an(server: FakeModelServer, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="ak-fake", max_retries=0, **kw)


# ---------------------------------------------------------------------------- OpenAI
async def test_openai_stream_text_tool_call_deltas_and_usage(fake):
    fake.script(TOOLS_REPLY)
    stream = await oa(fake).chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me add."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really streamed
    calls: dict[int, dict] = {}
    arg_pieces = 0
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
            slot["id"] = tc.id or slot["id"]
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["args"] += (tc.function.arguments or "") if tc.function else ""
            arg_pieces += 1
    assert calls == {
        0: {"id": "call_a", "name": "add", "args": '{"a": 2, "b": 3}'},
        1: {"id": "call_b", "name": "note", "args": '{"text": "broken'},  # malformed, sent raw
    }
    assert arg_pieces > 4  # arguments split across chunks
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (120, 30, 64)
    req = fake.requests[0]
    assert req.path == "/v1/chat/completions" and req.protocol == "openai" and req.stream
    assert req.headers["authorization"] == "Bearer sk-fake"
    assert req.body["messages"] == USER and req.body["stream_options"] == {"include_usage": True}


async def test_openai_without_include_usage_sends_no_usage_chunk(fake):
    fake.script(Reply(text="hi"))
    stream = await oa(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


async def test_openai_non_streaming(fake):
    fake.script(TOOLS_REPLY)
    reply = await oa(fake).chat.completions.create(model="gpt-4o-mini", messages=USER)
    msg = reply.choices[0].message
    assert msg.content == "Let me add." and reply.choices[0].finish_reason == "tool_calls"
    assert [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls] == [
        ("call_a", "add", '{"a": 2, "b": 3}'),
        ("call_b", "note", '{"text": "broken'),
    ]
    assert reply.usage.prompt_tokens == 120 and reply.usage.prompt_tokens_details.cached_tokens == 64
    assert reply.model == "gpt-4o-mini"


# ---------------------------------------------------------------------------- Anthropic
async def test_anthropic_stream_events_text_tool_use_and_usage(fake):
    fake.script(TOOLS_REPLY)
    stream = await an(fake).messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER, stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Let me add."
    tools = {}
    for e in events:
        if e.type == "content_block_start" and e.content_block.type == "tool_use":
            tools[e.index] = [e.content_block.id, e.content_block.name, ""]
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta":
            tools[e.index][2] += e.delta.partial_json
    assert list(tools.values()) == [["call_a", "add", '{"a": 2, "b": 3}'], ["call_b", "note", '{"text": "broken']]
    start = events[0].message.usage
    assert (start.input_tokens, start.cache_read_input_tokens) == (120 - 64, 64)
    delta = events[-2]
    assert delta.delta.stop_reason == "tool_use" and delta.usage.output_tokens == 30
    req = fake.requests[0]
    assert req.path == "/v1/messages"
    assert "ak-fake" in (req.headers.get("x-api-key"), req.headers.get("authorization", "").removeprefix("Bearer "))
    assert "anthropic-version" in req.headers and req.body["max_tokens"] == 100


async def test_anthropic_stream_helper_accumulates_the_message(fake):
    """The SDK's higher-level stream helper (which rebuilds the message from events)
    accepts the fake's events too."""
    fake.script(Reply(text="Sure.", tool_calls=[Call("add", {"a": 1, "b": 1}, id="toolu_1")]))
    async with an(fake).messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=USER) as stream:
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Sure." and message.content[1].input == {"a": 1, "b": 1}
    assert message.stop_reason == "tool_use"


async def test_anthropic_non_streaming(fake):
    fake.script(Reply(text="Done.", tool_calls=[Call("add", {"a": 1}, id="toolu_x")], usage=Usage(50, 9, 10)))
    msg = await an(fake).messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER)
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    assert msg.content[1].input == {"a": 1} and msg.stop_reason == "tool_use"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (40, 10, 9)


# ---------------------------------------------------------------------------- faults
FAULTS = [
    (Fault.rate_limited(retry_after=3), openai.RateLimitError, anthropic.RateLimitError),
    (Fault.server_error(500), openai.InternalServerError, anthropic.InternalServerError),
    (Fault.server_error(502), openai.InternalServerError, anthropic.InternalServerError),
    (Fault.server_error(503), openai.InternalServerError, anthropic.InternalServerError),
    (Fault.bad_request(), openai.BadRequestError, anthropic.BadRequestError),
    (Fault.unauthorized(), openai.AuthenticationError, anthropic.AuthenticationError),
    (Fault.forbidden(), openai.PermissionDeniedError, anthropic.PermissionDeniedError),
    (Fault.not_found("gpt-nope"), openai.NotFoundError, anthropic.NotFoundError),
]


@pytest.mark.parametrize("fault, oa_error, an_error", FAULTS, ids=[f[0].kind + str(f[0].status_code) for f in FAULTS])
async def test_faults_raise_the_sdk_exception_classes_with_real_bodies(fake, fault, oa_error, an_error):
    fake.script(fault, fault)
    with pytest.raises(oa_error) as oa_info:
        await oa(fake).chat.completions.create(model="gpt-nope", messages=USER, stream=True)
    with pytest.raises(an_error) as an_info:
        await an(fake).messages.create(model="claude-nope", max_tokens=10, messages=USER, stream=True)
    assert oa_info.value.status_code == an_info.value.status_code == fault.status_code
    # OpenAI: {"error": {"message", "type", "param", "code"}}; the SDK keeps the inner object.
    assert oa_info.value.body["message"] == fault.message and "type" in oa_info.value.body
    # Anthropic: {"type": "error", "error": {"type", "message"}}.
    assert an_info.value.api_message == fault.message and an_info.value.type
    if fault.kind == "rate_limited":
        assert oa_info.value.response.headers["retry-after"] == "3"
        assert an_info.value.response.headers["retry-after"] == "3"
        assert oa_info.value.body["code"] == "rate_limit_exceeded" and an_info.value.type == "rate_limit_error"
    if fault.kind == "not_found":
        assert oa_info.value.body["code"] == "model_not_found" and an_info.value.type == "not_found_error"


async def test_retry_after_as_an_http_date(fake):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.script(Fault.rate_limited(retry_after=when))
    with pytest.raises(openai.RateLimitError) as info:
        await oa(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.response.headers["retry-after"] == when


async def test_a_stream_cut_halfway_breaks_the_sdk_iteration(fake):
    fake.script(Reply(text="a long answer cut short", cut_after_events=3), Reply(text="a long answer cut short", cut_after_events=4))
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = await oa(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        async for c in stream:
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "a long a"  # role chunk + two text pieces, then the cut
    events = []
    with pytest.raises(httpx2.TransportError):  # this SDK lets the transport error through
        stream = await an(fake).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER, stream=True)
        async for e in stream:
            events.append(e.type)
    assert events == ["message_start", "content_block_start", "content_block_delta"]
    assert [r.cut for r in fake.requests] == [True, True]


async def test_a_clean_cut_ends_the_stream_without_a_terminator(fake):
    fake.script(Reply(text="abcdefgh", cut_after_events=2, cut_clean=True), Reply(text="abcdefgh", cut_after_events=3, cut_clean=True))
    stream = await oa(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [c async for c in stream]
    assert [c.choices[0].finish_reason for c in chunks] == [None, None]
    stream = await an(fake).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER, stream=True)
    assert "message_stop" not in [e.type async for e in stream]


async def test_slow_first_byte_trips_the_sdk_read_timeout(fake):
    fake.script(Reply(text="late", first_byte_delay=1.0), Reply(text="on time", first_byte_delay=0.3))
    with pytest.raises(openai.APITimeoutError):
        await oa(fake, timeout=0.3).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    start = time.monotonic()
    stream = await oa(fake, timeout=2).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "on time" and time.monotonic() - start >= 0.3


async def test_slow_drip_spreads_tokens_over_time(fake):
    fake.script(Reply(text="one two three four", chunk_chars=4, chunk_delay=0.05))
    stream = await an(fake).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER, stream=True)
    arrivals = []
    async for e in stream:
        if e.type == "content_block_delta":
            arrivals.append(time.monotonic())
    assert len(arrivals) == 5 and arrivals[-1] - arrivals[0] >= 0.15


async def test_a_client_that_goes_away_is_noticed(fake):
    fake.script(Reply(text="x" * 200, chunk_chars=1, chunk_delay=0.02), Reply(text="never sent", first_byte_delay=5))

    async def read_forever():
        stream = await oa(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        async for _ in stream:
            pass

    task = asyncio.create_task(read_forever())
    await fake.wait_for_requests(1)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    req = await fake.wait_disconnect(0)
    assert req.disconnected and not req.completed

    # Disconnecting while the server still waits for its first byte is noticed too.
    task = asyncio.create_task(an(fake).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER))
    await fake.wait_for_requests(2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    req = await fake.wait_disconnect(1, timeout=2)
    assert req.disconnected


async def test_an_empty_script_answers_400_saying_so(fake):
    with pytest.raises(openai.BadRequestError, match="no scripted reply left for request #1"):
        await oa(fake).chat.completions.create(model="gpt-4o", messages=USER)


async def test_a_callable_item_sees_the_request(fake):
    fake.script(lambda req: Reply(text=f"you said {req.messages[-1]['content']}"))
    reply = await oa(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert reply.choices[0].message.content == "you said Add 2 and 3"
