"""Named retry policies (``def_retry``) on activities, and the model cascade (``def_fallback``
with ``"cascade"``), workflow side.

A policy Temporal can express (exponential or constant backoff, no jitter, no allow-list of
error types) becomes the activity's own retry policy: one activity, its attempts in the
server. Any other (linear backoff, jitter, ``retryable_errors``) is run here: one activity
per attempt (``maximum_attempts=1``), the error's type decides, and a durable timer waits
between attempts, with jitter from the workflow's deterministic random. Either way each
attempt shows in the run's history.

An attempt whose worker died (its heartbeats stopped: a heartbeat timeout) did not fail: it
is made again at once and not counted, up to LOST_ATTEMPTS_ALLOWANCE times, as Temporal's
own retries of a tool do (activities/attempts.py). Otherwise a crash during a model call
under such a policy would count as the model failing, and a cascade would move on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutError as TemporalTimeout,
    TimeoutType,
    is_cancelled_exception,
)

from lmthing.prompt.tools import ATTEMPTS_USED_MARK, LOST_ATTEMPTS_ALLOWANCE, RetryOptions
from lmthing.resilience.specs import RetrySpec

T = TypeVar("T")


def retry_options(spec: RetrySpec) -> RetryOptions:
    """The policy of one activity for ``spec``: all its attempts when Temporal can run
    them, else one (the workflow runs the others, :func:`with_retries`)."""
    if not spec.temporal_native:
        return RetryOptions(maximum_attempts=1)
    return RetryOptions(
        initial_interval=timedelta(seconds=spec.base_delay),
        backoff_coefficient=spec.coefficient,
        maximum_interval=timedelta(seconds=spec.max_delay),
        maximum_attempts=spec.max_attempts,
        non_retryable_error_types=spec.non_retryable_errors,
    )


def retry_policy(spec: RetrySpec | None, default: RetryPolicy) -> RetryPolicy:
    """The Temporal retry policy of a model call under ``spec`` (``default`` without one)."""
    if spec is None:
        return default
    o = retry_options(spec)
    return RetryPolicy(initial_interval=o.initial_interval, backoff_coefficient=o.backoff_coefficient,
                       maximum_interval=o.maximum_interval, maximum_attempts=o.maximum_attempts,
                       non_retryable_error_types=list(o.non_retryable_error_types))


def failure_type(err: BaseException) -> str:
    """The type a retry policy matches: an application error's ``type``, ``TimeoutError``
    for a timeout, else the class name."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return cause.type or "Error"
    if isinstance(cause, TemporalTimeout):
        return "TimeoutError"
    return type(cause).__name__ if cause is not None else type(err).__name__


def _worker_died(err: ActivityError) -> bool:
    """The attempt's heartbeats stopped: its worker died (lmthing's activities heartbeat
    from a task of their own, so a live one does not miss them)."""
    return isinstance(err.cause, TemporalTimeout) and err.cause.type == TimeoutType.HEARTBEAT


def _non_retryable(err: BaseException) -> bool:
    """Whether the error says retrying cannot help (a tool activity whose own attempts ran
    out marks its error: the error itself was retryable)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return isinstance(cause, ApplicationError) and cause.non_retryable and ATTEMPTS_USED_MARK not in cause.details


async def with_retries(spec: RetrySpec | None, attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()`` (one activity) under ``spec``: once when Temporal runs the retries,
    else up to ``spec.max_attempts`` times, waiting ``spec.delay`` between them."""
    if spec is None or spec.temporal_native:
        return await attempt()
    failed = lost = 0
    while True:
        try:
            return await attempt()
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            if _worker_died(err) and lost < LOST_ATTEMPTS_ALLOWANCE:
                lost += 1
                workflow.logger.warning("retry %s: an attempt was lost with its worker (heartbeat timeout); "
                                        "making it again, uncounted (%d of %d)", spec.name, lost, LOST_ATTEMPTS_ALLOWANCE)
                continue
            failed += 1
            if failed >= spec.max_attempts or _non_retryable(err) or not spec.retries(failure_type(err)):
                raise
            await workflow.sleep(timedelta(seconds=spec.delay(failed, workflow.random().random())),
                                 summary=f"retry {spec.name}: attempt {failed + 1} of {spec.max_attempts}")
