"""Recording ``record_metric`` and prompt loggers from workflow code, once per run.

Metrics go through Temporal's workflow metric meter (``workflow.metric_meter()``), which
records nothing while history replays, into the worker's Temporal runtime; a worker started
with ``--metrics-port`` serves them on ``/metrics`` next to lmthing's and the SDK's. Log
lines go through the SDK's workflow ``LoggerAdapter``, which skips replay and carries the
run's identity in the ``temporal_workflow`` field the JSON formatter reads; a user field
named like a ``LogRecord`` attribute is kept with a trailing underscore.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from temporalio import workflow

from lmthing.observability.logging import LOG_RECORD_ATTRIBUTES
from lmthing.observability.metrics import declare_buckets
from lmthing.prompt.instruments import MetricDef

class WorkflowTelemetry:
    """The :class:`~lmthing.prompt.instruments.TelemetryHost` of a running prompt workflow."""

    def __init__(self, step: Callable[[], int]) -> None:
        self._step = step
        self._instruments: dict[str, Any] = {}
        self._loggers: dict[str, workflow.LoggerAdapter] = {}

    def record_metric(self, metric: MetricDef, value: float | int, labels: dict[str, str]) -> None:
        instrument = self._instruments.get(metric.name)
        if instrument is None:
            instrument = self._instruments[metric.name] = _create(metric)
        if metric.kind == "counter":
            instrument.add(int(value), labels)
        elif metric.kind == "gauge":
            instrument.set(float(value), labels)
        else:
            instrument.record(float(value), labels)

    def log(self, logger: str, level: int, message: str, fields: dict[str, Any]) -> None:
        adapter = self._loggers.get(logger)
        if adapter is None:
            # The SDK's workflow logger adapter: skips replay, puts the run's identity in ``temporal_workflow``.
            adapter = self._loggers[logger] = workflow.LoggerAdapter(logging.getLogger(f"lmthing.prompt.{logger}"), None)
            adapter.workflow_info_on_message = False  # fields, not message text
        extra = {f"{k}_" if k in LOG_RECORD_ATTRIBUTES else k: v for k, v in fields.items()}
        adapter.log(level, message, extra={**extra, "step": self._step()})


def _create(metric: MetricDef) -> Any:
    meter = workflow.metric_meter()
    description = metric.description or None
    unit = metric.unit or None
    if metric.kind == "counter":
        return meter.create_counter(metric.name, description, unit)
    if metric.kind == "gauge":
        return meter.create_gauge_float(metric.name, description, unit)
    if metric.buckets is not None:
        declare_buckets(metric.name, metric.buckets)
    return meter.create_histogram_float(metric.name, description, unit)
