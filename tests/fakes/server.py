"""A local fake model server that speaks the OpenAI chat-completions and the Anthropic
messages wire protocols, streaming (SSE) and not, scripted per test.

    async with FakeModelServer() as server:
        server.script(Fault.rate_limited(retry_after=1), Reply(text="Hi", usage=Usage(12, 3)))
        client = AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        ...
        assert server.requests[1].body["model"] == "gpt-4o"

Every request (on either protocol) takes the next item of the script: a ``Reply`` (text,
tool calls with raw argument strings, usage, pacing, a stream cut), a ``Fault`` (an HTTP
error with the provider's real error body), or a callable ``(RecordedRequest) -> item``.
A request that finds the script empty gets a 400 whose message says so (non-retryable,
so a test fails fast instead of retrying into a void).

``POST /v1/moderations`` answers in OpenAI's moderation format: set ``moderation_words``
(category -> words that flag a text for it) and queue ``moderation_faults``; the bodies
received are in ``moderation_requests``.

``POST /v1/embeddings`` answers in OpenAI's embeddings format with deterministic vectors
(``tests/fakes/embeddings.py``: a hashed bag of words), of the request's ``dimensions`` or
``embedding_dimensions`` (default 1536, text-embedding-3-small's); ``embedding_faults``
answer first; the bodies received are in ``embedding_requests``. A model named in
``unknown_embedding_models`` gets OpenAI's 404 for a model that does not exist.

Every request is recorded (path, headers, JSON body); a client that goes away before the
reply is complete is noticed (``RecordedRequest.disconnected``), so a test can check that
cancelling a call closed its HTTP request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .embeddings import embed as fake_embed

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass
class Usage:
    """Token usage the fake reports. ``input_tokens`` is the total prompt size, cached
    tokens included (OpenAI's convention); on the Anthropic protocol the cached part is
    reported separately as ``cache_read_input_tokens`` (Anthropic's convention)."""

    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int = 0


@dataclass
class Call:
    """A tool call in a reply. ``arguments`` is a dict (sent as JSON) or a raw string (sent
    as is, so malformed JSON can be injected)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    @property
    def raw_arguments(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """One model reply.

    Streaming pacing: ``first_byte_delay`` before the response starts, ``chunk_delay``
    between SSE events. Text is streamed in pieces of ``chunk_chars`` characters; tool-call
    arguments in pieces of ``args_chunk_chars``.

    A stream cut: ``cut_after_events=N`` sends N SSE events and then drops the connection
    without finishing the HTTP body (``cut_clean=True`` instead ends the body properly but
    without the protocol's terminator: no ``[DONE]`` / ``message_stop``, no finish reason).
    """

    text: str = ""
    tool_calls: list[Call] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    chunk_chars: int = 4
    args_chunk_chars: int = 7
    cut_after_events: int | None = None
    cut_clean: bool = False

    def finish_for(self, protocol: str) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        if protocol == OPENAI:
            return "tool_calls" if self.tool_calls else "stop"
        return "tool_use" if self.tool_calls else "end_turn"


# (status, OpenAI error type, OpenAI code, Anthropic error type)
_KINDS: dict[str, tuple[int, str, str | None, str]] = {
    "invalid_request": (400, "invalid_request_error", None, "invalid_request_error"),
    "authentication": (401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    "permission": (403, "invalid_request_error", "unsupported_country_region_territory", "permission_error"),
    "not_found": (404, "invalid_request_error", "model_not_found", "not_found_error"),
    "rate_limited": (429, "requests", "rate_limit_exceeded", "rate_limit_error"),
    "server_error": (500, "server_error", None, "api_error"),
    "bad_gateway": (502, "server_error", None, "api_error"),
    "unavailable": (503, "server_error", None, "api_error"),
    "overloaded": (529, "server_error", None, "overloaded_error"),
}


@dataclass
class Fault:
    """An HTTP error reply, rendered with the real error body shape of the protocol the
    request came in on. Use the constructors (``Fault.rate_limited(retry_after=1)``...)."""

    kind: str
    message: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @property
    def status_code(self) -> int:
        return self.status if self.status is not None else _KINDS[self.kind][0]

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1, message: str | None = None) -> Fault:
        """429; ``retry_after`` in seconds (a number) or as an HTTP date (a string)."""
        headers = {} if retry_after is None else {"Retry-After": _retry_after_value(retry_after)}
        return cls("rate_limited", message or "Rate limit reached for requests. Please try again later.", headers=headers)

    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> Fault:
        kind = {500: "server_error", 502: "bad_gateway", 503: "unavailable", 529: "overloaded"}.get(status, "server_error")
        default = "The server had an error while processing your request. Sorry about that!"
        return cls(kind, message or default, status=status)

    @classmethod
    def bad_request(cls, message: str = "Invalid request: 'messages' must not be empty.") -> Fault:
        return cls("invalid_request", message)

    @classmethod
    def unauthorized(cls, message: str = "Incorrect API key provided.") -> Fault:
        return cls("authentication", message)

    @classmethod
    def forbidden(cls, message: str = "Your API key does not have permission to use this resource.") -> Fault:
        return cls("permission", message)

    @classmethod
    def not_found(cls, model: str = "the requested model", message: str | None = None) -> Fault:
        return cls("not_found", message or f"The model `{model}` does not exist or you do not have access to it.")

    def body_for(self, protocol: str) -> dict[str, Any]:
        _, oa_type, oa_code, an_type = _KINDS[self.kind]
        if protocol == OPENAI:
            return {"error": {"message": self.message, "type": oa_type, "param": None, "code": oa_code}}
        return {"type": "error", "error": {"type": an_type, "message": self.message}, "request_id": "req_fake"}


def _retry_after_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


# The categories of OpenAI's omni-moderation models, as the API names them.
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)

ScriptItem = Reply | Fault | Callable[["RecordedRequest"], "Reply | Fault"]


@dataclass
class RecordedRequest:
    """One request the fake received."""

    index: int
    path: str
    protocol: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]
    received_at: float
    item: Reply | Fault | None = None
    disconnected: bool = False
    completed: bool = False
    cut: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


class _Disconnected(Exception):
    pass


class FakeModelServer:
    """The fake server; an async context manager. See the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptItem] = deque()
        self._runner: web.AppRunner | None = None
        self._new_request = asyncio.Condition()
        # POST /v1/moderations (OpenAI's wire format): a text is flagged for a category when
        # it contains one of that category's words; faults queued here answer first.
        self.moderation_words: dict[str, list[str]] = {}
        self.moderation_faults: deque[Fault] = deque()
        self.moderation_requests: list[dict[str, Any]] = []
        # Seconds the next moderation answers wait (a slow moderation model), in order.
        self.moderation_delays: deque[float] = deque()
        # POST /v1/embeddings (OpenAI's wire format), see the module docstring.
        self.embedding_dimensions = 1536
        self.embedding_faults: deque[Fault] = deque()
        self.embedding_requests: list[dict[str, Any]] = []
        self.unknown_embedding_models: set[str] = set()
        self.embedding_delays: deque[float] = deque()  # seconds the next answers wait, in order

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeModelServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        # The Anthropic SDK appends /v1/messages itself.
        return self.base_url

    # ------------------------------------------------------------------ scripting
    def script(self, *items: ScriptItem) -> FakeModelServer:
        """Append replies/faults; each request consumes one, in order."""
        self._script.extend(items)
        return self

    @property
    def remaining(self) -> int:
        return len(self._script)

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        async with self._new_request:
            await asyncio.wait_for(self._new_request.wait_for(lambda: len(self.requests) >= count), timeout)
        return self.requests

    async def wait_disconnect(self, index: int = -1, timeout: float = 5.0) -> RecordedRequest:
        """Wait until request ``index`` has ended; return it (check ``.disconnected``)."""
        req = self.requests[index]
        await asyncio.wait_for(req.done.wait(), timeout)
        return req

    # ------------------------------------------------------------------ handlers
    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, OPENAI)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, ANTHROPIC)

    async def _moderations(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.moderation_requests.append(body)
        if self.moderation_delays:
            await self._sleep(request, self.moderation_delays.popleft())
        if self.moderation_faults:
            return self._fault_response(self.moderation_faults.popleft(), OPENAI)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = []
        for text in texts:
            hits = {c: any(w.lower() in text.lower() for w in words) for c, words in self.moderation_words.items()}
            flags = {c: hits.get(c, False) for c in MODERATION_CATEGORIES}
            results.append({
                "flagged": any(flags.values()),
                "categories": flags,
                "category_scores": {c: 0.97 if hit else 0.0004 for c, hit in flags.items()},
                "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
            })
        return web.json_response({"id": f"modr-{len(self.moderation_requests)}", "model": body.get("model"),
                                  "results": results})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.embedding_requests.append(body)
        if self.embedding_delays:
            await self._sleep(request, self.embedding_delays.popleft())
        if self.embedding_faults:
            return self._fault_response(self.embedding_faults.popleft(), OPENAI)
        model = body.get("model")
        if model in self.unknown_embedding_models:
            return self._fault_response(Fault.not_found(str(model)), OPENAI)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = int(body.get("dimensions") or self.embedding_dimensions)
        data = [{"object": "embedding", "index": i, "embedding": fake_embed(str(t), dimensions)}
                for i, t in enumerate(texts)]
        tokens = sum(len(str(t).split()) for t in texts)
        return web.json_response({"object": "list", "model": model, "data": data,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _handle(self, request: web.Request, protocol: str) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {"_unparsed": await request.text()}
        rec = RecordedRequest(
            index=len(self.requests),
            path=request.path,
            protocol=protocol,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        self.requests.append(rec)
        async with self._new_request:
            self._new_request.notify_all()
        try:
            item: Any = self._script.popleft() if self._script else None
            if callable(item) and not isinstance(item, (Reply, Fault)):
                item = item(rec)
            rec.item = item
            if item is None:
                fault = Fault("invalid_request", f"FakeModelServer: no scripted reply left for request #{rec.index + 1} ({request.path})")
                return self._fault_response(fault, protocol)
            if isinstance(item, Fault):
                await self._sleep(request, item.delay)
                return self._fault_response(item, protocol)
            if rec.stream:
                return await self._stream(request, rec, item, protocol)
            await self._sleep(request, item.first_byte_delay)
            payload = _openai_completion(item, body) if protocol == OPENAI else _anthropic_message(item, body)
            return web.json_response(payload)
        except (_Disconnected, ConnectionResetError, asyncio.CancelledError):
            rec.disconnected = True
            raise
        finally:
            rec.completed = not rec.disconnected
            rec.done.set()

    def _fault_response(self, fault: Fault, protocol: str) -> web.Response:
        headers = dict(fault.headers)
        if protocol == ANTHROPIC:
            headers.setdefault("request-id", "req_fake")
        return web.json_response(fault.body_for(protocol), status=fault.status_code, headers=headers)

    async def _sleep(self, request: web.Request, seconds: float) -> None:
        """Sleep, noticing a client that goes away meanwhile."""
        end = time.monotonic() + seconds
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise _Disconnected()
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.02))

    async def _stream(self, request: web.Request, rec: RecordedRequest, reply: Reply, protocol: str) -> web.StreamResponse:
        await self._sleep(request, reply.first_byte_delay)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        events = _openai_events(reply, rec.body) if protocol == OPENAI else _anthropic_events(reply, rec.body)
        for n, event in enumerate(events):
            if reply.cut_after_events is not None and n >= reply.cut_after_events:
                if reply.cut_clean:
                    rec.cut = True
                    await resp.write_eof()
                    return resp
                # Drop the connection mid-body: the client sees an incomplete chunked read.
                rec.cut = True
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return resp
            if n and reply.chunk_delay:
                await self._sleep(request, reply.chunk_delay)
            transport = request.transport
            if transport is None or transport.is_closing():
                raise _Disconnected()
            await resp.write(event.encode())
        await resp.write_eof()
        return resp


# ---------------------------------------------------------------------- OpenAI wire
def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _call_id(call: Call, n: int, protocol: str) -> str:
    if call.id:
        return call.id
    return f"call_fake_{n}" if protocol == OPENAI else f"toolu_fake_{n}"


def _openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _openai_completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": _call_id(c, n, OPENAI), "type": "function", "function": {"name": c.name, "arguments": c.raw_arguments}}
            for n, c in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_for(OPENAI)}],
        "usage": _openai_usage(reply.usage),
        "system_fingerprint": "fp_fake",
    }


def _sse_data(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _openai_events(reply: Reply, body: dict[str, Any]) -> list[str]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model or body.get("model", "fake"),
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        obj = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            obj["usage"] = None
        return _sse_data(obj)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in _pieces(reply.text, reply.chunk_chars)]
    for n, call in enumerate(reply.tool_calls):
        head = {"index": n, "id": _call_id(call, n, OPENAI), "type": "function", "function": {"name": call.name, "arguments": ""}}
        events.append(chunk({"tool_calls": [head]}))
        for piece in _pieces(call.raw_arguments, reply.args_chunk_chars):
            events.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
    events.append(chunk({}, reply.finish_for(OPENAI)))
    if include_usage:
        events.append(_sse_data({**base, "choices": [], "usage": _openai_usage(reply.usage)}))
    events.append("data: [DONE]\n\n")
    return events


# ---------------------------------------------------------------------- Anthropic wire
def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens - usage.cached_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
        "output_tokens": usage.output_tokens,
    }


def _parsed_or_empty(raw: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {}


def _anthropic_message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for n, call in enumerate(reply.tool_calls):
        # A non-streamed tool_use carries a parsed object; malformed JSON cannot be sent.
        content.append({"type": "tool_use", "id": _call_id(call, n, ANTHROPIC), "name": call.name, "input": _parsed_or_empty(call.raw_arguments)})
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": reply.model or body.get("model", "fake"),
        "content": content,
        "stop_reason": reply.finish_for(ANTHROPIC),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply.usage),
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _anthropic_events(reply: Reply, body: dict[str, Any]) -> list[str]:
    start_usage = {**_anthropic_usage(reply.usage), "output_tokens": 1}
    events = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake", "type": "message", "role": "assistant", "content": [],
                    "model": reply.model or body.get("model", "fake"), "stop_reason": None, "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        _event("ping", {"type": "ping"}),
    ]
    index = 0
    if reply.text:
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))
        for piece in _pieces(reply.text, reply.chunk_chars):
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for n, call in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": _call_id(call, n, ANTHROPIC), "name": call.name, "input": {}}
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        for piece in _pieces(call.raw_arguments, reply.args_chunk_chars):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.finish_for(ANTHROPIC), "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output_tokens},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events
