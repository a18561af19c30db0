"""Prompts and tools for tests/test_circuit_breakers.py: an @tool that calls a local HTTP
service (its URL in $LMTHING_TEST_PAYMENTS_URL, read at call time, so that a worker in a
subprocess finds it too) behind a def_circuit_breaker whose settings come with the run."""

from __future__ import annotations

import os
from datetime import timedelta

from temporalio import workflow

from lmthing import ActivityOptions, RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

URL_VAR = "LMTHING_TEST_PAYMENTS_URL"
TWO_QUICK_ATTEMPTS = RetryOptions(initial_interval=timedelta(milliseconds=100), maximum_interval=timedelta(seconds=1),
                                  maximum_attempts=2)


async def _post(path: str, order: str) -> dict:
    import aiohttp  # here: the workflow sandbox re-imports this module, and needs no HTTP client

    async with aiohttp.ClientSession() as session:
        async with session.post(os.environ[URL_VAR] + path, json={"order": order}) as reply:
            if reply.status >= 400:
                raise RuntimeError(f"payment service answered {reply.status}")
            return await reply.json()


@tool(retry=TWO_QUICK_ATTEMPTS, timeout=timedelta(seconds=10))
async def charge(order: str) -> dict:
    """Charge an order at the payment service."""
    return await _post("/charge", order)


# A slow call (the service holds it), a 4 s timeout (the permit's lease: 4 s + grace) and a
# 1 s heartbeat timeout, for the test that kills the worker holding a probe.
@tool(options=ActivityOptions(start_to_close_timeout=timedelta(seconds=4), heartbeat_timeout=timedelta(seconds=1),
                              retry=RetryOptions(initial_interval=timedelta(milliseconds=100), maximum_attempts=1)))
async def slow_charge(order: str) -> dict:
    """Charge an order at the payment service (slowly)."""
    return await _post("/charge", order)


def _tool_said(request) -> object:
    """The model answers with what the tool returned (the tool message it was shown)."""
    return text(next((m.content or "" for m in reversed(request.messages) if m.role == "tool"), ""))


def _breaker(p, args: dict) -> None:
    p.def_circuit_breaker(args["breaker"], failure_threshold=args.get("threshold", 5),
                          reset_timeout=args.get("reset", 5.0), half_open_requests=args.get("half_open", 1))


@prompt(model=scripted_model("breaker-pays", [tool_call("charge", {"order": "o-1"}), _tool_said]))
def pays(p, args: dict):
    _breaker(p, args)
    p.def_tool(charge, circuit_breaker=args["breaker"])
    p.user("Charge order o-1")


@prompt(model=scripted_model("breaker-pays-slowly", [tool_call("slow_charge", {"order": "o-2"}), _tool_said]))
def pays_slowly(p, args: dict):
    _breaker(p, args)
    p.def_tool(slow_charge, circuit_breaker=args["breaker"])
    p.user("Charge order o-2")


@workflow.defn(name="breaker_model_probe")
class ModelBehindBreaker:
    """One model call (``lmthing.model_call``, one attempt) with ``ModelRequest.circuit_breaker``
    set, as a fallback chain on the workflow side would send it; returns the reply's text or
    the error's type and message."""

    @workflow.run
    async def run(self, request: dict) -> dict:
        from temporalio.common import RetryPolicy
        from temporalio.exceptions import ActivityError

        from lmthing.prompt.types import ModelRequest, ModelResponse

        try:
            reply = await workflow.execute_activity(
                "lmthing.model_call", ModelRequest.model_validate(request), result_type=ModelResponse,
                start_to_close_timeout=timedelta(seconds=20), retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            return {"error_type": getattr(cause, "type", None), "error": getattr(cause, "message", str(cause))}
        return {"text": reply.text}
