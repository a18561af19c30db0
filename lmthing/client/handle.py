"""Starting prompts and following them: lmthing's ``runPrompt`` over a Temporal client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from lmthing.prompt.types import ModelOptions, RunResult, RunStatus, StepRecord
from lmthing.workflows.config import RunConfig
from lmthing.workflows.prompt_workflow import PromptWorkflow

DEFAULT_TASK_QUEUE = "lmthing"


@dataclass
class PromptHandle:
    """A running (or finished) prompt. Follows continue-as-new transparently."""

    handle: WorkflowHandle[Any, Any]

    @property
    def id(self) -> str:
        return self.handle.id

    async def result(self) -> RunResult:
        return await self.handle.result()

    async def state(self) -> dict[str, Any]:
        return await self.handle.query("state", result_type=dict)

    async def steps(self, since: int = 0) -> list[StepRecord]:
        """Step records from step ``since`` (0-based) on."""
        return await self.handle.query("steps", since, result_type=list[StepRecord])

    async def status(self) -> RunStatus:
        return await self.handle.query("status", result_type=RunStatus)

    async def cancel(self) -> None:
        await self.handle.cancel()


def prompt_name(prompt: type[PromptWorkflow] | str) -> str:
    return prompt if isinstance(prompt, str) else prompt.spec.name


async def start_prompt(
    client: Client,
    prompt: type[PromptWorkflow] | str,
    args: Any = None,
    *,
    model: str | None = None,
    max_steps: int | None = None,
    system: str | None = None,
    options: ModelOptions | dict[str, Any] | None = None,
    config: RunConfig | None = None,
    id: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> PromptHandle:
    """Start a prompt as a workflow of type ``<prompt name>``.

    ``config`` carries every run setting (timeouts, attempts...); ``model``, ``max_steps``,
    ``system`` and ``options`` override its fields."""
    name = prompt_name(prompt)
    overrides: dict[str, Any] = {"model": model, "max_steps": max_steps, "system": system}
    if options is not None:
        overrides["options"] = ModelOptions.model_validate(options) if isinstance(options, dict) else options
    config = (config or RunConfig()).model_copy(update={k: v for k, v in overrides.items() if v is not None})
    payload = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
    handle = await client.start_workflow(
        name,
        args=[payload, config],
        id=id or f"{name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=RunResult,
    )
    return PromptHandle(handle)


async def run_prompt(client: Client, prompt: type[PromptWorkflow] | str, args: Any = None, **kwargs: Any) -> RunResult:
    """Start a prompt and wait for its result (lmthing's ``runPrompt``)."""
    return await (await start_prompt(client, prompt, args, **kwargs)).result()


def get_handle(client: Client, workflow_id: str) -> PromptHandle:
    return PromptHandle(client.get_workflow_handle(workflow_id, result_type=RunResult))
