"""A long-lived agent's mailbox, on the prompt workflow's signal and update handlers.

A prompt started with ``RunConfig(long_lived=True)`` does not end after its answer: it waits
for messages, answers each one as a turn of the same conversation (state and messages stay),
and continues as new between turns when its history grows. Messages arrive three ways:

- the ``ask`` update: the update's result is the agent's reply (:class:`AgentReply`);
- the ``message`` signal: fire and forget (the reply is on the agent's stream);
- the ``deliver`` update: a batch from a topic (``workflows/topic_workflow.py``), accepted
  once queued; its validator refuses a batch that would overfill the mailbox, which is how
  a topic's deliveries wait for a slow agent.

Repeats are dropped by message id (:mod:`lmthing.messaging.inbox`), so every path may be
retried. Before continuing as new the agent stops accepting *asks* (their callers would
otherwise wait on a run that closes: ``AgentContinuing``, which ``client.messaging`` sends
again to the new run), answers the asks it holds, and carries the rest of the mailbox.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from lmthing.messaging.inbox import Inbox, MailboxFull
from lmthing.messaging.types import AgentMessage, AgentReply, MessageError, check_message

# Replies kept for an ask that is sent again (a client retrying after a timeout), carried
# across continue-as-new.
KEPT_REPLIES = 50


class Mailbox:
    """The inbox of one run, the replies awaited by ``ask`` handlers, and closing down."""

    def __init__(self, config: Any, carry: Any = None) -> None:
        """``config``: the run's RunConfig; ``carry``: the Carry of a continued run (None: a fresh one)."""
        self.live = config.long_lived
        self.inbox = Inbox(config.mailbox_size, carry.inbox if carry is not None else None)
        self.replies: dict[str, AgentReply] = {r.message_id: r for r in (carry.replies if carry is not None else [])}
        self._failed: dict[str, str] = {}
        self._awaited: set[str] = set()
        self.closing = False
        # A stop that arrived while the previous run of the chain was closing is carried.
        self.stop_requested = bool(carry is not None and carry.stop_requested)
        self.current: AgentMessage | None = None

    # --------------------------------------------------------------------- checking
    def _check_live(self, how: str) -> None:
        if not self.live:
            raise ApplicationError(
                f"This run is not a long-lived agent, so it takes no {how}: start the prompt with "
                "start_agent(...) / `lmthing chat`, or RunConfig(long_lived=True)",
                type="NotLongLived", non_retryable=True,
            )

    def parse(self, raw: Any, how: str) -> AgentMessage:
        self._check_live(how)
        try:
            return check_message(raw)
        except MessageError as err:
            raise ApplicationError(str(err), type="InvalidMessage", non_retryable=True) from None

    def check_ask(self, raw: Any) -> None:
        message = self.parse(raw, "asks")
        if self.closing and message.id not in self.replies and not self.inbox.is_duplicate(message):
            raise ApplicationError(
                "The agent is continuing as new; send the message again in a moment (lmthing's client does)",
                type="AgentContinuing",
            )
        self._check_room([message])

    def check_delivery(self, raw: Any) -> list[AgentMessage]:
        self._check_live("deliveries")
        if not isinstance(raw, list):
            raise ApplicationError(f"A delivery is a list of messages, got {type(raw).__name__}", type="InvalidMessage",
                                   non_retryable=True)
        messages = [self.parse(m, "deliveries") for m in raw]
        self._check_room(messages[:1])  # what fits of a batch is taken (deliver), the rest sent again
        return messages

    def _check_room(self, messages: list[AgentMessage]) -> None:
        try:
            self.inbox.check_room(messages)
        except MailboxFull as err:
            raise ApplicationError(str(err), type="MailboxFull") from None

    # ----------------------------------------------------------------------- taking in
    async def ask(self, raw: Any) -> AgentReply:
        message = self.parse(raw, "asks")
        if message.id in self.replies:
            return self.replies[message.id]  # asked again: the same answer
        if not self.inbox.accept(message, force=True) and not self._is_waiting(message.id):
            raise ApplicationError(
                f"Message {message.id!r} was processed already and its reply is no longer kept; "
                "read it from the agent's stream or steps",
                type="DuplicateMessage", non_retryable=True,
            )
        self._awaited.add(message.id)
        try:
            await workflow.wait_condition(lambda: message.id in self.replies or message.id in self._failed)
        finally:
            self._awaited.discard(message.id)
        if message.id in self._failed:
            raise ApplicationError(self._failed[message.id], type="TurnFailed", non_retryable=True)
        return self.replies[message.id]

    def _is_waiting(self, message_id: str) -> bool:
        return any(m.id == message_id for m in self.inbox.pending) or (self.current is not None and self.current.id == message_id)

    def signal(self, raw: Any) -> None:
        try:
            message = self.parse(raw, "messages")
        except ApplicationError as err:
            workflow.logger.warning("Dropped a 'message' signal that is not a message: %s (raw: %.200r)", err.message, raw)
            return
        self.inbox.accept(message, force=True)  # a signal cannot be refused: over the bound it is counted

    def deliver(self, messages: list[Any]) -> dict[str, int]:
        """Take the longest prefix of the batch that fits (order is kept); ``taken`` says how
        long it is, so the sender sends the rest again once there is room."""
        accepted = taken = 0
        for raw in messages:
            message = check_message(raw)
            if not self.inbox.is_duplicate(message) and len(self.inbox) >= self.inbox.bound and taken:
                break
            accepted += self.inbox.accept(message, force=True)
            taken += 1
        return {"accepted": accepted, "duplicates": taken - accepted, "taken": taken}

    # ----------------------------------------------------------------------- answering
    def take(self) -> AgentMessage:
        self.current = self.inbox.take()
        return self.current

    def answer(self, reply: AgentReply) -> None:
        self.replies[reply.message_id] = reply
        while len(self.replies) > KEPT_REPLIES:
            del self.replies[next(iter(self.replies))]
        self.current = None

    def fail(self, message_id: str, error: str) -> None:
        self._failed[message_id] = error

    def asks_waiting(self) -> bool:
        """Whether an ``ask`` handler waits on a message still in the inbox."""
        return any(m.id in self._awaited for m in self.inbox.pending)

    def kept_replies(self) -> list[AgentReply]:
        return list(self.replies.values())

    def summary(self) -> dict[str, Any]:
        return {**self.inbox.summary(), "current": self.current.id if self.current else None,
                "closing": self.closing, "live": self.live}


async def serve(wf: Any, args: Any, config: Any, carry: Any, prompt: Any, run: Any) -> Any:
    """A long-lived agent's life: wait for a message, answer it as a turn, and so on, until
    a ``stop`` signal; continue as new between turns when the history grows (or every
    ``turns_per_run`` turns). ``wf`` is the prompt workflow (workflows/prompt_workflow.py),
    whose ``_turn`` is the agent loop every prompt runs."""
    from lmthing.prompt.types import RunResult, Usage

    mailbox: Mailbox = wf._mailbox
    turn = carry.turns
    turns_here = 0
    wf._status.turns = turn
    last = RunResult(text="", steps=0, stop_reason="answer", usage=run.usage, cost_usd=run.cost, state=prompt.state)
    while True:
        wf._status.phase = "waiting"
        await workflow.wait_condition(lambda: len(mailbox.inbox) > 0 or mailbox.stop_requested or mailbox.closing)
        if mailbox.closing and not mailbox.asks_waiting() and not mailbox.stop_requested:
            await wf._continue_as_new(args, config, lambda: wf._carry(
                prompt, run, carry, inbox=mailbox.inbox.state(), turns=turn, replies=mailbox.kept_replies(),
                stop_requested=mailbox.stop_requested))
        if not mailbox.inbox:
            if mailbox.stop_requested:
                break
            continue
        message = mailbox.take()
        run.schema_attempts = 0  # each turn has its own schema retries
        before = run.usage
        wf._events.message(run.step, message.id, message.as_text())
        try:
            last = await wf._turn(args, config, carry, prompt, run, first_step=run.step, incoming=message.as_text())
        except BaseException as err:  # the agent fails with it (see _run_loop); its asker is told why
            mailbox.fail(message.id, getattr(err, "message", None) or str(err) or type(err).__name__)
            raise
        used = Usage(input_tokens=run.usage.input_tokens - before.input_tokens,
                     output_tokens=run.usage.output_tokens - before.output_tokens,
                     cached_tokens=run.usage.cached_tokens - before.cached_tokens)
        mailbox.answer(AgentReply(message_id=message.id, text=last.text, structured=last.structured, turn=turn,
                                  steps=last.steps, stop_reason=last.stop_reason, usage=used))
        wf._events.reply(run.step - 1, message.id, last.text, used)
        turn += 1
        turns_here += 1
        wf._status.turns = turn
        if (config.turns_per_run and turns_here >= config.turns_per_run) or workflow.info().is_continue_as_new_suggested():
            mailbox.closing = True
    wf._status.phase = "finished"
    wf._events.finish(max(run.step - 1, 0), last.text, run.usage)
    return last.model_copy(update={"steps": run.step, "usage": run.usage, "cost_usd": run.cost, "state": prompt.state})
