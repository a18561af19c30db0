"""Lifecycle events (def_event / emit), user metrics (def_metric / record_metric) and
loggers (def_logger): they run at the right point of a real run, in order, and what leaves
the workflow (metric values, log lines) is recorded once even when every workflow task
replays the whole history."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from lmthing import StatefulPrompt
from lmthing.client.connect import data_converter
from lmthing.observability.logging import configure_json_logging
from lmthing.observability.metrics import metrics_runtime, start_metrics_server
from lmthing.prompt.stateful_prompt import PromptError
from lmthing.client.replay import replay_workflow
from lmthing.workers import create_worker
from lmthing.workers.factory import collect
from tests.apps import lifecycle_app
from tests.support import new_id, start
from tests.test_metrics import scrape, total


async def failure_of(client: Client, prompt: object) -> Any:
    """Run ``prompt`` to its failure; the failure's cause."""
    handle = await start(client, prompt)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    return failure.value.cause


async def test_lifecycle_events_fire_in_order(client: Client, worker: None) -> None:
    handle = await start(client, lifecycle_app.hooked)
    result = await handle.result()
    assert result.text == "Finished."
    seen = (await handle.state())["seen"]
    assert seen == [
        "before_model_call 0 msgs=1",
        "after_model_call 0 tool_calls",
        "before_tool 0 count_chars {'text': 'tides'}",
        "after_tool 0 tool count_chars error=False {'length': 5}",
        "on_step 0 tools=1",
        "before_model_call 1 msgs=3",
        "after_model_call 1 tool_calls",
        "before_tool 1 explode {}",
        "after_tool 1 tool explode error=True {'error': 'the fuse blew'}",
        "on_error tool explode the fuse blew",
        "on_step 1 tools=1",
        "before_model_call 2 msgs=5",
        "after_model_call 2 tool_calls",
        # A sub-agent call is a tool call to the handlers too (its child workflow has its own).
        "before_tool 2 summarizer {'topic': 'tides'}",
        "after_tool 2 agent summarizer error=False {'response': 'Tides follow the moon.'}",
        "on_step 2 tools=1",
        "before_model_call 3 msgs=7",
        "after_model_call 3 tool_calls",
        # Invalid arguments: the child never starts, yet the call has its before and after.
        "before_tool 3 summarizer {}",
        "after_tool 3 agent summarizer error=True {'error': 'Invalid input for tool summarizer: Type validation failed: "
        "Value: {}.\\nError message: topic: Field required'}",
        "on_error tool summarizer Invalid input for tool summarizer: Type validation failed: Value: {}.\nError message: topic: Field required",
        "on_step 3 tools=1",
        "before_model_call 4 msgs=9",
        "after_model_call 4 stop",
        "on_step 4 tools=0",
        "on_finish 5 Finished.",
        "audit {'steps': 5}",
    ]
    # What on_finish handlers set is part of the run's result.
    assert result.state["seen"] == seen


async def test_handlers_replay_deterministically(client: Client, worker: None) -> None:
    """A finished run with handlers at every point (state set in handlers, a custom event,
    a sub-agent) replays from its history without a nondeterminism error."""
    handle = await start(client, lifecycle_app.hooked)
    await handle.result()
    prompts, _ = collect([lifecycle_app])
    reports = await replay_workflow(client, handle.id, prompts, children=True)
    assert len(reports) == 2  # the run and its sub-agent's child workflow
    assert [(r.deterministic, r.error, r.divergence) for r in reports] == [(True, None, None)] * 2


async def test_a_handler_that_reads_the_clock_fails_as_non_deterministic(client: Client, worker: None) -> None:
    cause = await failure_of(client, lifecycle_app.clock_handler)
    assert cause.type == "NonDeterministicPrompt"
    assert "Handler 'clock_handler.<locals>.stamp' of event 'before_model_call' is not deterministic" in cause.message
    assert "datetime.datetime.now" in cause.message and "use workflow.now()" in cause.message


async def test_a_failing_handler_fails_the_run_with_its_name(client: Client, worker: None) -> None:
    cause = await failure_of(client, lifecycle_app.broken_handler)
    assert cause.type == "EventHandlerError"
    assert "Handler 'broken_handler.<locals>.bad' of event 'before_tool' raised KeyError" in cause.message
    assert "no such column" in cause.message


async def test_recording_an_undeclared_label_fails_the_run_clearly(client: Client, worker: None) -> None:
    message = (await failure_of(client, lifecycle_app.bad_metric)).message
    assert "record_metric('runs'): labels ['zone'] were not declared; declared labels: region" in message


async def test_metrics_and_logs_from_a_prompt_are_recorded_once_despite_replays(client: Client) -> None:
    runtime = metrics_runtime()
    target = client.service_client.config.target_host
    mclient = await Client.connect(target, namespace=client.namespace, data_converter=data_converter(), runtime=runtime)
    queue = new_id("lifecycle-q")
    server = start_metrics_server(0, addr="127.0.0.1")
    stream = io.StringIO()
    prompt_logs = logging.getLogger("lmthing.prompt")
    handler = configure_json_logging(stream=stream, logger=prompt_logs, level=logging.DEBUG)
    try:
        # No workflow cache: every workflow task replays the run from the start, so every
        # handler runs again on each of them; only the first execution may record.
        worker = create_worker(mclient, app="tests.apps.lifecycle_app", task_queue=queue, max_cached_workflows=0)
        async with worker:
            handle = await start(mclient, lifecycle_app.instrumented, task_queue=queue)
            assert (await handle.result()).text == "Done."
            await handle.state()  # a query on a closed run: one more full replay
            await asyncio.sleep(1.5)  # the SDK hands metrics over in batches
            samples = scrape(server.port)
    finally:
        server.close()
        prompt_logs.removeHandler(handler)

    mine = {"workflow_type": "instrumented", "task_queue": queue}
    assert total(samples, "measured_texts_total", tool="count_chars", **mine) == 2
    assert total(samples, "text_length_count", **mine) == 2
    assert total(samples, "text_length_sum", **mine) == 3 + 8
    assert total(samples, "text_length_bucket", le="5.0", **mine) == 1  # the custom buckets
    assert total(samples, "text_length_bucket", le="10.0", **mine) == 2
    assert total(samples, "last_length", **mine) == 8

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    measured = [line for line in lines if line["message"] == "measured" and line.get("workflow_id") == handle.id]
    assert [line["length"] for line in measured] == [3, 8]
    first = measured[0]
    assert first["logger"] == "lmthing.prompt.audit"
    assert first["prompt"] == "instrumented" and first["run_id"] and first["task_queue"] == queue
    assert [line["step"] for line in measured] == [0, 1]
    assert first["team"] == "research"
    assert first["customer_token"] == "[REDACTED]"
    assert first["name_"] == "clash"  # a field named like a LogRecord attribute is kept, renamed
    assert not [line for line in lines if "not shown" in line["message"]]


def test_definitions_are_checked_where_they_are_made() -> None:
    p = StatefulPrompt()
    with pytest.raises(PromptError, match="unknown lifecycle event 'on_tool_start'.*before_tool"):
        p.def_event("on_tool_start", lambda e: None)
    with pytest.raises(PromptError, match="kind must be 'counter', 'gauge' or 'histogram'"):
        p.def_metric("x", "summary")
    with pytest.raises(PromptError, match="metric names are letters, digits and underscores"):
        p.def_metric("files-processed", "counter")
    with pytest.raises(PromptError, match="reserved"):
        p.def_metric("lmthing_runs", "counter")
    with pytest.raises(PromptError, match="buckets must be increasing"):
        p.def_metric("latency", "histogram", buckets=[5, 1])
    with pytest.raises(PromptError, match="no such metric .*declare it with def_metric"):
        p.record_metric("missing", 1)
    p.def_metric("files", "counter")
    with pytest.raises(PromptError, match="a counter only goes up by whole numbers"):
        p.record_metric("files", -1)
    with pytest.raises(PromptError, match="already declared differently"):
        p.def_metric("files", "gauge")
    with pytest.raises(PromptError, match="unknown log level 'loud'"):
        p.def_logger("app", level="loud")
    p.record_metric("files", 2)
    assert p._telemetry.recorded == [("files", 2, {})]  # outside a workflow: kept locally


async def test_emit_refuses_lifecycle_names() -> None:
    p = StatefulPrompt()
    with pytest.raises(PromptError, match="lifecycle events are fired by the run itself"):
        await p.emit("on_finish")
