"""One worker's pool of a ``def_resource_pool``: at most ``max`` objects lent at once.

A tool call borrows one (``async with ctx.acquire(name) as obj``) and gives it back when
its block ends, failed or not. A call that finds all ``max`` lent waits up to
``acquire_timeout``, then fails with a retryable ``ResourcePoolExhausted`` naming the pool
and its max: Temporal retries the call later (per the tool's retry policy) rather than
letting it queue on this worker past its timeout. Idle objects are checked when lent (at
most every ``check_every`` seconds, and always after a block that raised) and replaced when
unhealthy."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from temporalio.exceptions import ApplicationError

from lmthing.prompt.resources import ResourcePoolDef

from .resource_calls import background, close_quietly, closed, due, healthy, make


@dataclass(eq=False)
class Slot:
    """One object of the pool, with when it was last known healthy."""

    obj: Any
    checked_at: float


class ResourcePool:
    def __init__(self, defn: ResourcePoolDef) -> None:
        self.defn = defn
        self.label = f"Resource pool {defn.name!r}"
        self._free = asyncio.Semaphore(defn.max)
        self._idle: list[Slot] = []
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = False
        self.lent = 0  # objects out right now
        self.made = 0  # objects made so far (replacements included)

    async def acquire(self) -> Slot:
        """An object for one tool call: an idle one (checked if due), else a new one."""
        if self._closed:
            raise closed(self.defn.name)
        await self._start()
        try:
            async with asyncio.timeout(self.defn.acquire_timeout):
                await self._free.acquire()
        except TimeoutError:
            raise ApplicationError(
                f"{self.label} had no free object within {self.defn.acquire_timeout:g} s (acquire_timeout): all "
                f"max={self.defn.max} were in use. The tool call is retried per its retry policy; raise max= or "
                "acquire_timeout=, or hold an object for less time",
                type="ResourcePoolExhausted",
            ) from None
        try:
            slot = await self._usable()
        except BaseException:
            self._free.release()
            raise
        self.lent += 1
        return slot

    async def release(self, slot: Slot, failed: bool = False) -> None:
        """Take ``slot`` back; after a block that raised it is checked before it is lent again."""
        self.lent -= 1
        if failed:
            slot.checked_at = float("-inf")
        if self._closed:
            await close_quietly(self.label, self.defn.cleanup, slot.obj)
        else:
            self._idle.append(slot)
        self._free.release()

    async def close(self) -> None:
        """Clean up every idle object; objects still lent are cleaned up when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for slot in reversed(idle):
            await close_quietly(self.label, self.defn.cleanup, slot.obj)

    async def _start(self) -> None:
        """Make ``min`` objects on first use."""
        if self._started:
            return
        async with self._start_lock:
            while not self._started and len(self._idle) < self.defn.min:
                self._idle.append(await self._new())
            self._started = True

    async def _usable(self) -> Slot:
        while self._idle:
            slot = self._idle.pop()
            if self.defn.health_check is None or not due(slot.checked_at, self.defn.check_every):
                return slot
            try:
                ok = await healthy(self.label, self.defn.health_check, slot.obj)
            except asyncio.CancelledError:  # the call went away mid-check: the object stays the pool's
                self._idle.append(slot)
                raise
            if ok:
                slot.checked_at = time.monotonic()
                return slot
            await close_quietly(self.label, self.defn.cleanup, slot.obj)
        return await self._new()

    async def _new(self) -> Slot:
        making = background(make(self.label, self.defn.factory))
        try:
            obj = await asyncio.shield(making)
        except asyncio.CancelledError:  # the tool call was cancelled: keep what it was making
            making.add_done_callback(self._adopt)
            raise
        self.made += 1
        return Slot(obj, time.monotonic())

    def _adopt(self, making: asyncio.Task[Any]) -> None:
        """An object made for a call that was cancelled meanwhile: idle, unless the pool is
        full or closed (then it is cleaned up)."""
        if making.cancelled() or making.exception() is not None:
            return
        self.made += 1
        if self._closed or len(self._idle) + self.lent >= self.defn.max:
            background(close_quietly(self.label, self.defn.cleanup, making.result()))
        else:
            self._idle.append(Slot(making.result(), time.monotonic()))
