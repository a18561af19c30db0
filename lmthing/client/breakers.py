"""Caller edge of circuit breakers (docs/circuit-breakers.md): read one breaker, list them
all, reset one. ``lmthing breakers`` is a thin layer over these."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from lmthing.activities.breakers import breaker_id, state_of
from lmthing.activities.names import BREAKER_ID_PREFIX, BREAKER_WORKFLOW
from lmthing.resilience.breaker import BreakerSnapshot


class UnknownBreaker(LookupError):
    """No call has used a breaker of that name yet (it has no workflow)."""


async def breaker_state(client: Client, name: str) -> BreakerSnapshot | None:
    """The breaker's state (query ``state``); None when no call has used it yet."""
    return await state_of(client, name)


async def list_breakers(client: Client) -> list[BreakerSnapshot]:
    """Every breaker that has been used (a running ``lmthing.circuit_breaker`` workflow), by name."""
    names = []
    async for wf in client.list_workflows(f"WorkflowType = '{BREAKER_WORKFLOW}' AND ExecutionStatus = 'Running'"):
        if wf.id.startswith(BREAKER_ID_PREFIX):
            names.append(wf.id.removeprefix(BREAKER_ID_PREFIX))
    found = [await state_of(client, n) for n in sorted(set(names))]
    return [s for s in found if s is not None]


async def reset_breaker(client: Client, name: str) -> BreakerSnapshot:
    """Close the breaker now (update ``reset``: no failures, no permits; kept in its history)."""
    try:
        return await client.get_workflow_handle(breaker_id(name)).execute_update("reset", None, result_type=BreakerSnapshot)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise UnknownBreaker(f"No circuit breaker {name!r}: no call has used it yet (`lmthing breakers` lists them)") from None
        raise
