"""Context windows (``p.def_context``, the seed's defContext; docs/context.md): what part of
a long conversation a model call receives, so that the request stays under a token limit
however long the run.

Engine-neutral and pure: the workflow applies these functions to every model request of a
prompt that defines a context, and the model activity uses :func:`summary_request` to turn a
summary call into what the provider sees. Every decision is a function of the messages and
the definition alone, so replay takes the same one.

Tokens are *estimated*, the same way everywhere (the policy, the tests, the benchmark): about
four characters per token (``CHARS_PER_TOKEN``), plus ``MESSAGE_TOKENS`` per message for the
role and separators; a tool call counts its name and JSON arguments, the tools their JSON
definitions. Real tokenizers differ by provider and language (code and non-English text take
more tokens per character), which is what ``reserved_tokens`` leaves room for.

Messages move in whole *turn groups*: an assistant message that calls tools and the tool
results after it go together or not at all, so a provider never receives a tool result
without its call (or a call without its result).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from lmthing.prompt.types import Conversation, Message, ModelRequest, ToolDefinition

CHARS_PER_TOKEN = 4
MESSAGE_TOKENS = 4
STRATEGIES = ("sliding_window", "summarize", "relevance")

# The first line of the message that holds a summary of older turns (a user message, so that
# every provider takes it: a conversation may then start with it).
SUMMARY_HEADER = "[Summary of the earlier conversation, which it replaces]"
SUMMARY_INSTRUCTIONS = (
    "You condense a conversation so that the assistant in it can go on without the original turns. "
    "Summarize the transcript the user gives you: keep facts, names, numbers, decisions, what tools "
    "returned, and what is still to be done; leave out greetings and repetition. Write only the summary, "
    "in at most {words} words."
)
_TRANSCRIPT_ASK = "Summarize this conversation:\n\n"
_EARLIER = "Summary of what came before: "  # an earlier summary, in a transcript


# ------------------------------------------------------------------------------ tokens
def estimate_tokens(text: str | None) -> int:
    """Tokens of ``text`` by the estimate (about ``CHARS_PER_TOKEN`` characters each)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN if text else 0


def message_tokens(message: Message) -> int:
    n = MESSAGE_TOKENS + estimate_tokens(message.content)
    for call in message.tool_calls or []:
        args = call.args if isinstance(call.args, str) else to_json(call.args).decode()
        n += estimate_tokens(call.name) + estimate_tokens(args)
    return n


def tools_tokens(tools: list[ToolDefinition]) -> int:
    return estimate_tokens(to_json(tools).decode()) if tools else 0


def request_tokens(system: str | None, messages: list[Message], tools: list[ToolDefinition]) -> int:
    """A model request's input tokens by the estimate: system prompt, tools and messages."""
    return estimate_tokens(system) + tools_tokens(tools) + sum(message_tokens(m) for m in messages)


# -------------------------------------------------------------------------- definition
@dataclass(frozen=True)
class ContextSpec:
    """A checked ``def_context`` (see :func:`lmthing.memory.context_plugin.def_context`)."""

    strategy: str
    max_tokens: int
    reserved_tokens: int = 0
    keep_last: int = 4
    keep_first: int = 0
    keep_system: bool = True
    # summarize
    model: str | None = None
    summarize_after: float = 1.0
    compress_to: float = 0.5
    summary_tokens: int | None = None
    summary_instructions: str | None = None
    # relevance
    task: str | None = None
    scorer: Callable[[str, str], Any] | None = field(default=None, compare=False)

    @property
    def limit(self) -> int:
        """Tokens a request may take: the window less what is reserved for the reply."""
        return self.max_tokens - self.reserved_tokens

    @property
    def summary_budget(self) -> int:
        """The most tokens a summary may take (its call's max_output_tokens)."""
        return self.summary_tokens or max(32, min(1024, self.limit // 8))

    def instructions(self) -> str:
        words = max(16, self.summary_budget * 3 // 4)
        return (self.summary_instructions or SUMMARY_INSTRUCTIONS).replace("{words}", str(words))


# ------------------------------------------------------------------------------ groups
def turn_groups(messages: list[Message]) -> list[tuple[int, int]]:
    """``[start, end)`` ranges that cover ``messages``: an assistant message with tool calls
    and the tool results right after it are one group; every other message is its own."""
    groups: list[tuple[int, int]] = []
    i, n = 0, len(messages)
    while i < n:
        end = i + 1
        if messages[i].role == "assistant" and messages[i].tool_calls:
            while end < n and messages[end].role == "tool":
                end += 1
        groups.append((i, end))
        i = end
    return groups


def _pinned(spec: ContextSpec, messages: list[Message], groups: list[tuple[int, int]]) -> set[int]:
    """Groups always kept verbatim: the first ``keep_first`` messages, the system messages
    of the conversation (``keep_system``), and the last ``keep_last`` messages."""
    n = len(messages)
    out: set[int] = set()
    for g, (start, end) in enumerate(groups):
        if start < spec.keep_first or end > n - spec.keep_last:
            out.add(g)
        elif spec.keep_system and any(m.role == "system" for m in messages[start:end]):
            out.add(g)
    return out


@dataclass
class Window:
    """Which messages one request receives, and what that costs."""

    kept: list[int]  # indices into the conversation, in order
    tokens: int  # the request as sent
    total: int  # the request had every message been sent
    limit: int

    def note(self, spec: ContextSpec, messages: int) -> dict[str, Any]:
        return {"strategy": spec.strategy, "limit": self.limit, "tokens": self.tokens, "total_tokens": self.total,
                "messages": len(self.kept), "dropped": messages - len(self.kept), "over_limit": self.tokens > self.limit}


def fit(spec: ContextSpec, system: str | None, messages: list[Message], tools: list[ToolDefinition]) -> Window:
    """The window of one request. Everything when it fits; otherwise the pinned groups plus,
    newest first, the groups that fit (``sliding_window`` and ``summarize``: a contiguous
    run of the newest; ``relevance``: the most related to the task first, skipping those
    that do not fit). Pinned groups are kept even when they alone go over the limit (the
    window's note says ``over_limit``)."""
    fixed = estimate_tokens(system) + tools_tokens(tools)
    sizes = [message_tokens(m) for m in messages]
    total = fixed + sum(sizes)
    if total <= spec.limit:
        return Window(list(range(len(messages))), total, total, spec.limit)
    groups = turn_groups(messages)
    group_size = [sum(sizes[a:b]) for a, b in groups]
    chosen = _pinned(spec, messages, groups)
    used = fixed + sum(group_size[g] for g in chosen)
    order = [g for g in reversed(range(len(groups))) if g not in chosen]
    if spec.strategy == "relevance":
        scores = _scores(spec, messages, groups)
        order.sort(key=lambda g: (-scores[g], -g))
    for g in order:
        if used + group_size[g] <= spec.limit:
            chosen.add(g)
            used += group_size[g]
        elif spec.strategy != "relevance":
            break  # a window has no holes: the older turns are gone from here on
    kept = [i for g in sorted(chosen) for i in range(*groups[g])]
    return Window(kept, used, total, spec.limit)


# --------------------------------------------------------------------------- relevance
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "the and for are but not you your with this that from have has had was were will would can could "
    "what when where which who how why all any its into about than then them they their there our out "
    "too very just also more most some such only own same so is it of to in on at by an as be do does".split()
)


def terms(text: str | None) -> set[str]:
    """The words that make two texts related: lower-cased, 3+ characters, no stop words."""
    return {w for w in _WORD.findall((text or "").lower()) if len(w) >= 3 and w not in _STOPWORDS}


def group_text(messages: list[Message]) -> str:
    parts: list[str] = []
    for m in messages:
        parts.append(m.content or "")
        for call in m.tool_calls or []:
            parts.append(f"{call.name} {call.args if isinstance(call.args, str) else to_json(call.args).decode()}")
    return "\n".join(parts)


def current_task(spec: ContextSpec, messages: list[Message]) -> str:
    """What relevance is measured against: ``task=``, else the newest user message."""
    if spec.task is not None:
        return spec.task
    return next((m.content or "" for m in reversed(messages) if m.role == "user"), "")


def _scores(spec: ContextSpec, messages: list[Message], groups: list[tuple[int, int]]) -> list[float]:
    """Each group's relevance to the task: the number of the task's words it shares (or the
    prompt's own ``scorer(text, task)``, which runs in the workflow and must be deterministic)."""
    task = current_task(spec, messages)
    if spec.scorer is not None:
        return [float(spec.scorer(group_text(messages[a:b]), task)) for a, b in groups]
    wanted = terms(task)
    return [float(len(wanted & terms(group_text(messages[a:b])))) for a, b in groups]


# --------------------------------------------------------------------------- summaries
@dataclass
class SummaryPlan:
    """Older turns to replace with a summary: ``ranges`` of the conversation (``[start,
    end]``, in order), ``replaced`` messages in all, ``tokens`` of them by the estimate."""

    ranges: list[list[int]]
    replaced: int
    tokens: int


def plan_summary(spec: ContextSpec, system: str | None, messages: list[Message], tools: list[ToolDefinition],
                 movable: int) -> SummaryPlan | None:
    """Whether the request is over ``summarize_after`` of the limit, and if so which older
    turns a summary replaces: every group before the newest ones that fit in ``compress_to``
    of the room left for messages (at least the last ``keep_last`` messages), except pinned
    ones, among the first ``movable`` messages (the run's conversation; what the step adds
    for this call only stays). None: no summary now."""
    fixed = estimate_tokens(system) + tools_tokens(tools)
    sizes = [message_tokens(m) for m in messages]
    if fixed + sum(sizes) <= spec.summarize_after * spec.limit:
        return None
    groups = turn_groups(messages)
    pinned = _pinned(spec, messages, groups)
    room = spec.compress_to * max(spec.limit - fixed, 0)
    tail, first_kept = 0, len(groups)
    for g in reversed(range(len(groups))):
        a, b = groups[g]
        size = sum(sizes[a:b])
        if b <= len(messages) - spec.keep_last:  # not one of the last keep_last messages
            if g in pinned:
                continue
            if tail + size > room:
                break
        tail += size
        first_kept = g
    older = [g for g in range(first_kept) if g not in pinned and groups[g][1] <= movable]
    ranges: list[list[int]] = []
    for g in older:
        a, b = groups[g]
        if ranges and ranges[-1][1] == a:
            ranges[-1][1] = b
        else:
            ranges.append([a, b])
    replaced = sum(b - a for a, b in ranges)
    if replaced < 2:
        return None  # nothing worth a model call (at most an earlier summary alone)
    return SummaryPlan(ranges, replaced, sum(sum(sizes[a:b]) for a, b in ranges))


def summary_message(text: str) -> Message:
    return Message(role="user", content=f"{SUMMARY_HEADER}\n{text.strip()}")


def compact(messages: list[Message], plan: SummaryPlan, summary: str) -> list[Message]:
    """``messages`` with the planned turns replaced by one summary message, where the first
    of them was; every other message keeps its place and order."""
    replaced = {i for a, b in plan.ranges for i in range(a, b)}
    out: list[Message] = []
    for i, m in enumerate(messages):
        if i == plan.ranges[0][0]:
            out.append(summary_message(summary))
        if i not in replaced:
            out.append(m)
    return out


def transcript(messages: list[Message]) -> str:
    """Messages as plain text for a summarizing model: one line per message or tool call,
    so any provider takes it (no tool definitions needed for tool-call turns)."""
    lines: list[str] = []
    for m in messages:
        if m.role == "assistant":
            if m.content:
                lines.append(f"Assistant: {m.content}")
            for call in m.tool_calls or []:
                args = call.args if isinstance(call.args, str) else to_json(call.args).decode()
                lines.append(f"Assistant called {call.name}({args})")
        elif m.role == "tool":
            lines.append(f"Tool result ({m.name or 'tool'}): {m.content or ''}")
        elif m.role == "user" and (m.content or "").startswith(SUMMARY_HEADER):
            lines.append(f"{_EARLIER}{m.content[len(SUMMARY_HEADER):].strip()}")
        else:
            lines.append(f"{m.role.capitalize()}: {m.content or ''}")
    return "\n".join(lines)


def summary_request(request: ModelRequest) -> ModelRequest:
    """What the provider sees for a summary call (``request.summarize`` set, its
    conversation rebuilt): the instructions as the system prompt and one user message with
    the transcript of the summarized messages; no tools."""
    ask = request.summarize
    assert ask is not None, "not a summary call"
    messages = request.messages
    picked = [m for start, end in ask.ranges for m in messages[start:end]]
    return request.model_copy(update={
        "system": ask.instructions,
        "conversation": Conversation(messages=[Message(role="user", content=_TRANSCRIPT_ASK + transcript(picked))]),
        "tools": [],
    })


def extractive_summary(text: str, max_tokens: int | None = None) -> str:
    """A summary without a model (the scripted model's answer to a summary call): an earlier
    summary as it was, then the first words of each other transcript line, the newest kept
    when it must be cut to ``max_tokens`` (by the estimate). Deterministic."""
    body = text.split(_TRANSCRIPT_ASK, 1)[-1]
    parts: list[str] = []
    for line in body.splitlines():
        if line.startswith(_EARLIER):
            parts.append(line[len(_EARLIER):].strip())
        elif line.strip():
            parts.append(" ".join(line.split()[:10]))
    out = "; ".join(p for p in parts if p)
    limit = (max_tokens or 256) * CHARS_PER_TOKEN
    return out if len(out) <= limit else "..." + out[len(out) - limit + 3:].lstrip()
