"""The MCP activities (docs/mcp.md): ``lmthing.mcp.list_tools`` reads a server's tool list,
``lmthing.mcp.call_tool`` makes one tool call, both over the worker's sessions
(mcp_sessions.py). One :class:`McpActivities` per worker.

The tool list is cached per worker process, by the server's settings: a run asks for it
once (and keeps it in its own state), and a worker asks the server once, however many runs
and steps use it. Errors are classified: a setting that cannot work or a stdio command that
does not start fails at once (non-retryable, naming it); a server that died or did not
answer is retried (its session is dropped, so the next attempt connects again); a tool's
error result (``isError``) or a protocol error the server answers with is a result, which
the model reads as a tool error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mcp.shared.exceptions import MCPError
from mcp_types import PaginatedRequestParams
from mcp_types.jsonrpc import CONNECTION_CLOSED
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.mcp.types import McpCall, McpCallResult, McpServerSpec, McpToolInfo, McpToolList

from .heartbeats import heartbeat_forever
from .mcp_sessions import McpConnectError, McpSessions, McpSettingError, McpStartError
from .names import MCP_CALL_TOOL, MCP_LIST_TOOLS

T = TypeVar("T")


class McpActivities:
    """The worker's MCP sessions and tool lists; the methods are the activities."""

    def __init__(self) -> None:
        self.sessions = McpSessions()
        self._lists: dict[str, McpToolList] = {}
        self._listing: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self.sessions.close()

    @activity.defn(name=MCP_LIST_TOOLS)
    async def list_tools(self, spec: McpServerSpec) -> McpToolList:
        async def go() -> McpToolList:
            key = spec.key()
            async with self._listing.setdefault(key, asyncio.Lock()):  # concurrent runs: one request
                if key not in self._lists:
                    self._lists[key] = await self._list(spec)
            return self._lists[key]

        return await classified(spec, "tools/list", go)

    async def _list(self, spec: McpServerSpec) -> McpToolList:
        session = await self.sessions.session(spec)
        tools: list[McpToolInfo] = []
        cursor = None
        try:
            while True:
                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
                tools += [McpToolInfo(name=t.name, description=t.description or "", input_schema=t.input_schema)
                          for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    return McpToolList(server=spec.name, tools=tools)
        except MCPError as err:
            await self._broken(spec, session, err)
            raise

    @activity.defn(name=MCP_CALL_TOOL)
    async def call_tool(self, call: McpCall) -> McpCallResult:
        spec = call.server

        async def go() -> McpCallResult:
            session = await self.sessions.session(spec)
            try:
                result = await session.call_tool(call.tool, call.arguments, read_timeout_seconds=spec.timeout)
            except MCPError as err:
                await self._broken(spec, session, err)
                return McpCallResult(is_error=True, text=f"MCP error {err.code}: {err.message}")
            except (OSError, asyncio.TimeoutError, EOFError) as err:
                await self.sessions.drop(spec, session)
                raise McpConnectError(f"MCP server {spec.name!r} failed during tools/call {call.tool!r}: "
                                      f"{type(err).__name__}: {err}") from None
            return _result(result)

        return await classified(spec, f"tools/call {call.tool!r}", go)

    async def _broken(self, spec: McpServerSpec, session: Any, err: MCPError) -> None:
        """A connection that closed (the server died) or timed out: drop it and retry."""
        if err.code == CONNECTION_CLOSED or "timed out" in err.message.lower():
            await self.sessions.drop(spec, session)
            raise McpConnectError(f"MCP server {spec.name!r} ({spec.where}) closed the connection: {err.message}") from None

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [self.list_tools, self.call_tool]


def _result(result: Any) -> McpCallResult:
    texts, other = [], []
    for block in getattr(result, "content", None) or []:
        if getattr(block, "type", None) == "text":
            texts.append(block.text)
        else:
            other.append(block.model_dump(mode="json", by_alias=True, exclude_none=True))
    return McpCallResult(is_error=bool(getattr(result, "is_error", False)), text="\n".join(texts),
                         structured=getattr(result, "structured_content", None), other_content=other)


async def classified(spec: McpServerSpec, what: str, go: Callable[[], Awaitable[T]]) -> T:
    """Run ``go``, heartbeating, and turn what it raises into the activity's failure."""
    heartbeats = asyncio.create_task(heartbeat_forever())
    try:
        return await go()
    except McpSettingError as err:
        raise ApplicationError(str(err), type="McpSettingError", non_retryable=True) from None
    except McpStartError as err:
        raise ApplicationError(str(err), type="McpServerDidNotStart", non_retryable=True) from None
    except McpConnectError as err:
        raise ApplicationError(str(err), type="McpServerUnavailable") from None
    except MCPError as err:
        raise ApplicationError(f"MCP server {spec.name!r}: {what} failed: {err.message}", type="McpError") from None
    finally:
        heartbeats.cancel()


__all__ = ["McpActivities"]
