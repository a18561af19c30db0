"""History grows linearly with the steps (issue 12): each model call is sent what is new
since the run's previous call plus a reference, and the model worker rebuilds the rest
from its cache, or from the run itself when it does not hold it."""

from __future__ import annotations

import asyncio
import json

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History

from lmthing.workers import create_worker
from tests.apps import history_app
from tests.support import new_id, start

TIMEOUT = 120.0


async def _history_bytes(client, workflow_id: str) -> tuple[int, list]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(History(events=history.events).SerializeToString()), list(history.events)


def _model_inputs(events: list) -> list[dict]:
    return [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "lmthing.model_call"
    ]


async def test_bytes_per_step_stay_flat_from_10_to_200_steps(client, worker) -> None:
    sizes: dict[int, int] = {}
    for rounds in (10, 50, 200):
        handle = await start(client, history_app.history_rounds, {"rounds": rounds})
        result = await asyncio.wait_for(handle.result(), TIMEOUT)
        assert result.text == f"Read {rounds} pages."  # the model saw the whole conversation at every step
        assert (await handle.status()).continued_runs == 0
        sizes[rounds], events = await _history_bytes(client, handle.id)
    early = (sizes[50] - sizes[10]) / 40  # what one more step costs from step 10 to 50...
    late = (sizes[200] - sizes[50]) / 150  # ...and from step 50 to 200
    assert 0.8 <= late / early <= 1.2, (early, late)

    # After the first call, each call's input holds only the new messages (the call and the
    # result of the step before), not the conversation again, nor the unchanged tools.
    inputs = _model_inputs(events)
    assert len(inputs[0]["conversation"]["messages"]) == 1 and "base" not in inputs[0]["conversation"]
    for n, sent in enumerate(inputs[1:], start=1):
        conversation = sent["conversation"]
        assert conversation.get("messages", []) == [] and conversation["base"]["length"] == 2 * n - 1
        assert [m["role"] for m in conversation["delta"]] == ["assistant", "tool"]
        assert sent.get("tools", []) == [] and conversation["base"]["tools_digest"]


async def test_a_model_worker_without_the_conversation_rebuilds_it_from_the_run(client, caplog) -> None:
    """The worker that served the first steps (and holds the conversation in its cache)
    goes away; the next worker was never sent it and asks the run for it."""
    import logging

    caplog.set_level(logging.INFO, logger="temporalio.activity")
    queue = new_id("history-fallback")
    async with create_worker(client, app="tests.apps.history_app", task_queue=queue):
        handle = await start(client, history_app.history_rounds, {"rounds": 12}, task_queue=queue)
        for _ in range(600):
            step = (await handle.status()).step
            if step >= 4:
                break
            await asyncio.sleep(0.01)
    assert 4 <= step < 12  # the first worker left mid-run
    caplog.clear()
    async with create_worker(client, app="tests.apps.history_app", task_queue=queue):
        result = await asyncio.wait_for(handle.result(), TIMEOUT)
    rebuilt = [r for r in caplog.records if "rebuilt its input from the run" in r.getMessage()]
    assert len(rebuilt) == 1  # once: from then on the new worker's cache holds it
    assert result.text == "Read 12 pages."  # not "Lost the conversation at step ..."
    _, events = await _history_bytes(client, handle.id)
    assert all("base" in sent["conversation"] for sent in _model_inputs(events)[1:])  # deltas all along
