"""What the prompt API's modules share: its errors, the prepared step, and the checks of
names and values that every ``def_*`` makes (split from ``stateful_prompt.py``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from lmthing.resilience.breaker import BreakerConfig

from .agents import AgentDef, CompositeAgentDef
from .humans import ApprovalPolicy
from .tools import CompositeToolDef, ToolDef, check_schema
from .types import Message, ToolDefinition


Body = Callable[["StatefulPrompt"], Any | Awaitable[Any]]
# Runs a sub-agent as a child workflow: (agent, validated args, key, composite name) -> outcome.
AgentRunner = Callable[[AgentDef, Any, str, "str | None"], Awaitable[dict[str, Any]]]
# Runs one tool as the engine does for the model: (tool, raw args, call id, step, key) -> (result, is_error).
ToolRunnerHook = Callable[[ToolDef, Any, str, int, str], Awaitable[tuple[Any, bool]]]
# Runs another prompt (a workflow type, by name) as a child workflow: (name, args, key) -> outcome.
PromptRunner = Callable[[str, Any, str], Awaitable[dict[str, Any]]]
Callable_ = ToolDef | CompositeToolDef | AgentDef | CompositeAgentDef

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")



class PromptError(Exception):
    """A prompt function used the API wrongly; the message says how to fix it."""


class ScanStop(BaseException):  # noqa: N818 - a signal, not an error
    """Ends a *scan* of a prompt function: a sub-agent's child workflow re-runs its parent's
    function only to find the agent's definition, and must not start what the parent's run
    starts (sub-agents, tools, orchestrations). Definitions made before the call are kept;
    a BaseException, so that a prompt's ``except Exception`` does not swallow it."""


@dataclass
class PreparedStep:
    """One model call, ready to send, plus what is needed to run the tools it may request."""

    system: str | None
    messages: list[Message]
    tools: list[ToolDefinition]
    callables: dict[str, Callable_]
    state_snapshot: dict[str, Any] = field(default_factory=dict)
    approvals: dict[str, ApprovalPolicy] = field(default_factory=dict)
    # Every tool and agent the prompt defines at this step, in definition order, whether or
    # not it is offered at this call (disabled, filtered): lmthing's "Available tools" list.
    defined: list[str] = field(default_factory=list)
    # The def_circuit_breaker configs, by name (docs/circuit-breakers.md).
    breakers: dict[str, BreakerConfig] = field(default_factory=dict)


@dataclass
class _Variable:
    value: Any
    is_data: bool


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise PromptError(f"{kind}: the name must be a non-empty string, got {name!r}")


# The classes whose methods are the prompt object's (``p.<method>`` in messages).
PROMPT_CLASSES = frozenset({"StatefulPrompt", "EventsAndMetrics", "PeopleAndCalls", "StepDriver"})


def _not_awaited(api: str, value: Any) -> None:
    """A coroutine where a value belongs is an ``await`` left out (``p.ask_human(...)``)."""
    if inspect.iscoroutine(value):
        name = getattr(value, "__qualname__", "a coroutine")
        value.close()  # it will never run: no "never awaited" warning on top of this error
        # A method of the prompt object (defined on StatefulPrompt or one of its mixins).
        owner, _, method = name.partition(".")
        call = f"p.{method}" if method and owner in PROMPT_CLASSES else name
        raise PromptError(f"{api} got the coroutine {call}(...), not its result: add `await` (`await {call}(...)`)")


def _non_json(value: Any) -> str | None:
    """The first value in ``value`` that JSON would silently turn into something else (a set
    or a tuple becomes a list, bytes become text), by its type name."""
    if isinstance(value, (set, frozenset, tuple, bytes, bytearray)):
        return type(value).__name__
    if isinstance(value, dict):
        return next((found for v in value.values() if (found := _non_json(v))), None)
    if isinstance(value, list):
        return next((found for v in value if (found := _non_json(v))), None)
    return None


def _jsonable(key: str, value: Any) -> None:
    _not_awaited(f"def_state({key!r})", value)
    kind = _non_json(value)
    if kind is not None:
        fix = "a list (e.g. sorted(...))" if kind in ("set", "frozenset") else "a list" if kind == "tuple" else "a str"
        raise PromptError(
            f"def_state({key!r}): the value holds a {kind}, which JSON (how state lives in workflow history) would "
            f"store as something else; use {fix} instead"
        )
    try:
        to_jsonable_python(value)
    except PydanticSerializationError as err:
        raise PromptError(
            f"def_state({key!r}): the value {value!r} cannot be stored: state lives in workflow "
            f"history and must be JSON-compatible (dicts, lists, str, numbers, bools, None, "
            f"pydantic models). {err}"
        ) from None


def _check_definition(api: str, description: Any, schema: Any) -> None:
    if description is not None and not isinstance(description, str):
        raise PromptError(f"{api}: the description is text the model reads, got {type(description).__name__} {_short(description)}")
    try:
        check_schema(api, schema)
    except TypeError as err:
        raise PromptError(str(err)) from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PersistedStateNeeded(Exception):
    """Raised by ``def_state(..., persist=True)`` the first time a run declares the key: the
    engine loads the saved value and runs the prompt function again (docs/memory.md)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"def_state({key!r}, persist=True) is loaded before the function goes on; a prompt "
                         "function must let this exception through (do not catch every Exception around def_state)")
        self.key = key


# Where a persisted def_state value is shared (the scopes of docs/memory.md).
PERSIST_SCOPES = ("run", "session", "agent", "global")


