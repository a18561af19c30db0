"""What bench/chaos.py runs: a prompt of five 1-second tool steps, one after another, with the default tool
options (heartbeats, own attempts) and with the pre-issue-16 ones (no heartbeat: a dead
worker is noticed only at the 60 s timeout, and every lost attempt counts)."""

from __future__ import annotations

import asyncio

from lmthing import ActivityOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call


@tool
async def step_now(n: int) -> dict:
    """One second of work, with the default tool options."""
    await asyncio.sleep(1)
    return {"done": n}


@tool(options=ActivityOptions(heartbeat_timeout=None))
async def step_plain(n: int) -> dict:
    """One second of work, with no heartbeat (the old default)."""
    await asyncio.sleep(1)
    return {"done": n}


STEPS = 5


def _script(tool_name: str) -> list:
    # One list per step: consecutive tool calls would be one reply, run concurrently.
    return [*([tool_call(tool_name, {"n": n})] for n in range(STEPS)), text("finished")]


@prompt(model=scripted_model("chaos-now", _script("step_now")))
def chaos_now(p):
    p.def_tool(step_now)
    p.user("Do five steps")


@prompt(model=scripted_model("chaos-plain", _script("step_plain")))
def chaos_plain(p):
    p.def_tool(step_plain)
    p.user("Do five steps")
