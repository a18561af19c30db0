"""The MCP server of an app (``lmthing mcp serve``): its prompts as tools, over stdio or
streamable HTTP.

Over HTTP every request needs ``Authorization: Bearer <token>``, compared in constant
time; anything else is answered 401 before the MCP layer sees it. The server never runs
the prompts itself: it starts workflows on a task queue that ``lmthing worker`` serves.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from mcp.server.lowlevel import Server

from .tools import PromptTools

if TYPE_CHECKING:
    from temporalio.client import Client

    from .tools import ExposedPrompt

SERVER_NAME = "lmthing"
MCP_PATH = "/mcp"


def build_server(client: Client, exposed: dict[str, ExposedPrompt], task_queue: str, app_name: str) -> Server[Any]:
    """A low-level MCP server whose tools are the exposed prompts (their schemas are the
    prompts' own JSON schemas, so the low-level API, not FastMCP's typed functions)."""
    tools = PromptTools(client, exposed, task_queue)
    return Server(
        SERVER_NAME,
        instructions=f"Tools of the lmthing app {app_name}: each call runs one prompt as a durable Temporal workflow "
        "and answers with its result; the result's structured content names the workflow id.",
        on_list_tools=tools.list_tools,
        on_call_tool=tools.call_tool,
    )


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over this process's stdin/stdout (the SDK points stray prints at stderr)."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server[Any], host: str, port: int, token: str | None) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until SIGINT/SIGTERM; ``token``
    None: no authorization (``--no-auth``)."""
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token is not None:
        app = BearerAuth(app, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


class BearerAuth:
    """ASGI middleware: HTTP requests without the right bearer token get a 401.

    A shared secret, not the MCP spec's OAuth flow: the SDK can act as an OAuth resource
    server (``TokenVerifier``), but that needs an authorization server to issue tokens,
    which lmthing does not have (docs/mcp-server.md)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized", "error_description": "send Authorization: Bearer <token>"}).encode()
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="lmthing-mcp"'),
            ],
        })
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, scope: dict[str, Any]) -> bool:
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, given = header.partition(b" ")
        # compare_digest on every request, whatever the scheme: the timing says nothing.
        matches = hmac.compare_digest(given.strip(), self.token)
        return scheme.lower() == b"bearer" and matches
