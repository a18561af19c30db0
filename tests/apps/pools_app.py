"""Prompts for the worker-pool and probe tests (tests/test_pools.py).

- ``pool_one_step``: a single model call and no tool, so N runs started together schedule N
  model calls at once (what a task-queue rate limit has to spread out);
- ``pool_slow`` / ``pool_slower``: a model step that calls ``drain_step``, an ``@tool`` activity that
  takes ``seconds`` (4 / 60) to finish, so a worker can be stopped while it runs.

Names are unique across tests/apps (the session worker loads them all). Imported by the
session worker and by the worker subprocesses; the workflow sandbox
re-imports it, so it imports only lmthing and the standard library.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

SLOW_SECONDS = 4.0


@tool(timeout=timedelta(seconds=120))
async def drain_step(seconds: float) -> dict:
    """Work for a while (stands in for a slow API)."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@prompt(model=scripted_model("pools-one-step", [text("Done.")]))
def pool_one_step(p):
    p.user("Say done.")


@prompt(model=scripted_model("pools-slow", [tool_call("drain_step", {"seconds": SLOW_SECONDS}), text("Slept.")]))
def pool_slow(p):
    p.def_tool(drain_step)
    p.user("Take your time.")


@prompt(model=scripted_model("pools-slower", [tool_call("drain_step", {"seconds": 60}), text("Slept long.")]))
def pool_slower(p):
    p.def_tool(drain_step)
    p.user("Take a long time.")
