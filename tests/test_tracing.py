"""OpenTelemetry traces: the span tree of one run (workflow, model calls, tools, a child
agent) in one trace, GenAI attributes, no duplicate spans when workflow tasks replay, and
export over OTLP/HTTP configured by the standard OTEL_* variables."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.client import Client

from lmthing.observability import tracing
from lmthing.workers import create_worker
from tests.apps.tracing_app import traced
from tests.support import new_id, start

REPO_ROOT = Path(__file__).resolve().parents[1]


_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def exporter() -> Any:
    """Tracing on, into memory. OpenTelemetry's global provider is set once per process;
    configuring again with the same exporter turns tracing back on without a second copy."""
    tracing.configure_tracing(_EXPORTER, batch=False)
    _EXPORTER.clear()
    yield _EXPORTER
    tracing.disable_tracing()


async def traced_run(client: Client, task_queue: str, **worker_options: Any) -> str:
    worker = create_worker(client, app="tests.apps.tracing_app", task_queue=task_queue, **worker_options)
    async with worker:
        handle = await start(client, traced, task_queue=task_queue)
        result = await handle.result()
    assert result.text == "All done."
    return handle.id


def spans_of(exporter: InMemorySpanExporter, workflow_id: str) -> list[ReadableSpan]:
    """Every span in the trace of the run ``workflow_id``."""
    finished = exporter.get_finished_spans()
    roots = [s for s in finished if s.name.startswith("invoke_agent") and s.attributes["gen_ai.conversation.id"] == workflow_id]
    assert len(roots) == 1, f"run spans of {workflow_id}: {roots}"
    return [s for s in finished if s.context.trace_id == roots[0].context.trace_id]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {len(found)} spans, in {sorted(s.name for s in spans)}"
    return found[0]


EXPECTED_NAMES = Counter(
    {
        "invoke_agent traced": 1,
        "invoke_agent researcher": 1,
        "chat tracing-run": 3,  # two steps of the parent, one of the child
        "execute_tool measure": 1,
        "execute_tool shout": 1,
        "execute_tool broken": 1,
        "execute_tool researcher": 1,
        "count characters": 1,  # the tool's own span
    }
)


@pytest.mark.parametrize("cache", ["cached", "replay-every-task"])
async def test_one_trace_per_run_with_genai_spans(client: Client, exporter: InMemorySpanExporter, cache: str) -> None:
    # max_cached_workflows=0 makes the worker replay the whole history at every workflow
    # task: each span of the workflow is re-created many times and must be exported once.
    options = {"max_cached_workflows": 0} if cache == "replay-every-task" else {}
    workflow_id = await traced_run(client, new_id("tracing"), **options)
    spans = spans_of(exporter, workflow_id)

    # One trace holds the whole run, the child agent's workflow included.
    assert Counter(s.name for s in spans) == EXPECTED_NAMES
    assert len({s.context.span_id for s in spans}) == len(spans)  # nothing exported twice
    root = one(spans, "invoke_agent traced")
    assert root.parent is None

    by_id = {s.context.span_id: s for s in spans}

    def parent(s: ReadableSpan) -> str:
        return by_id[s.parent.span_id].name

    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "traced"
    assert root.attributes["gen_ai.request.model"].startswith("scripted:")
    assert root.attributes["lmthing.steps"] == 2
    assert root.attributes["lmthing.stop_reason"] == "answer"
    assert root.attributes["gen_ai.usage.output_tokens"] > 0
    assert root.end_time >= max(s.end_time for s in spans if s is not root)  # a real duration

    chats = [s for s in spans if s.name.startswith("chat ")]
    parent_chats = sorted((s for s in chats if parent(s) == "invoke_agent traced"), key=lambda s: s.start_time)
    assert [s.attributes["lmthing.step"] for s in parent_chats] == [0, 1]
    first = parent_chats[0]
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.provider.name"] == "scripted"
    assert first.attributes["gen_ai.request.model"] == "tracing-run"
    assert first.attributes["gen_ai.request.temperature"] == 0.3
    assert first.attributes["gen_ai.request.max_tokens"] == 200
    assert tuple(first.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert tuple(parent_chats[1].attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert first.attributes["gen_ai.usage.input_tokens"] > 0
    assert first.attributes["gen_ai.usage.output_tokens"] > 0

    for name, runs_in in (("measure", "activity"), ("shout", "workflow"), ("broken", "activity")):
        span = one(spans, f"execute_tool {name}")
        assert parent(span) == "invoke_agent traced"
        assert span.attributes["gen_ai.tool.name"] == name
        assert span.attributes["gen_ai.tool.call.id"]
        assert span.attributes["lmthing.tool.runs_in"] == runs_in
    # A span the tool makes itself joins the run's trace, under its tool call.
    assert parent(one(spans, "count characters")) == "execute_tool measure"
    failed = one(spans, "execute_tool broken")
    assert failed.status.status_code is StatusCode.ERROR
    assert "the archive is offline" in failed.status.description
    assert failed.attributes["error.type"] == "ToolError"
    assert one(spans, "execute_tool measure").status.status_code is not StatusCode.ERROR

    # The sub-agent: its child workflow's run span hangs under the parent's tool span.
    agent_call = one(spans, "execute_tool researcher")
    child = one(spans, "invoke_agent researcher")
    assert parent(child) == "execute_tool researcher"
    assert child.attributes["gen_ai.conversation.id"] == agent_call.attributes["lmthing.child_workflow_id"]
    assert [parent(s) for s in chats if s not in parent_chats] == ["invoke_agent researcher"]


async def test_tracing_off_makes_no_spans(client: Client, exporter: InMemorySpanExporter) -> None:
    tracing.disable_tracing()
    await traced_run(client, new_id("untraced"))
    # lmthing makes no spans; a tool's own span still goes to the process's global provider
    # (OpenTelemetry cannot unset it), without a run trace to join.
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["count characters"]
    assert spans[0].parent is None


def test_exporter_from_env_names_the_bad_setting() -> None:
    assert tracing.exporter_from_env({}) is None
    assert tracing.exporter_from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}) is None
    with pytest.raises(tracing.TracingConfigError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        tracing.exporter_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(tracing.TracingConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        tracing.exporter_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


# ---------------------------------------------------------------- OTLP from `lmthing worker`
class Collector:
    """An OTLP/HTTP trace receiver: decodes what the worker's exporter posts."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (name, attributes, resource)
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in body.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((span.name, {a.key: _value(a.value) for a in span.attributes}, resource))
        self.arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    c = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", c.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield c, port
    await runner.cleanup()


async def test_worker_exports_spans_over_otlp_from_otel_env(
    client: Client, dev_env: Any, collector: tuple[Collector, int], tmp_path: Path
) -> None:
    received, port = collector
    task_queue = new_id("otlp")
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_SERVICE_NAME": "agents-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", "worker", "--app", "tests.apps.tracing_app",
            "--task-queue", task_queue, "--address", client.service_client.config.target_host,
            cwd=REPO_ROOT, env=env, stdout=out, stderr=out,
        )
    try:
        handle = await start(client, traced, task_queue=task_queue)
        assert (await asyncio.wait_for(handle.result(), 60)).text == "All done."
        for _ in range(100):
            if any(name == "invoke_agent traced" for name, _, _ in received.spans):
                break
            await asyncio.sleep(0.1)
        names = [name for name, _, _ in received.spans]
        assert "invoke_agent traced" in names, f"spans received: {names}\n{log.read_text()[-3000:]}"
        assert names.count("chat tracing-run") == 3
        assert {resource["service.name"] for _, _, resource in received.spans} == {"agents-under-test"}
        chat = next(attrs for name, attrs, _ in received.spans if name == "chat tracing-run")
        assert chat["gen_ai.provider.name"] == "scripted"
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_run_that_continues_as_new_stays_one_trace(exporter: InMemorySpanExporter) -> None:
    """Each run of a continue-as-new chain has its invoke_agent span, all in one trace."""
    from lmthing.workers.dev_server import start_dev_server
    from tests.apps import runs_app

    env = await start_dev_server(dynamic_config={"limit.historyCount.suggestContinueAsNew": 20})
    try:
        queue = new_id("traced-can")
        async with create_worker(env.client, app="tests.apps.runs_app", task_queue=queue):
            handle = await start(env.client, runs_app.counter, task_queue=queue)
            result = await handle.result()
            continued = (await handle.status()).continued_runs
    finally:
        await env.shutdown()
    assert continued >= 2
    finished = exporter.get_finished_spans()
    runs = [s for s in finished if s.name == "invoke_agent counter" and s.attributes["gen_ai.conversation.id"] == handle.id]
    assert len(runs) == continued + 1  # one per run of the chain
    assert len({s.context.trace_id for s in runs}) == 1
    chats = [s for s in finished if s.name.startswith("chat ") and s.context.trace_id == runs[0].context.trace_id]
    assert sorted(s.attributes["lmthing.step"] for s in chats) == list(range(result.steps))
    # Only the last run has the totals of a finished run.
    assert [s.attributes.get("lmthing.stop_reason") for s in sorted(runs, key=lambda s: s.start_time)][-1] == "answer"


def test_a_foreign_global_tracer_provider_is_refused_with_the_fix() -> None:
    """OpenTelemetry allows one global provider; one that is not replay-safe cannot trace
    workflows, so configure_tracing says how to make it (in a fresh process: the global
    provider of this one is already set)."""
    import subprocess

    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from lmthing.observability import tracing\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "try:\n"
        "    tracing.configure_tracing(InMemorySpanExporter())\n"
        "except tracing.TracingConfigError as err:\n"
        "    print('refused:', err)\n"
        "print('enabled:', tracing.tracing_enabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: This process already has a global OpenTelemetry TracerProvider that is not replay-safe" in done.stdout
    assert "create_tracer_provider()" in done.stdout
    assert "enabled: False" in done.stdout
