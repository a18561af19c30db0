"""Caller edge of messaging: long-lived agents, topics, boards and merged streams.

- :func:`start_agent` starts a prompt as a long-lived agent with a stable id (or finds the
  one running under it); :class:`AgentHandle` asks it (``ask``: the reply is the update's
  result), tells it (``tell``: a signal), follows its stream and stops it. :func:`ask_agent`
  asks an agent that may not be running yet: update-with-start.
- :func:`publish` / :func:`subscribe` / :func:`unsubscribe` / :func:`topic_info` for topics;
  :class:`Board` for a blackboard.
- :func:`follow_team` merges the streams of several agents (and the sub-agents they start)
  into one, each event tagged with its ``source``.

Backpressure is the sender's: a full mailbox or topic refuses the call, and these helpers
wait and send again (``wait_while_full`` seconds, then :class:`ReceiverFull`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from lmthing.activities.messaging import (
    FULL_TYPES,
    agent_start_args,
    board_contents,
    board_write,
    check_name,
    publish_to,
    refusal_message,
    refusal_type,
    send_again_while_refused,
    subscribe_to,
    topic_id,
    topic_snapshot,
    update_with_start,
)
from lmthing.messaging.board import BoardEntry, BoardWrite
from lmthing.messaging.topic import PublishReceipt, Subscriber, TopicSnapshot
from lmthing.messaging.types import AgentMessage, AgentReply, new_message
from lmthing.prompt.types import RunResult, StreamEvent

from .handle import DEFAULT_TASK_QUEUE, PromptHandle, TextDelta, prompt_name

DEFAULT_WAIT_WHILE_FULL = 60.0
# How often follow_team looks for an agent that is not running yet.
NOT_STARTED_POLL = 0.5


class ReceiverFull(Exception):
    """A mailbox or topic stayed full for as long as the sender would wait; nothing was lost:
    the message was not taken, and may be sent again."""


class MessageRefused(Exception):
    """The receiver refused the message; the text says why (malformed, unknown agent...)."""


def _raise_refusal(err: WorkflowUpdateFailedError, what: str) -> None:
    kind = refusal_type(err)
    cls = ReceiverFull if kind in FULL_TYPES else MessageRefused
    raise cls(f"{what}: {refusal_message(err)}") from None


def _message(content: Any, id: str | None, sender: str | None, metadata: dict[str, Any] | None) -> AgentMessage:
    return content if isinstance(content, AgentMessage) else new_message(content, id=id, sender=sender, metadata=metadata)


class AgentHandle(PromptHandle):
    """A long-lived agent: a prompt run that answers messages (docs/messaging.md)."""

    prompt: str = ""
    task_queue: str = DEFAULT_TASK_QUEUE
    start_args: list[Any] | None = None

    async def ask(self, content: Any, *, id: str | None = None, sender: str | None = None,
                  metadata: dict[str, Any] | None = None, wait_while_full: float = DEFAULT_WAIT_WHILE_FULL) -> AgentReply:
        """Send a message and wait for the reply. Asking again with the same ``id`` returns
        the same reply (the agent keeps its latest ones), so a timed-out ask may be repeated."""
        message = _message(content, id, sender, metadata)
        try:
            if self.start_args is not None:  # the agent is started if it is not running
                return await update_with_start(
                    self.client, "ask", message.model_dump(mode="json"), workflow_type=self.prompt, workflow_id=self.id,
                    start_args=self.start_args, task_queue=self.task_queue, result_type=AgentReply,
                    wait_while_full=wait_while_full, summary=f"agent {self.prompt}",
                )
            return await self._retrying("ask", message, wait_while_full)
        except WorkflowUpdateFailedError as err:
            if "expected but not found" in refusal_message(err):
                raise MessageRefused(await self._not_an_agent(message)) from None
            _raise_refusal(err, f"Agent {self.id!r} did not take message {message.id!r}")
            raise  # unreachable

    async def _retrying(self, update: str, message: AgentMessage, wait_while_full: float) -> AgentReply:
        handle = self.client.get_workflow_handle(self.id)
        return await send_again_while_refused(lambda: handle.execute_update(
            update, message.model_dump(mode="json"), result_type=AgentReply, id=f"ask-{message.id}"), wait_while_full)

    async def _not_an_agent(self, message: AgentMessage) -> str:
        """Why workflow ``self.id`` has no ``ask`` handler: the run that was started is not
        an lmthing prompt (no worker knows that type: its failure names the known ones)."""
        from temporalio.client import WorkflowFailureError

        what = f"Agent {self.id!r} did not take message {message.id!r}"
        try:
            await asyncio.wait_for(self.client.get_workflow_handle(self.id).result(), 5)
        except WorkflowFailureError as failed:
            cause = getattr(failed.cause, "message", None) or str(failed.cause)
            return f"{what}: {cause}"
        except Exception:  # noqa: BLE001  (still running, or not readable: say what is known)
            pass
        return f"{what}: workflow {self.id!r} is not a long-lived lmthing agent (it has no 'ask' update)"

    async def tell(self, content: Any, *, id: str | None = None, sender: str | None = None,
                   metadata: dict[str, Any] | None = None) -> str:
        """Send a message without waiting (the ``message`` signal); returns its id. The reply
        is on the stream (a ``reply`` event with this ``message_id``). A signal cannot be
        refused, so it is queued even over the mailbox's bound."""
        message = _message(content, id, sender, metadata)
        await self.client.get_workflow_handle(self.id).signal("message", message.model_dump(mode="json"))
        return message.id

    async def ask_streaming(self, content: Any, *, id: str | None = None, sender: str | None = None) -> AsyncIterator[TextDelta | AgentReply]:
        """Ask, yielding the reply's text as it arrives, then the :class:`AgentReply`.

        Text deltas reach the stream in batches that may land after the turn's end, so the
        last step's text is completed from the reply: what is yielded is always the reply."""
        message = _message(content, id, sender, None)
        offset = await self._stream_end()
        reply_task = asyncio.ensure_future(self.ask(message))
        attempts: dict[int, int] = {}
        shown: dict[int, str] = {}
        mine = False
        try:
            async for event in self.full_stream(offset):
                if event.type == "message":
                    mine = event.message_id == message.id
                elif mine and event.type == "text_delta" and event.text:
                    seen = attempts.get(event.step)
                    attempts[event.step] = event.attempt
                    restarted = seen is not None and event.attempt != seen
                    shown[event.step] = ("" if restarted else shown.get(event.step, "")) + event.text
                    yield TextDelta(event.text, event.step, event.attempt, restarted=restarted)
                elif event.type == "reply" and event.message_id == message.id:
                    break
                if reply_task.done():
                    break
            reply = await reply_task
            last = shown.get(max(shown), "") if shown else ""
            if reply.text.startswith(last) and len(reply.text) > len(last):
                step = max(shown) if shown else 0
                yield TextDelta(reply.text[len(last):], step, attempts.get(step, 1), restarted=False)
            yield reply
        finally:
            if not reply_task.done():
                reply_task.cancel()

    async def _stream_end(self) -> int:
        from temporalio.contrib.workflow_streams import WorkflowStreamClient

        return await WorkflowStreamClient.create(self.client, self.id).get_offset()

    async def inbox(self) -> dict[str, Any]:
        return await self.handle.query("inbox", result_type=dict)

    async def stop(self) -> RunResult:
        """Stop the agent once it has answered what it holds; returns its final result."""
        await self.client.get_workflow_handle(self.id).signal("stop")
        return await self.client.get_workflow_handle(self.id, result_type=RunResult).result()


def _agent_config(config: Any, overrides: dict[str, Any]) -> Any:
    from lmthing.workflows.config import RunConfig

    base = config if isinstance(config, RunConfig) else RunConfig.model_validate(config or {})
    return base.model_copy(update={"long_lived": True, **{k: v for k, v in overrides.items() if v is not None}})


async def start_agent(
    client: Client, prompt: Any, args: Any = None, *, id: str | None = None, config: Any = None,
    task_queue: str = DEFAULT_TASK_QUEUE, model: str | None = None, max_steps: int | None = None,
    mailbox_size: int | None = None,
) -> AgentHandle:
    """Start ``prompt`` as a long-lived agent under ``id`` (default ``<prompt>-<random>``),
    or connect to the one running under that id: the same id is the same conversation."""
    from .start import start_run

    name = prompt_name(prompt)
    agent_id = id or f"{name}-{uuid.uuid4().hex[:12]}"
    run_config = _agent_config(config, {"model": model, "max_steps": max_steps, "mailbox_size": mailbox_size})
    payload = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
    try:
        handle = await start_run(client, name, payload, config=run_config, id=agent_id, task_queue=task_queue,
                                 summary=f"agent {name}", result_type=RunResult)
    except WorkflowAlreadyStartedError as running:
        if running.workflow_type != name:
            raise ValueError(f"Workflow {agent_id!r} is running as {running.workflow_type!r}, not as prompt {name!r}; "
                             "use another id") from None
        handle = client.get_workflow_handle(agent_id, result_type=RunResult)
    agent = AgentHandle(handle, client)
    agent.prompt, agent.task_queue = name, task_queue
    return agent


def get_agent(client: Client, agent_id: str, prompt: Any = None, args: Any = None, *, config: Any = None,
              task_queue: str = DEFAULT_TASK_QUEUE) -> AgentHandle:
    """A handle on agent ``agent_id``. With ``prompt``, its ``ask`` starts the agent when it
    is not running (update-with-start), so the first message needs no ``start_agent``."""
    agent = AgentHandle(client.get_workflow_handle(agent_id, result_type=RunResult), client)
    if prompt is not None:
        agent.prompt, agent.task_queue = prompt_name(prompt), task_queue
        sub = Subscriber(agent_id=agent_id, prompt=agent.prompt, args=args,
                         config=_agent_config(config, {}).model_dump(mode="json", exclude_defaults=True))
        agent.start_args = agent_start_args(sub)
    return agent


async def ask_agent(client: Client, prompt: Any, agent_id: str, content: Any, *, args: Any = None, config: Any = None,
                    task_queue: str = DEFAULT_TASK_QUEUE, id: str | None = None) -> AgentReply:
    """Ask agent ``agent_id`` (a ``prompt``), starting it first if it is not running."""
    return await get_agent(client, agent_id, prompt, args, config=config, task_queue=task_queue).ask(content, id=id)


# --------------------------------------------------------------------------------- topics
async def publish(client: Client, topic: str, content: Any, *, id: str | None = None, sender: str | None = None,
                  metadata: dict[str, Any] | None = None, task_queue: str = DEFAULT_TASK_QUEUE,
                  wait_while_full: float = DEFAULT_WAIT_WHILE_FULL) -> PublishReceipt:
    """Publish to ``topic`` (started on first use). Returns once the topic has recorded the
    message (its ``seq``; ``subscribers`` it goes to, 0 if none). Publishing the same ``id``
    again returns the first receipt (``duplicate: True``)."""
    message = _message(content, id, sender, metadata)
    try:
        return await publish_to(client, topic, message, task_queue, wait_while_full=wait_while_full)
    except WorkflowUpdateFailedError as err:
        _raise_refusal(err, f"Topic {topic!r} did not take message {message.id!r}")
        raise


async def subscribe(client: Client, topic: str, agent_id: str, prompt: Any, args: Any = None, *, config: Any = None,
                    task_queue: str = DEFAULT_TASK_QUEUE) -> Subscriber:
    """Subscribe long-lived agent ``agent_id`` (a ``prompt``) to ``topic``: it gets every
    message published from now on, and its first delivery starts it if it is not running."""
    sub = Subscriber(agent_id=agent_id, prompt=prompt_name(prompt), args=args, task_queue=task_queue,
                     config=_agent_config(config, {}).model_dump(mode="json", exclude_defaults=True))
    try:
        return await subscribe_to(client, topic, sub, task_queue)
    except WorkflowUpdateFailedError as err:
        _raise_refusal(err, f"Topic {topic!r} refused subscriber {agent_id!r}")
        raise


async def create_topic(client: Client, topic: str, *, backlog: int | None = None, events_per_run: int | None = None,
                       task_queue: str = DEFAULT_TASK_QUEUE) -> None:
    """Start topic ``topic`` with its own bound (``backlog``: messages not yet delivered to
    every subscriber before publishers wait) before its first use; a topic that exists
    already is left as it is. Without this, a topic starts on first use with the defaults."""
    from temporalio.common import WorkflowIDConflictPolicy

    from lmthing.activities.names import TOPIC_WORKFLOW
    from lmthing.messaging.topic import TopicCarry

    carry = TopicCarry(name=topic, **{k: v for k, v in (("backlog", backlog), ("events_per_run", events_per_run)) if v is not None})
    await client.start_workflow(TOPIC_WORKFLOW, carry.model_dump(mode="json"), id=topic_id(topic), task_queue=task_queue,
                                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, static_summary=f"topic {topic}")


async def unsubscribe(client: Client, topic: str, agent_id: str) -> bool:
    return await client.get_workflow_handle(topic_id(topic)).execute_update("unsubscribe", agent_id, result_type=bool)


async def topic_info(client: Client, topic: str) -> TopicSnapshot:
    """Subscribers (cursor, delivered, error) and what waits to be delivered."""
    return await topic_snapshot(client, topic)


# ---------------------------------------------------------------------------------- board
class BoardConflictError(Exception):
    """A compare-and-set write found another version on the board (the text says which)."""


class Board:
    """A shared blackboard by name: ``read``, ``contents``, ``write`` (compare-and-set with
    ``expected_version``), ``delete``."""

    def __init__(self, client: Client, name: str, *, task_queue: str = DEFAULT_TASK_QUEUE) -> None:
        self.client, self.name, self.task_queue = client, check_name("Board", name), task_queue

    async def contents(self) -> dict[str, BoardEntry]:
        return await board_contents(self.client, self.name)

    async def read(self, key: str) -> BoardEntry | None:
        return (await self.contents()).get(key)

    async def write(self, key: str, value: Any, *, expected_version: int | None = None, writer: str | None = None) -> BoardEntry:
        return await self._write(BoardWrite(key=key, value=value, expected_version=expected_version, writer=writer))

    async def delete(self, key: str, *, expected_version: int | None = None, writer: str | None = None) -> None:
        await self._write(BoardWrite(key=key, delete=True, expected_version=expected_version, writer=writer))

    async def _write(self, write: BoardWrite) -> Any:
        try:
            return await board_write(self.client, self.name, write, self.task_queue)
        except WorkflowUpdateFailedError as err:
            if refusal_type(err) == "BoardConflict":
                raise BoardConflictError(refusal_message(err)) from None
            raise MessageRefused(f"Board {self.name!r} refused the write: {refusal_message(err)}") from None


# -------------------------------------------------------------------------- merged streams
async def follow_team(client: Client, *agent_ids: str, children: bool = True, topics: list[str] | None = None,
                      until_idle: float | None = None) -> AsyncIterator[StreamEvent]:
    """One stream of several agents' events, each tagged with ``source`` (the workflow id it
    comes from): the given agents, the sub-agents they start (``children``), and the
    subscribers of ``topics``. An agent that is not running yet (a subscriber that its first
    delivery will start) is followed from when it starts. Ends when every followed stream
    has ended, or after ``until_idle`` seconds without an event."""
    queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
    followed: dict[str, asyncio.Task[None]] = {}

    def follow(workflow_id: str) -> None:
        if workflow_id not in followed:
            followed[workflow_id] = asyncio.ensure_future(_pump(workflow_id))

    async def _pump(workflow_id: str) -> None:
        try:
            while True:
                try:
                    async for event in PromptHandle(client.get_workflow_handle(workflow_id), client).full_stream():
                        await queue.put(event.model_copy(update={"source": workflow_id}))
                    return
                except RPCError as err:
                    # An agent that a first delivery will start is followed once it exists.
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise
                    await asyncio.sleep(NOT_STARTED_POLL)
        except Exception as err:  # noqa: BLE001  (a stream that cannot be read ends, with its reason)
            await queue.put(StreamEvent(type="error", error=f"cannot follow {workflow_id}: {err}", source=workflow_id))
        finally:
            await queue.put(None)

    ids = list(agent_ids)
    for topic in topics or []:
        ids += [s.agent_id for s in (await topic_info(client, topic)).subscribers]
    for workflow_id in ids:
        follow(workflow_id)
    ended = 0
    try:
        while ended < len(followed):
            try:
                event = await (asyncio.wait_for(queue.get(), until_idle) if until_idle else queue.get())
            except asyncio.TimeoutError:
                return
            if event is None:
                ended += 1
                continue
            if children and event.type == "agent_start" and event.workflow_id:
                follow(event.workflow_id)
            yield event
    finally:
        for task in followed.values():
            task.cancel()
        for task in followed.values():
            with contextlib.suppress(BaseException):
                await task
