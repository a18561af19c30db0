"""A prompt for tests/test_mcp_durability.py, run by worker subprocesses: one MCP tool call
that finishes, then one that hangs in the first worker (which the test kills)."""

from __future__ import annotations

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call


@prompt(model=scripted_model("mcp-durable", [
    [tool_call("add", {"a": 1, "b": 2})],  # one step each: add finished before hang_once starts
    [tool_call("hang_once", {"text": "again"})],
    text("done"),
]))
async def mcp_durable_run(p, args: dict):
    await p.def_mcp_server("calc_durable", command=["python", "tests/mcp_servers/calc.py"],
                           env={"MCP_CALC_LOG": args["log"], "MCP_CALC_HANG_ONCE": args["marker"]})
    p.user("Add, then echo.")
