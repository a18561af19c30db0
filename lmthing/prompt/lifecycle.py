"""Lifecycle events (``def_event`` / ``emit``): user handlers that run at fixed points of a
run, inside the workflow.

Handlers run in workflow code, at the same point of the loop on every execution and on
replay, so they must be deterministic like the prompt function itself. What they may do
with side effects outside the run is what is replay-safe: ``record_metric`` and the
prompt's loggers (both skip replay), ``def_state`` setters, asking a person.

The events and when they fire:

=====================  ==============================================================
``before_model_call``  the step's request is ready, before the model-call activity
``after_model_call``   the model answered (``response`` set)
``before_tool``        a tool or sub-agent call was asked for (by the model, or by
                       ``p.call_tool`` / ``p.call_agent``), before its arguments are
                       validated, approved and run
``after_tool``         that call ended (``result``, ``is_error``): every ``before_tool``
                       has its ``after_tool``, even for invalid arguments or a denial
``on_step``            a step ended: the model answered and its tool calls finished
``on_error``           a tool call ended in an error (``where="tool"``), or the run is
                       failing (``where="run"``, just before it fails)
``on_finish``          the run finished (``result``), before it returns; state its
                       handlers set is in the run's result
=====================  ==============================================================

lmthing's TypeScript names are accepted too (``onToolStart``, ``onToolEnd``, ``onStep``,
``onStepFinish``, ``onError``, ``onFinish``). Any other name is a custom event, fired by
``await p.emit(name, data)``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .types import ModelRequest, ModelResponse, RunResult, StepRecord

LIFECYCLE_EVENTS = (
    "before_model_call",
    "after_model_call",
    "before_tool",
    "after_tool",
    "on_step",
    "on_error",
    "on_finish",
)
TS_NAMES = {
    "onToolStart": "before_tool",
    "onToolEnd": "after_tool",
    "onToolFinish": "after_tool",
    "onStep": "on_step",
    "onStepFinish": "on_step",
    "onError": "on_error",
    "onFinish": "on_finish",
}
# Every name the run itself fires (``emit`` refuses them).
LIFECYCLE_NAMES = frozenset(LIFECYCLE_EVENTS) | frozenset(TS_NAMES)
# Names shaped like lifecycle events but not one of them are almost always typos.
_LOOKS_LIFECYCLE = re.compile(r"^(on|before|after)_")

Handler = Callable[[Any], Any | Awaitable[Any]]


class LifecycleEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    step: int


class ModelCallEvent(LifecycleEvent):
    """``before_model_call`` / ``after_model_call``: the request, and the response after."""

    request: ModelRequest
    response: ModelResponse | None = None


class ToolEvent(LifecycleEvent):
    """``before_tool`` / ``after_tool``: one tool call (each sub-tool of a composite) or one
    sub-agent call (``kind="agent"``, ``result`` is ``{"response": ...}`` or ``{"error": ...}``).
    ``args`` are the arguments as asked for, before validation."""

    tool: str
    call_id: str
    kind: Literal["tool", "agent"] = "tool"
    args: Any = None
    result: Any = None
    is_error: bool = False


class StepEvent(LifecycleEvent):
    """``on_step``: what the model received and returned, and what the tools did."""

    record: StepRecord


class ErrorEvent(LifecycleEvent):
    """``on_error``: a tool call's error (``where="tool"``) or the run's failure."""

    where: Literal["tool", "run"]
    error: str
    error_type: str
    tool: str | None = None


class FinishEvent(LifecycleEvent):
    """``on_finish``: the run's result."""

    result: RunResult


class CustomEvent(LifecycleEvent):
    """An event fired with ``p.emit(name, data)``."""

    data: Any = None


class EventError(Exception):
    """An event handler raised; the run fails with this message. ``where`` names the handler
    and the event; the handler's own exception is the ``__cause__`` (the engine reports a
    determinism violation as such)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def event_name(name: str) -> str:
    """The canonical name: lifecycle names as they are, TypeScript aliases mapped, custom
    names kept; a lifecycle-looking name that is none of them is refused."""
    if not isinstance(name, str) or not name:
        raise ValueError("def_event: the event name must be a non-empty string")
    if name in LIFECYCLE_EVENTS:
        return name
    if name in TS_NAMES:
        return TS_NAMES[name]
    if _LOOKS_LIFECYCLE.match(name):
        raise ValueError(
            f"def_event: unknown lifecycle event {name!r}. Lifecycle events: {', '.join(LIFECYCLE_EVENTS)}. "
            "A custom event needs a name that does not start with on_, before_ or after_."
        )
    return name


class EventHandlers:
    """The handlers the current run of the prompt function declared (re-declared each run,
    like effects), and firing them in declaration order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def clear(self) -> None:
        self._handlers = {}

    def add(self, name: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"def_event({name!r}, handler): the handler must be callable, got {type(handler).__name__}")
        self._handlers.setdefault(event_name(name), []).append(handler)

    def has(self, name: str) -> bool:
        return bool(self._handlers.get(name))

    async def fire(self, event: LifecycleEvent) -> None:
        for handler in list(self._handlers.get(event.name, ())):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except EventError:
                raise  # a nested emit's handler already named itself
            except Exception as err:
                where = f"Handler {_handler_name(handler)} of event {event.name!r}"
                raise EventError(where, f"{where} raised {type(err).__name__}: {err}") from err


def _handler_name(handler: Handler) -> str:
    return repr(getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None) or handler)


__all__ = [
    "CustomEvent",
    "ErrorEvent",
    "EventError",
    "EventHandlers",
    "FinishEvent",
    "LIFECYCLE_EVENTS",
    "LIFECYCLE_NAMES",
    "LifecycleEvent",
    "ModelCallEvent",
    "StepEvent",
    "ToolEvent",
    "event_name",
]
