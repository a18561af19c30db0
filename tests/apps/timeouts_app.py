"""Tools that hang or back off for hours, for the timeout tests."""

import asyncio
from datetime import timedelta

from lmthing import RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call


@tool(timeout=timedelta(seconds=1), retry=RetryOptions(initial_interval=timedelta(milliseconds=100), maximum_attempts=2))
async def hangs(query: str) -> dict:
    """A tool whose upstream answers too late."""
    await asyncio.sleep(3)
    return {"late": query}


@tool(
    retry=RetryOptions(
        initial_interval=timedelta(hours=1), maximum_interval=timedelta(hours=4), maximum_attempts=3
    )
)
def rate_limited(query: str) -> dict:
    """A tool whose upstream keeps answering 'try again later'."""
    raise RuntimeError("429 Too Many Requests")


@prompt(model=scripted_model("timeouts-hang", [tool_call("hangs", {"query": "q"}), text("gave up waiting")]))
def waits_on_hung_tool(p):
    p.def_tool(hangs)
    p.user("Look it up")


@prompt(model=scripted_model("timeouts-backoff", [tool_call("rate_limited", {"query": "q"}), text("gave up retrying")]))
def backs_off_for_hours(p):
    p.def_tool(rate_limited)
    p.user("Look it up")
