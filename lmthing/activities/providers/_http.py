"""What the HTTP providers (OpenAI, Anthropic, custom OpenAI-compatible) share: turning
HTTP failures into ``ModelCallError`` with a failure class and a fix, ``Retry-After``
parsing, tool-argument parsing, the read timeout and a small cache of SDK clients.

Imports no SDK: each provider passes in what it caught.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import ModelCallError, ModelConfigError

# Seconds the provider may stay silent (before the first byte, or between two streamed
# chunks) before the call counts as timed out and is retried. The activity's own
# start-to-close timeout bounds the whole call.
READ_TIMEOUT_VAR = "LMTHING_MODEL_READ_TIMEOUT"
DEFAULT_READ_TIMEOUT = 300.0
CONNECT_TIMEOUT = 15.0


def read_timeout(env: Mapping[str, str]) -> float:
    raw = env.get(READ_TIMEOUT_VAR, "").strip()
    try:
        return float(raw) if raw else DEFAULT_READ_TIMEOUT
    except ValueError:
        return DEFAULT_READ_TIMEOUT


@dataclass(frozen=True)
class Endpoint:
    """Where a provider's settings come from, for error messages that name the fix."""

    name: str  # provider name in model strings: "openai", "anthropic", "zai"
    key_var: str  # e.g. "OPENAI_API_KEY"
    base_var: str  # e.g. "OPENAI_BASE_URL"
    base_url: str | None  # the base URL in use (None: the SDK's default)

    def where(self) -> str:
        return f" at {self.base_url} ({self.base_var})" if self.base_url else ""

    def sent_to(self) -> str:
        return f" (requests go to {self.base_url}, set by {self.base_var})" if self.base_url else ""


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def error_message(body: Any, fallback: str) -> str:
    """The human message from an error body of either provider."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """``(type, code)`` from an error body of either provider."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            etype, code = inner.get("type"), inner.get("code")
            return (etype if isinstance(etype, str) else None, code if isinstance(code, str) else None)
    return None, None


_RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "server_error", "timeout_error"}


def status_error(
    endpoint: Endpoint,
    model_id: str,
    spec: str,
    status: int,
    body: Any,
    headers: Mapping[str, str] | None,
    fallback: str,
) -> ModelCallError:
    """Classify an HTTP error reply (or an error event inside a stream, ``status`` < 400)."""
    detail = _short(error_message(body, fallback))
    etype, code = error_fields(body)
    name = endpoint.name
    http = f"HTTP {status}" if status >= 400 else "error event in the stream"
    via = f" (from {spec!r})" if spec and spec != f"{name}:{model_id}" else ""

    if status == 429 or etype == "rate_limit_error":
        wait = parse_retry_after(headers)
        after = f"; retrying after {wait:g}s (Retry-After)" if wait is not None else ""
        return ModelCallError(f"{name} rate limit for model {model_id!r} ({http}): {detail}{after}", retryable=True, error_type="RateLimited", retry_after=wait)
    if status == 401:
        return ModelCallError(
            f"{name} rejected the API key ({http}: {detail}). {endpoint.key_var} is missing or invalid: "
            f"set a valid key in {endpoint.key_var} on the worker{endpoint.sent_to()}.",
            retryable=False,
            error_type="AuthenticationError",
        )
    if status == 403:
        return ModelCallError(
            f"{name} refused access to model {model_id!r} ({http}: {detail}). The key in {endpoint.key_var} lacks "
            f"permission: fix {endpoint.key_var} on the worker (project, organization, region) or pick another model.",
            retryable=False,
            error_type="AuthenticationError",
        )
    if status == 404 or code == "model_not_found" or etype == "not_found_error":
        base = f" and the base URL {endpoint.base_url} ({endpoint.base_var})" if endpoint.base_url else ""
        return ModelCallError(
            f"Model {model_id!r} not found at {name}{via} ({http}: {detail}). Check the model id in "
            f"'{name}:{model_id}' (or the LM_MODEL_* alias that names it){base}.",
            retryable=False,
            error_type="ModelNotFound",
        )
    if status in (408,) or etype == "timeout_error":
        return ModelCallError(f"{name} timed out serving model {model_id!r} ({http}): {detail}", retryable=True, error_type="Timeout", retry_after=parse_retry_after(headers))
    if status >= 500 or status == 409 or (status < 400 and (etype in _RETRYABLE_TYPES or etype is None)):
        return ModelCallError(
            f"{name} server error for model {model_id!r} ({http}): {detail}",
            retryable=True,
            error_type="ServerError",
            retry_after=parse_retry_after(headers),
        )
    return ModelCallError(
        f"{name} rejected the request for model {model_id!r}{via} ({http}: {detail}). The request is invalid for this "
        "model or provider: fix the prompt's options, tools or messages.",
        retryable=False,
        error_type="InvalidRequest",
    )


def transport_error(endpoint: Endpoint, model_id: str, err: BaseException, *, timeout: bool, streamed: bool, read_timeout_s: float) -> ModelCallError:
    """A failure below HTTP: timeout, refused/reset connection, a stream cut halfway."""
    cause = err.__cause__ or err
    what = f"{type(cause).__name__}: {_short(str(cause)) or 'no detail'}"
    name = endpoint.name
    if timeout:
        return ModelCallError(
            f"{name} did not answer for {read_timeout_s:g}s while serving model {model_id!r}"
            f"{' (stream stalled)' if streamed else ''} ({what}); {READ_TIMEOUT_VAR} sets this limit.",
            retryable=True,
            error_type="Timeout",
        )
    if streamed:
        return ModelCallError(f"The {name} stream for model {model_id!r} was cut before it finished ({what}).", retryable=True, error_type="StreamInterrupted")
    return ModelCallError(f"Could not reach {name}{endpoint.where()} for model {model_id!r} ({what}).", retryable=True, error_type="ConnectionError")


def incomplete_stream(endpoint: Endpoint, model_id: str, missing: str) -> ModelCallError:
    return ModelCallError(
        f"The {endpoint.name} stream for model {model_id!r} ended before the reply was complete (no {missing}).",
        retryable=True,
        error_type="StreamInterrupted",
    )


def parse_tool_args(raw: str) -> dict[str, Any] | str:
    """Arguments as a dict, or the raw text when the model sent something that is not a
    JSON object (the workflow returns that to the model as a tool error)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, dict) else raw


def args_as_json(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


class ClientCache:
    """SDK clients by (API key, base URL, event loop): connections are reused across calls,
    and env changes (a new key or URL) take effect on the next call."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        full = (*key, id(asyncio.get_running_loop()))
        client = self._clients.get(full)
        if client is not None:
            self._clients.move_to_end(full)
            return client
        client = make()
        self._clients[full] = client
        while len(self._clients) > self.size:
            _, old = self._clients.popitem(last=False)
            _close_later(old)
        return client


def _close_later(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is None:
        return
    try:
        task = asyncio.get_running_loop().create_task(close())
        _background.add(task)
        task.add_done_callback(_background.discard)
    except RuntimeError:
        pass


_background: set[asyncio.Task[Any]] = set()


def env_or_os(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def provider_settings(
    env: Mapping[str, str],
    *,
    name: str,
    model_id: str,
    key_var: str,
    base_var: str,
    base_required: bool,
    key_hint: str = "",
    base_example: str | None = None,
) -> tuple[str, str | None, float]:
    """``(api key, base URL or None, read timeout)`` from the worker's environment, or a
    ModelConfigError naming the variable to set."""
    key = env.get(key_var, "").strip()
    if not key:
        raise ModelConfigError(
            f"{key_var} is not set on the worker: set it to call '{name}:{model_id}'{key_hint}. "
            "Keys are read on the worker and never pass through workflow history."
        )
    base = env.get(base_var, "").strip() or None
    if base_required and not base:
        example = f" (e.g. {base_var}={base_example})" if base_example else ""
        raise ModelConfigError(f"{base_var} is not set on the worker: the custom provider {name!r} needs its base URL{example}.")
    return key, base, read_timeout(env)
