"""``anthropic:<model>`` through the official ``anthropic`` SDK (messages API, streamed).

Settings come from the worker's environment on every call (``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``). The SDK's retries are off (``max_retries=0``); the model
activity's retry policy retries. The SDK is imported on first use.

Mapping of our provider-neutral conversation: the system prompt (and any system message)
goes in ``system``; assistant tool calls become ``tool_use`` blocks; tool results become
``tool_result`` blocks in a user turn; consecutive turns of one role are merged, because
the API wants user and assistant turns to alternate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lmthing.prompt.types import Message, ModelRequest, ModelResponse, ToolCall, Usage

from . import prices
from ._http import (
    CONNECT_TIMEOUT,
    ClientCache,
    Endpoint,
    env_or_os,
    incomplete_stream,
    parse_tool_args,
    provider_settings,
    status_error,
    transport_error,
)
from .base import StreamSink
from .openai_provider import transport_exceptions

# The messages API requires max_tokens; this is used when the prompt sets none.
DEFAULT_MAX_TOKENS = 4096

_clients = ClientCache()

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}


class AnthropicProvider:
    """Messages over the ``anthropic`` SDK; ``name``/``key_var``/``base_var`` as for
    :class:`OpenAIProvider` (a custom ``{P}_API_TYPE=anthropic`` provider uses them)."""

    def __init__(
        self,
        name: str = "anthropic",
        key_var: str = "ANTHROPIC_API_KEY",
        base_var: str = "ANTHROPIC_BASE_URL",
        *,
        env: Mapping[str, str] | None = None,
        base_required: bool = False,
    ) -> None:
        self.name = name
        self.key_var = key_var
        self.base_var = base_var
        self.base_required = base_required
        self._env = env

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.name!r}, key_var={self.key_var!r}, base_var={self.base_var!r})"

    def _settings(self, model_id: str) -> tuple[str, str | None, float]:
        return provider_settings(
            env_or_os(self._env),
            name=self.name,
            model_id=model_id,
            key_var=self.key_var,
            base_var=self.base_var,
            base_required=self.base_required,
        )

    def _client(self, key: str, base: str | None) -> Any:
        def make() -> Any:
            import anthropic

            return anthropic.AsyncAnthropic(api_key=key, base_url=base, max_retries=0)

        return _clients.get(("anthropic", key, base), make)

    def build_params(self, model_id: str, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for this request."""
        system, messages = to_anthropic_messages(request.system, request.messages)
        o = request.options
        params: dict[str, Any] = {
            "model": model_id,
            "max_tokens": o.max_output_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages,
            "stream": True,
        }
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": _object_schema(t.parameters)}
                for t in request.tools
            ]
            if o.tool_choice:
                params["tool_choice"] = {
                    "auto": {"type": "auto"},
                    "required": {"type": "any"},
                    "any": {"type": "any"},
                    "none": {"type": "none"},
                }.get(o.tool_choice, {"type": "tool", "name": o.tool_choice})
        if o.stop_sequences:
            params["stop_sequences"] = list(o.stop_sequences)
        # Sampling options are sent as body fields (this SDK version has no keyword for them).
        sampling = {k: v for k, v in (("temperature", o.temperature), ("top_p", o.top_p), ("top_k", o.top_k)) if v is not None}
        if sampling:
            params["extra_body"] = sampling
        if o.headers:
            params["extra_headers"] = dict(o.headers)
        # seed, presence_penalty and frequency_penalty have no Anthropic equivalent: not sent.
        return params

    async def complete(self, model_id: str, request: ModelRequest, sink: StreamSink) -> ModelResponse:
        import anthropic

        key, base, timeout_s = self._settings(model_id)
        endpoint = Endpoint(self.name, self.key_var, self.base_var, base)
        client = self._client(key, base)
        params = self.build_params(model_id, request)
        timeouts, transport = transport_exceptions()
        try:
            import httpx2 as _httpx
        except ImportError:  # an SDK built on httpx
            import httpx as _httpx  # type: ignore[no-redef]

        text_parts: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        stop_reason: str | None = None
        finished = False
        served = model_id
        input_tokens = cache_read = cache_write = output_tokens = 0
        streamed = False
        try:
            stream = await client.messages.create(**params, timeout=_httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT))
            async with stream:
                async for event in stream:
                    streamed = True
                    kind = event.type
                    if kind == "message_start":
                        msg = event.message
                        served = msg.model or served
                        u = msg.usage
                        input_tokens = u.input_tokens or 0
                        cache_read = u.cache_read_input_tokens or 0
                        cache_write = u.cache_creation_input_tokens or 0
                        output_tokens = u.output_tokens or 0
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "text":
                            blocks[event.index] = {"type": "text"}
                            if block.text:
                                text_parts.append(block.text)
                                sink.text(block.text)
                        elif block.type == "tool_use":
                            initial = block.input if isinstance(block.input, dict) and block.input else None
                            blocks[event.index] = {"type": "tool_use", "id": block.id, "name": block.name, "parts": [], "input": initial}
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            text_parts.append(delta.text)
                            sink.text(delta.text)
                        elif delta.type == "input_json_delta":
                            slot = blocks.get(event.index)
                            if slot is not None and slot["type"] == "tool_use":
                                slot["parts"].append(delta.partial_json)
                    elif kind == "message_delta":
                        if event.delta.stop_reason:
                            stop_reason = event.delta.stop_reason
                        u = event.usage
                        output_tokens = u.output_tokens or output_tokens
                        if u.input_tokens is not None:
                            input_tokens = u.input_tokens
                        if u.cache_read_input_tokens is not None:
                            cache_read = u.cache_read_input_tokens
                        if u.cache_creation_input_tokens is not None:
                            cache_write = u.cache_creation_input_tokens
                    elif kind == "message_stop":
                        finished = True
        except anthropic.APIStatusError as err:
            raise status_error(endpoint, model_id, request.model, err.status_code, err.body, err.response.headers, err.message) from None
        except anthropic.APITimeoutError as err:
            raise transport_error(endpoint, model_id, err, timeout=True, streamed=streamed, read_timeout_s=timeout_s) from None
        except anthropic.APIConnectionError as err:
            raise transport_error(endpoint, model_id, err, timeout=False, streamed=streamed, read_timeout_s=timeout_s) from None
        except timeouts as err:
            raise transport_error(endpoint, model_id, err, timeout=True, streamed=streamed, read_timeout_s=timeout_s) from None
        except transport as err:
            raise transport_error(endpoint, model_id, err, timeout=False, streamed=streamed, read_timeout_s=timeout_s) from None

        if not finished:
            raise incomplete_stream(endpoint, model_id, "message_stop")
        tool_calls = []
        for n, (_, slot) in enumerate(sorted(blocks.items())):
            if slot["type"] != "tool_use":
                continue
            raw = "".join(slot["parts"])
            args = parse_tool_args(raw) if raw or slot["input"] is None else slot["input"]
            tool_calls.append(ToolCall(id=slot["id"] or f"call_{request.step}_{n}", name=slot["name"], args=args))
        # Our input_tokens counts the whole prompt; Anthropic reports cache reads and writes apart.
        usage = Usage(input_tokens=input_tokens + cache_read + cache_write, output_tokens=output_tokens, cached_tokens=cache_read)
        return ModelResponse(
            text="".join(text_parts),
            tool_calls=tool_calls,
            finish_reason=_FINISH.get(stop_reason or "", stop_reason or "stop"),
            usage=usage,
            model=f"{self.name}:{served}",
            cost_usd=prices.estimate_cost(self.name, model_id, usage, served),
        )


def _object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return schema if schema.get("type") == "object" else {"type": "object", **schema}


def _tool_input(args: dict[str, Any] | str) -> dict[str, Any]:
    """A tool_use ``input`` must be an object; malformed arguments the model once sent are
    kept visible under ``invalid_json`` (the tool result already told the model why)."""
    if isinstance(args, dict):
        return args
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return {"invalid_json": args}
    return value if isinstance(value, dict) else {"invalid_json": args}


def to_anthropic_messages(system: str | None, messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for the messages API, turns merged so roles alternate."""
    systems = [system] if system else []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": list(blocks)})

    for m in messages:
        if m.role == "system":
            if m.content:
                systems.append(m.content)
        elif m.role == "user":
            add("user", [{"type": "text", "text": m.content}] if m.content else [])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            for c in m.tool_calls or []:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input(c.args)})
            add("assistant", blocks)
        elif m.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content or ""}])
    # A user turn's tool results must come before its text.
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: 0 if b["type"] == "tool_result" else 1)
    return ("\n\n".join(systems) or None), out
