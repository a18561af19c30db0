"""What agents send each other.

A message has an id that its sender chooses (or that is made for it): the id is what makes
delivery *at least once, processed once*. Every hop may repeat a message (a retried
activity, a client that sends again after a timeout); the receiver drops an id it has seen.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmthing.prompt.tools import format_validation_error
from lmthing.prompt.types import Usage

# A message is a unit of conversation, not a file transfer: bigger content belongs in a
# store (or the blackboard) with the message naming it. Well under Temporal's 2 MB payload
# limit, so a batch of deliveries still fits in one update.
MAX_MESSAGE_BYTES = 256 * 1024


class MessageError(ValueError):
    """A message that cannot be sent as it is; the text says what to change."""


class MessagingError(RuntimeError):
    """A publish, send, subscription or board call from a run that failed for good (the
    receiver refused it, or its activity ran out of attempts); the text says which and why."""


class AgentMessage(BaseModel):
    """One message to an agent: from a client, another agent, or a topic."""

    model_config = ConfigDict(extra="ignore")  # an older worker reads a newer payload

    id: str
    content: Any
    # Who sent it: a workflow id (an agent), or what a client says it is.
    sender: str | None = None
    # Set on a message delivered from a topic, with its position in the topic.
    topic: str | None = None
    seq: int | None = None
    # Free-form labels the receiving prompt can read (``p.message.metadata``).
    metadata: dict[str, Any] = Field(default_factory=dict)

    def as_text(self) -> str:
        """The message as the user turn the agent's model sees: a direct message as it is
        (its sender is on ``p.current_message().sender``), a topic's message wrapped in a
        ``<message topic=... from=...>`` tag, so the model can tell the two apart."""
        body = self.content if isinstance(self.content, str) else json.dumps(self.content, ensure_ascii=False, indent=2)
        if self.topic is None:
            return body
        origin = " ".join(f'{k}="{v}"' for k, v in (("topic", self.topic), ("from", self.sender)) if v is not None)
        return f"<message {origin}>\n{body}\n</message>"


class AgentReply(BaseModel):
    """What a long-lived agent answered to one message (the result of the ``ask`` update)."""

    model_config = ConfigDict(extra="ignore")

    message_id: str
    text: str
    structured: Any = None
    # The agent's turn number (0-based) and the model steps the turn took.
    turn: int
    steps: int
    stop_reason: str
    # What this turn used (the agent's totals are on its ``status`` query).
    usage: Usage = Field(default_factory=Usage)


def new_message(content: Any, *, id: str | None = None, sender: str | None = None, metadata: dict[str, Any] | None = None) -> AgentMessage:
    """A message with a fresh id (or the given one), checked like one that arrives."""
    return check_message({"id": id or uuid.uuid4().hex, "content": content, "sender": sender, "metadata": metadata or {}})


def check_message(raw: Any) -> AgentMessage:
    """``raw`` as a message, or a :class:`MessageError` that says what is wrong with it.

    Accepts a message model, a dict with at least ``content`` (``id`` is required: a
    message without one could not be told from its repeat), or nothing else."""
    if isinstance(raw, AgentMessage):
        message = raw
    else:
        if not isinstance(raw, dict):
            raise MessageError(
                f"A message is a JSON object {{\"id\": \"...\", \"content\": ...}}; got {type(raw).__name__} {_short(raw)}"
            )
        try:
            message = AgentMessage.model_validate(raw)
        except ValidationError as err:
            raise MessageError(f"Malformed message: {format_validation_error(err)}; send {{\"id\": \"...\", \"content\": ...}}") from None
    if not isinstance(message.id, str) or not message.id.strip():
        raise MessageError("A message needs a non-empty id (any unique string: the receiver drops an id it has seen)")
    if message.content is None or message.content == "":
        raise MessageError(f"Message {message.id!r} has no content; give it text or a JSON value")
    try:
        size = json_size(message.content)
    except (TypeError, ValueError) as err:
        raise MessageError(f"Message {message.id!r}: content must be text or JSON ({err})") from None
    if size > MAX_MESSAGE_BYTES:
        raise MessageError(
            f"Message {message.id!r} is {size:,} bytes, over the limit of {MAX_MESSAGE_BYTES:,}; put large content "
            "on the blackboard or in a store and send its key"
        )
    return message


def json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON (UTF-8); TypeError or ValueError when it is not JSON."""
    return len(json.dumps(value, ensure_ascii=False).encode())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
