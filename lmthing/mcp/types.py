"""What crosses between a run and the MCP activities (docs/mcp.md): the server's settings,
its tool list and one tool call's input and result. Plain pydantic models, engine-neutral;
versioned by adding optional fields, never by renaming.

A server's settings are in the run's history (they are the activities' input), so they
hold no secrets: a value written ``${NAME}`` in ``command``, ``env``, ``headers``, ``url`` or
``cwd`` is replaced on the worker, by the worker's environment variable ``NAME``, when it
connects (activities/mcp_sessions.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class McpServerSpec(BaseModel):
    """One MCP server: a command run over stdio, or a streamable HTTP ``url``."""

    model_config = ConfigDict(frozen=True)

    name: str
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Seconds one tools/call may take before the attempt fails (and is retried).
    timeout: float = 60.0

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"

    @property
    def where(self) -> str:
        """The server as an error message names it: its command, or its URL."""
        return f"command {' '.join(self.command)!r}" if self.command else f"url {self.url!r}"

    def key(self) -> str:
        """Identifies the server's settings: a worker keeps one session and one tool list
        per key (unresolved ``${NAME}`` values, so no secret is hashed into it)."""
        text = json.dumps(self.model_dump(mode="json", exclude={"timeout"}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class McpToolInfo(BaseModel):
    """One tool of the server's tools/list answer."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class McpToolList(BaseModel):
    server: str
    tools: list[McpToolInfo] = Field(default_factory=list)


class McpCall(BaseModel):
    """One tools/call: the server, the tool's own name on it, and the model's arguments."""

    server: McpServerSpec
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # workflow id + tool call id: the same for every attempt of the call (servers may use it).
    idempotency_key: str = ""


class McpCallResult(BaseModel):
    """The server's answer: its text content joined, its structured content if any, and
    whether it is a tool error (``isError``, or a protocol error the server sent back)."""

    is_error: bool = False
    text: str = ""
    structured: Any = None
    # Content blocks that are not text (images, resources...), as the server sent them.
    other_content: list[dict[str, Any]] = Field(default_factory=list)


__all__ = ["McpCall", "McpCallResult", "McpServerSpec", "McpToolInfo", "McpToolList"]
