"""Messaging I/O: the calls that reach another workflow (an agent, a topic, a board).

Each is an update with start (``execute_update_with_start_workflow``): the target is started
if it is not running (a message to a stopped agent starts it; a topic or board exists from
its first use), and the update's validator may refuse the call, which is how backpressure
reaches the sender (``MailboxFull``, ``TopicFull``). As activities they are retried, so a
delivery is at least once; receivers drop repeats by message id.

The same functions serve the caller edge (``client/messaging.py`` calls them with its own
client) and the activities below (with the worker's client, ``activity.client()``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from lmthing.messaging.board import BoardCarry, BoardEntry, BoardWrite
from lmthing.messaging.topic import PublishReceipt, Subscriber, TopicCarry, TopicSnapshot
from lmthing.messaging.types import AgentMessage

from .names import BOARD, BOARD_ID_PREFIX, BOARD_WORKFLOW, DELIVER, PUBLISH, SEND, SUBSCRIBE, TOPIC_ID_PREFIX, TOPIC_WORKFLOW

# Topic and board names become workflow ids: printable, no spaces, not too long.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
# How a sender waits on a full mailbox or topic: first pause, then doubling up to the cap.
WAIT_FIRST = 0.2
WAIT_CAP = 5.0
# Refusals that mean "not now": the sender waits and sends again (AgentContinuing: the
# agent is about to continue as new; its next run takes the message).
FULL_TYPES = ("MailboxFull", "TopicFull", "AgentContinuing")
T = TypeVar("T")


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid: use 1-200 letters, digits and . _ : / - (starting with a letter "
            "or digit); it becomes part of a workflow id"
        )
    return name


def topic_id(topic: str) -> str:
    return TOPIC_ID_PREFIX + check_name("Topic", topic)


def board_id(board: str) -> str:
    return BOARD_ID_PREFIX + check_name("Board", board)


def refusal_type(err: BaseException) -> str | None:
    """The ApplicationError type an update's validator or handler refused a call with."""
    cause = getattr(err, "cause", None)
    return getattr(cause, "type", None) if isinstance(err, WorkflowUpdateFailedError) else None


def refusal_message(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    return getattr(cause, "message", None) or str(cause or err)


async def send_again_while_refused(call: Callable[[], Awaitable[T]], wait_while_full: float | None = None) -> T:
    """``call()`` (an update), made again while the receiver refuses it for being full
    (``MailboxFull``, ``TopicFull``) or about to continue as new (``AgentContinuing``): after
    a pause that doubles up to ``WAIT_CAP``, for at most ``wait_while_full`` seconds (None:
    for ever), heartbeating when it runs in an activity. Any other refusal is raised
    (``WorkflowUpdateFailedError``), as is the last one when time is up."""
    loop = asyncio.get_running_loop()
    deadline = None if wait_while_full is None else loop.time() + wait_while_full
    pause = WAIT_FIRST
    while True:
        try:
            return await call()
        except WorkflowUpdateFailedError as err:
            kind = refusal_type(err)
            if kind not in FULL_TYPES or (deadline is not None and loop.time() + pause > deadline):
                raise
            if activity.in_activity():
                activity.heartbeat(f"{kind}: {refusal_message(err)}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, WAIT_CAP)


async def update_with_start(
    client: Client, update: str, arg: Any, *, workflow_type: str, workflow_id: str, start_args: list[Any],
    task_queue: str, result_type: type | None = None, wait_while_full: float | None = None, summary: str | None = None,
) -> Any:
    """Run update ``update`` on ``workflow_id``, starting it first when it is not running;
    sent again while the receiver is full (:func:`send_again_while_refused`)."""

    def call() -> Awaitable[Any]:
        start = WithStartWorkflowOperation(
            workflow_type, args=start_args, id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, static_summary=summary,
        )
        return client.execute_update_with_start_workflow(update, arg, start_workflow_operation=start, result_type=result_type)

    return await send_again_while_refused(call, wait_while_full)


def agent_start_args(subscriber: Subscriber) -> list[Any]:
    return [subscriber.args, {**subscriber.config, "long_lived": True}]


# ------------------------------------------------------------------------- activities
class DeliverInput(BaseModel):
    subscriber: Subscriber
    messages: list[AgentMessage]


class PublishInput(BaseModel):
    topic: str
    message: AgentMessage
    task_queue: str


class SubscribeInput(BaseModel):
    topic: str
    subscriber: Subscriber
    task_queue: str


class SendInput(BaseModel):
    """A message from a run to a long-lived agent (started if it is not running)."""

    target: Subscriber
    message: AgentMessage


class BoardCall(BaseModel):
    board: str
    op: str  # "read" | "write" | "delete"
    key: str | None = None
    value: Any = None
    expected_version: int | None = None
    writer: str | None = None
    task_queue: str


class BoardAnswer(BaseModel):
    ok: bool = True
    entry: BoardEntry | None = None
    entries: dict[str, BoardEntry] = Field(default_factory=dict)
    error: str | None = None


def _named(kind: str, name: str) -> None:
    """A topic or board name that cannot be a workflow id fails the call for good."""
    try:
        check_name(kind, name)
    except ValueError as err:
        raise ApplicationError(str(err), type="InvalidName", non_retryable=True) from None


def _refused(err: WorkflowUpdateFailedError, what: str) -> ApplicationError:
    return ApplicationError(f"{what}: {refusal_message(err)}", type=refusal_type(err) or "Refused", non_retryable=True)


@activity.defn(name=DELIVER)
async def deliver(payload: DeliverInput) -> dict[str, int]:
    """Hand a batch of a topic's messages to one subscriber; waits while its mailbox is full."""
    sub = payload.subscriber
    remaining = [m.model_dump(mode="json") for m in payload.messages]
    totals = {"accepted": 0, "duplicates": 0}
    pause = WAIT_FIRST
    while remaining:  # the agent takes what fits in its mailbox; the rest waits for room
        try:
            answer = await update_with_start(
                activity.client(), "deliver", remaining, workflow_type=sub.prompt, workflow_id=sub.agent_id,
                start_args=agent_start_args(sub), task_queue=sub.task_queue, result_type=dict, summary=f"agent {sub.prompt}",
            )
        except WorkflowUpdateFailedError as err:
            raise _refused(err, f"Agent {sub.agent_id!r} ({sub.prompt}) refused the delivery") from None
        taken = answer.get("taken", len(remaining))  # agents of older code take the whole batch
        totals["accepted"] += answer.get("accepted", 0)
        totals["duplicates"] += answer.get("duplicates", 0)
        remaining = remaining[taken:]
        if remaining:
            activity.heartbeat(f"{len(remaining)} message(s) wait for room in {sub.agent_id}'s mailbox")
            await asyncio.sleep(pause)
            pause = min(pause * 2, WAIT_CAP)
    return totals


@activity.defn(name=SEND)
async def send(payload: SendInput) -> dict[str, int]:
    """Deliver one message to an agent (the same path as a topic's delivery)."""
    return await deliver(DeliverInput(subscriber=payload.target, messages=[payload.message]))


async def publish_to(client: Client, topic: str, message: AgentMessage, task_queue: str,
                     wait_while_full: float | None = None) -> PublishReceipt:
    return await update_with_start(
        client, "publish", message.model_dump(mode="json"), workflow_type=TOPIC_WORKFLOW, workflow_id=topic_id(topic),
        start_args=[TopicCarry(name=topic).model_dump(mode="json")], task_queue=task_queue,
        result_type=PublishReceipt, wait_while_full=wait_while_full, summary=f"topic {topic}",
    )


async def subscribe_to(client: Client, topic: str, subscriber: Subscriber, task_queue: str) -> Subscriber:
    return await update_with_start(
        client, "subscribe", subscriber.model_dump(mode="json"), workflow_type=TOPIC_WORKFLOW, workflow_id=topic_id(topic),
        start_args=[TopicCarry(name=topic).model_dump(mode="json")], task_queue=task_queue, result_type=Subscriber,
        summary=f"topic {topic}",
    )


async def topic_snapshot(client: Client, topic: str) -> TopicSnapshot:
    return await client.get_workflow_handle(topic_id(topic)).query("topic", result_type=TopicSnapshot)


async def board_write(client: Client, board: str, write: BoardWrite, task_queue: str) -> BoardEntry | None:
    return await update_with_start(
        client, "write", write.model_dump(mode="json"), workflow_type=BOARD_WORKFLOW, workflow_id=board_id(board),
        start_args=[BoardCarry(name=board).model_dump(mode="json")], task_queue=task_queue, result_type=BoardEntry,
        summary=f"board {board}",
    )


async def board_contents(client: Client, board: str) -> dict[str, BoardEntry]:
    """The board's entries; a board nobody has written to yet is empty."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await client.get_workflow_handle(board_id(board)).query("contents", result_type=dict[str, BoardEntry])
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return {}
        raise


@activity.defn(name=PUBLISH)
async def publish(payload: PublishInput) -> PublishReceipt:
    """Publish from a run (``p.publish``, the publish tool); waits while the topic is full."""
    _named("Topic", payload.topic)
    try:
        return await publish_to(activity.client(), payload.topic, payload.message, payload.task_queue)
    except WorkflowUpdateFailedError as err:
        raise _refused(err, f"Topic {payload.topic!r} refused the message") from None


@activity.defn(name=SUBSCRIBE)
async def subscribe(payload: SubscribeInput) -> Subscriber:
    _named("Topic", payload.topic)
    try:
        return await subscribe_to(activity.client(), payload.topic, payload.subscriber, payload.task_queue)
    except WorkflowUpdateFailedError as err:
        raise _refused(err, f"Topic {payload.topic!r} refused the subscription") from None


@activity.defn(name=BOARD)
async def board_call(call: BoardCall) -> BoardAnswer:
    """Read or write a board for a run; a refused write (a compare-and-set conflict) is an
    answer with ``ok: False`` and the reason, for the model to act on, not a failure."""
    _named("Board", call.board)
    client = activity.client()
    if call.op == "read":
        entries = await board_contents(client, call.board)
        if call.key is None:
            return BoardAnswer(entries=entries)
        return BoardAnswer(entry=entries.get(call.key), ok=call.key in entries,
                           error=None if call.key in entries else f"no entry {call.key!r} on board {call.board!r}")
    write = BoardWrite(key=call.key or "", value=call.value, expected_version=call.expected_version,
                       writer=call.writer, delete=call.op == "delete")
    try:
        return BoardAnswer(entry=await board_write(client, call.board, write, call.task_queue))
    except WorkflowUpdateFailedError as err:
        return BoardAnswer(ok=False, error=refusal_message(err))


ACTIVITIES = (deliver, send, publish, subscribe, board_call)
