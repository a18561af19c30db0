"""Prompts that use MCP servers' tools (docs/mcp.md), for tests/test_mcp_client.py. The
server is tests/mcp_servers/calc.py (the mcp SDK's MCPServer), run over stdio by the worker
(``python`` is the worker's interpreter; the path is relative to the worker's directory, the
repository root) or reached over streamable HTTP at ``args["url"]``. The files it logs to
come in the run's args, so each test has its own server settings (and so its own session
and cached tool list on the session's worker). Prompt names are unique across tests/apps."""

from __future__ import annotations

from lmthing import mcp_server, prompt
from lmthing.testing import scripted_model, text, tool_call

SERVER = "tests/mcp_servers/calc.py"


def calc(args: dict, name: str = "calc", **more: str) -> dict:
    """The settings of the calc server over stdio, logging to ``args["log"]``."""
    return {"command": ["python", SERVER], "env": {"MCP_CALC_LOG": args["log"], **more}}


@prompt(model=scripted_model("mcp-stdio", [
    [tool_call("add", {"a": 2, "b": 3}), tool_call("shout", {"text": "hi"})],
    tool_call("divide", {"a": 1, "b": 0}),
    text("done"),
]))
async def mcp_stdio_run(p, args: dict):
    server = await p.def_mcp_server("calc", **calc(args))
    p.def_data("mcp_tools", sorted(server.tools))
    p.user("Add 2 and 3, shout hi, then divide 1 by 0.")


@prompt(model=scripted_model("mcp-http", [tool_call("add", {"a": 40, "b": 2}), text("done")]))
async def mcp_http_run(p, args: dict):
    # The API key is the worker's environment variable: the history holds only its name.
    await p.def_mcp_server("calc_http", url=args["url"], tools=["add"], headers={"X-Calc-Key": "${MCP_TEST_CALC_KEY}"})
    p.user("Add 40 and 2.")


@prompt(model=scripted_model("mcp-crash", [tool_call("crash_once", {"text": "hello"}), text("done")]))
async def mcp_crash_run(p, args: dict):
    await p.def_mcp_server("calc", **calc(args, MCP_CALC_CRASH_ONCE=args["marker"]))
    p.user("Echo hello.")


@prompt(model=scripted_model("mcp-missing", [text("never")]))
async def mcp_missing_command_run(p):
    await p.def_mcp_server("nothing", command=["lmthing-no-such-mcp-server", "--stdio"])


@prompt(model=scripted_model("mcp-exits", [text("never")]))
async def mcp_exits_run(p):
    await p.def_mcp_server("quitter", command=[
        "python", "-c", "import sys; print('config file not found', file=sys.stderr); sys.exit(3)"])


@prompt(model=scripted_model("mcp-clash", [text("never")]))
async def mcp_clash_run(p, args: dict):
    await p.def_mcp_server("calc_a", **calc(args))
    await p.def_mcp_server("calc_b", **calc(args, MCP_CALC_COPY="b"))


CALC_B = mcp_server("calc_b", ["python", SERVER])


@prompt(model=scripted_model("mcp-prefix", [[tool_call("add", {"a": 1, "b": 1}), tool_call("b_add", {"a": 2, "b": 2})],
                                            text("done")]))
async def mcp_prefix_run(p, args: dict):
    await p.def_mcp_server("calc_a", **calc(args))
    b = await p.def_mcp_server(CALC_B, prefix="b_", tools=["add"])
    assert b.tools == {"b_add": "add"}
    p.user("Add twice.")


@prompt(model=scripted_model("mcp-env", [tool_call("add", {"a": 1, "b": 2}), text("done")]))
async def mcp_env_run(p, args: dict):
    # The worker reads the variable named in ${...}: its value is in no history.
    await p.def_mcp_server("calc_env", command=["python", SERVER], env={"MCP_CALC_LOG": "${" + args["var"] + "}"})
    p.user("Add 1 and 2.")
