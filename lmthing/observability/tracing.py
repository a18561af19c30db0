"""OpenTelemetry traces: one trace per run, across the workflow, its activities and its
sub-agents, with OpenTelemetry GenAI spans.

The tree of one run::

    invoke_agent <prompt>            workflow (real duration, across workflow tasks)
      chat <model>                   model-call activity, one span per attempt
      execute_tool <tool>            workflow, around each tool call (activity or in-workflow)
      execute_tool <agent>           a sub-agent call ...
        invoke_agent <agent>         ... whose child workflow continues the same trace
          chat <model>

How it stays correct under Temporal:

* Context crosses workflow, activity and child-workflow boundaries in Temporal headers,
  through Temporal's own ``OpenTelemetryPlugin`` (``temporalio.contrib.opentelemetry``),
  which the worker factory adds when tracing is on.
* Workflow code is replayed. Spans come from Temporal's replay-safe tracer provider
  (:func:`temporalio.contrib.opentelemetry.create_tracer_provider`): span ids are drawn
  from the workflow's deterministic random, and a span is not ended (so not exported) while
  history is being replayed. A span that a replay re-creates is the same span with the same
  id, and it is exported once, by whichever worker ends it for real.
* Tracing is off unless configured (:func:`configure_tracing`, or ``lmthing worker``
  with the standard ``OTEL_*`` variables); off, every helper here is a no-op costing one
  ``None`` check.

Configuration follows the OpenTelemetry SDK variables: ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``, ``none``; ``otlp`` is the default once an
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set), ``OTEL_EXPORTER_OTLP_*`` (endpoint,
headers, timeout, protocol ``http/protobuf``; ``grpc`` when
``opentelemetry-exporter-otlp-proto-grpc`` is installed), ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]`` and ``OTEL_BSP_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception
from temporalio.contrib.opentelemetry import (
    OpenTelemetryPlugin,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

TRACER_NAME = "lmthing"
DEFAULT_SERVICE_NAME = "lmthing-worker"

_provider: ReplaySafeTracerProvider | None = None
_exporters: list[SpanExporter] = []

# OpenTelemetry GenAI semantic conventions (gen_ai.*), the attributes lmthing sets.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CONVERSATION_ID = "gen_ai.conversation.id"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
_REQUEST_OPTIONS = {
    "temperature": "gen_ai.request.temperature",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "stop_sequences": "gen_ai.request.stop_sequences",
    "seed": "gen_ai.request.seed",
}


class TracingConfigError(ValueError):
    """An ``OTEL_*`` setting lmthing cannot act on; the message names the variable."""


def exporter_from_env(env: Mapping[str, str] | None = None) -> SpanExporter | None:
    """The span exporter the ``OTEL_*`` variables ask for, or None for no tracing."""
    env = os.environ if env is None else env
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not chosen:
        has_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        chosen = "otlp" if has_endpoint else "none"
    if chosen == "none":
        return None
    if chosen == "console":
        return ConsoleSpanExporter()
    if chosen != "otlp":
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={chosen!r} is not supported; use 'otlp', 'console' or 'none'."
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the package opentelemetry-exporter-otlp-proto-grpc "
                "(pip install it), or use http/protobuf (port 4318)."
            ) from None
        return GrpcExporter()
    raise TracingConfigError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use 'http/protobuf' or 'grpc'."
    )


def configure_tracing(exporter: SpanExporter | None = None, *, batch: bool = True) -> ReplaySafeTracerProvider | None:
    """Turn tracing on for this process; returns the provider, or None when the ``OTEL_*``
    variables (read when no ``exporter`` is given) ask for none.

    The provider becomes OpenTelemetry's global one, as Temporal's plugin requires; spans
    from the user's own instrumentation (an HTTP client inside a tool, say) then join the
    run's trace too. A replay-safe global provider that is already set (made with
    ``temporalio.contrib.opentelemetry.create_tracer_provider``) is reused, with the
    exporter added. ``batch`` exports in the background (``BatchSpanProcessor``); tests
    pass ``batch=False``."""
    global _provider
    exporter = exporter if exporter is not None else exporter_from_env()
    if exporter is None:
        return None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, ReplaySafeTracerProvider):
        service = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": DEFAULT_SERVICE_NAME}
        replay_safe = create_tracer_provider(resource=Resource.create(service))
        trace.set_tracer_provider(replay_safe)
        if trace.get_tracer_provider() is not replay_safe:
            raise TracingConfigError(
                "This process already has a global OpenTelemetry TracerProvider that is not replay-safe, and "
                "OpenTelemetry allows only one. Create it with temporalio.contrib.opentelemetry."
                "create_tracer_provider() instead (lmthing then adds its exporter to it), or let lmthing create it."
            )
        provider = replay_safe
    if not any(e is exporter for e in _exporters):  # configuring twice does not export twice
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        _exporters.append(exporter)
    _provider = provider
    return provider


def disable_tracing() -> None:
    """Stop making lmthing spans, and adding the tracing plugin to new workers, in this
    process. The global provider stays (OpenTelemetry cannot unset it)."""
    global _provider
    if _provider is not None:
        _provider.force_flush()
    _provider = None


def tracing_enabled() -> bool:
    return _provider is not None


def force_flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered (a worker calls this when it stops)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def tracing_plugin() -> OpenTelemetryPlugin:
    """Temporal's plugin that carries trace context through headers and sets the sandbox up."""
    return OpenTelemetryPlugin()


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A span around the block, current while it runs; yields None when tracing is off.

    Safe in workflow code: the provider is replay-safe. An exception that fails the block
    marks the span as an error with ``error.type``; a cancellation or a continue-as-new ends
    it normally, since neither is an error of the run."""
    provider = _provider
    if provider is None:
        yield None
        return
    tracer = provider.get_tracer(TRACER_NAME)
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name, attributes=clean, kind=kind, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as err:
            if _is_error(err):
                mark_error(current, err)
            raise


def mark_error(current: Span | None, err: BaseException | str, error_type: str | None = None) -> None:
    """Mark a span failed, with ``error.type`` (GenAI and general semantic conventions)."""
    if current is None:
        return
    if isinstance(err, BaseException):
        error_type = error_type or getattr(err, "type", None) or type(err).__name__
        message = getattr(err, "message", None) or str(err)
        current.record_exception(err)
    else:
        message = err
    current.set_attribute("error.type", error_type or "error")
    current.set_status(Status(StatusCode.ERROR, message[:500]))


def _is_error(err: BaseException) -> bool:
    if isinstance(err, (GeneratorExit, KeyboardInterrupt)):
        return False
    if workflow.in_workflow():
        # Only failures end a run or a call; anything else (cancellation, continue-as-new, a
        # workflow task that will be retried) must not mark or, for the replay-safe span,
        # suppress the span's end.
        return workflow.is_failure_exception(err) and not _is_cancel(err)
    return not _is_cancel(err)


def _is_cancel(err: BaseException) -> bool:
    return isinstance(err, asyncio.CancelledError) or is_cancelled_exception(err)


# ------------------------------------------------------------------ GenAI span helpers
def chat_attributes(request: Any, provider: str | None, model_id: str) -> dict[str, Any]:
    """A model call's request attributes (``request`` is a ``ModelRequest``)."""
    attrs: dict[str, Any] = {
        OPERATION: "chat",
        PROVIDER: provider,
        REQUEST_MODEL: model_id,
        CONVERSATION_ID: request.workflow_id,
        "lmthing.step": request.step,
        "lmthing.agent": request.agent,
    }
    options = request.options
    for field, key in _REQUEST_OPTIONS.items():
        attrs[key] = getattr(options, field, None)
    return attrs


def record_chat_response(current: Span | None, response: Any) -> None:
    """Usage, finish reason and response model of a ``ModelResponse``."""
    if current is None:
        return
    current.set_attribute(INPUT_TOKENS, response.usage.input_tokens)
    current.set_attribute(OUTPUT_TOKENS, response.usage.output_tokens)
    current.set_attribute(FINISH_REASONS, [response.finish_reason])
    if response.model:
        current.set_attribute(RESPONSE_MODEL, response.model)
    if response.cost_usd is not None:
        current.set_attribute("lmthing.cost_usd", response.cost_usd)


def tool_attributes(name: str, call_id: str | None, kind: str) -> dict[str, Any]:
    """An ``execute_tool`` span's attributes; ``kind`` is lmthing's (activity, workflow, agent)."""
    return {OPERATION: "execute_tool", TOOL_NAME: name, TOOL_CALL_ID: call_id, TOOL_TYPE: "function", "lmthing.tool.runs_in": kind}


def record_agent_result(current: Span | None, result: Any) -> None:
    """Totals of a finished run (``result`` is a ``RunResult``), child agents included."""
    if current is None:
        return
    current.set_attribute(INPUT_TOKENS, result.usage.input_tokens)
    current.set_attribute(OUTPUT_TOKENS, result.usage.output_tokens)
    current.set_attribute("lmthing.steps", result.steps)
    current.set_attribute("lmthing.stop_reason", result.stop_reason)
    if result.cost_usd is not None:
        current.set_attribute("lmthing.cost_usd", result.cost_usd)
