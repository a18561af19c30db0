"""def_memory in real runs (docs/memory.md), on the session worker's SQLite store: what one
run remembers the next recalls (kv, session scope), a vector memory ranks by meaning
(embeddings from the openai SDK against the fake server's /v1/embeddings), an episodic
memory keeps time order and a summary, beliefs move by log-odds and decay, the model's
memory tools store and find notes, and every read and write is an activity in history."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError

from lmthing.workflows.config import RunConfig
from tests.apps import memory_app as app
from tests.fakes.server import FakeModelServer, Fault
from tests.support import history, run, scheduled_activities, start


def var(text: str, name: str) -> str:
    """A variable's value as the scripted model read it from the system prompt."""
    return text.split(f"<{name}>", 1)[1].split(f"</{name}>", 1)[0].strip()


@pytest.fixture(autouse=True)
def _worker(worker):
    return worker


@pytest.fixture
async def embeddings(monkeypatch):
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield server


async def test_a_later_run_recalls_what_an_earlier_run_remembered(client):
    first, _ = await run(client, app.kv_prefs, {"set": "teal"})
    assert "teal" in first.text
    second, steps = await run(client, app.kv_prefs, {})
    assert var(second.text, "color") == "teal"
    handle = await start(client, app.kv_prefs, {})
    await handle.result()
    kinds = scheduled_activities(await history(handle))
    assert "lmthing.memory.get" in kinds and "lmthing.memory.write" not in kinds


async def test_session_scope_is_shared_by_the_runs_of_one_session_only(client):
    await run(client, app.session_notes, {"set": "the roadmap"}, config=RunConfig(session="s-1"))
    same, _ = await run(client, app.session_notes, {}, config=RunConfig(session="s-1"))
    other, _ = await run(client, app.session_notes, {}, config=RunConfig(session="s-2"))
    assert "the roadmap" in same.text
    assert var(other.text, "topic") == "None"


async def test_a_session_memory_without_a_session_fails_naming_the_fix(client):
    handle = await start(client, app.bad_session)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "session='...'" in str(failure.value.cause)


async def test_vector_memory_ranks_by_meaning_across_runs(client, embeddings):
    facts = ["The Eiffel tower is in Paris", "Bananas are yellow fruit", "Paris is the capital of France"]
    await run(client, app.vector_facts, {"store": facts})
    result, steps = await run(client, app.vector_facts, {"ask": "Paris, capital of France", "limit": 2})
    found = steps[-1].request.system
    assert found.index("Paris is the capital of France") < found.index("The Eiffel tower is in Paris")
    assert "Bananas" not in found
    # Embeddings went through the openai SDK to /v1/embeddings, with the asked dimensions.
    assert {r["dimensions"] for r in embeddings.embedding_requests} == {64}
    assert {r["model"] for r in embeddings.embedding_requests} == {"text-embedding-3-small"}


async def test_remembering_again_in_later_steps_writes_once(client, embeddings):
    handle = await start(client, app.note_taker, {"note": "The deploy key rotates on Fridays"})
    await handle.result()
    writes = [k for k in scheduled_activities(await history(handle)) if k == "lmthing.memory.write"]
    assert len(writes) == 1
    answer, _ = await run(client, app.note_reader, {"question": "when does the deploy key rotate"})
    assert "The deploy key rotates on Fridays" in answer.text


async def test_an_episodic_memory_keeps_order_and_a_summary(client):
    await run(client, app.diary, {"day": "d1", "events": ["woke up", "wrote the report"]})
    await run(client, app.diary, {"day": "d2", "events": ["sent the report"]})
    result, _ = await run(client, app.diary, {"day": "d3", "events": [], "summarize": True})
    assert "3 events: woke up; wrote the report; sent the report" in result.text
    later, _ = await run(client, app.diary, {"day": "d4", "events": ["took a walk"]})
    recalled = later.text[later.text.index("<recalled>"):]
    assert recalled.index("3 events") < recalled.index("took a walk")  # the summary, then what came after


async def test_beliefs_move_by_log_odds_and_decay(client):
    result, _ = await run(client, app.beliefs, {"evidence": [["rain today", 3.0], ["rain today", 3.0]], "ask": "rain today"})
    assert var(result.text, "p") == "0.9"  # odds 1 * 3 * 3 = 9: p = 0.9
    against, _ = await run(client, app.beliefs, {"evidence": [["rain today", 1 / 9]], "ask": "rain today"})
    assert var(against.text, "p") == "0.5"
    unknown, _ = await run(client, app.beliefs, {"ask": "snow"})
    assert var(unknown.text, "p") == "0.5"


async def test_a_missing_embedding_model_fails_fast_naming_the_setting(client, embeddings):
    embeddings.unknown_embedding_models.add("text-embedding-3-small")
    handle = await start(client, app.vector_facts, {"store": ["a fact"]})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "def_memory(embedding=...)" in message or "embedding" in message
    attempts = [e for e in await history(handle) if e.HasField("activity_task_started_event_attributes")]
    assert max(e.activity_task_started_event_attributes.attempt for e in attempts) == 1  # not retried


async def test_a_provider_hiccup_while_embedding_is_retried(client, embeddings):
    embeddings.embedding_faults.append(Fault.server_error(503))
    result, _ = await run(client, app.vector_facts, {"store": ["Retried facts still land"], "ask": "retried facts"})
    assert "Retried facts still land" in result.text


async def test_persisted_state_is_loaded_by_each_run_and_saved_after_the_step_that_changed_it(client):
    first, _ = await run(client, app.visit_counter, {})
    assert var(first.text, "visits") == "1" and first.state["visits"] == 1
    handle = await start(client, app.visit_counter, {})
    second = await handle.result()
    assert var(second.text, "visits") == "2"
    kinds = scheduled_activities(await history(handle))
    assert kinds.count("lmthing.memory.get") == 1  # loaded once, when first declared
    assert kinds.count("lmthing.memory.write") == 1  # saved once: only the tool step changed it
    # Another scope is another value.
    other, _ = await run(client, app.visit_counter, {"scope": "global"})
    assert var(other.text, "visits") == "1"


async def test_persisted_state_of_a_session_needs_a_session(client):
    handle = await start(client, app.visit_counter, {"scope": "session"})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "has no session" in str(failure.value.cause) and "session='...'" in str(failure.value.cause)
    ok, _ = await run(client, app.visit_counter, {"scope": "session"}, config=RunConfig(session="s-9"))
    assert var(ok.text, "visits") == "1"


async def test_runs_on_workers_of_a_postgresql_store_recall_each_other(client, postgres_url, embeddings):
    """Two workers (one after the other, as two machines of a pool would be) on one real
    PostgreSQL server with pgvector: a kv memory and a vector memory written by a run on
    the first are recalled by runs on the second."""
    from lmthing.workers import create_worker
    from tests.pg import new_database
    from tests.support import new_id

    url = new_database(postgres_url, "mem")
    queue = new_id("pg-memory")
    async with create_worker(client, app="tests.apps.memory_app", task_queue=queue, memory_store=url):
        await run(client, app.kv_prefs, {"set": "ochre"}, task_queue=queue)
        await run(client, app.vector_facts, {"store": ["Oslo is the capital of Norway", "Rye bread is dark"]},
                  task_queue=queue)
    async with create_worker(client, app="tests.apps.memory_app", task_queue=queue, memory_store=url):
        recalled, _ = await run(client, app.kv_prefs, {}, task_queue=queue)
        _, steps = await run(client, app.vector_facts, {"ask": "capital of Norway", "limit": 1}, task_queue=queue)
    assert var(recalled.text, "color") == "ochre"
    found = steps[-1].request.system
    assert "Oslo is the capital of Norway" in found and "Rye bread" not in found


async def test_a_real_local_embedding_model_finds_a_paraphrase(client):
    """all-MiniLM-L6-v2 on the worker's CPU (the local-embeddings extra, from site-packages,
    no network): a question that shares no word with its answer still finds it."""
    facts = ["The vault opens at nine in the morning", "Our cafeteria serves lunch from noon", "Parking is free on Sundays"]
    await run(client, app.local_facts, {"store": facts})
    _, steps = await run(client, app.local_facts, {"ask": "When can I get into the safe?"})
    found = steps[-1].request.system
    assert "The vault opens at nine in the morning" in found
    assert "cafeteria" not in found and "Parking" not in found


async def test_a_local_model_refuses_other_dimensions_naming_the_fix(client):
    from lmthing.activities.embeddings import Embedder
    from lmthing.activities.providers.base import ModelConfigError, default_registry

    with pytest.raises(ModelConfigError, match="makes 384-dimension vectors"):
        await Embedder(default_registry()).embed("local:all-minilm-l6-v2", ["x"], 64)


async def test_a_wrong_embedding_dimension_fails_fast_naming_the_fix(client, embeddings, memory_url):
    from lmthing.workers import create_worker
    from tests.support import new_id

    queue = new_id("dims")
    async with create_worker(client, app="tests.apps.memory_app", task_queue=queue,
                             memory_store=memory_url.replace("memory.db", "dims.db")):
        await run(client, app.vector_facts, {"store": ["A fact of 64 dimensions"]}, task_queue=queue)
        handle = await start(client, app.vector_facts_32, {"store": ["A fact of 32"]}, task_queue=queue)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = str(failure.value.cause)
    assert "facts" in message and "64" in message and "32" in message and "forget" in message
    attempts = [e.activity_task_started_event_attributes.attempt for e in await history(handle)
                if e.HasField("activity_task_started_event_attributes")]
    assert attempts == [1]  # not retried


async def test_a_store_url_of_no_known_kind_fails_the_first_memory_call_naming_the_setting(client):
    from lmthing.workers import create_worker
    from tests.support import new_id

    queue = new_id("bad-store")
    async with create_worker(client, app="tests.apps.memory_app", task_queue=queue, memory_store="redis://cache:6379"):
        handle = await start(client, app.kv_prefs, {}, task_queue=queue)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = str(failure.value.cause)
    assert "redis" in message and "LMTHING_MEMORY_URL" in message and "sqlite:///" in message


async def test_an_unreachable_postgresql_is_retried_not_failed(client):
    from lmthing.workers import create_worker
    from tests.support import free_port, new_id

    queue = new_id("pg-down")
    url = f"postgresql://agent:secret@127.0.0.1:{free_port()}/memory"
    async with create_worker(client, app="tests.apps.memory_app", task_queue=queue, memory_store=url):
        handle = await start(client, app.kv_prefs, {}, task_queue=queue)
        for _ in range(100):
            pending = (await handle.handle.describe()).raw_description.pending_activities
            if pending and pending[0].attempt >= 2:
                break
            await asyncio.sleep(0.2)
        await handle.handle.terminate("test over")
    assert pending and pending[0].attempt >= 2 and pending[0].activity_type.name == "lmthing.memory.get"
    failure = pending[0].last_failure
    assert failure.application_failure_info.type == "MemoryStoreUnavailable" and "secret" not in failure.message


async def test_the_prompt_function_writes_a_key_again_only_with_a_new_value(client):
    handle = await start(client, app.changing_value, {})
    await handle.result()
    events = await history(handle)
    writes = [e for e in events if e.HasField("activity_task_scheduled_event_attributes")
              and e.activity_task_scheduled_event_attributes.activity_type.name == "lmthing.memory.write"]
    # Steps 0 and 1 saw 0 and then 1 (the tool counted); the value under "count" was written each time.
    assert len(writes) == 2


async def test_forget_deletes_one_key_or_the_whole_memory(client):
    await run(client, app.forgetful, {"set": {"a": 1, "b": 2}})
    one, _ = await run(client, app.forgetful, {"forget": "a"})
    assert var(one.text, "forgot") == "1" and "a: null" in one.text and "b: 2" in one.text
    everything, _ = await run(client, app.forgetful, {"forget": None})
    assert var(everything.text, "forgot") == "1" and "b: null" in everything.text


async def test_a_belief_decays_toward_even_odds_with_its_half_life(client):
    first, _ = await run(client, app.beliefs, {"evidence": [["the road is icy", 9.0]], "ask": "the road is icy",
                                                "half_life": 1.0})
    assert 0.85 < float(var(first.text, "p")) <= 0.9  # 0.9, less what the read after the write lost already
    await asyncio.sleep(1.5)
    later, _ = await run(client, app.beliefs, {"ask": "the road is icy", "half_life": 1.0})
    assert 0.5 < float(var(later.text, "p")) < 0.8  # log-odds ln 9 halved at least once


async def test_a_memory_with_a_ttl_forgets_by_itself(client):
    first, _ = await run(client, app.short_lived, {"set": "4711"})
    assert var(first.text, "code") == "4711"
    await asyncio.sleep(1.2)
    later, _ = await run(client, app.short_lived, {})
    assert var(later.text, "code") == "None"
