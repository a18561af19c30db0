"""``p.def_context``: the context window of a prompt's model calls (the seed's defContext;
docs/context.md).

Every prompt has it (the engine adds this plugin to each run, like the resilience plugin).
The definition is checked where it is written (a bad value raises a PromptError that names
the option and the fix) and kept in the run's context book (``p.service("context")``), which
the workflow reads before each model call. Outside a run (a scan of a parent's function)
the book is a scratch one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

from .context import STRATEGIES, ContextSpec

# The seed's spellings (001: 'sliding-window', 'relevance-based') and other names people try.
_ALIASES = {"sliding-window": "sliding_window", "relevance-based": "relevance", "relevance_based": "relevance",
            "summarization": "summarize", "summary": "summarize"}
_NOT_BUILT = {
    "hierarchical": "strategy='summarize' (an earlier summary is summarized again with the turns after it)",
    "hybrid": "strategy='summarize' (a summary, then a sliding window over what is left) or 'relevance'",
}


class ContextBook:
    """The run's def_context: the one the prompt function declared on its latest run."""

    def __init__(self) -> None:
        self.spec: ContextSpec | None = None
        self._declared = False

    def begin(self) -> None:
        """Before each run of the prompt function: only what it declares again applies."""
        self.spec = None
        self._declared = False

    def declare(self, spec: ContextSpec) -> None:
        if self._declared and self.spec != spec:
            raise PromptError(
                "def_context is declared twice in one run of the prompt function, with different settings "
                f"({_describe(self.spec)}, then {_describe(spec)}); a prompt has one context window: declare it once"
            )
        self.spec, self._declared = spec, True


def _describe(spec: ContextSpec | None) -> str:
    return "none" if spec is None else f"{spec.strategy}, max_tokens={spec.max_tokens}"


def _book(p: StatefulPrompt) -> ContextBook:
    book = p.service("context")
    return book if isinstance(book, ContextBook) else ContextBook()


def _count(what: str, value: Any, least: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise PromptError(f"def_context: {what} must be an int >= {least}; got {value!r}. {fix}")
    return value


def _fraction(what: str, value: Any, low_open: bool, high: float, high_open: bool, fix: str) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and (value > 0 if low_open else value >= 0) and (value < high if high_open else value <= high))
    if not ok:
        bounds = f"{'(' if low_open else '['}0, {high:g}{')' if high_open else ']'}"
        raise PromptError(f"def_context: {what} is a fraction of the limit in {bounds}; got {value!r}. {fix}")
    return float(value)


def _strategy(strategy: Any) -> str:
    if isinstance(strategy, str):
        name = _ALIASES.get(strategy, strategy)
        if name in STRATEGIES:
            return name
        if name in _NOT_BUILT:
            raise PromptError(f"def_context: strategy {strategy!r} is not built; use {_NOT_BUILT[name]}")
    raise PromptError(f"def_context: strategy is one of {', '.join(repr(s) for s in STRATEGIES)}; got {strategy!r}")


def def_context(
    p: StatefulPrompt,
    strategy: str = "sliding_window",
    *,
    max_tokens: int,
    reserved_tokens: int = 0,
    keep_last: int = 4,
    keep_first: int = 0,
    keep_system: bool = True,
    model: str | None = None,
    summarize_after: float = 1.0,
    compress_to: float = 0.5,
    summary_tokens: int | None = None,
    summary_instructions: str | None = None,
    task: str | None = None,
    scorer: Callable[[str, str], Any] | None = None,
) -> ContextSpec:
    """Keep what the prompt's model calls receive under ``max_tokens`` (by the estimate of
    :mod:`lmthing.memory.context`), of which ``reserved_tokens`` are left for the reply.

    The system prompt (def_system parts, variables) and the tools are always sent; so are
    the first ``keep_first`` and the last ``keep_last`` messages, and, with ``keep_system``,
    any system message of the conversation. A tool call and its results are never split.

    ``strategy``:
    - ``"sliding_window"``: the newest turns that fit; the older ones are left out.
    - ``"summarize"``: when a request would take more than ``summarize_after`` of the
      limit, the older turns are replaced, in the run's conversation, by a summary that a
      model call writes (``model``, default the run's; at most ``summary_tokens``), keeping
      the newest turns that fit in ``compress_to`` of the limit verbatim.
    - ``"relevance"``: the turns most related to the task (``task``, default the newest user
      message: shared words, or ``scorer(text, task) -> number``, deterministic) that fit.
    """
    name = _strategy(strategy)
    _count("max_tokens", max_tokens, 1, "It is the model's context window in tokens, e.g. max_tokens=8000.")
    _count("reserved_tokens", reserved_tokens, 0, "It is the part of max_tokens left for the reply, e.g. 1000.")
    if reserved_tokens >= max_tokens:
        raise PromptError(
            f"def_context: reserved_tokens ({reserved_tokens}) must be below max_tokens ({max_tokens}): nothing would be "
            "left for the request. Lower reserved_tokens or raise max_tokens."
        )
    _count("keep_last", keep_last, 1, "The newest message is what the model answers: keep at least 1.")
    _count("keep_first", keep_first, 0, "It is how many of the first messages (the task) always stay.")
    if not isinstance(keep_system, bool):
        raise PromptError(f"def_context: keep_system is True or False; got {keep_system!r}")
    if name != "summarize":
        given = [k for k, v, default in (("model", model, None), ("summarize_after", summarize_after, 1.0),
                                          ("compress_to", compress_to, 0.5), ("summary_tokens", summary_tokens, None),
                                          ("summary_instructions", summary_instructions, None)) if v != default]
        if given:
            raise PromptError(f"def_context: {', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                              f"strategy='summarize'; drop {'it' if len(given) == 1 else 'them'} or use that strategy")
    if name != "relevance" and (task is not None or scorer is not None):
        raise PromptError("def_context: task= and scorer= are for strategy='relevance'; drop them or use that strategy")
    if model is not None and (not isinstance(model, str) or ":" not in model):
        raise PromptError(f"def_context: model is 'provider:model', e.g. 'openai:gpt-4o-mini'; got {model!r}")
    _fraction("summarize_after", summarize_after, True, 1.0, False,
              "Summaries start when a request would take this much of the limit, e.g. 0.8.")
    _fraction("compress_to", compress_to, False, 1.0, True,
              "It is how much of the limit the newest turns kept verbatim may take after a summary, e.g. 0.5.")
    limit = max_tokens - reserved_tokens
    if summary_tokens is not None:
        _count("summary_tokens", summary_tokens, 1, "It is the longest a summary may be, in tokens.")
        if summary_tokens >= limit:
            raise PromptError(f"def_context: summary_tokens ({summary_tokens}) must be below the limit "
                              f"(max_tokens - reserved_tokens = {limit}); a summary must leave room for the turns")
    for what, text in (("summary_instructions", summary_instructions), ("task", task)):
        if text is not None and not isinstance(text, str):
            raise PromptError(f"def_context: {what} is text; got {type(text).__name__} {text!r}")
    if scorer is not None and not callable(scorer):
        raise PromptError(f"def_context: scorer is a function (text, task) -> number; got {scorer!r}")
    spec = ContextSpec(
        strategy=name, max_tokens=max_tokens, reserved_tokens=reserved_tokens, keep_last=keep_last,
        keep_first=keep_first, keep_system=keep_system, model=model, summarize_after=float(summarize_after),
        compress_to=float(compress_to), summary_tokens=summary_tokens, summary_instructions=summary_instructions,
        task=task, scorer=scorer,
    )
    _book(p).declare(spec)
    return spec


context_plugin = {"def_context": def_context}
