"""A worker SIGKILLed while a def_context summary is being written (a "summarize context"
model call hangs at the fake OpenAI server): the second worker asks for the summary again,
no finished step's model call is made again, and the run ends as the model's loop says.
The worker runs in a subprocess; the fake server is the openai SDK's other end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from lmthing.client import start_prompt
from tests.apps import context_app as app
from tests.fakes import FakeModelServer
from tests.fakes.server import Reply
from tests.support import new_id, worker_process
from tests.test_context import _is_summary_call, _loop_reply

APP = "tests.apps.context_app"


def _completed_model_calls(events) -> list[str | None]:
    """The summary (None: a step of the loop) of every model-call activity that completed."""
    import json

    scheduled = {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "lmthing.model_call":
                scheduled[e.event_id] = json.loads(e.user_metadata.summary.data) if e.user_metadata.HasField("summary") else None
    return [scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled]


async def test_a_summary_lost_with_its_worker_is_asked_again_and_no_step_is_repeated(dev_env, client, tmp_path: Path,
                                                                                     monkeypatch):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("context-q")
    hung: list[int] = []

    def reply(recorded):
        if _is_summary_call(recorded.body) and not hung:
            hung.append(1)
            return Reply(text="never sent", first_byte_delay=60)  # until its worker is killed
        return _loop_reply(recorded)

    async with FakeModelServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)  # the worker processes inherit it
        server.script(*[reply] * 200)
        async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
            handle = await start_prompt(client, app.context_summarize, model="openai:gpt-4o-mini",
                                        id=new_id("summarized"), task_queue=queue)
            for _ in range(600):
                if hung:
                    break
                await asyncio.sleep(0.05)
            assert hung, "no summary call was made"
            steps_before = sum(1 for r in server.requests if not _is_summary_call(r.body))
            first.kill()
            await first.proc.wait()
        async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
            result = await asyncio.wait_for(handle.result(), 90)
        events = (await handle.handle.fetch_history()).events
    assert result.text == "Every shelf is noted." and result.stop_reason == "answer"
    completed = _completed_model_calls(events)
    loop_calls = [s for s in completed if s != "summarize context"]
    # Every loop step's model call reached the server once: none was made again after the kill.
    assert sum(1 for r in server.requests if not _is_summary_call(r.body)) == len(loop_calls) > steps_before
    # The lost summary was asked again (one request more than the summaries that completed).
    summaries = sum(1 for r in server.requests if _is_summary_call(r.body))
    assert summaries == completed.count("summarize context") + 1 >= 2
