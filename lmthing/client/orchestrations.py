"""Starting and following standalone orchestrations (``def_workflow`` and its siblings)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from lmthing.workflows.config import RunConfig
from lmthing.workflows.orchestration import OrchestrationStatus, OrchestrationWorkflow

from .handle import DEFAULT_TASK_QUEUE
from .start import start_run


@dataclass
class OrchestrationHandle:
    """A running (or finished) standalone orchestration."""

    handle: WorkflowHandle[Any, Any]
    client: Client

    @property
    def id(self) -> str:
        return self.handle.id

    async def result(self) -> Any:
        """The orchestration's result (``WorkflowResult``, ``PipelineResult``, ``ParallelResult``
        or ``TeamResult``); a failure raises ``WorkflowFailureError`` naming the step."""
        return await self.handle.result()

    async def steps(self) -> list[dict[str, Any]]:
        """What ran so far: steps, stages, groups and team patterns, with ballots and winners."""
        return await self.handle.query("steps", result_type=list[dict[str, Any]])

    async def status(self) -> OrchestrationStatus:
        return await self.handle.query("status", result_type=OrchestrationStatus)

    async def cancel(self) -> None:
        await self.handle.cancel()


async def start_orchestration(
    client: Client,
    orchestration: type[OrchestrationWorkflow] | str,
    input: Any = None,
    *,
    config: RunConfig | None = None,
    id: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> OrchestrationHandle:
    """Start a standalone orchestration as a workflow of its type (its name)."""
    name = orchestration if isinstance(orchestration, str) else orchestration.orchestration_name
    result_type = None if isinstance(orchestration, str) else orchestration.run.__annotations__.get("return")  # type: ignore[attr-defined]
    payload = input.model_dump(mode="json") if isinstance(input, BaseModel) else input
    config = config or RunConfig()
    handle = await start_run(
        client, name, payload, config=config, id=id or f"{name}-{uuid.uuid4().hex[:12]}", task_queue=task_queue,
        summary=f"orchestration {name}", result_type=result_type if isinstance(result_type, type) else None,
    )
    return OrchestrationHandle(handle, client)


async def run_orchestration(client: Client, orchestration: type[OrchestrationWorkflow] | str, input: Any = None, **kwargs: Any) -> Any:
    """Start a standalone orchestration and wait for its result."""
    return await (await start_orchestration(client, orchestration, input, **kwargs)).result()
