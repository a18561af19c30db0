"""The circuit breaker as a pure state machine (``def_circuit_breaker``, docs/circuit-breakers.md).

States and transitions, every one evaluated at a time the caller gives (``now``, seconds
since the epoch: the breaker workflow passes ``workflow.now()``, so replay takes the same
decisions):

- **closed**: every call gets a permit. A failed call adds one to the consecutive
  failures, a successful one sets them back to 0; ``failure_threshold`` consecutive
  failures open the breaker.
- **open**: every call is refused (it fails fast, the dependency is not called) until
  ``reset_timeout_seconds`` have passed since it opened; the first call after that turns it
  **half-open** (no timer: the transition is taken by the next ``acquire``).
- **half-open**: ``half_open_requests`` calls get a *probe* permit, the others are refused.
  The breaker closes when all of them succeeded; the first probe that fails opens it again
  (for another ``reset_timeout_seconds``).

Every permit has a lease (the caller's timeout): a permit whose holder died (a SIGKILLed
worker never reports) is dropped when its lease ends, and its slot is free again, without a
verdict (it is neither a success nor a failure). A report for a permit the breaker no longer
holds (expired, or handed out before the breaker opened or was reset) changes nothing.
Asking again with the key of a permit one holds (the retry of the same activity) renews it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BreakerStateName = Literal["closed", "open", "half_open"]
# In the order of the metric's values: lmthing_circuit_breaker_state is 0, 1 or 2.
BREAKER_STATES: tuple[BreakerStateName, ...] = ("closed", "half_open", "open")
# Breaker names become workflow ids (lmthing-breaker:<name>).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
# What a snapshot keeps of the last failure's message.
MAX_ERROR_CHARS = 300


def check_breaker_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"circuit breaker name {name!r} is not valid: use 1-200 letters, digits and . _ : / - (starting with a "
            "letter or digit); it becomes part of a workflow id (lmthing-breaker:<name>)"
        )
    return name


def _check_config(failure_threshold: Any, reset_timeout_seconds: Any, half_open_requests: Any, who: str) -> None:
    for field, value in (("failure_threshold", failure_threshold), ("half_open_requests", half_open_requests)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{who}: {field} must be a whole number >= 1, got {value!r}; e.g. {field}=5")
    if isinstance(reset_timeout_seconds, bool) or not isinstance(reset_timeout_seconds, (int, float)) or not (
        reset_timeout_seconds > 0 and reset_timeout_seconds != float("inf")
    ):
        raise ValueError(
            f"{who}: reset_timeout must be a positive number of seconds (or a timedelta), got {reset_timeout_seconds!r}; "
            "e.g. reset_timeout=60"
        )


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # an older worker reads a newer payload


class BreakerConfig(_Model):
    """``failure_threshold`` consecutive failures open the breaker; after
    ``reset_timeout_seconds`` it half-opens and lets ``half_open_requests`` probe calls through."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    failure_threshold: int = 5
    reset_timeout_seconds: float = 60.0
    half_open_requests: int = 1

    @model_validator(mode="after")
    def _valid(self) -> BreakerConfig:
        _check_config(self.failure_threshold, self.reset_timeout_seconds, self.half_open_requests, "BreakerConfig")
        return self

    @classmethod
    def of(cls, name: str, failure_threshold: Any = 5, reset_timeout: Any = 60.0, half_open_requests: Any = 1) -> BreakerConfig:
        """A config from ``def_circuit_breaker``'s arguments (``reset_timeout``: seconds or a
        timedelta); a ValueError that names the argument and the fix."""
        who = f"def_circuit_breaker({name!r})"
        seconds = reset_timeout.total_seconds() if isinstance(reset_timeout, timedelta) else reset_timeout
        _check_config(failure_threshold, seconds, half_open_requests, who)
        return cls(failure_threshold=failure_threshold, reset_timeout_seconds=float(seconds), half_open_requests=half_open_requests)


class CircuitBreakerRef(_Model):
    """What a call guarded by a breaker carries to its activity (``ToolActivityInput`` /
    ``ModelRequest.circuit_breaker``): the breaker, its config, and the task queue of the
    workers that run the breaker's workflow (the caller's workflow task queue)."""

    name: str
    config: BreakerConfig = Field(default_factory=BreakerConfig)
    task_queue: str | None = None


class Permit(_Model):
    key: str
    probe: bool = False
    granted_at: float
    expires_at: float


class BreakerDecision(_Model):
    """The answer to ``acquire``: allowed (with the permit's key) or refused (``reason``)."""

    allowed: bool
    name: str
    state: BreakerStateName
    permit: str | None = None
    probe: bool = False
    # While open: when the next call may half-open it (seconds since the epoch).
    half_open_at: float | None = None
    reason: str = ""


class BreakerTotals(_Model):
    allowed: int = 0
    refused: int = 0
    successes: int = 0
    failures: int = 0
    opened: int = 0
    # Reports for permits the breaker no longer held (expired, or from before it opened).
    stale_reports: int = 0
    expired_permits: int = 0
    # Permits given back with no verdict (a cancelled call).
    released: int = 0


class BreakerSnapshot(_Model):
    """A breaker's whole state: the ``state`` query's answer and the workflow's carry
    across continue-as-new."""

    name: str
    config: BreakerConfig = Field(default_factory=BreakerConfig)
    state: BreakerStateName = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    changed_at: float | None = None
    probe_successes: int = 0
    permits: list[Permit] = Field(default_factory=list)
    last_failure: str | None = None
    totals: BreakerTotals = Field(default_factory=BreakerTotals)
    # Events (updates) per run before the workflow continues as new.
    events_per_run: int = 2_000

    @property
    def half_open_at(self) -> float | None:
        return None if self.state != "open" or self.opened_at is None else self.opened_at + self.config.reset_timeout_seconds

    @property
    def state_value(self) -> int:
        return BREAKER_STATES.index(self.state)


def iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BreakerMachine:
    """The transitions of one breaker, over a :class:`BreakerSnapshot` it owns."""

    def __init__(self, snapshot: BreakerSnapshot) -> None:
        self.s = snapshot.model_copy(deep=True)

    # ------------------------------------------------------------------ permits
    def acquire(self, key: str, now: float, lease_seconds: float, config: BreakerConfig | None = None) -> BreakerDecision:
        """A permit for the call ``key`` (e.g. run id + activity id), held for at most
        ``lease_seconds``; or a refusal that says why and until when."""
        s = self.s
        if config is not None and config != s.config:
            s.config = config  # the newest caller's config applies (one name, one config: docs)
        self._expire(now)
        if s.state == "open" and now >= s.half_open_at:  # type: ignore[operator]
            self._move("half_open", now)
            s.probe_successes = 0
        held = next((p for p in s.permits if p.key == key), None)
        if held is not None:  # the same call again (a retried attempt): its permit, renewed
            held.expires_at = now + lease_seconds
            s.totals.allowed += 1
            return BreakerDecision(allowed=True, name=s.name, state=s.state, permit=key, probe=held.probe)
        if s.state == "closed":
            return self._grant(key, now, lease_seconds, probe=False)
        if s.state == "half_open":
            if len(s.permits) + s.probe_successes < s.config.half_open_requests:
                return self._grant(key, now, lease_seconds, probe=True)
            s.totals.refused += 1
            until = max(p.expires_at for p in s.permits) if s.permits else now
            return BreakerDecision(
                allowed=False, name=s.name, state=s.state, reason=(
                    f"Circuit breaker '{s.name}' is half-open: its {s.config.half_open_requests} probe call(s) are "
                    f"under way (leases end by {iso(until)}); other calls fail fast until the probes succeed (it "
                    "closes) or one fails (it opens again)"
                ),
            )
        s.totals.refused += 1
        when = s.half_open_at
        return BreakerDecision(
            allowed=False, name=s.name, state=s.state, half_open_at=when, reason=(
                f"Circuit breaker '{s.name}' is open after {s.consecutive_failures} consecutive failure(s)"
                + (f" (last: {s.last_failure})" if s.last_failure else "")
                + f"; calls fail fast without reaching the dependency until it half-opens at {iso(when)} "
                f"(in {max(0.0, (when or now) - now):.1f} s)"
            ),
        )

    def refusal(self, key: str, now: float) -> BreakerDecision | None:
        """What :meth:`acquire` would refuse, without changing anything (the breaker
        workflow's update validator: a refused call then leaves no event in its history)."""
        trial = BreakerMachine(self.s)
        decision = trial.acquire(key, now, 0.0)
        return None if decision.allowed else decision

    def record(self, key: str, ok: bool | None, now: float, error: str | None = None) -> BreakerSnapshot:
        """The outcome of the call that holds permit ``key``: ``True`` a success, ``False`` a
        failure, ``None`` no verdict (the call was cancelled: its permit is released). A
        report for a permit the breaker no longer holds changes nothing (counted as stale)."""
        s = self.s
        self._expire(now)
        held = next((p for p in s.permits if p.key == key), None)
        if held is None:
            s.totals.stale_reports += 1
            return self.snapshot()
        s.permits.remove(held)
        if ok is None:
            s.totals.released += 1
            return self.snapshot()
        if ok:
            s.totals.successes += 1
        else:
            s.totals.failures += 1
            s.last_failure = (error or "failed")[:MAX_ERROR_CHARS]
        if held.probe:
            if not ok:
                self._open(now)
            else:
                s.probe_successes += 1
                if s.probe_successes >= s.config.half_open_requests:
                    self._close(now)
        elif ok:
            s.consecutive_failures = 0
        else:
            s.consecutive_failures += 1
            if s.consecutive_failures >= s.config.failure_threshold:
                self._open(now)
        return self.snapshot()

    def reset(self, now: float) -> BreakerSnapshot:
        """Closed, no failures, no permits (``lmthing breakers NAME --reset``)."""
        self._close(now)
        return self.snapshot()

    def snapshot(self) -> BreakerSnapshot:
        return self.s.model_copy(deep=True)

    # ------------------------------------------------------------------ transitions
    def _grant(self, key: str, now: float, lease_seconds: float, *, probe: bool) -> BreakerDecision:
        s = self.s
        s.permits.append(Permit(key=key, probe=probe, granted_at=now, expires_at=now + lease_seconds))
        s.totals.allowed += 1
        return BreakerDecision(allowed=True, name=s.name, state=s.state, permit=key, probe=probe)

    def _expire(self, now: float) -> None:
        kept = [p for p in self.s.permits if p.expires_at > now]
        self.s.totals.expired_permits += len(self.s.permits) - len(kept)
        self.s.permits = kept

    def _move(self, state: BreakerStateName, now: float) -> None:
        self.s.state = state
        self.s.changed_at = now

    def _open(self, now: float) -> None:
        self._move("open", now)
        self.s.opened_at = now
        self.s.permits = []  # what they report later is stale
        self.s.probe_successes = 0
        self.s.totals.opened += 1

    def _close(self, now: float) -> None:
        self._move("closed", now)
        self.s.opened_at = None
        self.s.consecutive_failures = 0
        self.s.probe_successes = 0
        self.s.permits = []
