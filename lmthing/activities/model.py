"""The model-call activity (``lmthing.model_call``): one model step through a provider.

Around the provider it adds what makes a model call durable and observable: a heartbeat
while it waits (a dead worker is noticed within the heartbeat timeout, and cancelling the
run cancels the HTTP request), text deltas sent to callers in batches through the run's
Workflow Stream, a size check on the reply, and error classes mapped onto Temporal retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from pydantic_core import to_json
from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from lmthing.activities.limits import check_size
from lmthing.memory.context import summary_request
from lmthing.observability import metrics, tracing
from lmthing.observability.logging import current_step
from lmthing.memory.types import CacheRef
from lmthing.prompt.types import ModelRequest, ModelResponse, StreamEvent, Usage

from .breakers import guarded
from .caches import ToolCaches
from .failures import provider_failure
from .heartbeats import heartbeat_forever
from .memory import classified
from .budget import report_spend, wait_for_slot
from .conversation import RequestCache, resolve
from .names import MODEL_CALL
from .providers.base import (
    ModelCallError,
    ModelConfigError,
    NullSink,
    ProviderRegistry,
    StreamSink,
    resolve_model_spec,
)

# The run's stream topic (lmthing.workflows.events.EVENTS_TOPIC; activities do not import workflows).
EVENTS_TOPIC = "events"


class StreamingSink:
    """Holds text deltas as stream events (step, attempt, seq) until the next batch, and
    heartbeats. Holding them here, not in the stream client's buffer, keeps batches to one
    per interval: the client's ``flush()`` also sends whatever arrives while it is sending."""

    def __init__(self, step: int) -> None:
        self._step = step
        self._attempt = activity.info().attempt
        self._seq = 0
        self._held: list[StreamEvent] = []
        # Set when a batch should go out now rather than at the next interval.
        self.wake = asyncio.Event()

    def text(self, delta: str) -> None:
        if not delta:
            return
        self._held.append(StreamEvent(type="text_delta", step=self._step, attempt=self._attempt, seq=self._seq, text=delta))
        if self._seq == 0:
            self.wake.set()  # the first delta goes out at once (time to first token)
        self._seq += 1
        activity.heartbeat()

    def take(self) -> list[StreamEvent]:
        held, self._held = self._held, []
        return held


async def _send(stream: WorkflowStreamClient, events: list[StreamEvent]) -> None:
    """One batch: one signal to the workflow (one history event)."""
    if not events:
        return
    topic = stream.topic(EVENTS_TOPIC, type=StreamEvent)
    for event in events:
        topic.publish(event)
    await stream.flush()


async def _flush_every(stream: WorkflowStreamClient, sink: StreamingSink, interval: float) -> None:
    """Send held deltas every ``interval`` seconds, or at once when woken.

    Our own loop rather than the stream client's context manager: its flusher waits with
    ``asyncio.wait_for``, which on Python 3.11 can swallow the cancellation sent when a short
    reply ends right after the first delta, and the model call then never returns.
    ``asyncio.wait`` has no such race."""
    while True:
        waiter = asyncio.ensure_future(sink.wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=interval)
        finally:
            waiter.cancel()
        sink.wake.clear()
        await _send(stream, sink.take())


@contextlib.asynccontextmanager
async def _sink_for(request: ModelRequest) -> AsyncIterator[StreamSink]:
    if request.stream_batch_ms is None:
        yield NullSink()
        return
    stream = WorkflowStreamClient.from_within_activity()
    sink = StreamingSink(request.step)
    flusher = asyncio.create_task(_flush_every(stream, sink, request.stream_batch_ms / 1000))
    try:
        yield sink
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        try:
            await _send(stream, sink.take())  # what is left
            await stream.flush()  # and anything a cancelled batch left pending, confirmed by the server
        except RPCError as err:
            # The run closed while its model call streamed (it was cancelled: a parallel
            # group's loser, a timeout): nobody is left to read the text.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise


def _chat_span(request: ModelRequest) -> tuple[str, dict[str, object]]:
    """GenAI ``chat <model>`` span name and request attributes (before the call, so a
    misconfigured model still gets a span that says what was asked for)."""
    if not tracing.tracing_enabled():
        return "", {}
    try:
        provider, model_id = resolve_model_spec(request.model)
    except ModelConfigError:
        provider, model_id = None, request.model
    return f"chat {model_id}", tracing.chat_attributes(request, provider, model_id)



class ModelActivities:
    """Holds the worker's provider registry; ``model_call`` is the activity."""

    def __init__(self, registry: ProviderRegistry, caches: ToolCaches | None = None) -> None:
        self.registry = registry
        # def_cache(..., model_calls=True): replies kept in the memory store (docs/memory.md).
        self.caches = caches
        # The last request sent for each run, so a call can send only what is new.
        self.requests = RequestCache()

    @activity.defn(name=MODEL_CALL)
    async def model_call(self, request: ModelRequest) -> ModelResponse:
        info = activity.info()
        step_token = current_step.set(request.step)
        start = time.perf_counter()
        response: ModelResponse | None = None
        failure: BaseException | None = None
        try:
            request = await resolve(request, self.requests)
            if request.summarize is not None:  # a def_context summary call (docs/context.md)
                request = summary_request(request)
            with tracing.span(*_chat_span(request), kind=tracing.SpanKind.CLIENT) as span:
                response = await self._model_call(request)
                tracing.record_chat_response(span, response)
            return response
        except BaseException as err:
            failure = err
            raise
        finally:
            current_step.reset(step_token)
            outcome = "cancelled" if isinstance(failure, asyncio.CancelledError) else metrics.outcome_of(failure)
            metrics.record_model_call(
                prompt=info.workflow_type or "", model=request.model, outcome=outcome,
                seconds=time.perf_counter() - start, attempt=info.attempt, response=response,
            )

    async def _model_call(self, request: ModelRequest) -> ModelResponse:
        heartbeats = asyncio.create_task(heartbeat_forever())
        try:
            provider, model_id = self.registry.resolve(request.model)
            if request.cache is not None:
                cached = await self._cached(request)
                if cached is not None:
                    return cached
            if request.rate_limit:
                await wait_for_slot(request.rate_limit)
            async with _sink_for(request) as sink:
                response = await guarded(
                    request.circuit_breaker, lambda: provider.complete(model_id, request, sink),
                    # A permanent error (bad key, unknown model, invalid request) is the
                    # caller's, not the provider being down: no verdict.
                    counts=lambda err: err.retryable if isinstance(err, ModelCallError) else not isinstance(err, ModelConfigError),
                )
            _check_reply_size(response)
            if request.budget_root:  # heartbeating still: the budget's run may take a while to answer
                response.budget = await report_spend(request.budget_root, response.usage, response.cost_usd)
            if request.cache is not None and self.caches is not None:
                await classified(lambda: self.caches.keep(CacheRef.model_validate(request.cache),  # type: ignore[union-attr]
                                                          response.model_dump(mode="json", exclude={"budget"})))
        except ModelConfigError as err:
            # Configuration does not fix itself between attempts: fail fast.
            raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from None
        except ModelCallError as err:
            raise provider_failure(err) from None
        finally:
            heartbeats.cancel()
        return response


    async def _cached(self, request: ModelRequest) -> ModelResponse | None:
        """The reply a def_cache holds for this request, marked cached and costing nothing."""
        if self.caches is None:
            raise ApplicationError("This model call is cached (def_cache(..., model_calls=True)) but the worker has no "
                                   "memory store", type="MemoryStoreError", non_retryable=True)
        caches = self.caches
        found, value = await classified(lambda: caches.lookup(CacheRef.model_validate(request.cache)))
        if not found:
            return None
        return ModelResponse.model_validate(value).model_copy(update={"cached": True, "usage": Usage(), "cost_usd": 0.0})


def _check_reply_size(response: ModelResponse) -> None:
    size = len(to_json(response))
    check_size(size, "ModelReplyTooLarge", lambda limit: (
        f"The model's reply is {size} bytes; replies over {limit} bytes do not fit a Temporal "
        "payload. Lower max_output_tokens, or have the model write large output through a tool"
    ))
