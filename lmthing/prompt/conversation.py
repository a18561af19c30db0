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

When def_context shapes the conversation (docs/context.md), a call is no longer the
previous one plus new messages: a sliding window drops the oldest turns, a summary replaces
them. Such a call is sent as a *layout* instead: segments of the previous call's messages
and of the delta, so a window that slid by one turn costs one turn in history, not a window.

Engine-neutral: the workflow and the activity side both import it.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left

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

    def wire(self, request: ModelRequest, rearranged: bool = False) -> ModelRequest:
        """What the activity is sent for ``request`` (whose conversation is whole).
        ``rearranged``: def_context shaped the conversation, so it may be sent as a layout
        of the previous call's messages (a run without def_context never is)."""
        messages = request.messages
        previous = self._messages
        shared = common_prefix(previous, messages)
        layout = _layout(previous, messages, shared) if rearranged and shared < len(previous) else None
        self._digests = extend_digests(self._digests, messages, shared)
        same_system = self._tools is not None and request.system == self._system
        same_tools = self._tools is not None and request.tools == self._tools
        self._messages, self._system, self._tools = list(messages), request.system, list(request.tools)
        if layout is None and shared == 0:
            return request
        digests = {
            "system_digest": system_digest(request.system) if same_system else None,
            "tools_digest": tools_digest(request.tools) if same_tools else None,
        }
        if layout is None:
            base = ConversationBase(length=shared, digest=self._digests[shared], **digests)
            delta = list(messages[shared:])
        else:
            segments, delta = layout
            taken = sum(end - start for start, end in segments if start >= 0)
            base = ConversationBase(length=taken, digest=self._digests[len(messages)], layout=segments, **digests)
        return request.model_copy(update={
            "conversation": Conversation(base=base, delta=delta),
            "system": None if same_system else request.system,
            "tools": [] if same_tools else request.tools,
        })


def _layout(previous: list[Message], messages: list[Message], shared: int) -> tuple[list[list[int]], list[Message]] | None:
    """``messages`` as segments of ``previous`` (in order) and new messages, or None when
    that takes no more of ``previous`` than the common prefix (``shared``) does."""
    positions: dict[bytes, list[int]] = {}
    for index, message in enumerate(previous):
        positions.setdefault(to_json(message), []).append(index)
    segments: list[list[int]] = []
    delta: list[Message] = []
    after = 0  # messages of previous are taken in order: the next one comes from here on
    for message in messages:
        at = positions.get(to_json(message), [])
        k = bisect_left(at, after)
        found = at[k] if k < len(at) else None
        if found is None:
            delta.append(message)
            if segments and segments[-1][0] < 0:
                segments[-1][1] += 1
            else:
                segments.append([-1, 1])
            continue
        if segments and segments[-1][0] >= 0 and segments[-1][1] == found:
            segments[-1][1] = found + 1
        else:
            segments.append([found, found + 1])
        after = found + 1
    taken = sum(end - start for start, end in segments if start >= 0)
    return (segments, delta) if taken > shared else None


def assemble(previous: list[Message], layout: list[list[int]], delta: list[Message]) -> list[Message] | None:
    """The messages a layout describes (the activity's side of :func:`_layout`); None when it
    does not fit ``previous`` and ``delta`` (another base than the one it was made against)."""
    out: list[Message] = []
    used = 0
    for start, end in layout:
        if start < 0:
            if used + end > len(delta):
                return None
            out += delta[used:used + end]
            used += end
        elif 0 <= start <= end <= len(previous):
            out += previous[start:end]
        else:
            return None
    return out if used == len(delta) else None
