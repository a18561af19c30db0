"""A circuit breaker as a workflow (``lmthing.circuit_breaker``, id ``lmthing-breaker:<name>``).

One per breaker name, shared by every run and every worker that calls the dependency behind
it (docs/circuit-breakers.md). Activities reach it with update-with-start (it exists from its
first use):

- update ``acquire`` ``{"key", "lease_seconds", "config"?}``: a permit for one call attempt
  (:class:`~lmthing.resilience.BreakerDecision`). A call the breaker refuses (open, or
  half-open with its probes under way) is refused by the update's *validator*, as an
  ``ApplicationError`` of type ``CircuitOpen`` whose details hold the decision: a refusal
  leaves no event in this history, so an outage does not fill it;
- update ``record`` ``{"key", "ok", "error"?}``: the outcome of the call holding a permit
  (``ok``: true, false, or null for no verdict: a cancelled call gives its permit back);
- update ``reset``: closed, no failures, no permits (``lmthing breakers NAME --reset``);
- query ``state``: the :class:`~lmthing.resilience.BreakerSnapshot`.

Time is ``workflow.now()``: an open breaker half-opens on the first ``acquire`` after its
reset timeout, with no timer. Its history is the breaker's audit trail (every permit and
outcome); it continues as new when Temporal suggests it, or after ``events_per_run`` events,
carrying the snapshot.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from lmthing.activities.names import BREAKER_WORKFLOW
from lmthing.resilience.breaker import BreakerConfig, BreakerDecision, BreakerMachine, BreakerSnapshot, iso

CIRCUIT_OPEN = "CircuitOpen"


def _now() -> float:
    return workflow.now().timestamp()


def _acquire_args(request: Any) -> tuple[str, float, BreakerConfig | None]:
    if not isinstance(request, dict) or not isinstance(request.get("key"), str) or not request["key"]:
        raise ApplicationError('acquire takes {"key": str, "lease_seconds": number, "config"?: {...}}',
                               type="InvalidBreakerCall", non_retryable=True)
    try:
        lease = float(request.get("lease_seconds", 60.0))
        config = None if request.get("config") is None else BreakerConfig.model_validate(request["config"])
    except (TypeError, ValueError) as err:
        raise ApplicationError(f"acquire: {err}", type="InvalidBreakerCall", non_retryable=True) from None
    if not lease > 0:
        raise ApplicationError(f"acquire: lease_seconds must be > 0, got {lease}", type="InvalidBreakerCall", non_retryable=True)
    return request["key"], lease, config


@workflow.defn(name=BREAKER_WORKFLOW)
class CircuitBreakerWorkflow:
    @workflow.init
    def __init__(self, carry: Any) -> None:
        self._machine = BreakerMachine(BreakerSnapshot.model_validate(carry))

    @workflow.run
    async def run(self, carry: Any) -> None:
        limit = self._machine.s.events_per_run
        await workflow.wait_condition(
            lambda: workflow.info().is_continue_as_new_suggested() or workflow.info().get_current_history_length() >= limit
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._machine.snapshot().model_dump(mode="json"))

    def _details(self) -> None:
        s = self._machine.s
        text = {"closed": f"closed ({s.consecutive_failures} consecutive failure(s))",
                "half_open": f"half-open ({len(s.permits)} probe(s) under way, {s.probe_successes} passed)",
                "open": f"open until {iso(s.half_open_at)}"}[s.state]
        workflow.set_current_details(f"circuit breaker {s.name}: {text}")

    # -------------------------------------------------------------------------- updates
    @workflow.update
    def acquire(self, request: Any) -> BreakerDecision:
        key, lease, config = _acquire_args(request)
        decision = self._machine.acquire(key, _now(), lease, config)
        self._details()
        return decision

    @acquire.validator
    def _check_acquire(self, request: Any) -> None:
        key, _, _ = _acquire_args(request)
        refused = self._machine.refusal(key, _now())
        if refused is not None:
            raise ApplicationError(refused.reason, refused.model_dump(mode="json"), type=CIRCUIT_OPEN, non_retryable=True)

    @workflow.update
    def record(self, outcome: Any) -> BreakerSnapshot:
        if not isinstance(outcome, dict) or not isinstance(outcome.get("key"), str):
            raise ApplicationError('record takes {"key": str, "ok": bool, "error"?: str}', type="InvalidBreakerCall",
                                   non_retryable=True)
        ok = outcome.get("ok")
        snapshot = self._machine.record(outcome["key"], None if ok is None else bool(ok), _now(), outcome.get("error"))
        self._details()
        return snapshot

    @workflow.update
    def reset(self, by: Any = None) -> BreakerSnapshot:
        snapshot = self._machine.reset(_now())
        self._details()
        return snapshot

    @workflow.query
    def state(self) -> BreakerSnapshot:
        return self._machine.snapshot()
