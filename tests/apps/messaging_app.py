"""Long-lived agents, topics and a blackboard for tests/test_messaging.py."""

from __future__ import annotations

from temporalio import activity

from lmthing import ToolContext, prompt, tool
from lmthing.testing import last_user_text, scripted_model, text, tool_call

ECHO = scripted_model("messaging-echo", [lambda request: text(f"echo: {last_user_text(request)}")], repeat=True)


@prompt(model=ECHO, max_steps=3)
def echo_agent(p):
    """Answers every message with an echo, and counts the messages it processed by id."""
    p.def_system("role", "You answer every message you get.")
    processed, set_processed = p.def_state("processed", [])
    message = p.current_message()
    if message is not None and (not processed or processed[-1] != message.id):
        set_processed([*processed, message.id])


@prompt(model=ECHO, max_steps=3)
def topic_listener(p):
    """A long-lived agent that subscribes itself to the 'news' topic on its first turn."""
    p.def_system("role", "You read the news.")
    processed, set_processed = p.def_state("processed", [])
    message = p.current_message()
    if message is not None:
        if message.topic is None:
            return  # a direct message, e.g. "start listening"
        if not processed or processed[-1] != message.id:
            set_processed([*processed, message.id])


@prompt(model=ECHO, max_steps=3)
async def self_subscriber(p):
    """Subscribes itself to the topics its first message names: {"subscribe": [...]}."""
    processed, set_processed = p.def_state("processed", [])
    message = p.current_message()
    if message is None:
        return
    if isinstance(message.content, dict) and message.content.get("subscribe"):
        await p.subscribe(*message.content["subscribe"])
    elif message.topic is not None and (not processed or processed[-1] != message.id):
        set_processed([*processed, message.id])


def _board_script(request):
    """Writes the message on the board with compare-and-set, then answers."""
    last = request.messages[-1]
    if last.role == "user":
        return tool_call("board_write", {"key": "note", "value": last_user_text(request), "expected_version": 0})
    return text(f"board said: {last.content}")


BOARD_MODEL = scripted_model("messaging-board", [_board_script], repeat=True)


@prompt(model=BOARD_MODEL, max_steps=4)
def board_writer(p):
    """Writes what it is told on the shared board 'tests'."""
    p.def_blackboard("tests")


def _publish_script(request):
    last = request.messages[-1]
    if last.role == "user":
        return tool_call("publish", {"topic": "relay", "content": f"relayed: {last_user_text(request)}"})
    return text(f"published: {last.content}")


PUBLISH_MODEL = scripted_model("messaging-publisher", [_publish_script], repeat=True)


@prompt(model=PUBLISH_MODEL, max_steps=4)
def relay_agent(p):
    """Publishes what it is told to the 'relay' topic through its publish tool."""
    p.def_publish_tool(["relay"])


SLOW = scripted_model("messaging-slow", [lambda request: text(f"slow: {last_user_text(request)}", delay=0.15)], repeat=True)


@prompt(model=SLOW, max_steps=2)
def slow_agent(p):
    """Takes a while over each message (so its mailbox fills up)."""
    processed, set_processed = p.def_state("processed", [])
    message = p.current_message()
    if message is not None and (not processed or processed[-1] != message.id):
        set_processed([*processed, message.id])


@prompt(model=ECHO, max_steps=3)
async def forwarder(p):
    """Forwards each message's "text" to the long-lived echo agent its "to" names (p.send),
    or to the topic its "topic" names (p.publish)."""
    message = p.current_message()
    if message is not None and isinstance(message.content, dict):
        if "to" in message.content:
            await p.send(message.content["to"], message.content["text"], prompt="echo_agent", key=message.id)
        else:
            receipt = await p.publish(message.content["topic"], message.content["text"], key=message.id)
            p.def_var("RECEIPT", receipt)


@tool
async def announce(text: str, ctx: ToolContext) -> dict:
    """Announce something on the 'announcements' topic (a publish from inside a tool)."""
    from lmthing.client.messaging import publish

    receipt = await publish(activity.client(), "announcements", text, id=ctx.idempotency_key,
                            task_queue=activity.info().task_queue)
    return receipt.model_dump()


ANNOUNCE_MODEL = scripted_model("messaging-announce", [
    lambda request: tool_call("announce", {"text": last_user_text(request)}) if request.messages[-1].role == "user"
    else text(f"announced: {request.messages[-1].content}")], repeat=True)


@prompt(model=ANNOUNCE_MODEL, max_steps=3)
def announcer(p):
    """Announces what it is told through its @tool."""
    p.def_tool(announce)


LOOSE_MODEL = scripted_model("messaging-loose", [
    lambda request: tool_call("publish", {"topic": last_user_text(request), "content": "x"})
    if request.messages[-1].role == "user" else text(f"tool said: {request.messages[-1].content}")], repeat=True)


@prompt(model=LOOSE_MODEL, max_steps=3)
def loose_relay(p):
    """Publishes to whatever topic it is told (its publish tool has no topic list)."""
    p.def_publish_tool()
