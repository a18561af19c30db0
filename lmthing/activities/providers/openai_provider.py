"""``openai:<model>`` and custom OpenAI-compatible providers, through the official
``openai`` SDK (chat completions, always streamed).

Settings are read from the worker's environment on every call (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``; ``{P}_API_KEY`` / ``{P}_API_BASE`` for a custom provider), so keys
never enter workflow history. The SDK's own retries are off (``max_retries=0``): the model
activity's Temporal retry policy retries, with the ``Retry-After`` this provider reports.
The SDK is imported on first use, so importing lmthing stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmthing.prompt.types import Message, ModelRequest, ModelResponse, ToolCall, Usage
from lmthing.resilience.moderation import ModerationScores

from . import prices
from ._http import (
    CONNECT_TIMEOUT,
    ClientCache,
    Endpoint,
    args_as_json,
    env_or_os,
    incomplete_stream,
    parse_tool_args,
    provider_settings,
    status_error,
    transport_error,
)
from .base import ModelCallError, StreamSink

_clients = ClientCache()


def transport_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout errors, other transport errors) of the HTTP library the SDKs use."""
    timeouts: list[type[BaseException]] = []
    others: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        others.append(module.TransportError)
    try:
        import anyio

        others.append(anyio.EndOfStream)
    except ImportError:  # pragma: no cover
        pass
    return tuple(timeouts), tuple(others)


class OpenAIProvider:
    """Chat completions over the ``openai`` SDK.

    ``name`` is the provider name in model strings; ``key_var`` / ``base_var`` name the
    environment variables holding the key and the base URL. ``compatible=True`` marks a
    custom OpenAI-compatible server: it gets ``max_tokens`` (widely supported) instead of
    OpenAI's ``max_completion_tokens``, and needs ``base_var`` set."""

    def __init__(
        self,
        name: str = "openai",
        key_var: str = "OPENAI_API_KEY",
        base_var: str = "OPENAI_BASE_URL",
        *,
        compatible: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.key_var = key_var
        self.base_var = base_var
        self.compatible = compatible
        self._env = env

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.name!r}, key_var={self.key_var!r}, base_var={self.base_var!r})"

    # ------------------------------------------------------------------ settings
    def _settings(self, model_id: str) -> tuple[str, str | None, float]:
        return provider_settings(
            env_or_os(self._env),
            name=self.name,
            model_id=model_id,
            key_var=self.key_var,
            base_var=self.base_var,
            base_required=self.compatible,
            key_hint=" (any non-empty value if the server needs no key)" if self.compatible else "",
            base_example="http://localhost:11434/v1",
        )

    def _client(self, key: str, base: str | None) -> Any:
        def make() -> Any:
            import openai

            return openai.AsyncOpenAI(api_key=key, base_url=base, max_retries=0)

        return _clients.get(("openai", key, base), make)

    # ------------------------------------------------------------------ request
    def build_params(self, model_id: str, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for this request."""
        params: dict[str, Any] = {
            "model": model_id,
            "messages": to_openai_messages(request.system, request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            params["tools"] = [
                {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools
            ]
        o = request.options
        if o.tool_choice and request.tools:
            params["tool_choice"] = (
                o.tool_choice
                if o.tool_choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": o.tool_choice}}
            )
        if o.max_output_tokens is not None:
            params["max_tokens" if self.compatible else "max_completion_tokens"] = o.max_output_tokens
        for ours, theirs in (
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
            ("seed", "seed"),
            ("stop_sequences", "stop"),
        ):
            value = getattr(o, ours)
            if value is not None:
                params[theirs] = value
        if o.top_k is not None and self.compatible:
            # Not an OpenAI parameter; many compatible servers (vLLM, Ollama...) accept it.
            params["extra_body"] = {"top_k": o.top_k}
        if o.headers:
            params["extra_headers"] = dict(o.headers)
        if o.response_format:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": o.response_format["name"], "schema": o.response_format["schema"]},
            }
        return params

    # ------------------------------------------------------------------ call
    async def complete(self, model_id: str, request: ModelRequest, sink: StreamSink) -> ModelResponse:
        import openai

        key, base, timeout_s = self._settings(model_id)
        endpoint = Endpoint(self.name, self.key_var, self.base_var, base)
        client = self._client(key, base)
        params = _untransformed(self.build_params(model_id, request))
        timeouts, transport = transport_exceptions()

        text_parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: Usage | None = None
        served = model_id
        streamed = False
        try:
            import httpx2 as _httpx
        except ImportError:  # an SDK built on httpx
            import httpx as _httpx  # type: ignore[no-redef]
        try:
            stream = await client.chat.completions.create(
                **params, timeout=_httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT)
            )
            async with stream:
                async for chunk in stream:
                    streamed = True
                    if chunk.model:
                        served = chunk.model
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices or []:
                        if choice.index not in (0, None):
                            continue
                        delta = choice.delta
                        if delta is not None and delta.content:
                            text_parts.append(delta.content)
                            sink.text(delta.content)
                        for n, tc in enumerate((delta.tool_calls if delta is not None else None) or []):
                            index = tc.index if tc.index is not None else n
                            slot = calls.setdefault(index, {"id": None, "name": "", "args": []})
                            if tc.id:
                                slot["id"] = tc.id
                            if tc.function is not None:
                                if tc.function.name:
                                    slot["name"] += tc.function.name
                                if tc.function.arguments:
                                    slot["args"].append(tc.function.arguments)
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except openai.APIStatusError as err:
            raise status_error(endpoint, model_id, request.model, err.status_code, _body(err), err.response.headers, err.message) from None
        except openai.APITimeoutError as err:
            raise transport_error(endpoint, model_id, err, timeout=True, streamed=streamed, read_timeout_s=timeout_s) from None
        except openai.APIConnectionError as err:
            raise transport_error(endpoint, model_id, err, timeout=False, streamed=streamed, read_timeout_s=timeout_s) from None
        except openai.APIError as err:
            # An error object sent inside the stream.
            raise status_error(endpoint, model_id, request.model, 200, err.body, None, err.message) from None
        except timeouts as err:
            raise transport_error(endpoint, model_id, err, timeout=True, streamed=streamed, read_timeout_s=timeout_s) from None
        except transport as err:
            raise transport_error(endpoint, model_id, err, timeout=False, streamed=streamed, read_timeout_s=timeout_s) from None

        if finish is None:
            raise incomplete_stream(endpoint, model_id, "finish_reason")
        tool_calls = [
            ToolCall(
                id=slot["id"] or f"call_{request.step}_{n}",
                name=slot["name"],
                args=parse_tool_args("".join(slot["args"])),
            )
            for n, (_, slot) in enumerate(sorted(calls.items()))
        ]
        usage = usage or Usage()
        return ModelResponse(
            text="".join(text_parts),
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=usage,
            model=f"{self.name}:{served}",
            cost_usd=prices.estimate_cost(self.name, model_id, usage, served),
        )

    async def _one_request(self, model_id: str, send: Any) -> Any:
        """``send(client, timeout_s)``, one non-streamed request, with the SDK's errors turned
        into ours (classified like a chat call's: a bad key fails fast, a 5xx is retried)."""
        import openai

        key, base, timeout_s = self._settings(model_id)
        endpoint = Endpoint(self.name, self.key_var, self.base_var, base)
        timeouts, transport = transport_exceptions()
        try:
            return await send(self._client(key, base), timeout_s)
        except openai.APIStatusError as err:
            raise status_error(endpoint, model_id, f"{self.name}:{model_id}", err.status_code, _body(err),
                               err.response.headers, err.message) from None
        except (openai.APITimeoutError, *timeouts) as err:
            raise transport_error(endpoint, model_id, err, timeout=True, streamed=False, read_timeout_s=timeout_s) from None
        except (openai.APIConnectionError, *transport) as err:
            raise transport_error(endpoint, model_id, err, timeout=False, streamed=False, read_timeout_s=timeout_s) from None

    async def moderate(self, model_id: str, texts: list[str]) -> list[ModerationScores]:
        """``moderations.create`` for ``texts`` (one request): each text's flag, the
        categories it was flagged for, and every category's score."""
        reply = await self._one_request(model_id, lambda client, timeout_s: client.moderations.create(
            model=model_id, input=texts, timeout=timeout_s))
        if len(reply.results) != len(texts):
            raise ModelCallError(f"{self.name} moderation model {model_id!r} answered {len(reply.results)} results for "
                                 f"{len(texts)} texts", retryable=True, error_type="ServerError")
        out = []
        for result in reply.results:
            flags = result.categories.model_dump(by_alias=True)
            scores = result.category_scores.model_dump(by_alias=True)
            out.append(ModerationScores(
                flagged=bool(result.flagged),
                categories=[name for name, hit in flags.items() if hit],
                scores={name: float(score) for name, score in scores.items() if isinstance(score, (int, float))},
            ))
        return out

    async def embed(self, model_id: str, texts: list[str], dimensions: int | None = None) -> list[list[float]]:
        """``embeddings.create`` for ``texts`` (one request): a vector per text, in order.
        ``dimensions`` asks a text-embedding-3 model for shorter vectors."""
        extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}
        reply = await self._one_request(model_id, lambda client, timeout_s: client.embeddings.create(
            model=model_id, input=texts, timeout=timeout_s, encoding_format="float", **extra))
        vectors = [list(d.embedding) for d in sorted(reply.data, key=lambda d: d.index)]
        if len(vectors) != len(texts):
            raise ModelCallError(f"{self.name} embedding model {model_id!r} answered {len(vectors)} vectors for "
                                 f"{len(texts)} texts", retryable=True, error_type="ServerError")
        return vectors


def _body(err: Any) -> Any:
    body = getattr(err, "body", None)
    # The SDK keeps only the inner "error" object; rewrap it so both shapes read alike.
    return {"error": body} if isinstance(body, dict) and "error" not in body else body


def _usage(raw: Any) -> Usage:
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(input_tokens=raw.prompt_tokens or 0, output_tokens=raw.completion_tokens or 0, cached_tokens=cached)


def to_openai_messages(system: str | None, messages: list[Message]) -> list[dict[str, Any]]:
    """Our provider-neutral messages as chat-completions messages."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        if m.role == "system":
            out.append({"role": "system", "content": m.content or ""})
        elif m.role == "user":
            out.append({"role": "user", "content": m.content or ""})
        elif m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.tool_calls:
                msg["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args_as_json(c.args)}}
                    for c in m.tool_calls
                ]
            elif m.content is None:
                msg["content"] = ""
            out.append(msg)
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content or ""})
    return out


def _untransformed(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the conversation and the tools sent through ``extra_body``.

    Before sending, the SDK walks every request parameter against its TypedDicts (for
    aliases, dates and files): with a conversation of a few dozen messages that walk was
    ~15% of a model call's CPU in a profile (bench/README.md), and for our plain JSON dicts it
    changes nothing. ``extra_body`` is merged into the JSON body as it is, taking precedence,
    so the request on the wire is the same."""
    params = dict(params)
    extra = dict(params.pop("extra_body", None) or {})
    for key in ("messages", "tools"):
        if key in params:
            extra[key] = params.pop(key)
    params["messages"] = []  # required by the signature; extra_body's replaces it
    params["extra_body"] = extra
    return params
