"""Finding what people are awaited for, across running workflows."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError

from lmthing.prompt.humans import PendingRequest

from .handle import get_handle

# The search attribute the workflow keeps true while anything is pending.
WAITING_QUERY = 'LmthingWaiting = true AND ExecutionStatus = "Running"'


@dataclass
class Waiting:
    workflow_id: str
    workflow_type: str
    request: PendingRequest


async def list_waiting(client: Client, limit: int = 200) -> list[Waiting]:
    """Every pending approval and question of the running workflows that wait on a person."""
    found: list[Waiting] = []
    async for execution in client.list_workflows(WAITING_QUERY, limit=limit):
        try:
            pending = await get_handle(client, execution.id).pending()
        except RPCError:
            continue  # finished between the listing and the query
        found += [Waiting(execution.id, execution.workflow_type, request) for request in pending]
    return found
