"""The worker's /metrics endpoint: lmthing's metrics and Temporal's SDK metrics, scraped
over HTTP after real runs on the scripted model."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from lmthing.client.connect import data_converter
from lmthing.observability.metrics import (
    metrics_runtime,
    refresh_run_gauges,
    start_metrics_server,
)
from lmthing.workers import create_worker
from tests.apps import tools_app
from tests.support import new_id, start


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[tuple[str, frozenset], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def test_metrics_endpoint_carries_run_metrics_and_sdk_metrics(client):
    runtime = metrics_runtime()
    target = client.service_client.config.target_host
    mclient = await Client.connect(target, namespace=client.namespace, data_converter=data_converter(), runtime=runtime)
    queue = new_id("metrics-q")
    server = start_metrics_server(0, addr="127.0.0.1")
    try:
        before = scrape(server.port)
        async with create_worker(mclient, prompts=[tools_app.mixed, tools_app.failing], tools=[tools_app.add, tools_app.flaky], task_queue=queue):
            handle = await start(mclient, tools_app.mixed, task_queue=queue)
            result = await handle.result()
            steps = await handle.steps()
            failing = await (await start(mclient, tools_app.failing, task_queue=queue)).result()
            await refresh_run_gauges(mclient, queue)
            await asyncio.sleep(1.5)  # the SDK reports its metrics in batches
            after = scrape(server.port)
    finally:
        server.close()

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    model = "scripted:tools-mixed"
    calls = delta("lmthing_model_calls_total", prompt="mixed", outcome="ok")
    assert calls == result.steps == len(steps) == 2
    assert delta("lmthing_model_call_seconds_count", prompt="mixed") == result.steps
    tokens_in = delta("lmthing_tokens_total", direction="in", model=_model_label(after, "mixed") or model)
    tokens_out = delta("lmthing_tokens_total", direction="out", model=_model_label(after, "mixed") or model)
    assert tokens_in == result.usage.input_tokens > 0
    assert tokens_out == result.usage.output_tokens > 0
    # Tools by name and outcome: 'add' succeeded once; 'flaky' failed on each of its 3 attempts.
    assert delta("lmthing_tool_calls_total", tool="add", outcome="ok") == 1
    assert delta("lmthing_tool_calls_total", tool="flaky", outcome="ok") == 0
    assert sum(
        v for (n, ls), v in after.items()
        if n == "lmthing_tool_calls_total" and ("tool", "flaky") in ls and ("outcome", "ok") not in ls
    ) - sum(
        v for (n, ls), v in before.items()
        if n == "lmthing_tool_calls_total" and ("tool", "flaky") in ls and ("outcome", "ok") not in ls
    ) == 3
    assert failing.text == "it failed"
    assert total(after, "lmthing_active_runs", task_queue=queue) == 0
    assert total(after, "lmthing_approvals_pending", task_queue=queue) == 0
    # Temporal's SDK metrics on the same endpoint.
    names = {n for n, _ in after}
    assert any(n.startswith("temporal_workflow_completed") for n in names), sorted(names)
    assert any(n.startswith("temporal_activity_execution_latency") for n in names), sorted(names)
    assert total(after, "temporal_workflow_completed_total", task_queue=queue) == 2


def _model_label(samples: dict, prompt: str) -> str | None:
    for n, ls in samples:
        if n == "lmthing_model_calls_total" and ("prompt", prompt) in ls:
            return dict(ls)["model"]
    return None
