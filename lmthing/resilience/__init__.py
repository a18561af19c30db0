"""Resilience, engine-neutral: the definitions of retry policies, fallbacks, guards,
validators and budgets (``p.def_retry``, ``p.def_fallback``, ``p.def_guard``,
``p.def_validator``, ``p.def_constraint``; docs/resilience.md), applied by the workflow
layer; and the circuit breaker's configuration and state machine (docs/circuit-breakers.md):
the breaker workflow (``lmthing.workflows.breaker_workflow``) holds a :class:`BreakerMachine`
as its state, the activities ask it for permits (``lmthing.activities.breakers``)."""

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
