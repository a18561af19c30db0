"""The worker's MCP sessions (docs/mcp.md): one live session per server (by the settings'
key), shared by every tool call the worker runs, made on first use, made again when the
server died, closed when the worker stops (ResourcesPlugin calls :meth:`McpSessions.close`).

A session lives in a task of its own: the SDK's transports and ClientSession are anyio
contexts, which must be left by the task that entered them, and an activity's task ends
with its call. Calls from activities go through the session's streams, which any task may
use. ``${NAME}`` in the settings is replaced here, on the worker, from its environment.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from lmthing.mcp.types import McpServerSpec

# Seconds a server has to start and answer `initialize`.
CONNECT_TIMEOUT = 20.0
CLOSE_TIMEOUT = 5.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpSettingError(Exception):
    """The server's settings cannot work on this worker (a ``${NAME}`` that is not set):
    not retried, the message names the setting."""


class McpStartError(Exception):
    """A stdio server that did not start (no such command, or it exited before answering):
    not retried, the message names the command."""


class McpConnectError(Exception):
    """A server that did not answer (an HTTP endpoint down, a timeout): retried."""


def resolve(spec: McpServerSpec) -> McpServerSpec:
    """``spec`` with every ``${NAME}`` replaced by the worker's environment variable."""
    def sub(where: str, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            value = os.environ.get(m.group(1))
            if value is None:
                raise McpSettingError(f"MCP server {spec.name!r}: {where} uses ${{{m.group(1)}}}, and the environment "
                                      f"variable {m.group(1)} is not set on this worker; set it where the worker runs")
            return value
        return _VAR.sub(one, text)

    return spec.model_copy(update={
        "command": [sub("command", c) for c in spec.command] if spec.command else None,
        "env": {k: sub(f"env[{k!r}]", v) for k, v in spec.env.items()},
        "headers": {k: sub(f"headers[{k!r}]", v) for k, v in spec.headers.items()},
        "url": sub("url", spec.url) if spec.url else None,
        "cwd": sub("cwd", spec.cwd) if spec.cwd else None,
    })


def _program(command: str) -> str:
    """``python`` (or ``python3``) is the worker's own interpreter, which has the ``mcp``
    SDK; any other program is looked up on the worker's PATH."""
    if command in ("python", "python3"):
        return sys.executable
    return command


class Connection:
    """One session with one server, owned by its own task."""

    def __init__(self, spec: McpServerSpec) -> None:
        self.spec = spec
        self.session: ClientSession | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._stderr = tempfile.TemporaryFile(mode="w+") if spec.command else None
        self._task = asyncio.create_task(self._own(), name=f"lmthing mcp session {spec.name}")

    @property
    def alive(self) -> bool:
        return self.session is not None and not self._task.done()

    async def ready(self) -> None:
        await asyncio.shield(self._ready)

    def _transport(self, stack: AsyncExitStack) -> Any:
        real = resolve(self.spec)
        if real.command:
            program = _program(real.command[0])
            if shutil.which(program, path=os.environ.get("PATH")) is None and not os.path.exists(program):
                raise McpStartError(f"MCP server {real.name!r} did not start: the command {program!r} was not found "
                                    f"on this worker's PATH (command={self.spec.command!r})")
            params = StdioServerParameters(command=program, args=real.command[1:], env=real.env or None, cwd=real.cwd)
            return stdio_client(params, errlog=self._stderr)  # type: ignore[arg-type]
        http = create_mcp_http_client(headers=real.headers or None)
        return streamable_http_client(real.url or "", http_client=http), http

    async def _own(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                transport = self._transport(stack)
                if isinstance(transport, tuple):
                    transport, http = transport
                    await stack.enter_async_context(http)
                read, write = await stack.enter_async_context(transport)
                session = await stack.enter_async_context(ClientSession(read, write))
                try:
                    with anyio.fail_after(CONNECT_TIMEOUT):
                        await session.initialize()
                except BaseException as err:
                    # Cancelled: the transport's own task failed (e.g. connection refused),
                    # and the task group, left below, says why.
                    if not isinstance(err, asyncio.CancelledError):
                        self._fail(self._start_error(err))
                    raise
                self.session = session
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as err:  # noqa: BLE001 - the session's end is reported through _ready
            self._fail(self._start_error(err))
            if isinstance(err, asyncio.CancelledError):
                raise
        finally:
            self.session = None
            if self._stderr is not None:
                self._stderr.close()

    def _fail(self, err: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(err)
            self._ready.exception()  # retrieved: nobody may be waiting any more

    def _start_error(self, err: BaseException) -> BaseException:
        if isinstance(err, (McpStartError, McpSettingError, McpConnectError)):
            return err
        inner = _innermost(err)
        if isinstance(inner, (McpStartError, McpSettingError)):
            return inner
        if self.spec.command:
            if isinstance(inner, OSError):
                return McpStartError(f"MCP server {self.spec.name!r} did not start: {type(inner).__name__}: {inner} "
                                     f"(command={self.spec.command!r})")
            return McpStartError(f"MCP server {self.spec.name!r} exited before it answered (command="
                                 f"{self.spec.command!r}){self._stderr_tail()}")
        return McpConnectError(f"MCP server {self.spec.name!r} at {self.spec.url!r} did not answer: "
                               f"{type(inner).__name__}: {inner}")

    def _stderr_tail(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        try:
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read().splitlines() if line.strip()][-5:]
        except (OSError, ValueError):
            return ""
        return "; its stderr ends: " + " | ".join(lines) if lines else ""

    async def close(self) -> None:
        self._stop.set()
        if not self._task.done():
            done, _ = await asyncio.wait([self._task], timeout=CLOSE_TIMEOUT)
            if not done:
                self._task.cancel()
                await asyncio.wait([self._task], timeout=CLOSE_TIMEOUT)


def _innermost(err: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio task groups wrap what their tasks raise)."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


class McpSessions:
    """The worker's sessions, by server key."""

    def __init__(self) -> None:
        self._live: dict[str, Connection] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self.connects = 0  # sessions opened (tests read it)

    async def session(self, spec: McpServerSpec) -> ClientSession:
        """The live session with ``spec``'s server, connecting (again) when there is none."""
        async with self._lock:
            if self._closed:
                raise McpConnectError(f"MCP server {spec.name!r}: this worker is shutting down")
            conn = self._live.get(spec.key())
            if conn is None or (conn._ready.done() and not conn.alive):
                if conn is not None:
                    await conn.close()
                conn = self._live[spec.key()] = Connection(spec)
                self.connects += 1
        try:
            await conn.ready()
        except BaseException:
            async with self._lock:
                if self._live.get(spec.key()) is conn:
                    del self._live[spec.key()]
            raise
        assert conn.session is not None
        return conn.session

    async def drop(self, spec: McpServerSpec, session: ClientSession) -> None:
        """Forget the session (its server died or broke): the next call connects again."""
        async with self._lock:
            conn = self._live.get(spec.key())
            if conn is None or (conn.alive and conn.session is not session):
                return
            del self._live[spec.key()]
        await conn.close()

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            conns, self._live = list(self._live.values()), {}
        for conn in conns:
            await conn.close()


__all__ = ["McpConnectError", "McpSessions", "McpSettingError", "McpStartError", "resolve"]
