"""Resilience, engine-neutral: the circuit breaker's configuration and state machine
(docs/circuit-breakers.md). No Temporal here: the breaker workflow
(``lmthing.workflows.breaker_workflow``) holds a :class:`BreakerMachine` as its state, the
activities ask it for permits (``lmthing.activities.breakers``)."""

from .breaker import (
    BREAKER_STATES,
    BreakerConfig,
    BreakerDecision,
    BreakerMachine,
    BreakerSnapshot,
    CircuitBreakerRef,
    Permit,
    check_breaker_name,
)

__all__ = [
    "BREAKER_STATES", "BreakerConfig", "BreakerDecision", "BreakerMachine", "BreakerSnapshot", "CircuitBreakerRef",
    "Permit", "check_breaker_name",
]
