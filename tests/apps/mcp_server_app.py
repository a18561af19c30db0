"""Prompts for tests/test_mcp_server.py (``lmthing mcp serve``): served as MCP tools, run by
the session worker. Names are prefixed: every tests/apps module shares one worker."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text


class Question(BaseModel):
    question: str = Field(description="What to ask the oracle.")
    times: int = Field(default=1, ge=1, le=3, description="How often to repeat the answer.")


@prompt(model=scripted_model("mcp-oracle", [lambda request: text(f"The oracle says: {last_user_text(request)}")], repeat=True))
def mcp_oracle(p, args: Question):
    """Answers a question, as an oracle would."""
    p.user(" ".join([args.question] * args.times))


@prompt(model=scripted_model("mcp-hidden", [text("a secret")], repeat=True))
def mcp_hidden(p):
    """Knows a secret that should not be served."""
    p.user("Tell me.")


@prompt(model=scripted_model("mcp-broken", [text("never")], repeat=True))
def mcp_broken(p):
    """Fails before it asks anything."""
    raise RuntimeError("the ledger is closed")
