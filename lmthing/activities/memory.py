"""The memory activities (docs/memory.md): every read and write of a memory store.

One :class:`MemoryActivities` per worker holds the store (opened from the worker's URL on
first use, never from workflow input: it may hold a password) and the batching embedder.
A write replaces the record at its address, so an attempt retried after a lost worker
writes the same record again instead of a second one. Errors are classified: a store or
embedding set up wrong fails at once (non-retryable, naming the setting); a store that does
not answer, or a provider's transient error, is retried by Temporal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.memory.types import (
    MemoryForget,
    MemoryQuery,
    MemoryRecord,
    MemoryStoreError,
    MemoryStoreUnavailable,
    MemoryWrite,
    SearchHit,
)

from .embeddings import Embedder
from .failures import provider_failure
from .heartbeats import heartbeat_forever
from .names import MEMORY_FORGET, MEMORY_GET, MEMORY_LIST, MEMORY_SEARCH, MEMORY_WRITE
from .providers.base import ModelCallError, ModelConfigError, ProviderRegistry
from .stores.base import STORE_URL_VAR, Store, default_store_url, open_store

T = TypeVar("T")


class MemoryActivities:
    """The worker's store and embedder; the methods are the activities."""

    def __init__(self, registry: ProviderRegistry, store_url: str | None = None, *,
                 embed_batch_size: int = 64, embed_batch_wait: float = 0.01) -> None:
        self.store_url = store_url or default_store_url()
        self.embedder = Embedder(registry, max_size=embed_batch_size, max_wait=embed_batch_wait)
        self._store: Store | None = None
        self._opening = asyncio.Lock()

    async def store(self) -> Store:
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    self._store = open_store(self.store_url)
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    @activity.defn(name=MEMORY_WRITE)
    async def write(self, call: MemoryWrite) -> MemoryRecord:
        async def go() -> MemoryRecord:
            record = call.record
            if call.ttl_seconds is not None:
                record = record.model_copy(update={"expires_at": time.time() + call.ttl_seconds})
            vector = None
            if call.embedding is not None:
                [vector] = await self.embedder.embed(call.embedding.model, [record.text], call.embedding.dimensions)
                record = record.model_copy(update={"embedding_model": call.embedding.model, "dimensions": len(vector)})
            return await (await self.store()).put(record, vector)

        return await classified(go)

    @activity.defn(name=MEMORY_GET)
    async def get(self, query: MemoryQuery) -> MemoryRecord | None:
        if query.scope is None or query.key is None:
            raise ApplicationError("lmthing.memory.get needs scope and key", type="InvalidMemoryQuery", non_retryable=True)
        return await classified(lambda: self._get(query))

    async def _get(self, query: MemoryQuery) -> MemoryRecord | None:
        return await (await self.store()).get(query.namespace, query.scope or "", query.key or "")

    @activity.defn(name=MEMORY_SEARCH)
    async def search(self, query: MemoryQuery) -> list[SearchHit]:
        async def go() -> list[SearchHit]:
            vector = None
            if query.embedding is not None:
                if not query.text:
                    return []
                [vector] = await self.embedder.embed(query.embedding.model, [query.text], query.embedding.dimensions)
            return await (await self.store()).search(query.namespace, query.scope, text=query.text, embedding=vector,
                                                     limit=query.limit, kind=query.kind)

        return await classified(go)

    @activity.defn(name=MEMORY_LIST)
    async def list(self, query: MemoryQuery) -> list[MemoryRecord]:
        async def go() -> list[MemoryRecord]:
            return await (await self.store()).list(namespace=query.namespace, scope=query.scope, kind=query.kind,
                                                   limit=query.limit, newest_first=query.newest_first)

        return await classified(go)

    @activity.defn(name=MEMORY_FORGET)
    async def forget(self, call: MemoryForget) -> int:
        async def go() -> int:
            return await (await self.store()).delete(call.namespace, call.scope, call.key)

        return await classified(go)

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [self.write, self.get, self.search, self.list, self.forget]


async def classified(go: Callable[[], Awaitable[T]]) -> T:
    """Run ``go`` and turn what it raises into the activity's failure: a setting to fix is
    non-retryable and says which; a store down or a provider's hiccup is retried. It
    heartbeats meanwhile, so a call lost with its worker is made again within seconds."""
    heartbeats = asyncio.create_task(heartbeat_forever())
    try:
        return await go()
    except MemoryStoreError as err:
        setting = err.setting or STORE_URL_VAR
        raise ApplicationError(f"{err} (setting: {setting})", type="MemoryStoreError", non_retryable=True) from None
    except MemoryStoreUnavailable as err:
        raise ApplicationError(str(err), type="MemoryStoreUnavailable") from None
    except ModelConfigError as err:
        raise ApplicationError(f"{err} (setting: def_memory(embedding=...))", type="ModelConfigError",
                               non_retryable=True) from None
    except ModelCallError as err:
        raise provider_failure(err) from None
    finally:
        heartbeats.cancel()
