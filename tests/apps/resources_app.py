"""Resources and pools for tests/test_resources.py (docs/resources.md): declared at module
level, found by the worker that loads this module, handed to @tool activities through
their ToolContext. Names are unique across tests/apps. The workflow sandbox re-imports this
module, so what the tests read lives in the passed-through resource_log."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from lmthing import RetryOptions, ToolContext, def_resource, def_resource_pool, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

with workflow.unsafe.imports_passed_through():
    from tests.apps import resource_log as log

FAST_RETRY = RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=2)


# ------------------------------------------------------------- one shared object, made once
async def _open_counted() -> dict:
    await asyncio.sleep(0.05)  # a slow connect: concurrent first calls must still make one
    return log.made("res_counted")


counted = def_resource("res_counted", init=_open_counted, cleanup=lambda obj: log.CLEANED.append(obj["id"]))


@tool
async def res_counted_async(ctx: ToolContext) -> dict:
    """Use the shared resource from an async tool."""
    conn = await ctx.resource("res_counted")
    return {"id": conn["id"]}


@tool
def res_counted_sync(ctx: ToolContext) -> dict:
    """Use the shared resource from a plain def tool (it runs in a thread)."""
    return {"id": ctx.resource("res_counted")["id"]}


@prompt(model=scripted_model("res-counted", [
    [tool_call("res_counted_async"), tool_call("res_counted_async"), tool_call("res_counted_sync")],
    [tool_call("res_counted_sync"), tool_call("res_counted_async")],
    text("done"),
]))
def res_counted_run(p):
    p.def_tool(res_counted_async)
    p.def_tool(res_counted_sync)
    p.user("Use the database five times.")


# ------------------------------------------------------------- health check and remaking
def _health_ok(obj: dict) -> bool:  # sync: runs in a thread
    return obj["ok"]


health = def_resource(
    "res_health", init=lambda: log.made("res_health"), cleanup=lambda obj: log.CLEANED.append(obj["id"]),
    health_check=_health_ok, check_every=0,
)


@tool
async def res_health_use(break_it: bool, ctx: ToolContext) -> dict:
    """Use the resource; break_it plays its connection dying after this call."""
    conn = await ctx.resource("res_health")
    if break_it:
        conn["ok"] = False
    return {"id": conn["id"]}


@prompt(model=scripted_model("res-health", [
    [tool_call("res_health_use", {"break_it": False})],
    [tool_call("res_health_use", {"break_it": True})],
    [tool_call("res_health_use", {"break_it": False})],
    text("done"),
]))
def res_health_run(p):
    p.def_tool(res_health_use)
    p.user("Use the connection three times.")


# ------------------------------------------------------------- a pool of two
async def _until(done, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if done():
            return
        await asyncio.sleep(0.02)


pool = def_resource_pool("res_pool", factory=lambda: log.made("res_pool"), min=1, max=2, acquire_timeout=30)


@tool
async def res_pool_work(ctx: ToolContext) -> dict:
    """Borrow a connection for a while (async tool)."""
    async with ctx.acquire("res_pool") as conn:
        log.lent("res_pool", 1)
        try:  # hold it until two are out at once (the pool's max), then a little longer
            await _until(lambda: log.PEAK["res_pool"] >= 2, 10.0)
            await asyncio.sleep(0.2)
        finally:
            log.lent("res_pool", -1)
        return {"id": conn["id"]}


@tool
def res_pool_work_sync(ctx: ToolContext) -> dict:
    """Borrow a connection for a while (plain def tool)."""
    import time

    with ctx.acquire("res_pool") as conn:
        log.lent("res_pool", 1)
        try:
            for _ in range(500):
                if log.PEAK["res_pool"] >= 2:
                    break
                time.sleep(0.02)
            time.sleep(0.2)
        finally:
            log.lent("res_pool", -1)
        return {"id": conn["id"]}


@prompt(model=scripted_model("res-pool", [
    [tool_call("res_pool_work"), tool_call("res_pool_work"), tool_call("res_pool_work"),
     tool_call("res_pool_work_sync"), tool_call("res_pool_work_sync")],
    text("done"),
]))
def res_pool_run(p):
    p.def_tool(res_pool_work)
    p.def_tool(res_pool_work_sync)
    p.user("Five queries at once.")


# ------------------------------------------------------------- a pool too small to wait for
tight = def_resource_pool("res_tight", factory=lambda: {"id": "tight"}, max=1, acquire_timeout=0.2)


@tool
async def res_tight_hold(ctx: ToolContext) -> dict:
    """Hold the pool's only object until the other call has given up twice."""
    async with ctx.acquire("res_tight"):
        log.INITS["res_tight.held"] += 1
        await _until(lambda: log.INITS["res_tight.gave_up"] >= 2)
    return {"held": True}


@tool(retry=FAST_RETRY)
async def res_tight_wait(ctx: ToolContext) -> dict:
    """Ask for the pool's object once the other call holds it."""
    await _until(lambda: log.INITS["res_tight.held"] >= 1)
    try:
        async with ctx.acquire("res_tight"):
            return {"got": True}
    except Exception:
        log.INITS["res_tight.gave_up"] += 1
        raise


@prompt(model=scripted_model("res-tight", [
    [tool_call("res_tight_hold"), tool_call("res_tight_wait")],
    text("done"),
]))
def res_tight_run(p):
    p.def_tool(res_tight_hold)
    p.def_tool(res_tight_wait)
    p.user("Two at once.")


# ------------------------------------------------------------- an init that fails
def _connect_refused() -> dict:
    log.INITS["res_broken"] += 1
    raise ConnectionRefusedError("db.internal:5432 refused the connection")


broken = def_resource("res_broken", init=_connect_refused)


@tool(retry=FAST_RETRY)
async def res_broken_use(ctx: ToolContext) -> dict:
    """Use a database that is down."""
    await ctx.resource("res_broken")
    return {"ok": True}


@tool
async def res_misnamed(name: str, ctx: ToolContext) -> dict:
    """Ask for a resource by a name that may be wrong."""
    await ctx.resource(name)
    return {"ok": True}


@prompt(model=scripted_model("res-errors", [
    [tool_call("res_broken_use"), tool_call("res_misnamed", {"name": "res_nope"}),
     tool_call("res_misnamed", {"name": "res_pool"})],
    text("done"),
]))
def res_errors_run(p):
    p.def_tool(res_broken_use)
    p.def_tool(res_misnamed)
    p.user("Try the broken ones.")


# ------------------------------------------------------------- closed at worker shutdown
closing = def_resource("res_closing", init=lambda: log.made("res_closing"), cleanup=lambda obj: log.CLEANED.append(obj["id"]))


async def _close_pooled(obj: dict) -> None:  # async cleanup
    await asyncio.sleep(0)
    log.CLEANED.append(obj["id"])


closing_pool = def_resource_pool("res_closing_pool", factory=lambda: log.made("res_closing_pool"), min=2, max=3,
                                 cleanup=_close_pooled)


@tool
async def res_closing_use(ctx: ToolContext) -> dict:
    """Use a resource and a pooled object."""
    conn = await ctx.resource("res_closing")
    async with ctx.acquire("res_closing_pool") as pooled:
        return {"id": conn["id"], "pooled": pooled["id"]}


@prompt(model=scripted_model("res-closing", [tool_call("res_closing_use"), text("done")]))
def res_closing_run(p):
    p.def_tool(res_closing_use)
    p.user("Use them once.")


# ------------------------------------------------------------- an init slower than the tool's timeout
def _load_slowly() -> dict:  # sync, in a thread: e.g. a model loaded into memory
    import time

    time.sleep(1.5)
    return log.made("res_slow")


slow = def_resource("res_slow", init=_load_slowly)


@tool(timeout=timedelta(seconds=1), retry=RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=4))
async def res_slow_use(ctx: ToolContext) -> dict:
    """Use a resource that takes longer to make than one attempt may take."""
    return {"id": (await ctx.resource("res_slow"))["id"], "attempt": ctx.attempt}


@prompt(model=scripted_model("res-slow", [tool_call("res_slow_use"), text("done")]))
def res_slow_run(p):
    p.def_tool(res_slow_use)
    p.user("Use the slow one.")
