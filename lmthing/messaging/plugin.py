"""Messaging on the prompt: ``p.current_message()``, ``p.publish``, ``p.subscribe``,
``p.send``, and tools for the model: ``p.def_publish_tool``, ``p.def_blackboard``.

Every prompt has these (the engine adds this plugin to each run). The I/O goes through the
run's ``messaging`` service (``p.service("messaging")``, workflows/messaging_host.py), whose
calls are activities. A prompt function runs again before every step, so what it sends is
keyed: ``p.publish(topic, content, key=...)`` publishes once per key (the receipt is kept in
``def_state["_lmthing_sent"]``), and the message id is made from the run's id and the key
(``<workflow id>:publish:<key>``), so a repeat anywhere on the way is dropped by the receiver.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

from .types import AgentMessage, MessageError, check_message

SENT_STATE_KEY = "_lmthing_sent"
SUBSCRIBED_STATE_KEY = "_lmthing_subscribed"


def _host(p: StatefulPrompt, api: str) -> Any:
    host = p.service("messaging")
    if host is None:
        if p.scan_only:
            from lmthing.prompt.stateful_prompt import ScanStop

            raise ScanStop(api)
        raise PromptError(f"{api} needs a running workflow: call it from a prompt run, not outside one")
    return host


def current_message(p: StatefulPrompt) -> AgentMessage | None:
    """The message a long-lived agent is answering now (None in other runs)."""
    host = p.service("messaging")
    return host.current_message() if host is not None else None


def _message(p: StatefulPrompt, api: str, content: Any, message_id: str, metadata: dict[str, Any] | None) -> AgentMessage:
    try:
        return check_message({"id": message_id, "content": content, "sender": _host(p, api).me(), "metadata": metadata or {}})
    except MessageError as err:
        raise PromptError(f"{api}: {err}") from None


async def _once(p: StatefulPrompt, api: str, key: str, send: Any) -> dict[str, Any]:
    if not isinstance(key, str) or not key:
        raise PromptError(f"{api} needs key=\"...\": the prompt function runs before every step, and the key makes it send once")
    sent, set_sent = p.def_state(SENT_STATE_KEY, {})
    if key in sent:
        return sent[key]
    receipt = await send()
    set_sent({**sent, key: receipt})
    return receipt


async def publish(p: StatefulPrompt, topic: str, content: Any, *, key: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Publish ``content`` to ``topic`` once per ``key``; returns the topic's receipt
    ``{"id", "topic", "seq", "subscribers"}`` (``subscribers: 0``: nobody got it)."""
    host = _host(p, "publish")
    return await _once(p, "publish", f"publish:{key}", lambda: host.publish(
        topic, _message(p, "publish", content, f"{host.me()}:publish:{key}", metadata)))


async def send(p: StatefulPrompt, agent_id: str, content: Any, *, prompt: str, key: str, args: Any = None,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``content`` to the long-lived agent ``agent_id`` (a ``prompt`` started with
    ``args`` if it is not running), once per ``key``; its reply is on the agent's stream."""
    host = _host(p, "send")
    return await _once(p, "send", f"send:{key}", lambda: host.send(
        agent_id, prompt, args, _message(p, "send", content, f"{host.me()}:send:{key}", metadata)))


async def subscribe(p: StatefulPrompt, *topics: str) -> list[str]:
    """Subscribe this long-lived agent to ``topics`` (once each; later calls do nothing):
    from then on every message published there is delivered to it as a turn."""
    host = _host(p, "subscribe")
    if not host.long_lived():
        raise PromptError("subscribe: only a long-lived agent gets a topic's messages; start it with start_agent(...) or "
                          "RunConfig(long_lived=True)")
    done, set_done = p.def_state(SUBSCRIBED_STATE_KEY, [])
    for topic in topics:
        if topic not in done:
            await host.subscribe(topic)
            done = [*done, topic]
            set_done(done)
    return list(done)


class PublishArgs(BaseModel):
    topic: str = Field(description="The topic to publish to")
    content: str = Field(description="The message")


def def_publish_tool(p: StatefulPrompt, topics: list[str] | None = None, *, name: str = "publish",
                     description: str | None = None) -> Any:
    """A tool the model calls to publish a message to a topic (one of ``topics``, if given)."""
    allowed = list(topics or [])

    async def run(args: PublishArgs, info: Any) -> dict[str, Any]:
        if allowed and args.topic not in allowed:
            return {"error": f"unknown topic {args.topic!r}; publish to one of: {', '.join(allowed)}"}
        host = _host(p, name)
        message = _message(p, name, args.content, f"{host.me()}:{info.step}:{info.tool_call_id}", None)
        return await host.publish(args.topic, message)

    where = f" One of: {', '.join(allowed)}." if allowed else ""
    return p.def_tool(name, description or f"Publish a message to a topic; every agent subscribed to it gets it.{where}",
                      PublishArgs, run)


class BoardReadArgs(BaseModel):
    key: str | None = Field(default=None, description="The key to read; leave it out to read the whole board")


class BoardWriteArgs(BaseModel):
    key: str = Field(description="The key to write")
    value: Any = Field(description="The value (text or JSON)")
    expected_version: int | None = Field(
        default=None, description="Write only if the key is at this version (0: only if it does not exist yet)")


def def_blackboard(p: StatefulPrompt, board: str = "shared", *, name: str = "board") -> tuple[Any, Any]:
    """Tools ``<name>_read`` and ``<name>_write`` on the shared board ``board``. A write may
    name the version it expects (compare-and-set); a conflict comes back to the model as
    ``{"ok": false, "error": ...}`` with the version the board holds."""

    async def read(args: BoardReadArgs) -> dict[str, Any]:
        return await _host(p, f"{name}_read").board(board, "read", key=args.key)

    async def write(args: BoardWriteArgs) -> dict[str, Any]:
        return await _host(p, f"{name}_write").board(board, "write", key=args.key, value=args.value,
                                                     expected_version=args.expected_version)

    return (
        p.def_tool(f"{name}_read", f"Read the shared board '{board}' (every entry has a value, a version and its writer).",
                   BoardReadArgs, read),
        p.def_tool(f"{name}_write", f"Write an entry on the shared board '{board}'.", BoardWriteArgs, write),
    )


class _MessagingPlugin:
    """Added to every prompt run by the engine."""

    current_message = staticmethod(current_message)
    publish = staticmethod(publish)
    send = staticmethod(send)
    subscribe = staticmethod(subscribe)
    def_publish_tool = staticmethod(def_publish_tool)
    def_blackboard = staticmethod(def_blackboard)


messaging_plugin = _MessagingPlugin()
