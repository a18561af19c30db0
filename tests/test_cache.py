"""def_cache on an @tool (docs/memory.md), in real runs: a hit does not run the tool (counted
on the worker), the step and the history say whether it hit, a hit outlives the worker (a
new worker with an empty LRU finds it in the store), a ttl ends it, and a cache the prompt
does not define fails the run naming the fix."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import WorkflowFailureError

from lmthing.workers import create_worker
from tests.apps import cache_app as app
from tests.support import history, new_id, run, start


def _cache_notes(steps) -> list[dict]:
    return [n for s in steps for n in s.orchestration if n.get("kind") == "cache"]


def _results(events) -> list[dict]:
    return [json.loads(e.activity_task_completed_event_attributes.result.payloads[0].data)
            for e in events if e.HasField("activity_task_completed_event_attributes")
            and b"lmthing_cache" in e.activity_task_completed_event_attributes.result.payloads[0].data]


async def test_a_hit_skips_the_tool_and_the_history_says_so(client, worker):
    app.RUNS.clear()
    first, steps = await run(client, app.cached_lookup, {"ttl": 3600})
    handle = await start(client, app.cached_lookup, {"ttl": 3600})
    second = await handle.result()
    assert app.RUNS == ["EUR@2026-12-01"]  # the second run did not run the tool
    assert first.text == second.text and '"rate":1.3' in second.text
    assert [n["hit"] for n in _cache_notes(steps)] == [False]
    assert [n["hit"] for n in _cache_notes(await handle.steps())] == [True]
    assert [r["lmthing_cache"] for r in _results(await history(handle))] == ["hit"]


async def test_a_hit_outlives_the_worker(client, memory_url):
    app.RUNS.clear()
    queue = new_id("cache-restart")
    for attempt in range(2):
        async with create_worker(client, app="tests.apps.cache_app", task_queue=queue, memory_store=memory_url):
            handle = await start(client, app.cached_lookup, {"by_currency": True}, task_queue=queue)
            await handle.result()
            assert [n["hit"] for n in _cache_notes(await handle.steps())] == [attempt == 1]
    assert app.RUNS == ["EUR@2026-12-01"]


async def test_an_entry_past_its_ttl_is_not_a_hit(client, worker):
    app.RUNS.clear()
    await run(client, app.cached_lookup, {"ttl": 1, "day": "2026-11-30"})
    await asyncio.sleep(1.2)
    _, steps = await run(client, app.cached_lookup, {"ttl": 1, "day": "2026-11-30"})
    assert [n["hit"] for n in _cache_notes(steps)] == [False]
    assert len(app.RUNS) == 2


async def test_a_cache_the_prompt_does_not_define_fails_the_run_naming_the_fix(client, worker):
    handle = await start(client, app.undefined_cache)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "p.def_cache('nowhere', ...)" in str(failure.value.cause)


async def test_a_cached_model_call_is_answered_without_the_provider(client, worker):
    from tests.apps.model_call_log import ASKED

    ASKED.clear()
    first, steps = await run(client, app.cached_answers, {"question": "What is six times seven?"})
    again, again_steps = await run(client, app.cached_answers, {"question": "What is six times seven?"})
    other, _ = await run(client, app.cached_answers, {"question": "What is the speed of light?"})
    assert ASKED == ["What is six times seven?", "What is the speed of light?"]  # the repeat reached no provider
    assert again.text == first.text and "42" in again.text and "speed of light" in other.text
    assert [n["hit"] for n in _cache_notes(steps)] == [False] and [n["hit"] for n in _cache_notes(again_steps)] == [True]
    assert again_steps[0].response.cached and again.usage.total_tokens == 0  # nothing was spent
