"""A topic: who subscribes, what was published, and how far each subscriber has got.

Publishing appends to the topic's log under the next sequence number; each subscriber has
a cursor, and gets the log from its cursor on, in order, in batches. The log is trimmed
below the slowest cursor, so it holds only what some subscriber still lacks; its bound
(``backlog``) is the topic's backpressure: a publish that would pass it is refused with
:class:`TopicFull` (the client's ``publish`` waits and tries again; see docs/messaging.md).

A subscriber that joins gets what is published from then on; messages before it joined
are not replayed to it (as with any pub/sub topic without retention). A publish to a topic
with no subscribers is recorded (it has a sequence number and is in the topic's history)
and delivered to nobody: the receipt says ``subscribers: 0``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .types import AgentMessage

DEFAULT_BACKLOG = 1000
# Messages handed to one subscriber in one delivery (one update on the agent).
DELIVERY_BATCH = 50
# Publish ids remembered to drop a publisher's repeats.
REMEMBERED_PUBLISHES = 5000


class TopicFull(Exception):
    """The topic holds its bound of messages not yet delivered to every subscriber."""


class Subscriber(BaseModel):
    """An agent that gets a topic's messages: its workflow id, and how to start it when it
    is not running (a delivery to a stopped agent starts it: update-with-start)."""

    agent_id: str
    prompt: str
    args: Any = None
    task_queue: str = "lmthing"
    # Run settings for the agent when a delivery starts it (a RunConfig as JSON).
    config: dict[str, Any] = Field(default_factory=dict)
    # The next sequence number it needs.
    cursor: int = 0
    delivered: int = 0
    # The last delivery failure, while deliveries to it fail (they are retried).
    error: str | None = None


class PublishReceipt(BaseModel):
    """What ``publish`` returns once the topic has recorded the message."""

    id: str
    topic: str
    seq: int
    subscribers: int
    duplicate: bool = False


class TopicSnapshot(BaseModel):
    """What the topic's ``topic`` query shows."""

    name: str
    next_seq: int
    backlog: int
    waiting: int
    subscribers: list[Subscriber]


class TopicCarry(BaseModel):
    """The topic workflow's input: its name and bound at first, everything after continue-as-new."""

    name: str
    backlog: int = DEFAULT_BACKLOG
    # Continue as new after this many history events of one run (or when Temporal suggests).
    events_per_run: int = 10_000
    log: list[AgentMessage] = Field(default_factory=list)
    next_seq: int = 0
    subscribers: list[Subscriber] = Field(default_factory=list)
    # Publish id -> its sequence number, for the latest REMEMBERED_PUBLISHES publishes.
    published: dict[str, int] = Field(default_factory=dict)


class TopicState:
    def __init__(self, carry: TopicCarry) -> None:
        self.name = carry.name
        self.backlog = carry.backlog
        self.events_per_run = carry.events_per_run
        self.log: list[AgentMessage] = list(carry.log)
        self.next_seq = carry.next_seq
        self.subscribers: dict[str, Subscriber] = {s.agent_id: s for s in carry.subscribers}
        self._published: dict[str, int] = dict(carry.published)

    # ------------------------------------------------------------------------ publishing
    def repeat_of(self, message: AgentMessage) -> PublishReceipt | None:
        """The receipt of an earlier publish of the same id, if there was one."""
        if message.id not in self._published:
            return None
        return PublishReceipt(id=message.id, topic=self.name, seq=self._published[message.id],
                              subscribers=len(self.subscribers), duplicate=True)

    def check_room(self) -> None:
        if len(self.log) >= self.backlog:
            slowest = min(self.subscribers.values(), key=lambda s: s.cursor, default=None)
            who = f"; the slowest subscriber is {slowest.agent_id!r}" + (f" ({slowest.error})" if slowest and slowest.error else "") if slowest else ""
            raise TopicFull(
                f"topic {self.name!r} is full: {len(self.log)} messages of its backlog of {self.backlog} are not "
                f"delivered to every subscriber yet{who}; publish again later"
            )

    def publish(self, message: AgentMessage) -> PublishReceipt:
        repeat = self.repeat_of(message)
        if repeat is not None:
            return repeat
        seq = self.next_seq
        self.next_seq += 1
        self._published[message.id] = seq
        if len(self._published) > REMEMBERED_PUBLISHES:
            del self._published[next(iter(self._published))]
        if self.subscribers:
            self.log.append(message.model_copy(update={"topic": self.name, "seq": seq}))
        return PublishReceipt(id=message.id, topic=self.name, seq=seq, subscribers=len(self.subscribers))

    # ---------------------------------------------------------------------- subscribing
    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        """Add (or update) a subscriber; a new one starts at the next message published."""
        known = self.subscribers.get(subscriber.agent_id)
        cursor = known.cursor if known is not None else self.next_seq
        added = subscriber.model_copy(update={"cursor": cursor, "delivered": known.delivered if known else 0, "error": None})
        self.subscribers[subscriber.agent_id] = added
        return added

    def unsubscribe(self, agent_id: str) -> bool:
        found = self.subscribers.pop(agent_id, None) is not None
        self._trim()
        return found

    # ------------------------------------------------------------------------- delivery
    def batch_for(self, agent_id: str) -> list[AgentMessage]:
        sub = self.subscribers.get(agent_id)
        if sub is None:
            return []
        return [m for m in self.log if (m.seq or 0) >= sub.cursor][:DELIVERY_BATCH]

    def delivered(self, agent_id: str, batch: list[AgentMessage]) -> None:
        sub = self.subscribers.get(agent_id)
        if sub is None or not batch:
            return
        sub.cursor = max(sub.cursor, (batch[-1].seq or 0) + 1)
        sub.delivered += len(batch)
        sub.error = None
        self._trim()

    def failed(self, agent_id: str, error: str) -> None:
        sub = self.subscribers.get(agent_id)
        if sub is not None:
            sub.error = error

    def _trim(self) -> None:
        low = min((s.cursor for s in self.subscribers.values()), default=self.next_seq)
        self.log = [m for m in self.log if (m.seq or 0) >= low]

    # ------------------------------------------------------------------------- reading
    def snapshot(self) -> TopicSnapshot:
        return TopicSnapshot(name=self.name, next_seq=self.next_seq, backlog=self.backlog, waiting=len(self.log),
                             subscribers=[s.model_copy() for s in self.subscribers.values()])

    def carry(self) -> TopicCarry:
        return TopicCarry(name=self.name, backlog=self.backlog, events_per_run=self.events_per_run, log=list(self.log), next_seq=self.next_seq,
                          subscribers=list(self.subscribers.values()), published=dict(self._published))
