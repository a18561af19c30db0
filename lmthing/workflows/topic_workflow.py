"""A topic as a workflow (``lmthing.topic``, id ``lmthing-topic:<name>``).

Publishers reach it with the ``publish`` update (started on first use: update-with-start);
it records the message under the topic's next sequence number, which the update returns,
and hands it to every subscriber with the ``lmthing.deliver`` activity, one delivery loop per
subscriber, in order, in batches. A delivery retries while the agent's mailbox is full
(the topic's log then grows, up to its backlog, and publishers wait in turn); one that
fails outright is recorded on the subscriber (``topic`` query) and tried again after
``RETRY_FAILED_AFTER``: a topic never drops a message for a subscriber it has.

Its history is the audit trail of the topic: every publish, subscribe and delivery. It
continues as new when Temporal suggests it (or after ``events_per_run`` events), carrying
subscribers, cursors and what is not delivered yet.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from lmthing.activities.names import DELIVER, TOPIC_WORKFLOW
from lmthing.messaging.topic import PublishReceipt, Subscriber, TopicCarry, TopicFull, TopicSnapshot, TopicState
from lmthing.messaging.types import MessageError, check_message
from lmthing.orchestration import registry

from . import routing
from .errors import cause_message as _cause_message

RETRY_FAILED_AFTER = timedelta(seconds=30)
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)


@workflow.defn(name=TOPIC_WORKFLOW)
class TopicWorkflow:
    @workflow.init
    def __init__(self, carry: Any) -> None:
        self._state = TopicState(TopicCarry.model_validate(carry))
        self._delivering: set[str] = set()
        self._closing = False

    @workflow.run
    async def run(self, carry: Any) -> None:
        limit = TopicCarry.model_validate(carry).events_per_run
        while True:
            await workflow.wait_condition(lambda: self._work_waiting() or self._should_continue(limit))
            if self._should_continue(limit):
                self._closing = True  # no new deliveries; the running ones finish
                await workflow.wait_condition(lambda: not self._delivering and workflow.all_handlers_finished())
                workflow.continue_as_new(self._state.carry().model_dump(mode="json"))
            for agent_id in self._idle_with_work():
                self._delivering.add(agent_id)
                asyncio.create_task(self._deliver(agent_id))

    def _should_continue(self, limit: int) -> bool:
        return workflow.info().is_continue_as_new_suggested() or workflow.info().get_current_history_length() >= limit

    def _idle_with_work(self) -> list[str]:
        return [a for a in self._state.subscribers if a not in self._delivering and self._state.batch_for(a)]

    def _work_waiting(self) -> bool:
        return not self._closing and bool(self._idle_with_work())

    async def _deliver(self, agent_id: str) -> None:
        try:
            batch = self._state.batch_for(agent_id)
            subscriber = self._state.subscribers[agent_id]
            try:
                await workflow.execute_activity(
                    DELIVER, {"subscriber": subscriber.model_dump(mode="json"), "messages": [m.model_dump(mode="json") for m in batch]},
                    task_queue=routing.tool_task_queue(), start_to_close_timeout=timedelta(hours=1),
                    heartbeat_timeout=timedelta(seconds=30), retry_policy=DELIVERY_RETRY,
                    summary=f"{len(batch)} message(s) to {agent_id}",
                )
            except ActivityError as err:
                error = _cause_message(err) or "delivery failed"
                self._state.failed(agent_id, error)
                workflow.logger.warning("Topic %r: delivery to %r failed, retrying in %s: %s", self._state.name, agent_id,
                                        RETRY_FAILED_AFTER, error)
                await workflow.sleep(RETRY_FAILED_AFTER)
                return
            self._state.delivered(agent_id, batch)
        finally:
            self._delivering.discard(agent_id)

    # -------------------------------------------------------------------------- updates
    @workflow.update
    def publish(self, message: Any) -> PublishReceipt:
        """Record a message ``{"id", "content", "sender"?}``; returns its sequence number."""
        return self._state.publish(check_message(message))

    @publish.validator
    def _check_publish(self, message: Any) -> None:
        try:
            parsed = check_message(message)
        except MessageError as err:
            raise ApplicationError(str(err), type="InvalidMessage", non_retryable=True) from None
        if self._state.repeat_of(parsed) is not None:
            return  # a repeat is answered with the first receipt, even when the topic is full
        try:
            self._state.check_room()
        except TopicFull as err:
            raise ApplicationError(str(err), type="TopicFull") from None

    @workflow.update
    def subscribe(self, subscriber: Any) -> Subscriber:
        """Add an agent ``{"agent_id", "prompt", "args"?, "task_queue"?, "config"?}``: it gets
        every message published from now on (and is started by its first delivery)."""
        return self._state.subscribe(Subscriber.model_validate(subscriber))

    @subscribe.validator
    def _check_subscribe(self, subscriber: Any) -> None:
        try:
            sub = Subscriber.model_validate(subscriber)
        except Exception as err:  # noqa: BLE001
            raise ApplicationError(f"A subscriber is {{\"agent_id\", \"prompt\", ...}}: {err}", type="InvalidSubscriber",
                                   non_retryable=True) from None
        if not sub.agent_id.strip() or not sub.prompt.strip():
            raise ApplicationError("A subscriber needs an agent_id (its workflow id) and a prompt (its workflow type)",
                                   type="InvalidSubscriber", non_retryable=True)
        known = registry.names("prompt")
        if known and sub.prompt not in known:
            raise ApplicationError(
                f"No prompt named {sub.prompt!r} is defined on this worker (prompts: {', '.join(known)}); a subscriber "
                "is started as that workflow type", type="UnknownAgentType", non_retryable=True,
            )

    @workflow.update
    def unsubscribe(self, agent_id: str) -> bool:
        """Remove a subscriber (what it has not got yet is not delivered to it); False if unknown."""
        return self._state.unsubscribe(agent_id)

    @workflow.query
    def topic(self) -> TopicSnapshot:
        """Subscribers with their cursors and errors, and the messages not delivered to all yet."""
        return self._state.snapshot()
