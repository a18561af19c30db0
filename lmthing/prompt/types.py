"""Data that crosses the workflow/activity boundary and lands in history.

Every type here is a pydantic model so that the Temporal pydantic data converter can
encode it, and so that it can evolve by *adding optional fields* (never renaming):
running workflows replay against old payloads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmthing.resilience.breaker import CircuitBreakerRef
from lmthing.resilience.domains import DomainAllowlist

from .humans import DecisionRecord


class _Model(BaseModel):
    # Unknown fields are ignored so that an older worker can read a newer payload.
    model_config = ConfigDict(extra="ignore")



def unknown_fields(model: BaseModel) -> list[str]:
    """Fields ``model`` was given that its class does not have (kept by ``extra="allow"``
    models such as RunConfig and ModelOptions, so that a typo can be named)."""
    return sorted(model.model_extra or {})


class ToolCall(_Model):
    """One tool call requested by the model."""

    id: str
    name: str
    # Parsed JSON arguments, or the raw text when the model sent malformed JSON
    # (the malformed case goes back to the model as a tool error).
    args: dict[str, Any] | str = Field(default_factory=dict)


class Message(_Model):
    """One conversation message, in a provider-neutral shape."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ConversationBase(_Model):
    """What a delta continues: the first ``length`` messages of the previous model call of
    the same run (the one that schedules this call), whose digest chain ends in ``digest``
    (see :mod:`lmthing.prompt.conversation`). ``system_digest`` / ``tools_digest`` are set
    when the call's system prompt / tools are the previous call's too, and then left out of
    the request."""

    length: int
    digest: str
    system_digest: str | None = None
    tools_digest: str | None = None
    # Set when the call's messages are not the previous call's first ``length`` plus the
    # delta, but a rearrangement of them (def_context dropped or replaced older turns,
    # docs/context.md): segments in order, ``[start, end]`` for the previous call's messages
    # start..end-1 and ``[-1, n]`` for the next n messages of the delta. ``length`` then
    # counts the messages taken from the previous call, and ``digest`` covers the whole
    # resulting conversation. None: the prefix form above.
    layout: list[list[int]] | None = None


class Conversation(_Model):
    """The conversation as sent to one model call: whole (``messages``), or, so that each
    message enters history once, the messages new since the run's previous call
    (``delta``) on top of a ``base``. The model activity turns the second form back into
    the first before a provider sees it (:mod:`lmthing.activities.conversation`); the
    workflow's own records always hold the whole conversation."""

    messages: list[Message] = Field(default_factory=list)
    base: ConversationBase | None = None
    delta: list[Message] = Field(default_factory=list)

    def materialize(self) -> list[Message]:
        if self.base is not None:
            raise RuntimeError("a conversation sent as a delta must be resolved (activities/conversation.py) before use")
        return self.messages


class ToolDefinition(_Model):
    """What the model is told about one tool."""

    name: str
    description: str
    parameters: dict[str, Any]


class Summarize(_Model):
    """What makes a model call a def_context summary (strategy ``summarize``,
    docs/context.md): the model is asked to summarize the messages ``ranges`` (``[start,
    end]`` pairs, end excluded) of the request's conversation, with ``instructions`` as its
    system prompt. The request itself carries the run's conversation, system prompt and
    tools like a step's (so it is sent as a delta and what it summarizes never enters
    history again); the model activity turns it into the summarization request
    (:func:`lmthing.memory.context.summary_request`) after rebuilding it."""

    ranges: list[list[int]]
    instructions: str


class ModelOptions(_Model):
    """Generation options, named after lmthing's (AI SDK) options in snake_case."""

    # Unknown fields are kept (not dropped) so that a typo can be named: the client refuses
    # it before a run starts, a worker logs it and goes on (it may be a newer field).
    model_config = ConfigDict(extra="allow")

    temperature: float | None = None
    max_output_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop_sequences: list[str] | None = None
    seed: int | None = None
    tool_choice: str | None = None
    headers: dict[str, str] | None = None
    # Structured output: {"name": ..., "schema": <JSON schema>} the reply must match. Set
    # for runs with a response_schema; providers that support it enforce it natively
    # (OpenAI's json_schema), the others rely on the instruction in the system prompt.
    response_format: dict[str, Any] | None = None


class ModelRequest(_Model):
    """Everything one model call receives."""

    model: str
    system: str | None = None
    conversation: Conversation = Field(default_factory=Conversation)
    tools: list[ToolDefinition] = Field(default_factory=list)
    options: ModelOptions = Field(default_factory=ModelOptions)
    # Which model call of the run this is (0-based, continues across continue-as-new).
    step: int = 0
    # Identity of the run, for providers that need a stable key (the scripted model).
    workflow_id: str = ""
    # For a sub-agent run: the agent names from the root prompt down, joined by "/".
    agent: str | None = None
    # Delivery, not generation: how often the model activity sends text deltas to callers
    # (milliseconds); None sends none. Never passed to the provider.
    stream_batch_ms: int | None = None
    # The circuit breaker the call sits behind (docs/circuit-breakers.md); None: none.
    circuit_breaker: CircuitBreakerRef | None = None
    # Under a rate limit of its tree (def_constraint "rate"): the workflow id of the run whose
    # ledger hands out the slots; the activity waits for its slot just before the request.
    rate_limit: str | None = None
    # A run below the root of a budgeted tree: the workflow id of the run whose ledger it
    # spends from. The activity reports the call's spend there (the lmthing_budget update)
    # and returns the answer in ModelResponse.budget, so the step needs no activity of its own.
    budget_root: str | None = None
    # The def_cache(..., model_calls=True) this call's reply is kept in (a CacheRef as JSON,
    # docs/memory.md): a request already answered is answered again from it, no provider call.
    cache: dict[str, Any] | None = None
    # Set for a def_context summary call (docs/context.md); None: a step of the agent loop.
    summarize: Summarize | None = None

    @property
    def messages(self) -> list[Message]:
        return self.conversation.materialize()


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class ModelResponse(_Model):
    """What one model call returned."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    # Estimated from the provider's price table; None when the model's price is unknown.
    cost_usd: float | None = None
    # The budget's answer to this call's spend, when the request had a budget_root
    # (a BudgetStatus: a limit crossed, the tree's totals); None: not reported.
    budget: dict[str, Any] | None = None
    # Answered from a def_cache (docs/memory.md): no provider call was made, nothing was spent.
    cached: bool = False


class ToolResult(_Model):
    """The outcome of one tool call, as returned to the model."""

    tool_call_id: str
    name: str
    result: Any = None
    is_error: bool = False
    # The exact text the model is shown when it is not the JSON of ``result`` (lmthing showed
    # a tool's error or a sub-agent's answer as plain text); ``None``: the compact JSON.
    content: str | None = None


class StepRecord(_Model):
    """Exactly what the model received and returned at one step, and what tools did."""

    step: int
    request: ModelRequest
    response: ModelResponse | None = None
    tool_results: list[ToolResult] = Field(default_factory=list)
    # Approvals and answers given by people during this step.
    decisions: list[DecisionRecord] = Field(default_factory=list)
    # Orchestrations (workflows, parallel groups, teams...) run during this step, by the
    # prompt function or by a tool: what ran, ballots, rounds, winners (docs/orchestration.md).
    orchestration: list[dict[str, Any]] = Field(default_factory=list)
    # A model cascade (def_fallback "cascade", docs/resilience.md): the model that answered,
    # and how each model before it failed ({"model", "error", "type"}).
    answered_by: str | None = None
    model_failures: list[dict[str, Any]] = Field(default_factory=list)
    # What def_moderation flagged at this step ({"moderation", "target", "categories",
    # "action", "by", "excerpt", ...}); a blocked input leaves the step without a response.
    moderation: list[dict[str, Any]] = Field(default_factory=list)
    # def_context at this step (docs/context.md): the strategy, the limit, the tokens sent and
    # those the whole conversation would have taken, the messages left out, and, when older
    # turns were summarized before this call, the summary ({"text", "replaced", "model",
    # "usage", ...}). None: the prompt defines no def_context.
    context: dict[str, Any] | None = None


class RunStatus(_Model):
    """Answer of the ``status`` query."""

    prompt: str
    step: int = 0
    # "waiting": a long-lived agent between messages.
    phase: Literal["starting", "model", "tools", "waiting", "finished", "failed"] = "starting"
    running_tools: list[str] = Field(default_factory=list)
    running_agents: list[str] = Field(default_factory=list)
    waiting_on: list[str] = Field(default_factory=list)  # ids of pending approvals/questions
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = 0.0
    continued_runs: int = 0
    # Run ids of the earlier runs of a continue-as-new chain, oldest first: each answers
    # the `steps` query for its own steps.
    earlier_runs: list[str] = Field(default_factory=list)
    # A long-lived agent's turns so far (messages answered), across continue-as-new.
    turns: int = 0


class RunResult(_Model):
    """What a finished run returns to its caller (and a sub-agent to its parent)."""

    text: str
    steps: int
    stop_reason: Literal["answer", "max_steps", "stop_when", "budget", "moderation"]
    usage: Usage = Field(default_factory=Usage)
    # Estimated cost of every model call of the run and its sub-agents; None if any is unknown.
    cost_usd: float | None = None
    state: dict[str, Any] = Field(default_factory=dict)
    structured: Any = None
    validation_error: str | None = None
    # Every approval decision and answer of the run: who, when, why.
    decisions: list[DecisionRecord] = Field(default_factory=list)
    # The agents the run was handed to (def_handoff), in order; the last one answered.
    handoffs: list[str] = Field(default_factory=list)
    # What def_moderation flagged during the run (each as its step records it), oldest first.
    moderation: list[dict[str, Any]] = Field(default_factory=list)


class ToolActivityInput(_Model):
    """Input of an activity tool (``lmthing.tool.<name>``)."""

    args: dict[str, Any] = Field(default_factory=dict)
    tool_call_id: str
    idempotency_key: str
    # The run's step that asked for the call (on the tool's log lines); optional, so inputs
    # recorded before it was added still decode.
    step: int | None = None
    # The tool's own maximum_attempts, counted by the activity (failures and timeouts, not
    # worker deaths); None: Temporal's retry policy counts every attempt.
    max_attempts: int | None = None
    # The circuit breaker the tool sits behind (def_tool(..., circuit_breaker=...)); None: none.
    circuit_breaker: CircuitBreakerRef | None = None
    # The run's domain allowlists (def_constraint "domains"): ToolContext.allowed_domains.
    allowed_domains: list[DomainAllowlist] | None = None
    # The def_cache the call's result is kept in (docs/memory.md: a CacheRef as JSON); None:
    # not cached. With a cache the activity returns {"lmthing_cache": "hit"|"miss", "result": ...}.
    cache: dict[str, Any] | None = None



StreamEventType = Literal[
    "step_start", "text_delta", "tool_call", "tool_result", "agent_start", "agent_finish",
    "step_finish", "finish", "error",
    # A long-lived agent took a message to process, and answered it (docs/messaging.md).
    "message", "reply",
    # A budget of the tree (def_constraint) reached its warn mark, or its max (docs/resilience.md).
    "budget",
    # def_moderation flagged an input or an output (docs/resilience.md).
    "moderation",
]


class StreamEvent(_Model):
    """One event of a run's stream (``handle.full_stream()``).

    ``step`` is the 0-based model step. Text deltas also carry the model activity's
    ``attempt`` and a ``seq`` number within that attempt: after a retry (a crashed worker, a
    dropped connection) the text of the step starts again with a higher attempt, so a caller
    can tell repeated text from new text. ``offset`` is the event's position in the stream:
    pass it back (+1) to resume after a disconnect.
    """

    type: StreamEventType
    step: int = 0
    attempt: int = 1
    seq: int = 0
    text: str | None = None
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None
    agent: str | None = None
    workflow_id: str | None = None
    usage: Usage | None = None
    error: str | None = None
    offset: int = -1
    # On "message" and "reply" events of a long-lived agent: the message's id.
    message_id: str | None = None
    # Set by a merged stream (client/messaging.follow_team): the workflow id of the agent
    # whose stream the event comes from.
    source: str | None = None


def add_cost(total: float | None, more: float | None) -> float | None:
    """Costs add up while every part is known; one unknown price makes the total unknown."""
    return None if total is None or more is None else total + more
