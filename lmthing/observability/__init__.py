"""Worker observability: OpenTelemetry traces (:mod:`.tracing`), Prometheus metrics
(:mod:`.metrics`), the /healthz and /readyz endpoints (:mod:`.endpoints`) and JSON logs
(:mod:`.logging`). What a prompt records itself (``def_metric``, ``def_logger``,
``def_event``) is declared in ``lmthing.prompt`` and recorded through these."""
