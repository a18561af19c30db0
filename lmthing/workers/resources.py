"""A worker's resources: the objects of ``def_resource`` / ``def_resource_pool`` declarations,
made on first use by a ``@tool`` activity, checked, remade when unhealthy, closed when the
worker stops (docs/resources.md).

One :class:`ResourceRegistry` belongs to one worker (``create_worker`` builds it from the
declarations found in its ``app`` modules and ``resources=[...]``). Tool activities reach it
through their :class:`~lmthing.prompt.tools.ToolContext`; :class:`ResourcesPlugin`, a
Temporal worker plugin, closes it when the worker's ``run()`` ends, that is after every
running activity has finished or been cancelled, whether the worker was stopped with
``shutdown()``, by leaving ``async with worker:``, or on SIGTERM by ``lmthing worker``.

Resources hold no durable state: a worker that dies (SIGKILL) loses them with its process,
and the tool calls it was running are retried by Temporal on a worker that makes its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from temporalio.worker import Plugin, ReplayerConfig, WorkerConfig

from lmthing.prompt.resources import AnyResourceDef, ResourceDef, ResourcePoolDef

from .resource_calls import (
    CLEANUP_TIMEOUT, background, close_quietly, closed, due, healthy, make, unknown_resource, wrong_kind,
)
from .resource_pool import ResourcePool, Slot

_NONE = object()


class SharedResource:
    """The one object of a ``def_resource`` on this worker."""

    def __init__(self, defn: ResourceDef) -> None:
        self.defn = defn
        self.label = f"Resource {defn.name!r}"
        self._obj: Any = _NONE
        self._checked_at = 0.0
        self._lock = asyncio.Lock()  # one check or init at a time, however many tool calls ask at once
        self._making: asyncio.Task[None] | None = None
        self._closed = False
        self.made = 0

    async def get(self) -> Any:
        async with self._lock:
            if self._obj is not _NONE and self.defn.health_check is not None and due(self._checked_at, self.defn.check_every):
                if await healthy(self.label, self.defn.health_check, self._obj):
                    self._checked_at = time.monotonic()
                else:
                    old, self._obj = self._obj, _NONE
                    await close_quietly(self.label, self.defn.cleanup, old)
            if self._obj is _NONE:
                if self._making is None or self._making.done():  # none yet, or the last one failed
                    self._making = background(self._make())
                await asyncio.shield(self._making)
            return self._obj

    async def _make(self) -> None:
        obj = await make(self.label, self.defn.init)
        if self._closed:  # the worker stopped while it was being made
            await close_quietly(self.label, self.defn.cleanup, obj)
            raise closed(self.defn.name)
        self._obj, self._checked_at = obj, time.monotonic()
        self.made += 1

    async def close(self) -> None:
        self._closed = True
        if self._making is not None and not self._making.done():
            await asyncio.wait([self._making], timeout=CLEANUP_TIMEOUT)  # it cleans up what it makes
        old, self._obj = self._obj, _NONE
        if old is not _NONE:
            await close_quietly(self.label, self.defn.cleanup, old)


class ResourceRegistry:
    """The resources of one worker, by name."""

    def __init__(self, defs: Iterable[AnyResourceDef] = ()) -> None:
        self._entries: dict[str, SharedResource | ResourcePool] = {}
        for defn in defs:
            if not isinstance(defn, (ResourceDef, ResourcePoolDef)):
                raise TypeError(
                    f"create_worker: resources=[...] takes what lmthing.def_resource(...) / def_resource_pool(...) return; "
                    f"got {defn!r}"
                )
            known = self._entries.get(defn.name)
            if known is not None and known.defn is not defn:
                raise ValueError(f"create_worker: two different resources are named {defn.name!r}; rename one")
            if known is None:
                self._entries[defn.name] = SharedResource(defn) if isinstance(defn, ResourceDef) else ResourcePool(defn)
        self._order: list[SharedResource | ResourcePool] = []  # first use first, so closing goes in reverse
        self._closed = False

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def entry(self, name: str) -> SharedResource | ResourcePool:
        found = self._entries.get(name)
        if found is None:
            raise unknown_resource(name, self._entries)
        if self._closed:
            raise closed(name)
        if found not in self._order:
            self._order.append(found)
        return found

    async def get(self, name: str) -> Any:
        """The object of the resource ``name``."""
        found = self.entry(name)
        if not isinstance(found, SharedResource):
            raise wrong_kind(name, "pool")
        return await found.get()

    async def borrow(self, name: str) -> tuple[ResourcePool, Slot]:
        """One object of the pool ``name``; give it back with ``pool.release(slot)``."""
        found = self.entry(name)
        if not isinstance(found, ResourcePool):
            raise wrong_kind(name, "resource")
        return found, await found.acquire()

    async def close(self) -> None:
        """Clean up every object made, the last made first. Later use fails (retryably)."""
        self._closed = True
        for found in reversed(self._order):
            await found.close()

    def access(self) -> ResourceHandle:
        """What a tool call's ToolContext uses; made on the worker's event loop."""
        return ResourceHandle(self, asyncio.get_running_loop())


class ResourceHandle:
    """A ToolContext's way to the registry, from an ``async def`` tool (on the worker's event
    loop: awaitables) or a plain ``def`` tool (in a thread: blocking calls into that loop)."""

    def __init__(self, registry: ResourceRegistry, loop: asyncio.AbstractEventLoop) -> None:
        self.registry = registry
        self.loop = loop

    def on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def wait(self, work: Awaitable[Any]) -> Any:
        """Run ``work`` on the worker's loop and wait for it, from a tool's thread."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()  # type: ignore[arg-type]

    def resource(self, name: str) -> Any:
        if self.on_loop():
            return _Pending(lambda: self.registry.get(name), name)
        return self.wait(self.registry.get(name))

    def acquire(self, name: str) -> Lease:
        return Lease(self, name)


class _Pending:
    """``ctx.resource(name)`` in an async tool: awaited, it is the object. Used without
    ``await`` it says so, instead of an AttributeError about a coroutine."""

    __slots__ = ("_get", "_name")

    def __init__(self, get: Callable[[], Awaitable[Any]], name: str) -> None:
        self._get = get
        self._name = name

    def __await__(self) -> Any:
        return self._get().__await__()

    def __getattr__(self, attr: str) -> Any:
        raise ResourceNotAwaited(
            f"ctx.resource({self._name!r}) is awaited in an async def tool: write `obj = await ctx.resource({self._name!r})` "
            f"(got .{attr} of the awaitable)"
        )


class ResourceNotAwaited(AttributeError):
    """An attribute of ``ctx.resource(name)`` read without ``await`` in an async tool."""


class Lease:
    """``ctx.acquire(name)``: lends one object of a pool for the length of a block."""

    def __init__(self, handle: ResourceHandle, name: str) -> None:
        self._handle = handle
        self._name = name
        self._held: tuple[ResourcePool, Slot] | None = None

    async def __aenter__(self) -> Any:
        if self._held is not None:
            raise RuntimeError(f"ctx.acquire({self._name!r}) is already entered; call ctx.acquire() again for another object")
        self._held = await self._handle.registry.borrow(self._name)
        return self._held[1].obj

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        pool, slot = self._held  # type: ignore[misc]
        self._held = None
        await pool.release(slot, failed=exc_type is not None and not issubclass(exc_type, asyncio.CancelledError))

    def __enter__(self) -> Any:
        if self._handle.on_loop():
            raise TypeError(f"In an async def tool, borrow with `async with ctx.acquire({self._name!r}) as obj:`")
        return self._handle.wait(self.__aenter__())

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._handle.wait(self.__aexit__(exc_type))


class ResourcesPlugin(Plugin):
    """Closes a worker's resources when its ``run()`` ends (a Temporal worker plugin); also
    used for the worker's memory store (anything with an async ``close()``)."""

    def __init__(self, registry: Any, name: str = "lmthing.resources") -> None:
        self.registry = registry
        self._name = name

    def name(self) -> str:
        return self._name

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        return config

    async def run_worker(self, worker: Any, next: Callable[[Any], Awaitable[None]]) -> None:
        try:
            await next(worker)
        finally:
            await self.registry.close()

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        return config

    def run_replayer(self, replayer: Any, histories: Any, next: Callable[..., Any]) -> Any:
        return next(replayer, histories)
