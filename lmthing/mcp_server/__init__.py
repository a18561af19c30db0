"""The MCP server edge: an app's prompts as MCP tools (``lmthing mcp serve``, docs/mcp-server.md).

Like the CLI, an edge over :mod:`lmthing.client`: a tool call starts the prompt as an
ordinary durable workflow and answers with its result. It needs the ``mcp`` extra
(``pip install 'lmthing[mcp]'``); nothing else in lmthing imports this package.
"""

from __future__ import annotations

from .server import BearerAuth, build_server, serve_http, serve_stdio
from .tools import ExposedPrompt, ExposeError, PromptTools, choose_prompts

__all__ = [
    "BearerAuth", "ExposeError", "ExposedPrompt", "PromptTools", "build_server", "choose_prompts", "serve_http", "serve_stdio",
]
