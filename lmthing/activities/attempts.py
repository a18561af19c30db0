"""A tool's attempts, counted by the activity so that dead workers do not use them up.

Temporal counts every attempt against a retry policy's maximum_attempts, whatever ended
it: a tool that raised, and a worker that was killed mid-call alike. Under repeated worker
crashes a tool with 3 attempts then becomes a tool error after three crashes, though the
tool never failed. So when a tool has heartbeats (its default), lmthing's activity:

- heartbeats while the tool runs, every third of the heartbeat timeout (the first after one
  third: a quick tool sends none), so a dead worker is noticed within that timeout rather
  than the whole start-to-close timeout;
- keeps, in the heartbeat details (which Temporal hands to the next attempt), how many
  attempts *failed*: the tool raised, or the attempt ran out its start-to-close timeout
  (its last heartbeat came after most of that time);
- lets Temporal retry a lost attempt (the workflow gives Temporal LOST_ATTEMPTS_ALLOWANCE
  more attempts than the tool's own), and fails the call for good, non-retryable, when the
  tool's own failures reach its maximum_attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.prompt.tools import ATTEMPTS_USED_MARK

T = TypeVar("T")
_KEY = "lmthing_attempts"


class AttemptLedger:
    """The failures of earlier attempts of this activity, and heartbeats for this one."""

    def __init__(self, max_attempts: int | None) -> None:
        info = activity.info()
        self.max_attempts = max_attempts
        self.attempt = info.attempt
        self.interval = info.heartbeat_timeout.total_seconds() / 3 if info.heartbeat_timeout else None
        self.started = time.monotonic()
        prior = _prior(info.heartbeat_details)
        self.failures = int(prior.get("failures", 0))
        # The previous attempt heartbeated until nearly its start-to-close timeout and did not
        # record a failure: it timed out, which counts (a dead worker stops heartbeating early).
        budget = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
        if (prior and not prior.get("failed") and prior.get("attempt") == self.attempt - 1 and budget
                and self.interval and float(prior.get("elapsed", 0)) >= budget - 2 * self.interval):
            self.failures += 1
            self.timed_out_before = True
        else:
            self.timed_out_before = False

    @property
    def counting(self) -> bool:
        return bool(self.max_attempts) and self.interval is not None

    def check_left(self, tool: str) -> None:
        """Fail at once when an earlier attempt's timeout was the last one the tool had."""
        if self.counting and self.failures >= self.max_attempts:  # type: ignore[operator]
            raise ApplicationError(
                f"Tool '{tool}' used its {self.failures} attempt(s), the last one running out its start-to-close "
                "timeout; raise timeout= or make the tool faster",
                type="ToolTimedOut", non_retryable=True,
            )

    def _details(self, failed: bool = False) -> dict[str, Any]:
        return {_KEY: {"failures": self.failures, "attempt": self.attempt, "failed": failed,
                       "elapsed": round(time.monotonic() - self.started, 3)}}

    async def run(self, work: Awaitable[T]) -> T:
        """Await ``work`` while heartbeating (when the tool has a heartbeat timeout)."""
        if self.interval is None:
            return await work
        beating = asyncio.create_task(self._beat())
        try:
            return await work
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _beat(self) -> None:
        # The first beat after one interval: a tool that is done by then costs no heartbeat.
        while True:
            await asyncio.sleep(self.interval)  # type: ignore[arg-type]
            activity.heartbeat(self._details())

    def failed(self, err: BaseException) -> BaseException:
        """The error to raise for a tool that raised ``err``: retried while the tool has
        attempts left, non-retryable (same message and type) on its last one."""
        if not self.counting or isinstance(err, asyncio.CancelledError):
            return err
        if isinstance(err, ApplicationError) and err.non_retryable:
            return err
        self.failures += 1
        activity.heartbeat(self._details(failed=True))  # handed to the next attempt
        if self.failures < self.max_attempts:  # type: ignore[operator]
            return err
        kind = err.type if isinstance(err, ApplicationError) and err.type else type(err).__name__
        return ApplicationError(getattr(err, "message", None) or str(err) or kind, ATTEMPTS_USED_MARK, type=kind,
                                non_retryable=True)


def _prior(details: Any) -> dict[str, Any]:
    for item in details or ():
        if isinstance(item, dict) and isinstance(item.get(_KEY), dict):
            return item[_KEY]
    return {}
