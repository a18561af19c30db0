"""Declarations of worker-side resources (``def_resource``, ``def_resource_pool``).

A resource is an object that ``@tool`` activities share on a worker: a database pool, an
HTTP client, a model loaded in memory. It never enters workflow code or history: the
prompt function runs in the workflow sandbox, so it cannot hold one. So resources are
declared at module level, beside the ``@tool`` functions that use them::

    db = lmthing.def_resource("db", init=make_pool, cleanup=close_pool, health_check=ping)

    @tool
    async def lookup(order_id: str, ctx: ToolContext) -> dict:
        pool = await ctx.resource("db")
        ...

A worker that loads the module (``--app``, or ``create_worker(resources=[db])``) creates
each one on first use, checks it, recreates it when unhealthy and closes it when it shuts
down (:mod:`lmthing.workers.resources`). This module only describes them: it is
engine-neutral, and declaring one does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

# Seconds between two health checks of one object: it is checked when handed out, at most
# this often (0: every time). A check costs a round trip, and most tool calls come in bursts.
DEFAULT_CHECK_EVERY = 30.0
# How long ctx.acquire() waits for a pool instance before the tool call fails (retryably).
DEFAULT_ACQUIRE_TIMEOUT = 10.0
DEFAULT_POOL_MAX = 10


@dataclass(eq=False)
class ResourceDef:
    """One shared object per worker. ``init()`` makes it; ``health_check(obj)`` says whether
    it still works (False or an exception: it is cleaned up and made again);
    ``cleanup(obj)`` closes it. Each may be sync (run in a thread) or async."""

    name: str
    init: Callable[[], Any]
    cleanup: Callable[[Any], Any] | None = None
    health_check: Callable[[Any], Any] | None = None
    check_every: float = DEFAULT_CHECK_EVERY

    kind = "resource"


@dataclass(eq=False)
class ResourcePoolDef:
    """Up to ``max`` objects made by ``factory()``, each lent to one tool call at a time
    (``async with ctx.acquire(name) as obj``); ``min`` are made on first use."""

    name: str
    factory: Callable[[], Any]
    min: int = 0
    max: int = DEFAULT_POOL_MAX
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT
    cleanup: Callable[[Any], Any] | None = None
    health_check: Callable[[Any], Any] | None = None
    check_every: float = DEFAULT_CHECK_EVERY

    kind = "pool"


AnyResourceDef = ResourceDef | ResourcePoolDef


class ResourceAccess(Protocol):
    """What a worker gives a :class:`~lmthing.prompt.tools.ToolContext` to reach its resources."""

    def resource(self, name: str) -> Any: ...

    def acquire(self, name: str) -> Any: ...


def def_resource(
    name: str,
    init: Callable[[], Any],
    cleanup: Callable[[Any], Any] | None = None,
    health_check: Callable[[Any], Any] | None = None,
    *,
    check_every: float | timedelta = DEFAULT_CHECK_EVERY,
) -> ResourceDef:
    """Declare a worker-side resource (lmthing's ``defResource``): made by ``init()`` once
    per worker on the first ``ctx.resource(name)``, checked by ``health_check(obj)`` at most
    every ``check_every`` seconds when handed out, made again when unhealthy (``cleanup`` on
    the old one), and closed by ``cleanup(obj)`` when the worker shuts down. Bind it to a
    module-level name in a module the worker loads."""
    where = f"def_resource({name!r})"
    _check_name(where, name)
    _check_callable(where, "init", init, required=True)
    _check_callable(where, "cleanup", cleanup)
    _check_callable(where, "health_check", health_check)
    return ResourceDef(name, init, cleanup, health_check, _seconds(where, "check_every", check_every, zero_ok=True))


def def_resource_pool(
    name: str,
    factory: Callable[[], Any],
    *,
    min: int = 0,
    max: int = DEFAULT_POOL_MAX,
    acquire_timeout: float | timedelta = DEFAULT_ACQUIRE_TIMEOUT,
    cleanup: Callable[[Any], Any] | None = None,
    health_check: Callable[[Any], Any] | None = None,
    check_every: float | timedelta = DEFAULT_CHECK_EVERY,
) -> ResourcePoolDef:
    """Declare a pool of worker-side objects (lmthing's ``defResourcePool``): at most ``max``
    lent out at once (``async with ctx.acquire(name) as obj``), ``min`` made on first use; a
    call that finds all ``max`` in use waits up to ``acquire_timeout`` seconds, then fails
    with a retryable ``ResourcePoolExhausted``. ``cleanup`` / ``health_check`` as for
    :func:`def_resource`, per object."""
    where = f"def_resource_pool({name!r})"
    _check_name(where, name)
    _check_callable(where, "factory", factory, required=True)
    _check_callable(where, "cleanup", cleanup)
    _check_callable(where, "health_check", health_check)
    for label, value in (("min", min), ("max", max)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: {label}= is a whole number >= 0; got {value!r}")
    if max < 1:
        raise ValueError(f"{where}: max= must be at least 1 (the most objects lent at once); got {max}")
    if min > max:
        raise ValueError(f"{where}: min={min} is more than max={max}; lower min= or raise max=")
    timeout = _seconds(where, "acquire_timeout", acquire_timeout, zero_ok=False)
    every = _seconds(where, "check_every", check_every, zero_ok=True)
    return ResourcePoolDef(name, factory, min, max, timeout, cleanup, health_check, every)


def _check_name(where: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{where}: the name is a non-empty str (what tools pass to ctx.resource(...)); got {name!r}")


def _check_callable(where: str, label: str, fn: Any, required: bool = False) -> None:
    if fn is None and not required:
        return
    if not callable(fn):
        raise TypeError(f"{where}: {label}= is a function (sync or async); got {fn!r}")


def _seconds(where: str, label: str, value: Any, zero_ok: bool) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (
        value == 0 and not zero_ok
    ):
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"{where}: {label}= is a number of seconds {bound} (or a timedelta); got {value!r}")
    return float(value)
