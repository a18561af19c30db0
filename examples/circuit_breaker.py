"""A circuit breaker in front of a failing service, offline on a scripted model.

    lmthing run examples/circuit_breaker.py

The quote service is down (the tool raises). The breaker ``quotes`` opens after two failed
attempts (one per model step); the model's third call fails fast (``CircuitOpen``) without calling the service,
and the model reads why. ``lmthing breakers quotes`` shows the state while a dev server runs
(``lmthing dev --app examples/circuit_breaker.py``). See docs/circuit-breakers.md.
"""

from __future__ import annotations

from datetime import timedelta

from lmthing import RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

CALLS = {"service": 0}  # how many calls reached the service (the tool runs on the worker)


@tool(retry=RetryOptions(maximum_attempts=1))
async def quote(symbol: str) -> dict:
    """Get a stock quote from the quote service."""
    CALLS["service"] += 1
    raise RuntimeError(f"quote service unavailable (call {CALLS['service']})")


def _answer(request) -> object:
    errors = [m.content for m in request.messages if m.role == "tool"]
    return text("The quote service is down. Last error: " + errors[-1])


@prompt(model=scripted_model("breaker-example", [
    tool_call("quote", {"symbol": "ACME"}),
    text("Trying again."), tool_call("quote", {"symbol": "ACME"}),
    text("Once more."), tool_call("quote", {"symbol": "ACME"}),
    _answer,
]))
def circuit_breaker(p):
    p.def_circuit_breaker("quotes", failure_threshold=2, reset_timeout=timedelta(seconds=30))
    p.def_tool(quote, circuit_breaker="quotes")
    p.user("What is ACME trading at?")
