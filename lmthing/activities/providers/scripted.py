"""The scripted model: a list of text / tool-call items played back in order.

The item for a call is chosen from the model step number of the run (carried in the
request), never from a cursor in the worker, so retries, replays and several workers all
give the same answer for the same step.

Items are grouped into steps: a text item and the tool calls right after it form one step;
a text item not followed by a tool call is a step of its own. A list item is one explicit
step. A callable item receives the ``ModelRequest`` and returns items for that step.

Sub-agents inherit their parent's model, so a script can carry one script per agent
(``agents={"researcher": [...]}``), chosen by the agent path of the request.

A def_context summary call (``request.summarize``) is no step of the script: the model
answers it itself with an extractive summary, so scripts need not plan for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from lmthing.memory.context import extractive_summary
from lmthing.prompt.types import ModelRequest, ModelResponse, ToolCall, Usage

from .base import ModelConfigError, StreamSink


class ScriptText(BaseModel):
    text: str
    # Seconds to wait before each streamed chunk: a slow model, for streaming tests.
    delay: float = 0.0


class ScriptToolCall(BaseModel):
    name: str
    args: dict[str, Any] | str = {}
    id: str | None = None


ScriptItem = ScriptText | ScriptToolCall | list[Any] | Callable[[ModelRequest], Any]

_SCRIPTS: dict[str, list[list[Any]]] = {}
_AGENT_SCRIPTS: dict[str, dict[str, list[list[Any]]]] = {}
_REPEATING: set[str] = set()


def _group(items: Sequence[Any]) -> list[list[Any]]:
    steps: list[list[Any]] = []
    current: list[Any] = []
    for item in items:
        if isinstance(item, list) or callable(item) and not isinstance(item, BaseModel):
            if current:
                steps.append(current)
                current = []
            steps.append(item if isinstance(item, list) else [item])
        elif isinstance(item, ScriptToolCall):
            current.append(item)
        elif isinstance(item, ScriptText):
            if current:
                steps.append(current)
            current = [item]
        else:
            raise TypeError(f"Scripted model: unsupported item {item!r}; use text(...), tool_call(...) or a list")
    if current:
        steps.append(current)
    return steps


def register_script(name: str, items: Sequence[Any], agents: dict[str, Sequence[Any]] | None = None,
                    repeat: bool = False) -> str:
    """Register a script on this worker process; returns the model string ``scripted:<name>``.

    ``agents`` maps a sub-agent name (or full path "parent/child") to its own script.
    ``repeat``: the steps start over after the last one (a long-lived agent's steps go on
    for as long as it lives; a single callable item then answers every step)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"scripted_model: the name must be a non-empty string, got {name!r}")
    for label, script in ((name, items), *((f"{name!r}, agent {a!r}", s) for a, s in (agents or {}).items())):
        # An empty list is allowed: every call then fails, which is how tests play a broken agent.
        if isinstance(script, (str, bytes)) or not isinstance(script, (list, tuple)):
            raise TypeError(
                f"scripted_model({label}): a script is a list of replies (text(...), tool_call(...), "
                f"or a callable(request) that returns them); got {script!r}"
            )
    _SCRIPTS[name] = _group(items)
    if repeat:
        _REPEATING.add(name)
    else:
        _REPEATING.discard(name)
    _AGENT_SCRIPTS[name] = {agent: _group(agent_items) for agent, agent_items in (agents or {}).items()}
    return f"scripted:{name}"


def _script_for(name: str, agent: str | None) -> tuple[list[list[Any]] | None, str]:
    if agent:
        per_agent = _AGENT_SCRIPTS.get(name, {})
        for key in (agent, agent.rsplit("/", 1)[-1]):
            if key in per_agent:
                return per_agent[key], f"{name!r} (agent {key!r})"
    return _SCRIPTS.get(name), repr(name)


def _chunks(text: str) -> list[str]:
    """Text as a streaming model sends it: word by word, spaces kept."""
    out: list[str] = []
    for word in text.split(" "):
        out.append(word if not out else " " + word)
    return [c for c in out if c]


def _estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _summary(model_id: str, request: ModelRequest) -> ModelResponse:
    """A def_context summary call (docs/context.md) is not a step of the script: the scripted
    model answers it itself, with the first words of each line of the transcript."""
    asked = "".join(m.content or "" for m in request.messages)
    summary = extractive_summary(asked, request.options.max_output_tokens)
    return ModelResponse(text=summary, usage=Usage(input_tokens=_estimate_tokens((request.system or "") + asked),
                                                  output_tokens=_estimate_tokens(summary)),
                         model=f"scripted:{model_id}", cost_usd=0.0)


class ScriptedProvider:
    """Plays back registered scripts; ``model_id`` is the script name."""

    async def complete(self, model_id: str, request: ModelRequest, sink: StreamSink) -> ModelResponse:
        if request.summarize is not None:
            return _summary(model_id, request)
        steps, label = _script_for(model_id, request.agent)
        if steps is None:
            known = ", ".join(sorted(_SCRIPTS)) or "(none)"
            raise ModelConfigError(
                f"No scripted model named {model_id!r} on this worker (registered: {known}). "
                "Register it with lmthing.testing.scripted_model(name, items) in a module the worker imports."
            )
        step = request.step % len(steps) if model_id in _REPEATING and steps else request.step
        if step >= len(steps):
            raise ModelConfigError(
                f"Scripted model {label} has {len(steps)} step(s); the run asked for step {request.step} "
                f"(steps count from 0, so its model call number {request.step + 1}). "
                "Add items to the script or lower max_steps."
            )
        items: list[Any] = []
        for item in steps[step]:
            if callable(item) and not isinstance(item, BaseModel):
                produced = item(request)
                items.extend(produced if isinstance(produced, list) else [produced])
            else:
                items.append(item)
        texts = [i for i in items if isinstance(i, ScriptText)]
        for item in texts:
            for word in _chunks(item.text):
                if item.delay:
                    await asyncio.sleep(item.delay)
                sink.text(word)
        text = "".join(i.text for i in texts)
        calls = [
            ToolCall(id=i.id or f"call_{request.step}_{n}", name=i.name, args=i.args)
            for n, i in enumerate(c for c in items if isinstance(c, ScriptToolCall))
        ]
        sent = (request.system or "") + "".join(m.content or "" for m in request.messages)
        out = text + "".join(json.dumps(c.args) for c in calls)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=Usage(input_tokens=_estimate_tokens(sent), output_tokens=_estimate_tokens(out)),
            model=f"scripted:{model_id}",
            cost_usd=0.0,  # a script costs nothing
        )
