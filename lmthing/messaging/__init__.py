"""Agents that talk to each other: messages, mailboxes, topics and a shared blackboard.

This package is engine-neutral like ``prompt/``: the message types and the state machines
of a mailbox, a topic and a board, unit-testable without Temporal. The entity workflows that
hold them are in ``workflows/`` (a long-lived agent is a prompt workflow in ``long_lived``
mode; ``lmthing.topic`` and ``lmthing.board`` are workflows of their own), deliveries and
board calls from a run are activities (``activities/messaging.py``), and publishing,
asking, following and chatting are in ``client/messaging.py``.
"""

from .board import BoardConflict, BoardEntry, BoardState
from .inbox import Inbox, MailboxFull
from .topic import Subscriber, TopicState
from .types import AgentMessage, AgentReply, MessageError, check_message, new_message

__all__ = [
    "AgentMessage", "AgentReply", "BoardConflict", "BoardEntry", "BoardState", "Inbox", "MailboxFull",
    "MessageError", "Subscriber", "TopicState", "check_message", "new_message",
]
