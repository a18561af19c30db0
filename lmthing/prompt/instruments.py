"""``def_metric`` / ``record_metric`` and ``def_logger``: metrics and logs from prompt
functions, event handlers and in-workflow tools.

The prompt layer declares and checks (names, kinds, labels, values); recording is the
engine's job (:class:`TelemetryHost`). In a workflow the engine records through Temporal's
workflow metric meter and a logger that both skip replay, so a metric is counted and a
line is logged once per run, however often the run's history is replayed.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

MetricKind = Literal["counter", "gauge", "histogram"]
_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_PREFIXES = ("lmthing_", "temporal_")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}
REDACTED = "[REDACTED]"


class InstrumentError(ValueError):
    """A metric or logger used in a way it was not declared for; the message says how to fix it."""


@dataclass(frozen=True)
class MetricDef:
    """``def_metric(name, kind, ...)``. ``labels`` are the label names ``record_metric`` may
    use; ``buckets`` are a histogram's upper bounds."""

    name: str
    kind: MetricKind
    description: str = ""
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name):
            raise InstrumentError(
                f"def_metric({self.name!r}): metric names are letters, digits and underscores, not starting with "
                "a digit (Prometheus), e.g. 'files_processed'"
            )
        if self.name.startswith(_RESERVED_PREFIXES):
            raise InstrumentError(f"def_metric({self.name!r}): names starting with lmthing_ or temporal_ are reserved")
        if self.kind not in ("counter", "gauge", "histogram"):
            raise InstrumentError(f"def_metric({self.name!r}): kind must be 'counter', 'gauge' or 'histogram', got {self.kind!r}")
        for label in self.labels:
            if not _METRIC_NAME.match(label):
                raise InstrumentError(f"def_metric({self.name!r}): label {label!r} is not a valid label name")
        if self.buckets is not None:
            if self.kind != "histogram":
                raise InstrumentError(f"def_metric({self.name!r}): buckets are for histograms, not a {self.kind}")
            if not self.buckets or list(self.buckets) != sorted(set(self.buckets)):
                raise InstrumentError(f"def_metric({self.name!r}): buckets must be increasing numbers, got {list(self.buckets)}")

    def check(self, value: Any, labels: Mapping[str, Any]) -> tuple[float | int, dict[str, str]]:
        """The value and labels to record, or an InstrumentError that says what was wrong."""
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            declared = ", ".join(self.labels) or "(none)"
            raise InstrumentError(
                f"record_metric({self.name!r}): labels {unknown} were not declared; declared labels: {declared}. "
                f"Add them to def_metric({self.name!r}, ..., labels=[...])."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InstrumentError(f"record_metric({self.name!r}): the value must be a finite number, got {value!r}")
        if self.kind == "counter":
            if value < 0 or value != int(value):
                raise InstrumentError(
                    f"record_metric({self.name!r}): a counter only goes up by whole numbers, got {value!r}; "
                    "use a gauge or a histogram for other values"
                )
            value = int(value)
        return value, {k: str(v) for k, v in labels.items()}


class TelemetryHost(Protocol):
    """What the engine offers for recording (replay-safe in a workflow)."""

    def record_metric(self, metric: MetricDef, value: float | int, labels: dict[str, str]) -> None: ...

    def log(self, logger: str, level: int, message: str, fields: dict[str, Any]) -> None: ...


class LocalTelemetry:
    """Recording outside an engine (unit tests of prompt functions): metrics are kept in
    ``recorded``, lines go to the standard ``logging`` logger ``lmthing.prompt.<name>``."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, float | int, dict[str, str]]] = []

    def record_metric(self, metric: MetricDef, value: float | int, labels: dict[str, str]) -> None:
        self.recorded.append((metric.name, value, labels))

    def log(self, logger: str, level: int, message: str, fields: dict[str, Any]) -> None:
        logging.getLogger(f"lmthing.prompt.{logger}").log(level, message, extra=fields)


@dataclass
class PromptLogger:
    """``def_logger(name, level=, fields=, redact=)``: ``logger.info("message", key=value)``.

    ``fields`` go on every line; values of the ``redact`` field names (and of the names the
    JSON log formatter redacts anyway) become ``"[REDACTED]"`` before the line leaves the
    workflow."""

    name: str
    host: TelemetryHost
    level: int = logging.INFO
    fields: dict[str, Any] = field(default_factory=dict)
    redact: frozenset[str] = frozenset()

    def log(self, level: int | str, message: str, **fields: Any) -> None:
        number = level_number(level, f"logger {self.name!r}")
        if number < self.level:
            return
        self.host.log(self.name, number, str(message), self._redacted({**self.fields, **fields}))

    def debug(self, message: str, **fields: Any) -> None:
        self.log(logging.DEBUG, message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log(logging.INFO, message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log(logging.WARNING, message, **fields)

    warn = warning

    def error(self, message: str, **fields: Any) -> None:
        self.log(logging.ERROR, message, **fields)

    def _redacted(self, value: Any, key: str | None = None) -> Any:
        if key is not None and _norm(key) in self.redact:
            return REDACTED
        if isinstance(value, dict):
            return {k: self._redacted(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redacted(v) for v in value]
        return value


def level_number(level: int | str, where: str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    number = _LEVELS.get(str(level).lower())
    if number is None:
        raise InstrumentError(f"{where}: unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    return number


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def redact_set(names: Iterable[str]) -> frozenset[str]:
    return frozenset(_norm(n) for n in names)
