"""A long-lived agent's mailbox: bounded, first in first out, and deaf to repeats.

Every hop to an agent may repeat a message (a retried delivery activity, a client sending
again after a timeout), so the mailbox remembers what it has accepted: the ids of the
latest ``REMEMBERED_IDS`` messages, and for each topic the highest sequence number seen
(a topic delivers its messages to a subscriber in order, so one number per topic is an
exact record, however long the agent lives). Its state is plain data, carried across
continue-as-new.

The bound is backpressure, not loss: a message that would overfill the mailbox is refused
with :class:`MailboxFull` (an update's validator turns that into a rejection the sender sees
and retries); nothing accepted is ever dropped. A *signal* cannot be refused (Temporal
delivers it whatever the receiver thinks), so ``accept(..., force=True)`` queues it over the
bound and counts it in ``overflowed``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pydantic import BaseModel, Field

from .types import AgentMessage

DEFAULT_MAILBOX_SIZE = 100
# Direct (non-topic) message ids remembered for dedup; a sender that repeats a message
# after this many newer ones is not caught (clients repeat within seconds, not thousands).
REMEMBERED_IDS = 2000


class MailboxFull(Exception):
    """The mailbox holds its bound of unprocessed messages; send again later."""


class InboxState(BaseModel):
    """The mailbox as carried across continue-as-new."""

    pending: list[AgentMessage] = Field(default_factory=list)
    seen_ids: list[str] = Field(default_factory=list)
    topic_seq: dict[str, int] = Field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    processed: int = 0
    overflowed: int = 0


class Inbox:
    def __init__(self, bound: int = DEFAULT_MAILBOX_SIZE, state: InboxState | None = None) -> None:
        if bound < 1:
            raise ValueError(f"mailbox_size must be at least 1, got {bound}")
        state = state or InboxState()
        self.bound = bound
        self.pending: deque[AgentMessage] = deque(state.pending)
        self._seen: dict[str, None] = dict.fromkeys(state.seen_ids[-REMEMBERED_IDS:])
        self.topic_seq = dict(state.topic_seq)
        self.accepted, self.duplicates = state.accepted, state.duplicates
        self.processed, self.overflowed = state.processed, state.overflowed

    def is_duplicate(self, message: AgentMessage) -> bool:
        if message.topic is not None and message.seq is not None:
            return message.seq <= self.topic_seq.get(message.topic, -1)
        return message.id in self._seen

    def check_room(self, messages: list[AgentMessage]) -> None:
        """Raise :class:`MailboxFull` if the new messages among ``messages`` do not fit."""
        new = sum(1 for m in messages if not self.is_duplicate(m))
        if new and len(self.pending) + new > self.bound:
            raise MailboxFull(
                f"mailbox full: {len(self.pending)} of {self.bound} messages wait to be processed, "
                f"{new} more do not fit; send again later (or start the agent with a larger mailbox_size)"
            )

    def accept(self, message: AgentMessage, *, force: bool = False) -> bool:
        """Queue ``message``; False if it is a repeat (dropped). Raises MailboxFull unless ``force``."""
        if self.is_duplicate(message):
            self.duplicates += 1
            return False
        if len(self.pending) >= self.bound:
            if not force:
                self.check_room([message])
            self.overflowed += 1
        if message.topic is not None and message.seq is not None:
            self.topic_seq[message.topic] = message.seq
        else:
            self._seen[message.id] = None
            if len(self._seen) > REMEMBERED_IDS:
                del self._seen[next(iter(self._seen))]
        self.pending.append(message)
        self.accepted += 1
        return True

    def take(self) -> AgentMessage:
        self.processed += 1
        return self.pending.popleft()

    def __len__(self) -> int:
        return len(self.pending)

    def state(self) -> InboxState:
        return InboxState(
            pending=list(self.pending), seen_ids=list(self._seen), topic_seq=dict(self.topic_seq),
            accepted=self.accepted, duplicates=self.duplicates, processed=self.processed, overflowed=self.overflowed,
        )

    def summary(self) -> dict[str, Any]:
        """What the ``inbox`` query shows: counters and the waiting messages' ids."""
        return {
            "pending": [m.id for m in self.pending], "bound": self.bound, "accepted": self.accepted,
            "duplicates": self.duplicates, "processed": self.processed, "overflowed": self.overflowed,
            "topics": dict(self.topic_seq),
        }
