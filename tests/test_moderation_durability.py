"""A worker killed while a moderation model checks the run's input: the second worker asks
the moderation endpoint again (the lost attempt), the run then goes on as an undisturbed one
would, and no finished model call is made again. Against the fake OpenAI wire server's
/v1/moderations, with the worker in a subprocess killed by SIGKILL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lmthing import RunConfig
from lmthing.activities.names import MODEL_CALL, MODERATE
from lmthing.client import start_prompt
from tests.apps import moderation_durable as app
from tests.fakes import FakeModelServer
from tests.support import completed_activities, new_id, worker_process

APP = "tests.apps.moderation_durable"


async def test_a_moderation_lost_with_its_worker_is_asked_again_and_the_run_goes_on(dev_env, client, tmp_path: Path,
                                                                                    monkeypatch):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("moderation-q")
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)  # the worker processes inherit it
        server.moderation_words = {"harassment": ["idiot"]}
        server.moderation_delays.append(60)  # the first check hangs until its worker is killed
        async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
            handle = await start_prompt(client, app.moderated_notes, config=RunConfig(model_timeout_seconds=10),
                                        id=new_id("moderated"), task_queue=queue)
            for _ in range(300):
                if server.moderation_requests:
                    break
                await asyncio.sleep(0.05)
            assert server.moderation_requests, "the moderation check never started"
            first.kill()
            await first.proc.wait()
        # The moderation activity heartbeats: the lost attempt is noticed within 10 s.
        async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
            result = await asyncio.wait_for(handle.result(), 45)
        events = (await handle.handle.fetch_history()).events
    assert result.text == "Noted: milk." and result.stop_reason == "answer"
    assert [(m["target"], m["categories"]) for m in result.moderation] == [("input", ["harassment"])]
    # The lost check, asked again, then the two outputs' checks (the first step's text is empty).
    assert [r["input"] for r in server.moderation_requests] == [
        ["Note down milk, you idiot."], ["Note down milk, you idiot."], ["Noted: milk."]]
    assert completed_activities(events, MODERATE) == 2 and completed_activities(events, MODEL_CALL) == 2
