"""Tools for tests/test_tool_attempts.py: worker deaths do not use up a tool's attempts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from lmthing import ActivityOptions, RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

FAST_RETRY = RetryOptions(initial_interval=timedelta(milliseconds=100), maximum_interval=timedelta(seconds=1), maximum_attempts=2)


# A heartbeat timeout of 1 s so that the test notices each dead worker fast.
@tool(options=ActivityOptions(start_to_close_timeout=timedelta(seconds=30), heartbeat_timeout=timedelta(seconds=1),
                              retry=FAST_RETRY))
async def slow_fetch(query: str) -> dict:
    """Fetch something slowly (3 s)."""
    await asyncio.sleep(3)
    return {"fetched": query}


@tool(retry=RetryOptions(initial_interval=timedelta(milliseconds=100), maximum_attempts=3))
async def always_fails(query: str) -> dict:
    """A tool whose upstream is broken."""
    raise RuntimeError(f"upstream broken for {query}")


@prompt(model=scripted_model("crash-fetch", [tool_call("slow_fetch", {"query": "q"}), text("done")]))
def fetches_slowly(p):
    p.def_tool(slow_fetch)
    p.user("Fetch it")


@prompt(model=scripted_model("crash-fails", [tool_call("always_fails", {"query": "q"}), text("gave up")]))
def calls_a_broken_tool(p):
    p.def_tool(always_fails)
    p.user("Fetch it")
