"""A worker that dies during a model call under a workflow-run retry policy (def_retry run
by the workflow, one activity per attempt) does not use up the call's attempts: the lost
attempt is made again, uncounted, and the run ends as an undisturbed one would. Against the
fake OpenAI wire server, with the worker in a subprocess killed by SIGKILL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from lmthing import RunConfig
from lmthing.activities.names import MODEL_CALL
from lmthing.client import start_prompt
from tests.apps import model_retry_app as app
from tests.fakes import FakeModelServer, Reply
from tests.support import new_id, worker_process

APP = "tests.apps.model_retry_app"


async def test_a_model_call_lost_with_its_worker_is_made_again_uncounted(dev_env, client, tmp_path: Path, monkeypatch):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("model-retry-q")
    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)  # the worker processes inherit it
        server.script(Reply(text="never sent", first_byte_delay=60), Reply(text="the answer"))
        # A fresh worker imports the SDK during its first call (seconds on a busy machine) before
        # it can heartbeat: a heartbeat timeout of 5 s leaves room for that.
        config = RunConfig(model_heartbeat_seconds=5, model_timeout_seconds=90)
        async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
            handle = await start_prompt(client, app.retried_model, config=config, id=new_id("model-retry"),
                                        task_queue=queue)
            await server.wait_for_requests(1, timeout=30)  # the model call is in flight
            first.kill()
            await first.proc.wait()
        async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
            result = await asyncio.wait_for(handle.result(), 60)
            [step] = await handle.steps()
        # The policy allows 2 attempts of ServerError only; a dead worker's timeout is neither.
        assert result.text == "the answer" and result.stop_reason == "answer"
        assert len(server.requests) == 2
        assert step.answered_by == "openai:gpt-4o" and step.model_failures == []
        events = (await handle.handle.fetch_history()).events
        scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                     and e.activity_task_scheduled_event_attributes.activity_type.name == MODEL_CALL]
        timed_out = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT]
        assert len(scheduled) == 2 and len(timed_out) == 1  # the lost attempt, then the one that answered
        timers = [json.loads(e.user_metadata.summary.data) for e in events
                  if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.user_metadata.HasField("summary")]
        assert timers == []  # made again at once: no backoff for a worker's death
