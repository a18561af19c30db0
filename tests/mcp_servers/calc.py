"""A real MCP server (the ``mcp`` SDK's MCPServer) for tests/test_mcp_client.py and the
recorded replay example: ``python tests/mcp_servers/calc.py`` serves it over stdio,
``python tests/mcp_servers/calc.py --http PORT`` over streamable HTTP on 127.0.0.1.

What the tests read lives in files named by environment variables, as the server is a
process of its own: ``MCP_CALC_LOG`` gets one line per ``tools/list`` request (``list``) and
per tool call (``call <name>``) and ``stopped`` when a stdio client closed the session; ``MCP_CALC_CRASH_ONCE`` names a file that ``crash_once``
creates before killing its own process, so the first call dies and the retried one answers; ``MCP_CALC_HANG_ONCE`` likewise makes
the first ``hang_once`` call hang.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("calc")


def _log(line: str) -> None:
    path = os.environ.get("MCP_CALC_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


_list_tools = server.list_tools


async def _counted_list_tools():  # every tools/list request the server answers is logged
    _log("list")
    return await _list_tools()


server.list_tools = _counted_list_tools  # type: ignore[method-assign]


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    _log("call add")
    return a + b


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    _log("call shout")
    return text.upper()


@server.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    _log("call divide")
    if b == 0:
        raise ToolError("cannot divide by zero")
    return a / b


@server.tool()
def crash_once(text: str) -> str:
    """Echo the text; the first call ever kills the server's process instead."""
    _log("call crash_once")
    marker = os.environ.get("MCP_CALC_CRASH_ONCE")
    if marker and not Path(marker).exists():
        Path(marker).write_text("crashed")
        os._exit(17)
    return f"echo: {text}"


@server.tool()
async def hang_once(text: str) -> str:
    """Echo the text; the first call ever hangs (its worker is killed meanwhile)."""
    _log(f"call hang_once {text}")
    marker = os.environ.get("MCP_CALC_HANG_ONCE")
    if marker and not Path(marker).exists():
        Path(marker).write_text("hung")
        await anyio.sleep(30)
    return f"echo: {text}"


def http_app():
    """The streamable HTTP app; with ``MCP_CALC_KEY`` set, a request without the header
    ``X-Calc-Key: <that value>`` is refused (401), as a server behind an API key would."""
    app = server.streamable_http_app()
    key = os.environ.get("MCP_CALC_KEY")
    if not key:
        return app

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-calc-key") != key.encode():
            _log("refused")
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing or wrong X-Calc-Key"})
            return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        import uvicorn

        uvicorn.run(http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        server.run()  # returns when the client closes our stdin
        _log("stopped")
