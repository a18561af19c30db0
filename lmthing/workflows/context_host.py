"""A run's context window (``p.def_context``, docs/context.md), workflow side.

Before each model call the step's messages go through the prompt's policy
(:mod:`lmthing.memory.context`): a sliding window, the most relevant turns, or, for
``summarize``, first a summary of the older turns. The summary is written by the model-call
activity (its summary in history: ``summarize context``), replaces those turns in the run's
conversation, and is recorded on the step (``StepRecord.context["summary"]``). A run without
def_context goes through none of this: its commands and requests are what they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lmthing.memory.context import compact, fit, plan_summary, request_tokens
from lmthing.memory.context_plugin import ContextBook
from lmthing.prompt.stateful_prompt import StatefulPrompt
from lmthing.prompt.types import (
    Conversation,
    Message,
    ModelOptions,
    ModelRequest,
    ModelResponse,
    Summarize,
    ToolDefinition,
    Usage,
    add_cost,
)

# Runs the summary call: (request) -> the model's response (model_calls.ModelCalls._call_summary).
SummaryCall = Callable[[ModelRequest], Awaitable[ModelResponse]]


class RunContext:
    """The run's def_context book and what its policy did last."""

    def __init__(self) -> None:
        self.book = ContextBook()
        # The summary call in flight: the model_request query answers a model worker that
        # does not hold the run's previous call with it (activities/conversation.py).
        self.pending: ModelRequest | None = None
        # What summary calls spent since the run's totals last took it.
        self._usage = Usage()
        self._cost: float | None = 0.0
        # Messages of the run's conversation the last request left out (sliding window):
        # a continue-as-new does not carry them, as no later request would send them.
        self._dropped: set[int] = set()

    @property
    def active(self) -> bool:
        return self.book.spec is not None

    def begin(self) -> None:
        self.book.begin()

    async def shape(self, prompt: StatefulPrompt, system: str | None, messages: list[Message],
                    tools: list[ToolDefinition], request: ModelRequest, call: SummaryCall,
                    summary_model: str) -> tuple[list[Message], dict[str, Any]]:
        """The messages this call receives and the step's context note. ``messages`` are
        the run's conversation followed by what the step adds for this call only;
        ``request`` is the step's request as it would go without a context window."""
        spec = self.book.spec
        assert spec is not None
        note: dict[str, Any] = {}
        own = len(prompt.messages)
        if spec.strategy == "summarize":
            plan = plan_summary(spec, system, messages, tools, movable=own)
            if plan is not None:
                asked = request.model_copy(update={
                    "model": summary_model,
                    "conversation": Conversation(messages=list(messages)),
                    # The reply's length is the summary's; a proxy's headers still apply.
                    "options": ModelOptions(max_output_tokens=spec.summary_budget, headers=request.options.headers),
                    "stream_batch_ms": None,
                    "circuit_breaker": None,
                    "summarize": Summarize(ranges=plan.ranges, instructions=spec.instructions()),
                })
                self.pending = asked
                try:
                    response = await call(asked)
                finally:
                    self.pending = None
                self._usage = self._usage + response.usage
                self._cost = add_cost(self._cost, response.cost_usd)
                before = request_tokens(system, messages, tools)
                prompt.replace_messages(compact(prompt.messages, plan, response.text))
                messages = prompt.messages + messages[own:]
                own = len(prompt.messages)
                note["summary"] = {
                    "text": response.text, "replaced": plan.replaced, "replaced_tokens": plan.tokens,
                    "model": summary_model, "tokens_before": before, "usage": response.usage.model_dump(),
                }
        window = fit(spec, system, messages, tools)
        kept = set(window.kept)
        self._dropped = {i for i in range(own) if i not in kept}
        note = {**window.note(spec, len(messages)), **note}
        return [messages[i] for i in window.kept], note

    def take_spend(self) -> tuple[Usage, float | None]:
        """What summary calls spent since the last take (nothing without def_context)."""
        spent = (self._usage, self._cost)
        self._usage, self._cost = Usage(), 0.0
        return spent

    def carried(self, messages: list[Message]) -> list[Message]:
        """The conversation a continue-as-new carries: without what the sliding window
        already left out (it cannot come back); the whole conversation otherwise."""
        spec = self.book.spec
        if spec is None or spec.strategy != "sliding_window" or not self._dropped:
            return messages
        return [m for i, m in enumerate(messages) if i not in self._dropped]
