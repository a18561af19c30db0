"""What a prompt workflow answers from outside: its queries, signals and updates (the
state, the steps, people's decisions and answers, a long-lived agent's messages, the
budget). A mixin of :class:`~lmthing.workflows.prompt_workflow.PromptWorkflow`: the
handlers only read and hand over to the run's parts, which the workflow creates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

from lmthing.activities.names import BUDGET_UPDATE
from lmthing.messaging.types import AgentReply
from lmthing.prompt.humans import PendingRequest
from lmthing.prompt.types import Message, ModelRequest, RunStatus, StepRecord

from .humans import RejectedDecision

if TYPE_CHECKING:
    from lmthing.prompt.stateful_prompt import StatefulPrompt

    from .budget_host import RunBudget
    from .humans import HumanLoop
    from .live_agent import Mailbox
    from .tool_calls import ToolRunner


class RunHandlers:
    """The handlers; the attributes are the workflow's (set in its ``__init__``)."""

    _prompt: StatefulPrompt | None
    _steps: list[StepRecord]
    _runner: ToolRunner | None
    _status: RunStatus
    _humans: HumanLoop
    _mailbox: Mailbox
    _budget: RunBudget

    # --------------------------------------------------------------------------- queries
    @workflow.query
    def state(self) -> dict[str, Any]:
        """Current ``def_state`` values."""
        return self._prompt.state if self._prompt else {}

    @workflow.query
    def steps(self, since: int = 0) -> list[StepRecord]:
        """What the model received and returned at every step from ``since`` on (0-based),
        so a follower can ask only for what it has not seen."""
        return [s for s in self._steps if s.step >= since]

    @workflow.query
    def conversation(self) -> list[Message]:
        """The run's messages so far (a long-lived agent's whole conversation, every turn)."""
        return self._prompt.messages if self._prompt else []

    @workflow.query
    def model_request(self, step: Any) -> ModelRequest:
        """Step ``step``'s model call, whole, for a model worker that was sent it as a delta
        but does not hold its base (activities/conversation.py); ``{"step": n, "summarize":
        true}``: the def_context summary call made before step n (docs/context.md)."""
        if isinstance(step, dict):
            pending = self._context.pending
            if step.get("summarize") and pending is not None and pending.step == step.get("step"):
                return pending
            raise ValueError(f"no context summary call is in flight for step {step.get('step')!r}")
        for record in reversed(self._steps):
            if record.step == step:
                return record.request
        raise ValueError(f"step {step} is not a model call of this run")

    @workflow.query
    def status(self) -> RunStatus:
        """Step number, running tools and agents, what a person is awaited for, usage."""
        if self._runner is not None:
            self._status.running_tools = list(self._runner.running_tools)
            self._status.running_agents = list(self._runner.running_agents)
        self._status.waiting_on = [r.id for r in self._humans.pending()]
        return self._status

    # ---------------------------------------------------------------- people in the loop
    @workflow.query
    def pending(self) -> list[PendingRequest]:
        """Approvals and questions waiting for a person."""
        return self._humans.pending()

    @workflow.signal(name="decide")
    def decide_signal(self, decision: Any) -> None:
        """Decide an approval: ``{"id", "action": approve|deny|modify, "args"?, "reason"?, "by"?}``."""
        try:
            self._humans.decide(decision)
        except RejectedDecision as err:
            workflow.logger.warning("Ignored decision %r: %s", decision, err)

    @workflow.update(name="decide")
    def decide_update(self, decision: Any) -> str:
        """The same as the ``decide`` signal, but a wrong decision is rejected with the reason."""
        return self._humans.decide(decision)

    @decide_update.validator
    def _check_decision(self, decision: Any) -> None:
        self._humans.check_decision(decision)

    @workflow.signal(name="answer")
    def answer_signal(self, answer: Any) -> None:
        """Answer a question: ``{"id", "answer", "by"?}``."""
        try:
            self._humans.answer(answer)
        except RejectedDecision as err:
            workflow.logger.warning("Ignored answer %r: %s", answer, err)

    @workflow.update(name="answer")
    def answer_update(self, answer: Any) -> str:
        """The same as the ``answer`` signal, but a wrong answer is rejected with the reason."""
        return self._humans.answer(answer)

    @answer_update.validator
    def _check_answer(self, answer: Any) -> None:
        self._humans.check_answer(answer)

    # ------------------------------------------------------------------ long-lived agents
    @workflow.update(name="ask")
    async def ask(self, message: Any) -> AgentReply:
        """Send a long-lived agent a message ``{"id", "content", "sender"?}``; the result is its reply."""
        return await self._mailbox.ask(message)

    @ask.validator
    def _check_ask(self, message: Any) -> None:
        self._mailbox.check_ask(message)

    @workflow.signal(name="message")
    def message_signal(self, message: Any) -> None:
        """The same as ``ask``, fire and forget: the reply is on the agent's stream."""
        self._mailbox.signal(message)

    @workflow.update(name="deliver")
    def deliver(self, messages: Any) -> dict[str, int]:
        """A batch of a topic's messages (from lmthing.deliver); accepted once queued."""
        return self._mailbox.deliver(messages)

    @deliver.validator
    def _check_delivery(self, messages: Any) -> None:
        self._mailbox.check_delivery(messages)

    @workflow.query(name="budget")
    def budget(self) -> dict[str, Any] | None:
        """The tree's budget ledger if this run is its root: spend, warnings, the crossing."""
        state = self._budget.state()
        return state.model_dump(mode="json") if state is not None else None

    @workflow.update(name=BUDGET_UPDATE)
    async def budget_update(self, call: Any) -> dict[str, Any]:
        """A run below this one reports a step's spend, or asks for a rate-limit slot."""
        return await self._budget.answer(call)

    @workflow.signal(name="stop")
    def stop_signal(self) -> None:
        """End a long-lived agent once the messages it holds are answered."""
        self._mailbox.stop_requested = True

    @workflow.query
    def inbox(self) -> dict[str, Any]:
        """A long-lived agent's mailbox: waiting message ids, counters, per-topic positions."""
        return self._mailbox.summary()
