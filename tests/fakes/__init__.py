"""Test doubles that speak real wire protocols (see server.py)."""

from .server import (
    ANTHROPIC,
    OPENAI,
    Call,
    FakeModelServer,
    Fault,
    RecordedRequest,
    Reply,
    Usage,
)

__all__ = ["ANTHROPIC", "OPENAI", "Call", "FakeModelServer", "Fault", "RecordedRequest", "Reply", "Usage"]
