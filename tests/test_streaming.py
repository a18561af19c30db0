"""Streaming to the caller: order, completeness, live delivery, cursors, batching, off switch."""

import asyncio
from typing import Any

import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput

from lmthing import RunConfig
from lmthing.client.replay import replay_workflow
from lmthing.workers.factory import collect as collect_app
from lmthing.prompt.types import StreamEvent
from tests.apps import streaming_app
from tests.support import event_kinds, history, new_id, start, worker_process

STREAM_SIGNAL = "__temporal_workflow_stream_publish"
POLL_NAME = "__temporal_workflow_stream_poll"


async def collect(handle, from_offset: int = 0) -> list[StreamEvent]:
    return [e async for e in handle.full_stream(from_offset)]


def stream_signals(events) -> int:
    return sum(
        1
        for e in events
        if e.HasField("workflow_execution_signaled_event_attributes")
        and e.workflow_execution_signaled_event_attributes.signal_name == STREAM_SIGNAL
    )


async def test_events_arrive_in_order_and_the_deltas_make_up_each_step(client, worker):
    handle = await start(client, streaming_app.tides)
    events = await collect(handle)
    result = await handle.result()
    steps = await handle.steps()

    kinds = [e.type for e in events if e.type != "text_delta"]
    assert kinds == ["step_start", "step_finish", "tool_call", "tool_result", "step_start", "step_finish", "finish"]
    assert [e.offset for e in events] == list(range(len(events)))
    for record in steps:
        deltas = [e for e in events if e.type == "text_delta" and e.step == record.step]
        assert "".join(d.text for d in deltas) == record.response.text
        assert [d.seq for d in deltas] == list(range(len(deltas))) and {d.attempt for d in deltas} == {1}
        start_at = next(i for i, e in enumerate(events) if e.type == "step_start" and e.step == record.step)
        finish_at = next(i for i, e in enumerate(events) if e.type == "step_finish" and e.step == record.step)
        assert all(start_at < events.index(d) < finish_at for d in deltas)
    tool_result = next(e for e in events if e.type == "tool_result").tool_result
    assert tool_result.result == {"high": ["06:10", "18:32"], "place": "Brest"}
    assert events[-1].text == result.text == streaming_app.SLOW_ANSWER


async def test_text_arrives_while_the_model_call_is_still_running(client, worker):
    handle = await start(client, streaming_app.crawl)
    pieces: list[str] = []
    async for piece in handle.text_stream():
        if not pieces:
            status = await handle.status()
            assert status.phase == "model" and status.step == 0  # the step has not finished yet
        pieces.append(piece)
    assert "".join(pieces) == streaming_app.SLOW_ANSWER
    assert not any(p.restarted for p in pieces)


async def test_a_late_or_reconnecting_caller_resumes_from_its_cursor(client, worker):
    handle = await start(client, streaming_app.tides)
    first: list[StreamEvent] = []
    async for event in handle.full_stream():
        first.append(event)
        if len(first) == 5:
            break  # the caller drops off mid-run ...
    rest = await collect(handle, first[-1].offset + 1)  # ... and comes back
    everything = await collect(handle)  # a caller that connects after the end
    assert first + rest == everything
    assert everything[-1].type == "finish"


async def test_text_deltas_are_batched_not_one_history_event_each(client, worker):
    handle = await start(client, streaming_app.tides)
    events = await collect(handle)
    deltas = [e for e in events if e.type == "text_delta"]
    signals = stream_signals(await history(handle))
    # ~0.9 s of slow streaming in 250 ms batches, plus the first delta sent at once and the
    # final flush of each step: a handful of signals for dozens of deltas.
    assert len(deltas) >= 20
    assert 1 <= signals <= 10


async def test_the_off_switch_keeps_step_events_and_sends_no_text(client, worker):
    handle = await start(client, streaming_app.tides, config=RunConfig(stream=False))
    events = await collect(handle)
    assert [e.type for e in events] == [
        "step_start", "step_finish", "tool_call", "tool_result", "step_start", "step_finish", "finish",
    ]
    assert events[-1].text == streaming_app.SLOW_ANSWER  # the final text is durable either way
    all_events = await history(handle)
    assert stream_signals(all_events) == 0
    assert "WORKFLOW_EXECUTION_SIGNALED" not in event_kinds(all_events)


async def test_a_failed_run_ends_its_stream_with_the_error(client, worker):
    from tests.apps import runs_app

    handle = await start(client, runs_app.raises)
    events = await asyncio.wait_for(collect(handle), 30)
    assert events[-1].type == "error"
    assert events[-1].error == "Prompt 'raises' raised KeyError: 'language'"


async def test_the_stream_survives_a_worker_crash_and_marks_the_retried_text(client, tmp_path):
    """SIGKILL the worker while the model streams; a new worker retries the model call and
    the caller sees the restarted text marked, then the whole answer."""
    address = client.service_client.config.target_host
    queue = new_id("stream-crash")
    config = RunConfig(model_heartbeat_seconds=2, model_timeout_seconds=60)
    pieces: list = []
    async with worker_process(address, queue, "streamer-1", tmp_path, app="tests.apps.streaming_app") as first:
        handle = await start(client, streaming_app.crawl, config=config, task_queue=queue)
        stream = handle.text_stream()
        while len(pieces) < 3:
            pieces.append(await asyncio.wait_for(anext(stream), 30))
        first.kill()
    async with worker_process(address, queue, "streamer-2", tmp_path, app="tests.apps.streaming_app"):
        async for piece in stream:
            pieces.append(piece)
        result = await handle.result()

    restarted = [i for i, p in enumerate(pieces) if p.restarted]
    assert len(restarted) == 1 and pieces[restarted[0]].attempt == 2
    assert all(p.attempt == 1 for p in pieces[: restarted[0]])
    # The retried attempt streams the whole answer again, from its first word.
    assert "".join(pieces[restarted[0]:]) == streaming_app.SLOW_ANSWER == result.text


class StreamQueries(Interceptor):
    """Counts a caller's stream-poll *queries*: what a subscriber falls back to when its poll
    finds the run closed (the worker answers it by replaying the whole history)."""

    def __init__(self) -> None:
        self.count = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Outbound(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                if input.query == POLL_NAME:
                    counter.count += 1
                return await super().query_workflow(input)

        return Outbound(next)


def caller_client(client: Client, counter: StreamQueries) -> Client:
    config = client.config()
    config["interceptors"] = [*config.get("interceptors", ()), counter]
    return Client(**config)


@pytest.mark.parametrize("prompt", ["tides", "critical"])
async def test_a_followed_run_hands_its_last_events_over_before_it_closes(client, worker, prompt):
    """The run waits for the caller's poll to take the final event (finish, or the error of a
    critical tool failing after a step), so the caller's stream ends on that poll, not on a
    query that replays the closed run."""
    from tests.apps import tools_app

    counter = StreamQueries()
    caller = caller_client(client, counter)
    handle = await start(caller, streaming_app.tides if prompt == "tides" else tools_app.critical)
    events = await asyncio.wait_for(collect(handle), 30)
    assert events[-1].type == ("finish" if prompt == "tides" else "error")
    assert counter.count == 0
    kinds = event_kinds(await history(handle))
    assert "MARKER_RECORDED" in kinds  # the hand-over's patch marker (old histories replay without it)
    assert kinds[-1] in ("WORKFLOW_EXECUTION_COMPLETED", "WORKFLOW_EXECUTION_FAILED")
    # And the run replays from its history (the hand-over is deterministic).
    prompts, _ = collect_app([streaming_app, tools_app])
    [report] = await replay_workflow(client, handle.id, prompts)
    assert (report.deterministic, report.error) == (True, None)


async def test_a_run_nobody_follows_closes_at_once_with_its_history_unchanged(client, worker):
    handle = await start(client, streaming_app.tides)
    await handle.result()
    kinds = event_kinds(await history(handle))
    assert "MARKER_RECORDED" not in kinds and "TIMER_STARTED" not in kinds


async def test_a_caller_that_leaves_mid_stream_delays_the_close_by_a_second_at_most(client, worker):
    handle = await start(client, streaming_app.tides)
    async for event in handle.full_stream():
        if event.type == "step_start":
            break  # the caller stops polling for good
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.text == streaming_app.SLOW_ANSWER
    kinds = event_kinds(await history(handle))
    # It waited for the caller's next poll, which never came, then closed on the timeout.
    assert kinds.count("TIMER_STARTED") == 1 and kinds.count("TIMER_FIRED") == 1
    assert kinds[-1] == "WORKFLOW_EXECUTION_COMPLETED"
