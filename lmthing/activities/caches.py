"""The worker's side of ``def_cache`` for ``@tool`` activities and model calls (docs/memory.md): a call
whose key is in the cache is answered from it and the tool does not run. An LRU in the
worker's memory answers first; behind it the memory store, so a cached result outlives the
worker and the run. Whether it was a hit is in the activity's result, so the history shows
it and a replay takes the same path."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from lmthing.memory.types import CacheRef, MemoryRecord

from .stores.base import Store

HIT, MISS = "hit", "miss"


class ToolCaches:
    """One per worker: ``hits`` and ``misses`` count what the caches answered."""

    def __init__(self, store: Callable[[], Awaitable[Store]]) -> None:
        self._store = store
        self._lru: dict[str, OrderedDict[tuple[str, str], tuple[float | None, Any]]] = {}
        self.hits = 0
        self.misses = 0

    async def run(self, ref: CacheRef, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        """The cached result of ``ref.key``, or ``call()``'s (then kept): as
        ``{"lmthing_cache": "hit"|"miss", "result": ...}``."""
        found, value = await self.lookup(ref)
        if found:
            return {"lmthing_cache": HIT, "result": value}
        value = await call()
        await self.keep(ref, value)
        return {"lmthing_cache": MISS, "result": value}

    async def lookup(self, ref: CacheRef) -> tuple[bool, Any]:
        """``(True, value)`` when ``ref.key`` is cached and not expired, else ``(False, None)``."""
        found, value = await self._get(ref)
        if found:
            self.hits += 1
        else:
            self.misses += 1
        return found, value

    async def _get(self, ref: CacheRef) -> tuple[bool, Any]:
        lru = self._lru.setdefault(ref.name, OrderedDict())
        entry = lru.get((ref.scope, ref.key))
        if entry is not None:
            expires, value = entry
            if expires is None or expires > time.time():
                lru.move_to_end((ref.scope, ref.key))
                return True, value
            del lru[(ref.scope, ref.key)]
        record = await (await self._store()).get(ref.name, ref.scope, ref.key)
        if record is None:
            return False, None
        self._remember(ref, record.expires_at, record.value)
        return True, record.value

    async def keep(self, ref: CacheRef, value: Any) -> None:
        """Cache ``value`` under ``ref.key`` (in the store and this worker's LRU)."""
        expires = None if ref.ttl_seconds is None else time.time() + ref.ttl_seconds
        await (await self._store()).put(MemoryRecord(namespace=ref.name, scope=ref.scope, key=ref.key, kind="cache",
                                                     value=value, expires_at=expires))
        self._remember(ref, expires, value)

    def _remember(self, ref: CacheRef, expires: float | None, value: Any) -> None:
        lru = self._lru.setdefault(ref.name, OrderedDict())
        lru[(ref.scope, ref.key)] = (expires, value)
        lru.move_to_end((ref.scope, ref.key))
        while len(lru) > ref.max_size:
            lru.popitem(last=False)
