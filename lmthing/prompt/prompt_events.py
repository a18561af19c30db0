"""Lifecycle events, metrics and logs of the prompt API (``def_event``, ``emit``,
``def_metric``, ``record_metric``, ``def_logger``): a mixin of
:class:`~lmthing.prompt.stateful_prompt.StatefulPrompt`, whose attributes it uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any



from .instruments import (
    InstrumentError,
    MetricDef,
    PromptLogger,
    level_number,
    redact_set,
)
from .lifecycle import LIFECYCLE_NAMES, CustomEvent, Handler, LifecycleEvent


from .prompt_base import PromptError, _check_name


class EventsAndMetrics:
    """``def_event``, ``def_metric``, ``def_logger``; the attributes are StatefulPrompt's."""

    # ----------------------------------------------------------- events, metrics, logs
    def def_event(self, name: str, handler: Handler) -> None:
        """Run ``handler(event)`` at a lifecycle point (``before_model_call``,
        ``after_model_call``, ``before_tool``, ``after_tool``, ``on_step``, ``on_error``,
        ``on_finish``; lmthing's ``onToolStart``... too) or when ``emit(name)`` fires a custom
        event. Declared on every run of the prompt function, like effects."""
        try:
            self._event_handlers.add(name, handler)
        except (TypeError, ValueError) as err:
            raise PromptError(str(err)) from None

    async def emit(self, name: str, data: Any = None) -> None:
        """Fire a custom event: its handlers run now, in declaration order."""
        if name in LIFECYCLE_NAMES:
            raise PromptError(f"emit({name!r}): lifecycle events are fired by the run itself; emit custom events only")
        await self.fire(CustomEvent(name=name, step=self._current_step(), data=data))

    async def fire(self, event: LifecycleEvent) -> None:
        """Run the handlers of ``event`` (the engine calls this at each lifecycle point)."""
        if self._event_handlers.has(event.name):
            await self._event_handlers.fire(event)

    def has_handlers(self, name: str) -> bool:
        return self._event_handlers.has(name)

    def def_metric(
        self,
        name: str,
        kind: str,
        description: str = "",
        *,
        labels: Iterable[str] = (),
        buckets: Iterable[float] | None = None,
        unit: str = "",
    ) -> MetricDef:
        """Declare a metric (``counter``, ``gauge`` or ``histogram``) that ``record_metric``
        updates. On a worker with ``--metrics-port`` it is served on ``/metrics`` (a counter
        as ``<name>_total``), with the Temporal SDK's ``namespace``, ``task_queue`` and
        ``workflow_type`` labels added."""
        try:
            metric = MetricDef(name, kind, description, tuple(labels), None if buckets is None else tuple(buckets), unit)  # type: ignore[arg-type]
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        known = self._metrics.get(name)
        if known is not None and known != metric:
            raise PromptError(f"def_metric({name!r}) was already declared differently in this run: {known}")
        self._metrics[name] = metric
        return metric

    def record_metric(self, name: str, value: float | int = 1, labels: dict[str, Any] | None = None) -> None:
        """Add to a counter, set a gauge or observe a histogram value (once per run: not
        repeated when the run's history is replayed)."""
        metric = self._metrics.get(name)
        if metric is None:
            known = ", ".join(self._metrics) or "(none)"
            raise PromptError(f"record_metric({name!r}): no such metric (declared: {known}); declare it with def_metric first")
        try:
            number, clean = metric.check(value, labels or {})
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        self._telemetry.record_metric(metric, number, clean)

    def def_logger(
        self,
        name: str,
        level: int | str = "info",
        *,
        fields: dict[str, Any] | None = None,
        redact: Iterable[str] = (),
    ) -> PromptLogger:
        """A structured logger (``logger.info("text", key=value)``); it also becomes
        ``p.logger``. Lines carry the run's identity and step, ``fields`` on every line, the
        ``redact`` field names hidden; nothing is logged again when history replays."""
        _check_name("def_logger", name)
        try:
            number = level_number(level, f"def_logger({name!r})")
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        logger = PromptLogger(name, self._telemetry, number, dict(fields or {}), redact_set(redact))
        self._logger = logger
        return logger

    @property
    def logger(self) -> PromptLogger:
        """The last logger declared with ``def_logger``, else one named after the prompt."""
        if self._logger is None:
            self._logger = PromptLogger(self._name, self._telemetry)
        return self._logger
