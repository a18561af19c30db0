"""The worker's embedder (lmthing/activities/embeddings.py) through the real openai SDK
against the fake server's /v1/embeddings: concurrent requests coalesce into one provider
call, a text asked twice is embedded once, batches stop at max_size, a provider error
reaches every waiter, and a provider without embeddings is refused by name."""

from __future__ import annotations

import asyncio

import pytest

from lmthing.activities.embeddings import Embedder
from lmthing.activities.providers.base import ModelCallError, ModelConfigError, default_registry
from tests.fakes.embeddings import embed as fake_embed
from tests.fakes.server import FakeModelServer, Fault


@pytest.fixture
async def server(monkeypatch):
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield server


MODEL = "openai:text-embedding-3-small"


async def test_concurrent_requests_coalesce_into_one_call_and_duplicates_are_embedded_once(server):
    embedder = Embedder(default_registry(), max_size=64, max_wait=0.05)
    texts = [f"note number {i}" for i in range(10)] + ["note number 3"]
    answers = await asyncio.gather(*(embedder.embed(MODEL, [t], 32) for t in texts))
    assert len(server.embedding_requests) == 1 and embedder.calls == 1
    assert len(server.embedding_requests[0]["input"]) == 10  # the repeat was sent once
    assert [a[0] for a in answers] == [fake_embed(t, 32) for t in texts]


async def test_a_batch_stops_at_max_size(server):
    embedder = Embedder(default_registry(), max_size=4, max_wait=0.05)
    await asyncio.gather(*(embedder.embed(MODEL, [f"text {i}"]) for i in range(10)))
    # Three batches, sent at once (they may reach the server in any order).
    assert sorted(len(r["input"]) for r in server.embedding_requests) == [2, 4, 4]


async def test_different_dimensions_are_different_batches(server):
    embedder = Embedder(default_registry(), max_wait=0.05)
    short, long = await asyncio.gather(embedder.embed(MODEL, ["a text"], 8), embedder.embed(MODEL, ["a text"], 16))
    assert (len(short[0]), len(long[0])) == (8, 16) and len(server.embedding_requests) == 2


async def test_a_provider_error_reaches_every_waiter(server):
    server.embedding_faults.append(Fault.unauthorized())
    embedder = Embedder(default_registry(), max_wait=0.05)
    results = await asyncio.gather(*(embedder.embed(MODEL, [f"t{i}"]) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ModelCallError) and not r.retryable and "OPENAI_API_KEY" in str(r) for r in results)
    assert len(server.embedding_requests) == 1


async def test_a_cancelled_waiter_does_not_cancel_the_others(server):
    embedder = Embedder(default_registry(), max_wait=0.1)
    first = asyncio.ensure_future(embedder.embed(MODEL, ["one"]))
    second = asyncio.ensure_future(embedder.embed(MODEL, ["two"]))
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second)[0] == fake_embed("two", 1536)


async def test_a_provider_without_embeddings_is_refused_by_name():
    embedder = Embedder(default_registry())
    with pytest.raises(ModelConfigError, match="no embeddings endpoint"):
        await embedder.embed("anthropic:claude-sonnet-4-5", ["x"])
