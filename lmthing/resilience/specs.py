"""What ``def_retry`` and ``def_fallback`` define, as data a run config can carry.

A sub-agent runs in a child workflow, where its parent's definitions do not exist; so a
retry policy or a model cascade named on ``def_agent(retry=..., fallback=...)`` is resolved
in the parent and travels to the child as a :class:`ModelPolicy` in its run config. The
same field of the run config lets a client give a run a policy without code.

Delays are seconds (floats): they are written in prompt functions and JSON run configs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backoff = Literal["exponential", "linear", "constant"]


class ResilienceError(ValueError):
    """A resilience definition that cannot work; the message names the fix."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Spec):
    """A named retry policy (``def_retry``).

    ``retryable_errors``: only errors of these types are retried (None: every error but
    those in ``non_retryable_errors``). A type is an exception's class name as Temporal
    records it (``ConnectionError``, ``ReadTimeout``, an ``ApplicationError``'s ``type``).
    """

    name: str
    max_attempts: int = Field(default=3, ge=1)
    backoff: Backoff = "exponential"
    base_delay: float = Field(default=1.0, gt=0)
    max_delay: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: bool = False
    retryable_errors: tuple[str, ...] | None = None
    non_retryable_errors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _delays(self) -> RetrySpec:
        if self.max_delay < self.base_delay:
            raise ValueError(f"max_delay ({self.max_delay} s) is shorter than base_delay ({self.base_delay} s); raise max_delay")
        if self.retryable_errors is not None and not self.retryable_errors:
            raise ValueError("retryable_errors=[] would retry nothing; leave it out (retry every error) or name the types")
        return self

    @property
    def temporal_native(self) -> bool:
        """Whether Temporal's own retry policy expresses this one (exponential or constant
        backoff, no jitter, no allow-list); else the workflow runs the attempts itself,
        one activity each, with a durable timer between them."""
        return self.backoff != "linear" and not self.jitter and self.retryable_errors is None

    @property
    def coefficient(self) -> float:
        return 1.0 if self.backoff == "constant" else self.multiplier

    def delay(self, failed_attempts: int, random: float = 0.5) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) failures; ``random`` in [0, 1)
        spreads it by up to +-50% with jitter (the workflow passes its deterministic random)."""
        if self.backoff == "constant":
            base = self.base_delay
        elif self.backoff == "linear":
            base = self.base_delay * failed_attempts
        else:
            base = self.base_delay * self.multiplier ** (failed_attempts - 1)
        base = min(base, self.max_delay)
        return min(base * (0.5 + random), self.max_delay) if self.jitter else base

    def retries(self, error_type: str) -> bool:
        """Whether an error of ``error_type`` is retried under this policy."""
        if error_type in self.non_retryable_errors:
            return False
        return self.retryable_errors is None or error_type in self.retryable_errors


class ModelChoice(_Spec):
    """One model of a cascade, with the retry policy and circuit breaker its calls use."""

    model: str
    retry: RetrySpec | None = None
    circuit_breaker: str | None = None


class ModelPolicy(_Spec):
    """How a run calls its model: the cascade (first to last; one entry: no fallback), the
    pause between two models of the cascade, and the fallback's name (for step records)."""

    cascade: tuple[ModelChoice, ...] = ()
    retry_delay: float = Field(default=0.0, ge=0)
    fallback: str | None = None
    retry: RetrySpec | None = None


class ToolFallbackSpec(_Spec):
    """A tool fallback: ``alternative`` (other tools, by the tool they stand in for) or
    ``default`` (a value the failed call returns instead)."""

    name: str
    strategy: Literal["alternative", "default"]
    alternatives: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    default_value: Any = None
    log_error: bool = True


def as_seconds(what: str, value: Any) -> float:
    """Seconds from a number or a timedelta, for error messages that name ``what``."""
    from datetime import timedelta

    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResilienceError(f"{what} is seconds (a number or a timedelta); got {value!r}")
    return float(value)
