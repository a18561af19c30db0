"""Circuit breakers, activity side (docs/circuit-breakers.md): :func:`guarded` runs one call
attempt of a tool or a model behind its breaker.

Before the call it asks the breaker's workflow (``lmthing-breaker:<name>``, update-with-start
with the worker's client: the breaker exists from its first use) for a permit. A refused
call fails fast with a non-retryable ``ApplicationError`` of type ``CircuitOpen`` that names
the breaker, its state and when it half-opens: nothing reaches the dependency. An allowed
call runs, and its outcome is reported (update ``record``): a failure, a success, or, for a
cancelled call, no verdict (its permit is given back). A permit's lease is the attempt's
timeout (plus ``LEASE_GRACE``): a worker killed while it holds one does not leave the
breaker stuck. The retry of the same activity asks with the same key and gets its permit
back.

The same functions serve the caller edge (``client/breakers.py``, with its own client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from lmthing.observability import metrics
from lmthing.resilience.breaker import BreakerDecision, BreakerSnapshot, CircuitBreakerRef, check_breaker_name

from .messaging import refusal_message, refusal_type, update_with_start
from .names import BREAKER_ID_PREFIX, BREAKER_WORKFLOW

log = logging.getLogger(__name__)
T = TypeVar("T")

CIRCUIT_OPEN = "CircuitOpen"
# A permit outlives its attempt's timeout by this much: the report of an attempt that ran
# out its time still finds its permit.
LEASE_GRACE = 2.0
# An attempt with no timeout at all (Temporal needs one of them; this is a fallback).
DEFAULT_LEASE = 300.0


def breaker_id(name: str) -> str:
    return BREAKER_ID_PREFIX + check_breaker_name(name)


def _start_args(ref: CircuitBreakerRef) -> list[Any]:
    return [BreakerSnapshot(name=ref.name, config=ref.config).model_dump(mode="json")]


async def acquire(client: Client, ref: CircuitBreakerRef, key: str, lease_seconds: float, task_queue: str) -> BreakerDecision:
    """A permit, or the refusal (``allowed=False``) the breaker's validator answered with."""
    try:
        return await update_with_start(
            client, "acquire", {"key": key, "lease_seconds": lease_seconds, "config": ref.config.model_dump(mode="json")},
            workflow_type=BREAKER_WORKFLOW, workflow_id=breaker_id(ref.name), start_args=_start_args(ref),
            task_queue=task_queue, result_type=BreakerDecision, summary=f"circuit breaker {ref.name}",
        )
    except WorkflowUpdateFailedError as err:
        if refusal_type(err) != CIRCUIT_OPEN:
            raise ApplicationError(f"Circuit breaker {ref.name!r} refused the call: {refusal_message(err)}",
                                   type=refusal_type(err) or "BreakerError", non_retryable=True) from None
        details = getattr(err.cause, "details", None) or ()
        if details and isinstance(details[0], dict):
            return BreakerDecision.model_validate(details[0])
        return BreakerDecision(allowed=False, name=ref.name, state="open", reason=refusal_message(err))


async def record(client: Client, ref: CircuitBreakerRef, key: str, ok: bool | None, task_queue: str,
                 error: str | None = None) -> BreakerSnapshot:
    return await update_with_start(
        client, "record", {"key": key, "ok": ok, "error": error}, workflow_type=BREAKER_WORKFLOW,
        workflow_id=breaker_id(ref.name), start_args=_start_args(ref), task_queue=task_queue, result_type=BreakerSnapshot,
        summary=f"circuit breaker {ref.name}",
    )


async def state_of(client: Client, name: str) -> BreakerSnapshot | None:
    """The breaker's state; None when no call has used it yet (no workflow)."""
    try:
        return await client.get_workflow_handle(breaker_id(name)).query("state", result_type=BreakerSnapshot)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def lease_for(info: activity.Info) -> float:
    """How long a permit of this attempt is held at most: the attempt's own timeout."""
    timeout = info.start_to_close_timeout or info.schedule_to_close_timeout
    return (timeout.total_seconds() if timeout else DEFAULT_LEASE) + LEASE_GRACE


def _error_text(err: BaseException) -> str:
    return f"{getattr(err, 'type', None) or type(err).__name__}: {getattr(err, 'message', None) or err}"


async def guarded(
    ref: CircuitBreakerRef | None, call: Callable[[], Awaitable[T]], *, counts: Callable[[BaseException], bool] = lambda _: True,
) -> T:
    """``await call()`` behind breaker ``ref`` (None: no breaker) in the running activity.
    ``counts(err)``: whether a call that raised ``err`` is a failure of the dependency
    (otherwise its permit is given back with no verdict)."""
    if ref is None:
        return await call()
    info = activity.info()
    client = activity.client()
    queue = ref.task_queue or info.task_queue
    key = f"{info.workflow_run_id or info.workflow_id}/{info.activity_id}"
    decision = await acquire(client, ref, key, lease_for(info), queue)
    metrics.record_breaker(ref.name, decision.state, fast_failed=not decision.allowed)
    if not decision.allowed:
        raise ApplicationError(decision.reason, decision.model_dump(mode="json"), type=CIRCUIT_OPEN, non_retryable=True)
    try:
        result = await call()
    except asyncio.CancelledError:
        details = activity.cancellation_details()
        timed_out = bool(details and details.timed_out)
        await _report(client, ref, key, False if timed_out else None, queue, "timed out" if timed_out else None)
        raise
    except BaseException as err:
        await _report(client, ref, key, False if counts(err) else None, queue, _error_text(err))
        raise
    await _report(client, ref, key, True, queue)
    return result


async def _report(client: Client, ref: CircuitBreakerRef, key: str, ok: bool | None, queue: str, error: str | None = None) -> None:
    """Report an outcome; a report that cannot be delivered is logged, never the call's
    failure (the permit's lease ends it)."""
    try:
        snapshot = await record(client, ref, key, ok, queue, error)
    except (Exception, asyncio.CancelledError) as err:  # noqa: BLE001
        log.warning("circuit breaker %r: could not report the outcome of %s: %s", ref.name, key, err)
        return
    metrics.record_breaker(ref.name, snapshot.state)
