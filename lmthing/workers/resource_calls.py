"""Calling a resource's own functions (init, factory, health_check, cleanup) on the worker,
and the errors a tool call gets when that goes wrong.

The functions are the user's, sync or async: async ones run on the worker's event loop,
sync ones in a thread, so a slow connect does not stall the heartbeats of every other
activity on the worker. Errors are Temporal ``ApplicationError``s with a type a retry
policy can name and a message that names the resource and the cause, raised without the
user's traceback chained on (the worker logs that)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from temporalio.exceptions import ApplicationError

log = logging.getLogger("lmthing.resources")

# The longest one cleanup may take at worker shutdown before the worker moves on (and logs it).
CLEANUP_TIMEOUT = 10.0


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``: awaited when async, else in a thread (and awaited if it returns an awaitable)."""
    if is_async(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


def background(work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """``work`` as a task that outlives a cancelled caller: a slow init that a tool call's
    timeout cancelled still finishes, and its object goes to the next call instead of being
    lost (and made again, and cancelled again, at every attempt). Its failure, if nobody
    awaits it any more, is not reported as "never retrieved": it was raised to the caller
    that did."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


def describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def due(checked_at: float, every: float) -> bool:
    return time.monotonic() - checked_at >= every


async def make(label: str, fn: Callable[[], Any]) -> Any:
    """A new object from ``fn`` (init or factory); a retryable ``ResourceInitFailed`` if it raises."""
    try:
        return await call(fn)
    except Exception as err:  # noqa: BLE001  (the user's init: any failure is reported the same way)
        log.warning("%s could not be created", label, exc_info=err)
        raise ApplicationError(
            f"{label} could not be created: {describe(err)} (raised by its {_maker(fn)}); the tool call is retried "
            "per its retry policy",
            type="ResourceInitFailed",
        ) from None


def _maker(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__qualname__', None) or type(fn).__name__}()"


async def healthy(label: str, check: Callable[[Any], Any] | None, obj: Any) -> bool:
    """Whether ``check(obj)`` passes (no check: yes); a check that raises says no."""
    if check is None:
        return True
    try:
        ok = bool(await call(check, obj))
    except Exception as err:  # noqa: BLE001
        log.warning("%s: its health check raised %s; making a new one", label, describe(err))
        return False
    if not ok:
        log.warning("%s failed its health check; making a new one", label)
    return ok


async def close_quietly(label: str, cleanup: Callable[[Any], Any] | None, obj: Any) -> None:
    """``cleanup(obj)``, bounded by CLEANUP_TIMEOUT; a failure is logged, never raised (the
    object is being thrown away either way)."""
    if cleanup is None:
        return
    try:
        async with asyncio.timeout(CLEANUP_TIMEOUT):
            await call(cleanup, obj)
    except TimeoutError:
        log.warning("%s: its cleanup took over %.0f s; moving on", label, CLEANUP_TIMEOUT)
    except Exception as err:  # noqa: BLE001
        log.warning("%s: its cleanup raised %s", label, describe(err), exc_info=err)


def unknown_resource(name: str, known: Iterable[str]) -> ApplicationError:
    names = ", ".join(repr(n) for n in sorted(known)) or "none"
    return ApplicationError(
        f"No resource named {name!r} on this worker (known: {names}). Declare it with lmthing.def_resource(...) or "
        "lmthing.def_resource_pool(...) at module level in a module the worker loads (--app), or pass "
        "create_worker(resources=[...])",
        type="UnknownResource",
        non_retryable=True,
    )


def wrong_kind(name: str, kind: str) -> ApplicationError:
    if kind == "pool":
        fix = f"{name!r} is a pool (def_resource_pool): borrow one object with `async with ctx.acquire({name!r}) as obj:`"
    else:
        fix = f"{name!r} is a single resource (def_resource): get it with `await ctx.resource({name!r})`"
    return ApplicationError(fix, type="WrongResourceKind", non_retryable=True)


def closed(name: str) -> ApplicationError:
    return ApplicationError(
        f"Resource {name!r}: this worker is shutting down and has closed its resources; the tool call is retried "
        "on another worker",
        type="ResourcesClosed",
    )
