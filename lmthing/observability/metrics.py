"""Prometheus metrics of a worker, on one ``/metrics`` endpoint with Temporal's SDK metrics.

How the two sources meet:

* lmthing's metrics (``lmthing_*``) are ``prometheus-client`` metrics in :data:`REGISTRY`,
  recorded where the facts are: the model-call activity (model, usage, cost, latency,
  retries) and the tool activities (tool, outcome). Activities run outside the workflow
  sandbox and are not replayed, so each call is counted once.
* The SDK's metrics (``temporal_*``: workflow completions, activity latencies, poll and
  cache metrics...) come from a Temporal ``Runtime`` whose telemetry is a ``MetricBuffer``;
  :class:`SdkMetricsCollector` drains that buffer (every second and at each scrape) and
  serves its counters, gauges and histograms from the same registry. The SDK's own
  ``PrometheusConfig`` exporter is not used: it would open a second endpoint.
* ``lmthing_active_runs`` and ``lmthing_approvals_pending`` are polled from Temporal's
  visibility store (``count_workflows``) every few seconds: they are cluster-wide numbers
  for the task queue, the same on every worker (aggregate with ``max``, not ``sum``), and
  need nothing from workflow code, so replay cannot skew them. ``lmthing_approvals_pending``
  counts runs waiting on a person (search attribute ``LmthingWaiting``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

MODEL_CALLS = Counter(
    "lmthing_model_calls", "Model calls (one per attempt) by prompt, model and outcome ('ok' or the error type).",
    ["prompt", "model", "outcome"], registry=REGISTRY,
)
MODEL_CALL_SECONDS = Histogram(
    "lmthing_model_call_seconds", "Duration of a model call attempt.", ["prompt", "model"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
MODEL_RETRIES = Counter(
    "lmthing_model_call_retries", "Model call attempts after the first (Temporal activity retries).",
    ["prompt", "model"], registry=REGISTRY,
)
TOKENS = Counter("lmthing_tokens", "Tokens by model and direction (in, out).", ["model", "direction"], registry=REGISTRY)
COST = Counter("lmthing_cost_usd", "Estimated cost in USD (models with a known price).", ["model"], registry=REGISTRY)
TOOL_CALLS = Counter(
    "lmthing_tool_calls", "Activity tool calls (one per attempt) by tool and outcome ('ok' or the error type).",
    ["tool", "outcome"], registry=REGISTRY,
)
TOOL_CALL_SECONDS = Histogram("lmthing_tool_call_seconds", "Duration of a tool call attempt.", ["tool"], registry=REGISTRY)
APPROVALS_PENDING = Gauge(
    "lmthing_approvals_pending", "Running runs waiting on a person (cluster-wide, polled from visibility).",
    ["task_queue"], registry=REGISTRY,
)
ACTIVE_RUNS = Gauge(
    "lmthing_active_runs", "Running workflow runs on the task queue (cluster-wide, polled from visibility).",
    ["task_queue"], registry=REGISTRY,
)

# Circuit breakers (docs/circuit-breakers.md): the state a breaker answered this worker's
# last call with (0 closed, 1 half-open, 2 open; aggregate with max), and the calls it failed fast.
BREAKER_STATE = Gauge(
    "lmthing_circuit_breaker_state", "Circuit breaker state as last seen by this worker: 0 closed, 1 half-open, 2 open.",
    ["breaker"], registry=REGISTRY,
)
BREAKER_FAST_FAILURES = Counter(
    "lmthing_circuit_breaker_fast_failures", "Calls failed fast by an open (or busy half-open) circuit breaker.",
    ["breaker"], registry=REGISTRY,
)
_BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


# ------------------------------------------------------------------ recording (activities)
def record_model_call(
    *, prompt: str, model: str, outcome: str, seconds: float, attempt: int, response: Any | None = None
) -> None:
    """Called by the model-call activity once per attempt. Never raises."""
    try:
        MODEL_CALLS.labels(prompt, model, outcome).inc()
        MODEL_CALL_SECONDS.labels(prompt, model).observe(seconds)
        if attempt > 1:
            MODEL_RETRIES.labels(prompt, model).inc()
        if response is not None:
            usage = response.usage
            TOKENS.labels(model, "in").inc(usage.input_tokens)
            TOKENS.labels(model, "out").inc(usage.output_tokens)
            if response.cost_usd is not None:
                COST.labels(model).inc(response.cost_usd)
    except Exception:  # metrics must never fail a model call
        log.exception("could not record model call metrics")


def record_tool_call(*, tool: str, outcome: str, seconds: float) -> None:
    try:
        TOOL_CALLS.labels(tool, outcome).inc()
        TOOL_CALL_SECONDS.labels(tool).observe(seconds)
    except Exception:
        log.exception("could not record tool call metrics")


def record_breaker(name: str, state: str, *, fast_failed: bool = False) -> None:
    try:
        BREAKER_STATE.labels(name).set(_BREAKER_VALUES.get(state, 0))
        if fast_failed:
            BREAKER_FAST_FAILURES.labels(name).inc()
    except Exception:
        log.exception("could not record circuit breaker metrics")


def outcome_of(err: BaseException | None) -> str:
    """'ok', or the error's type: ``ApplicationError.type`` when set, else the class name."""
    if err is None:
        return "ok"
    return getattr(err, "type", None) or type(err).__name__


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t:`` ... ``t[0]`` is the elapsed seconds after the block."""
    out = [0.0]
    start = time.perf_counter()
    try:
        yield out
    finally:
        out[0] = time.perf_counter() - start


# ------------------------------------------------------------------ Temporal SDK metrics
_SDK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_Key = tuple[tuple[str, str], ...]
# Histograms declared with their own buckets (``def_metric(..., buckets=...)``), by name.
_BUCKETS: dict[str, tuple[float, ...]] = {}


def declare_buckets(name: str, buckets: tuple[float, ...]) -> None:
    """Bucket a histogram recorded through the Temporal runtime with ``buckets`` instead of
    the SDK's defaults (a ``def_metric`` histogram; first declaration wins)."""
    _BUCKETS.setdefault(name, tuple(float(b) for b in buckets))


class SdkMetricsCollector(Collector):
    """Serves what a Temporal ``MetricBuffer`` records, as Prometheus families.

    Counters arrive as deltas and are summed; gauges keep their last value; histogram
    values are bucketed here (durations in seconds). Label sets may differ between series
    of one metric, which Prometheus allows."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self.buffer = buffer
        self._lock = threading.Lock()
        self._counters: dict[str, dict[_Key, float]] = {}
        self._gauges: dict[str, dict[_Key, float]] = {}
        self._histograms: dict[str, dict[_Key, list[float]]] = {}  # bucket counts..., sum, count
        self._help: dict[str, str] = {}

    def drain(self) -> None:
        with self._lock:
            try:
                updates = self.buffer.retrieve_updates()
            except RuntimeError:  # no client has created the runtime's core yet
                return
            for u in updates:
                metric = u.metric
                name = metric.name
                key = tuple(sorted((str(k), str(v)) for k, v in u.attributes.items()))
                self._help.setdefault(name, metric.description or name)
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                    series = self._counters.setdefault(name, {})
                    series[key] = series.get(key, 0.0) + float(u.value)
                elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                    self._gauges.setdefault(name, {})[key] = float(u.value)
                else:
                    value = float(u.value)
                    bounds = _BUCKETS.get(name, _SDK_BUCKETS)
                    h = self._histograms.setdefault(name, {}).setdefault(key, [0.0] * (len(bounds) + 2))
                    for i, bound in enumerate(bounds):
                        if value <= bound:
                            h[i] += 1
                    h[-2] += value
                    h[-1] += 1

    def collect(self) -> Iterator[Any]:
        self.drain()
        with self._lock:
            for name, series in self._counters.items():
                fam = CounterMetricFamily(name, self._help[name], labels=None)
                for key, value in series.items():
                    fam.samples.append(_sample(f"{fam.name}_total", key, value))
                yield fam
            for name, series in self._gauges.items():
                fam = GaugeMetricFamily(name, self._help[name])
                for key, value in series.items():
                    fam.samples.append(_sample(name, key, value))
                yield fam
            for name, series in self._histograms.items():
                fam = HistogramMetricFamily(name, self._help[name])
                bounds = _BUCKETS.get(name, _SDK_BUCKETS)
                for key, h in series.items():
                    for i, bound in enumerate(bounds):
                        fam.samples.append(_sample(f"{name}_bucket", key + (("le", repr(float(bound))),), h[i]))
                    fam.samples.append(_sample(f"{name}_bucket", key + (("le", "+Inf"),), h[-1]))
                    fam.samples.append(_sample(f"{name}_count", key, h[-1]))
                    fam.samples.append(_sample(f"{name}_sum", key, h[-2]))
                yield fam


def _sample(name: str, key: _Key, value: float) -> Any:
    from prometheus_client.samples import Sample

    return Sample(name, dict(key), value, None, None)


_sdk_collector: SdkMetricsCollector | None = None


def metrics_runtime(*, set_default: bool = False, buffer_size: int = 100_000) -> Runtime:
    """A Temporal ``Runtime`` whose SDK metrics go to :data:`REGISTRY`.

    Clients connected with ``runtime=`` this (or every client, with ``set_default=True``,
    which must happen before the first client connects) report their workers' SDK metrics
    on the lmthing ``/metrics`` endpoint."""
    global _sdk_collector
    buffer = MetricBuffer(buffer_size, duration_format=MetricBufferDurationFormat.SECONDS)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    if _sdk_collector is not None:
        REGISTRY.unregister(_sdk_collector)
    _sdk_collector = SdkMetricsCollector(buffer)
    REGISTRY.register(_sdk_collector)
    if set_default:
        Runtime.set_default(runtime, error_if_already_set=False)
    return runtime


def drain_sdk_metrics() -> None:
    """Move what the SDK recorded into :data:`REGISTRY` (its buffer is bounded: drain often)."""
    if _sdk_collector is not None:
        _sdk_collector.drain()


def _drain_forever(stop: threading.Event) -> None:
    while not stop.wait(1.0):
        with contextlib.suppress(Exception):
            drain_sdk_metrics()


class MetricsServer:
    """The running ``/metrics`` endpoint (and its pollers); ``close()`` stops it."""

    def __init__(self, port: int, server: Any, thread: Any, poller: asyncio.Task[None] | None) -> None:
        self.port = port
        self._server, self._thread, self._poller = server, thread, poller
        self._stop = threading.Event()
        threading.Thread(target=_drain_forever, args=(self._stop,), daemon=True, name="lmthing-sdk-metrics").start()

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.cancel()
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(
    port: int, *, addr: str = "0.0.0.0", client: Any | None = None, task_queue: str | None = None,
    poll_interval: float = 5.0,
) -> MetricsServer:
    """Serve :data:`REGISTRY` on ``http://addr:port/metrics`` (port 0: any free port).

    With a ``client`` (and, from a running event loop), also poll the visibility store for
    ``lmthing_active_runs`` and ``lmthing_approvals_pending`` on ``task_queue``."""
    server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
    poller = None
    if client is not None and task_queue is not None:
        poller = asyncio.get_running_loop().create_task(poll_run_gauges(client, task_queue, poll_interval))
    return MetricsServer(server.server_port, server, thread, poller)


async def refresh_run_gauges(client: Any, task_queue: str) -> None:
    base = f"ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}'"
    ACTIVE_RUNS.labels(task_queue).set((await client.count_workflows(base)).count)
    try:
        waiting = (await client.count_workflows(f"{base} AND LmthingWaiting = true")).count
    except Exception:  # search attribute not registered: nobody can be waiting  # noqa: BLE001
        waiting = 0
    APPROVALS_PENDING.labels(task_queue).set(waiting)


async def poll_run_gauges(client: Any, task_queue: str, interval: float) -> None:
    while True:
        try:
            await refresh_run_gauges(client, task_queue)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001
            log.warning("could not refresh run gauges: %s", err)
        await asyncio.sleep(interval)


def value(name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """A sample's current value in :data:`REGISTRY` (for tests and debugging)."""
    return REGISTRY.get_sample_value(name, dict(labels or {}))
