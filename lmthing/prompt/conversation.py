"""Sending a model call's input once, not again at every step.

Every model call needs the whole conversation, the system prompt and the tools, and an
activity's input is stored in history, so sending them whole makes history grow with the
square of the steps (and repeats the system prompt and tool schemas at every step).
Instead a call sends what changed since the run's previous call plus a reference to the
rest (:class:`~lmthing.prompt.types.ConversationBase`): the previous call's first
``length`` messages, identified by a digest chain (``digests[i]`` covers messages
``0..i-1``) that both sides compute the same way, and the previous system prompt and tools
when they did not change. The model activity rebuilds the request from its per-worker
cache or, on a worker that did not serve the previous call, by asking the run for it with
a query, which adds nothing to history (:mod:`lmthing.activities.conversation`).

Engine-neutral: the workflow and the activity side both import it.
"""

from __future__ import annotations

import hashlib

from pydantic_core import to_json

from .types import Conversation, ConversationBase, Message, ModelRequest, ToolDefinition

EMPTY_DIGEST = ""
DIGEST_CHARS = 32  # 128 bits of SHA-256: enough to tell two conversations apart, and short in history


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def extend_digests(digests: list[str], messages: list[Message], start: int) -> list[str]:
    """``digests`` (covering ``messages[:start]``) extended to cover all of ``messages``."""
    out = digests[: start + 1] if digests else [EMPTY_DIGEST]
    for message in messages[start:]:
        out.append(_digest(out[-1].encode() + to_json(message)))
    return out


def system_digest(system: str | None) -> str:
    return _digest(to_json(system))


def tools_digest(tools: list[ToolDefinition]) -> str:
    return _digest(to_json(tools))


def common_prefix(a: list[Message], b: list[Message]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class RequestSender:
    """The workflow side: remembers what the run's previous model call was sent, and sends
    the next one as a delta when it continues that conversation.

    A run that continued as new starts from the conversation it carried (``carried``), so
    its first call is a delta too: no model worker holds that base under the new run id,
    and it is rebuilt from the run with one query (no history event) instead of being sent
    whole once more."""

    def __init__(self, carried: list[Message] | None = None) -> None:
        self._messages: list[Message] = list(carried or [])
        self._digests: list[str] = extend_digests([], self._messages, 0)
        self._system: str | None = None
        self._tools: list[ToolDefinition] | None = None  # None: not known, so sent

    def wire(self, request: ModelRequest) -> ModelRequest:
        """What the activity is sent for ``request`` (whose conversation is whole)."""
        messages = request.messages
        shared = common_prefix(self._messages, messages)
        self._digests = extend_digests(self._digests, messages, shared)
        same_system = self._tools is not None and request.system == self._system
        same_tools = self._tools is not None and request.tools == self._tools
        self._messages, self._system, self._tools = list(messages), request.system, list(request.tools)
        if shared == 0:
            return request
        base = ConversationBase(
            length=shared, digest=self._digests[shared],
            system_digest=system_digest(request.system) if same_system else None,
            tools_digest=tools_digest(request.tools) if same_tools else None,
        )
        return request.model_copy(update={
            "conversation": Conversation(base=base, delta=list(messages[shared:])),
            "system": None if same_system else request.system,
            "tools": [] if same_tools else request.tools,
        })
