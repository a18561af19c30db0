"""Run configuration and the state carried across continue-as-new (workflow inputs).

These are the second and third arguments of every prompt workflow, after the prompt's own
arguments, so ``temporal workflow start --input '{...}'`` needs only the first.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from temporalio.contrib.workflow_streams import WorkflowStreamState

from lmthing.messaging.inbox import InboxState
from lmthing.messaging.types import AgentReply
from lmthing.prompt.humans import DecisionRecord
from lmthing.prompt.types import Message, ModelOptions, StepRecord, Usage
from lmthing.resilience.budget import BudgetLink, LedgerState
from lmthing.resilience.domains import DomainAllowlist
from lmthing.resilience.specs import ModelPolicy


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # an older worker reads a newer payload


class AgentFrame(_Model):
    """One level of the path from the root prompt to a sub-agent.

    A sub-agent's function is usually a closure inside its parent's prompt function, so the
    child workflow finds it again by re-running the parent's body with the arguments and
    state the parent had when the model asked for the agent (``body_args``, ``state``).
    """

    body_args: Any = None
    state: dict[str, Any] = Field(default_factory=dict)
    agent: str
    sub: str | None = None


class RunConfig(_Model):
    """Per-run settings; anything left ``None`` comes from the ``@prompt`` definition."""

    # Unknown fields are kept, not dropped, so that a typo can be named (see ModelOptions).
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    options: ModelOptions = Field(default_factory=ModelOptions)
    max_steps: int | None = None
    system: str | None = None
    model_timeout_seconds: float = 300.0
    model_max_attempts: int = 5
    # A model call that sends no heartbeat for this long is considered dead (its worker is
    # gone) and is retried elsewhere; the activity heartbeats while it waits and streams.
    model_heartbeat_seconds: float = 10.0
    # Text deltas to callers: on/off, and at most one batch (one history event) per interval.
    stream: bool = True
    stream_batch_ms: int = 250
    # Upsert the LmthingWaiting search attribute while a person is awaited (the server must
    # know the attribute: `lmthing dev` and create_worker register it).
    mark_waiting: bool = True
    # lmthing's search attributes (LmthingWaiting, LmthingAgent) are registered on the
    # namespace. False: no run of this tree sets any (see workflows/search_attributes.py).
    search_attributes: bool = True
    # Set by a parent for a sub-agent run: how to find the agent's function.
    agent_path: list[AgentFrame] = Field(default_factory=list)
    # A long-lived agent (docs/messaging.md): the run waits for messages and answers each
    # one as a turn of the same conversation, instead of ending after one answer; max_steps
    # is then the budget of one turn.
    long_lived: bool = False
    # Unprocessed messages a long-lived agent holds before refusing more (backpressure).
    mailbox_size: int = Field(default=100, ge=1)
    # Continue as new after this many turns of one run (None: when Temporal suggests it).
    turns_per_run: int | None = Field(default=None, ge=1)
    # How the run calls its model (docs/resilience.md): a retry policy and/or a cascade of
    # models. A sub-agent gets the one its def_agent(retry=, fallback=) names; None: the
    # prompt's own @prompt(retry=, fallback=), else model_max_attempts above.
    model_policy: ModelPolicy | None = None
    # Set by a parent for a run below the root of a budgeted tree (def_constraint): where
    # the tree's ledger is, and its constraints.
    budget: BudgetLink | None = None
    # Set by a parent: the domain allowlists (def_constraint "domains") of the runs above this
    # one, which its tool calls must pass too.
    domains: list[DomainAllowlist] = Field(default_factory=list)
    # The session this run belongs to (docs/memory.md): memories and persisted state of scope
    # "session" are shared by the runs of one session; sub-agents inherit it.
    session: str | None = None


def warn_unknown_fields(config: RunConfig, run: str) -> None:
    """A field this worker's RunConfig lacks: a typo, or a field of newer client code. The
    run goes on (refusing would break rolling deploys); the worker's log says so."""
    from temporalio import workflow

    from lmthing.prompt.types import unknown_fields

    unknown = [*unknown_fields(config), *(f"options.{f}" for f in unknown_fields(config.options))]
    if unknown:
        workflow.logger.warning(
            "Run config of %r has field(s) this worker does not know, ignored: %s", run, ", ".join(unknown)
        )


class Carry(_Model):
    """Everything a run needs to go on after continue-as-new, transparently."""

    state: dict[str, Any] = Field(default_factory=dict)
    messages: list[Message] = Field(default_factory=list)
    step: int = 0
    usage: Usage = Field(default_factory=Usage)
    effect_memory: list[Any] = Field(default_factory=list)
    # Step records carried along (runs continued by older code carried every one; now none
    # are: each run of the chain answers the `steps` query for its own steps, and
    # PromptHandle.steps() asks the earlier runs, so the carry stays the same size).
    steps: list[StepRecord] = Field(default_factory=list)
    # Run ids of the earlier runs of the chain, oldest first.
    earlier_runs: list[str] = Field(default_factory=list)
    schema_attempts: int = 0
    answer_attempts: int = 0
    continued_runs: int = 0
    cost_usd: float | None = 0.0
    decisions: list[DecisionRecord] = Field(default_factory=list)
    answers: dict[str, str] = Field(default_factory=dict)
    human_counter: int = 0
    # The event stream's retained log and publisher dedup state (typed: see WorkflowStream).
    stream: WorkflowStreamState | None = None
    # Handoffs so far (def_handoff): how to find the agent the run goes on as, like agent_path,
    # and the arguments of the last one.
    handoffs: list[AgentFrame] = Field(default_factory=list)
    handoff_args: Any = None
    # A long-lived agent's mailbox (unprocessed messages, what it has seen), its turns so far
    # and its latest replies (for an ask sent again).
    inbox: InboxState | None = None
    turns: int = 0
    replies: list[AgentReply] = Field(default_factory=list)
    stop_requested: bool = False
    # Failed tool-output validations per tool (def_validator, retry_on_failure).
    validation_failures: dict[str, int] = Field(default_factory=dict)
    # The root's budget ledger (def_constraint): the tree's spend so far, warnings given.
    budget: LedgerState | None = None
    # def_moderation: digests of the input texts already checked, and the run's findings.
    moderated: list[str] = Field(default_factory=list)
    moderation: list[dict[str, Any]] = Field(default_factory=list)
