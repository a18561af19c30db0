"""Embeddings on the worker, batched: concurrent requests for one embedding model coalesce
into one provider call (up to ``max_size`` texts, after waiting at most ``max_wait`` for
company), and the same text asked twice in a batch is embedded once. Vectors never enter
workflow history: the memory activities embed and store in one go.

Models are ``provider:model`` specs resolved by the worker's provider registry, like chat
models (``openai:text-embedding-3-small``); the provider must have an ``embed`` method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from .providers.base import ModelConfigError, ProviderRegistry

DEFAULT_EMBEDDING_MODEL = "openai:text-embedding-3-small"


@dataclass
class _Batch:
    texts: dict[str, None] = field(default_factory=dict)  # distinct texts, in order
    done: asyncio.Future[dict[str, list[float]]] | None = None
    flush: asyncio.TimerHandle | None = None


class Embedder:
    """One per worker. ``calls`` counts provider requests (the batching is measured by it)."""

    def __init__(self, registry: ProviderRegistry, *, max_size: int = 64, max_wait: float = 0.01) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1 or not max_wait >= 0:
            raise ValueError(f"create_worker: embedding_batch_size is a whole number >= 1 and embedding_batch_wait "
                             f"a number of seconds >= 0; got {max_size!r}, {max_wait!r}")
        self.registry = registry
        self.max_size = max_size
        self.max_wait = max_wait
        self.calls = 0
        self._open: dict[tuple[str, int | None], _Batch] = {}

    async def embed(self, model: str, texts: Sequence[str], dimensions: int | None = None) -> list[list[float]]:
        """A vector per text, in order. Raises the provider's ModelConfigError/ModelCallError."""
        if not texts:
            return []
        provider, model_id = self.registry.resolve(model)
        if getattr(provider, "embed", None) is None:
            raise ModelConfigError(
                f"The provider of {model!r} has no embeddings endpoint; use an OpenAI embedding model "
                f"(e.g. {DEFAULT_EMBEDDING_MODEL!r}) for def_memory(embedding=...)")
        waits = []
        for i in range(0, len(texts), self.max_size):
            waits.append(self._join((model, dimensions), texts[i:i + self.max_size]))
        vectors: dict[str, list[float]] = {}
        # Shielded: one waiter cancelled (its activity was) must not cancel the others' batch.
        for answer in await asyncio.gather(*(asyncio.shield(w) for w in waits)):
            vectors.update(answer)
        return [vectors[t] for t in texts]

    def _join(self, key: tuple[str, int | None], texts: Sequence[str]) -> asyncio.Future[dict[str, list[float]]]:
        batch = self._open.get(key)
        if batch is not None and len(batch.texts) + len([t for t in texts if t not in batch.texts]) > self.max_size:
            self._send(key)
            batch = None
        if batch is None:
            batch = self._open[key] = _Batch(done=asyncio.get_running_loop().create_future())
            batch.flush = asyncio.get_running_loop().call_later(self.max_wait, self._send, key)
        for t in texts:
            batch.texts.setdefault(t)
        if len(batch.texts) >= self.max_size:
            self._send(key)
        assert batch.done is not None
        return batch.done

    def _send(self, key: tuple[str, int | None]) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.flush is not None:
            batch.flush.cancel()
        asyncio.get_running_loop().create_task(self._request(key, batch))

    async def _request(self, key: tuple[str, int | None], batch: _Batch) -> None:
        assert batch.done is not None
        model, dimensions = key
        texts = list(batch.texts)
        try:
            provider, model_id = self.registry.resolve(model)
            self.calls += 1
            vectors = await provider.embed(model_id, texts, dimensions)  # type: ignore[attr-defined]
        except BaseException as err:  # every waiter gets the provider's error
            if not batch.done.done():
                batch.done.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        if not batch.done.done():
            batch.done.set_result(dict(zip(texts, vectors)))
