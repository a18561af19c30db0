"""A worker SIGKILLed during a memory write (while the write's text is being embedded): the
second worker writes it again, the write finished before the kill is not repeated, and the
store holds exactly one record per fact. Against the fake OpenAI server's /v1/embeddings
and a SQLite store file, with the worker in a subprocess."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lmthing.activities.names import MEMORY_WRITE
from lmthing.activities.stores import open_store
from lmthing.client import start_prompt
from tests.apps import memory_durable as app
from tests.fakes import FakeModelServer
from tests.support import completed_activities, new_id, worker_process

APP = "tests.apps.memory_durable"


async def test_a_memory_write_lost_with_its_worker_is_made_once_more_and_stored_once(dev_env, client, tmp_path: Path,
                                                                                     monkeypatch):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("memory-q")
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    facts = ["The vault opens at nine", "The courier comes on Tuesdays"]
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)  # the worker processes inherit these
        monkeypatch.setenv("LMTHING_MEMORY_URL", url)
        server.embedding_delays.extend([0, 60])  # the second write hangs until its worker is killed
        async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
            handle = await start_prompt(client, app.two_facts, {"facts": facts}, id=new_id("two-facts"), task_queue=queue)
            for _ in range(300):
                if len(server.embedding_requests) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert len(server.embedding_requests) == 2, "the second write never started"
            first.kill()
            await first.proc.wait()
        async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
            result = await asyncio.wait_for(handle.result(), 45)
        events = (await handle.handle.fetch_history()).events
    assert result.text == "both facts are stored"
    # The first write was not made again; the lost one was.
    assert [r["input"] for r in server.embedding_requests] == [[facts[0]], [facts[1]], [facts[1]]]
    assert completed_activities(events, MEMORY_WRITE) == 2
    store = open_store(url)
    try:
        records = await store.list(namespace="durable-facts")
    finally:
        await store.close()
    assert sorted(r.text for r in records) == sorted(facts)
    assert {r.scope for r in records} == {f"run:{handle.id}"}
