"""Recording ``record_metric`` and prompt loggers from workflow code, once per run.

Metrics go through Temporal's workflow metric meter (``workflow.metric_meter()``), which
records nothing while history replays, into the worker's Temporal runtime; a worker started
with ``--metrics-port`` serves them on ``/metrics`` next to lmthing's and the SDK's. Log
lines skip replay the same way (as ``workflow.logger`` does) and carry the run's identity
in the ``temporal_workflow`` field the JSON formatter reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from temporalio import workflow

from lmthing.observability.metrics import declare_buckets
from lmthing.prompt.instruments import MetricDef

# Attributes every LogRecord has: a user field with one of these names would make
# ``logging`` refuse the record, so it is renamed with a trailing underscore.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class WorkflowTelemetry:
    """The :class:`~lmthing.prompt.instruments.TelemetryHost` of a running prompt workflow."""

    def __init__(self, step: Callable[[], int]) -> None:
        self._step = step
        self._instruments: dict[str, Any] = {}

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
        if workflow.unsafe.is_replaying():
            return
        info = workflow.info()
        extra = {f"{k}_" if k in _RESERVED else k: v for k, v in fields.items()}
        extra["temporal_workflow"] = {
            "workflow_id": info.workflow_id,
            "run_id": info.run_id,
            "workflow_type": info.workflow_type,
            "namespace": info.namespace,
            "task_queue": info.task_queue,
            "attempt": info.attempt,
        }
        extra["step"] = self._step()
        logging.getLogger(f"lmthing.prompt.{logger}").log(level, message, extra=extra)


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
