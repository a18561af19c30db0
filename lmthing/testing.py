"""Public test doubles: the scripted model (lmthing's mock model) and its items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmthing.activities.providers.scripted import ScriptText, ScriptToolCall, register_script


def text(content: str, delay: float = 0.0) -> ScriptText:
    """A text item: the model says ``content``, streamed word by word (``delay`` seconds
    before each word, to play a slow model)."""
    if not isinstance(content, str):
        raise TypeError(f"text(): the model's reply is a str, got {type(content).__name__} {content!r}")
    return ScriptText(text=content, delay=delay)


def tool_call(name: str, args: dict[str, Any] | str | None = None, id: str | None = None) -> ScriptToolCall:
    """A tool-call item (``args`` as a string is sent raw, e.g. to test malformed JSON)."""
    return ScriptToolCall(name=name, args={} if args is None else args, id=id)


def scripted_model(name: str, items: Sequence[Any], agents: dict[str, Sequence[Any]] | None = None,
                   repeat: bool = False) -> str:
    """Register a script on this process's workers and return its model string.

    Sub-agents inherit the parent's model; ``agents={"name": [...]}`` gives each its own
    script. ``repeat=True`` starts the script over after its last step: for a long-lived
    agent, e.g. ``scripted_model("echo", [lambda request: text(...)], repeat=True)``."""
    return register_script(name, items, agents, repeat)


def last_user_text(request: Any) -> str:
    """The newest user message of a model request: what a scripted reply usually answers."""
    return next((m.content or "" for m in reversed(request.messages) if m.role == "user"), "")


__all__ = ["last_user_text", "scripted_model", "text", "tool_call"]
