"""MCP servers' tools as tools of a prompt: ``await p.def_mcp_server(name, command=[...])``
(stdio) or ``await p.def_mcp_server(name, url="http://.../mcp")`` (streamable HTTP);
docs/mcp.md.

Every prompt has it (the engine adds this plugin to each run). The server's tool list comes
from the run's ``mcp`` service (workflows/mcp_host.py): read by the ``lmthing.mcp.list_tools``
activity once per run (then kept in the run), and by the worker once per process (then
cached). Each tool the model calls is one ``lmthing.mcp.call_tool`` activity; the server's
process or HTTP session lives on the worker, never in the workflow. ``def_mcp_server`` is
awaited, so the prompt function that uses it is an ``async def``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

from .types import McpCall, McpCallResult, McpServerSpec, McpToolInfo

_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class McpToolError(Exception):
    """An MCP tool's error result (``isError``) or a protocol error: the model reads it."""


class McpUnavailable(Exception):
    """The run could not reach an MCP server for good (raised by the run's mcp service)."""


class McpServer:
    """What ``def_mcp_server`` returns: the server's settings and the tools it defined
    (the names the model sees, mapped to the server's own names)."""

    def __init__(self, spec: McpServerSpec, tools: dict[str, str]) -> None:
        self.spec = spec
        self.name = spec.name
        self.tools = tools

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, tools={sorted(self.tools)})"


def _strings(api: str, what: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(v, str) and v for v in value):
        raise PromptError(f"{api}: {what} is a list of strings; got {value!r}")
    return list(value)


def _mapping(api: str, what: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PromptError(f"{api}: {what} is a dict of strings (a secret as '${{NAME}}', read from the worker's "
                          f"environment); got {value!r}")
    return dict(value)


def mcp_server(name: str, command: list[str] | str | None = None, *, args: list[str] | None = None,
               env: dict[str, str] | None = None, cwd: str | None = None, url: str | None = None,
               headers: dict[str, str] | None = None, timeout: float = 60.0) -> McpServerSpec:
    """An MCP server's settings, to declare once (e.g. at module level) and give to
    ``p.def_mcp_server(server)``. Either ``command`` (a list, or one string run without a
    shell; ``args`` appended), run over stdio with ``env`` (added to a minimal environment)
    in ``cwd``; or ``url`` of a streamable HTTP endpoint, sent ``headers``. Values written
    ``${NAME}`` are read from the worker's environment when it connects, so secrets stay out
    of the run's history. ``timeout``: seconds one tool call may take (then it is retried)."""
    api = f"mcp_server({name!r})"
    if not isinstance(name, str) or not _SERVER_NAME.match(name):
        raise PromptError(f"{api}: the name is 1-64 letters, digits, '_', '-' or '.'; got {name!r}")
    if (command is None) == (url is None):
        raise PromptError(f"{api}: give command=[...] (a server run over stdio) or url='http://.../mcp' (streamable "
                          "HTTP), one of the two")
    if command is not None:
        argv = [command] if isinstance(command, str) else _strings(api, "command", command)
        argv += _strings(api, "args", args) if args is not None else []
        if not argv:
            raise PromptError(f"{api}: command is the program to run and its arguments, e.g. ['python', 'server.py']")
        if headers:
            raise PromptError(f"{api}: headers= are for url= servers; a stdio server gets env= instead")
        if cwd is not None and not isinstance(cwd, str):
            raise PromptError(f"{api}: cwd is a directory path (a string); got {cwd!r}")
        return McpServerSpec(name=name, command=argv, env=_mapping(api, "env", env), cwd=cwd, timeout=_timeout(api, timeout))
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "${")):
        raise PromptError(f"{api}: url is the server's streamable HTTP endpoint, e.g. 'http://localhost:8000/mcp'; "
                          f"got {url!r}")
    if args is not None or env or cwd is not None:
        raise PromptError(f"{api}: args=, env= and cwd= are for command= servers; a url= server gets headers= instead")
    return McpServerSpec(name=name, url=url, headers=_mapping(api, "headers", headers), timeout=_timeout(api, timeout))


def _timeout(api: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PromptError(f"{api}: timeout is a number of seconds above 0; got {value!r}")
    return float(value)


async def def_mcp_server(p: StatefulPrompt, server: str | McpServerSpec, command: list[str] | str | None = None, *,
                         tools: list[str] | None = None, prefix: str = "", **settings: Any) -> McpServer:
    """Give the model the tools of an MCP server: ``await p.def_mcp_server("files",
    command=["npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"])``, or
    ``url="http://localhost:8000/mcp"``, or a ``mcp_server(...)`` declaration. ``tools``:
    only these (the server's names); ``prefix``: put before each tool's name (two servers
    with a tool of the same name need one). Other settings: see :func:`mcp_server`."""
    if isinstance(server, McpServerSpec):
        if command is not None or settings:
            raise PromptError(f"def_mcp_server({server.name!r}): a mcp_server(...) declaration has its settings; "
                              "give only tools= and prefix= beside it")
        spec = server
    else:
        spec = mcp_server(server, command, **settings)
    api = f"def_mcp_server({spec.name!r})"
    if not isinstance(prefix, str) or (prefix and not re.match(r"^[A-Za-z0-9_-]+$", prefix)):
        raise PromptError(f"{api}: prefix is letters, digits, '_' or '-', e.g. prefix='{spec.name.replace('.', '_')}_'; "
                          f"got {prefix!r}")
    wanted = None if tools is None else _strings(api, "tools", tools)
    host = p.service("mcp")
    if host is None:
        if p.scan_only:  # a sub-agent's scan of its parent's function needs no tools
            return McpServer(spec, {})
        raise PromptError(f"{api} needs a running workflow: call it from a prompt run, not outside one")
    try:
        listed = await host.tools(spec)
    except McpUnavailable as err:
        raise PromptError(f"{api}: {err}") from None
    by_name = {t.name: t for t in listed}
    if wanted is not None:
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise PromptError(f"{api}: tools={missing!r} are not tools of the server (it has: "
                              f"{', '.join(sorted(by_name)) or 'none'})")
    defined: dict[str, str] = {}
    for info in listed if wanted is None else [by_name[n] for n in wanted]:
        name = _model_name(api, prefix, info.name)
        _check_clash(p, api, spec, name, prefix)
        p.def_tool(name, info.description or f"The {info.name} tool of MCP server {spec.name!r}.",
                   _object_schema(info), _handler(p, spec, info))
        defined[name] = info.name
    return McpServer(spec, defined)


def _model_name(api: str, prefix: str, tool: str) -> str:
    """The name the model sees: the prefix and the tool's name, characters a model API
    refuses in tool names replaced by '_'."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", prefix + tool)
    if not _TOOL_NAME.match(name):
        raise PromptError(f"{api}: the tool name {name!r} (from the server's {tool!r}) is longer than 64 characters; "
                          "use a shorter prefix= or leave it out with tools=[...]")
    return name


def _check_clash(p: StatefulPrompt, api: str, spec: McpServerSpec, name: str, prefix: str) -> None:
    if not p.defined_in_this_run(name):
        return
    existing = p.defined_tool(name)
    owner = getattr(getattr(existing, "fn", None), "mcp_server", None)
    fix = (f"give one of them a prefix, e.g. def_mcp_server({spec.name!r}, ..., prefix='{spec.name.replace('.', '_')}_'),"
           f" or leave the tool out with tools=[...]")
    if owner is not None:
        raise PromptError(f"{api}: the tool {name!r} is also a tool of MCP server {owner!r}; two servers cannot give the "
                          f"model one name: {fix}")
    raise PromptError(f"{api}: the prompt already defines a tool or agent named {name!r}; {fix}")


def _object_schema(info: McpToolInfo) -> dict[str, Any]:
    schema = dict(info.input_schema or {})
    if schema.get("type") != "object" and "properties" not in schema:
        schema["type"] = "object"  # a model API wants an object schema; the server's may omit the type
    return schema


def _handler(p: StatefulPrompt, spec: McpServerSpec, info: McpToolInfo) -> Any:
    async def call_mcp_tool(args: Any, call: Any) -> Any:
        arguments = args if isinstance(args, dict) else (args.model_dump(mode="json") if hasattr(args, "model_dump")
                                                         else dict(args or {}))
        host = p.service("mcp")
        try:
            result: McpCallResult = await host.call(McpCall(
                server=spec, tool=info.name, arguments=arguments,
                idempotency_key=f"{call.workflow_id}:{call.tool_call_id}"))
        except McpUnavailable as err:
            raise McpToolError(str(err)) from None
        if result.is_error:
            raise McpToolError(result.text or f"MCP tool {info.name!r} of server {spec.name!r} failed")
        return model_value(result)

    call_mcp_tool.mcp_server = spec.name  # type: ignore[attr-defined]
    return call_mcp_tool


def model_value(result: McpCallResult) -> Any:
    """What the model reads of a tool's answer: its structured content when it has some,
    else its text (with any non-text content beside it)."""
    if result.structured is not None:
        return result.structured
    if result.other_content:
        return {"text": result.text, "content": result.other_content}
    return result.text


mcp_plugin = {"def_mcp_server": def_mcp_server}

__all__ = ["McpServer", "McpToolError", "McpUnavailable", "def_mcp_server", "mcp_plugin", "mcp_server", "model_value"]
