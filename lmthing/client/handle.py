"""Starting prompts and following them: lmthing's ``runPrompt`` over a Temporal client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle

from lmthing.prompt.humans import Answer, Decision, PendingRequest
from lmthing.prompt.types import ModelOptions, RunResult, RunStatus, StepRecord, StreamEvent

if TYPE_CHECKING:
    from lmthing.workflows.config import RunConfig
    from lmthing.workflows.prompt_workflow import PromptWorkflow

DEFAULT_TASK_QUEUE = "lmthing"


class TextDelta(str):
    """A piece of streamed text, still a plain ``str`` for printing.

    ``restarted`` is True on the first piece of a model call that is being *retried* (its
    worker crashed, its connection dropped): the text of that step starts over, and a
    caller that already showed the earlier attempt's text should replace it, not append."""

    step: int
    attempt: int
    restarted: bool

    def __new__(cls, text: str, step: int, attempt: int, restarted: bool) -> TextDelta:
        piece = super().__new__(cls, text)
        piece.step, piece.attempt, piece.restarted = step, attempt, restarted
        return piece


@dataclass
class PromptHandle:
    """A running (or finished) prompt. Follows continue-as-new transparently."""

    handle: WorkflowHandle[Any, Any]
    client: Client

    @property
    def id(self) -> str:
        return self.handle.id

    async def result(self) -> RunResult:
        return await self.handle.result()

    async def state(self) -> dict[str, Any]:
        return await self.handle.query("state", result_type=dict)

    async def steps(self, since: int = 0) -> list[StepRecord]:
        """Step records from step ``since`` (0-based) on, across continue-as-new: each run of
        the chain holds its own steps, so the earlier ones are asked for what the latest
        run does not hold (a query on a closed run: a worker replays it to answer)."""
        records = await self.handle.query("steps", since, result_type=list[StepRecord])
        if records and records[0].step <= since:
            return records
        status = await self.status()
        if not records and since >= status.step:
            return records  # nothing from ``since`` on yet, in any run
        for run_id in reversed(status.earlier_runs):
            run = self.client.get_workflow_handle(self.handle.id, run_id=run_id)
            earlier = await run.query("steps", since, result_type=list[StepRecord])
            first = records[0].step if records else None
            records = [*(r for r in earlier if first is None or r.step < first), *records]
            if records and records[0].step <= since:
                break
        return records

    async def status(self) -> RunStatus:
        return await self.handle.query("status", result_type=RunStatus)

    async def cancel(self) -> None:
        await self.handle.cancel()

    async def pending(self) -> list[PendingRequest]:
        """Approvals and questions waiting for a person."""
        return await self.handle.query("pending", result_type=list[PendingRequest])

    async def decide(
        self, approval_id: str, action: str, *, args: dict[str, Any] | None = None, reason: str | None = None, by: str | None = None
    ) -> str:
        """Decide an approval (update ``decide``): raises ``WorkflowUpdateFailedError`` with
        the reason when the decision is refused (unknown id, decided already, bad args)."""
        decision = Decision(id=approval_id, action=action, args=args, reason=reason, by=by)  # type: ignore[arg-type]
        return await self.handle.execute_update("decide", decision, result_type=str)

    async def answer(self, question_id: str, answer: str, *, by: str | None = None) -> str:
        """Answer a question (update ``answer``), refused like ``decide``."""
        return await self.handle.execute_update("answer", Answer(id=question_id, answer=answer, by=by), result_type=str)

    async def full_stream(self, from_offset: int = 0) -> AsyncIterator[StreamEvent]:
        """Every event of the run from ``from_offset`` on, as it happens: step start, text
        deltas, tool calls and results, sub-agents, step finish, then finish or error.

        Each event's ``offset`` is its position; after a disconnect, resume with
        ``full_stream(event.offset + 1)``. Ends after the run's ``finish``/``error``."""
        from temporalio.contrib.workflow_streams import WorkflowStreamClient

        from lmthing.workflows.events import EVENTS_TOPIC

        stream = WorkflowStreamClient.create(self.client, self.id)
        async for item in stream.subscribe([EVENTS_TOPIC], from_offset, result_type=StreamEvent):
            event = item.data.model_copy(update={"offset": item.offset})
            yield event
            if event.type in ("finish", "error"):
                return

    async def text_stream(self, from_offset: int = 0) -> AsyncIterator[TextDelta]:
        """The model's text as it arrives, across all steps (see ``TextDelta.restarted``)."""
        attempts: dict[int, int] = {}
        async for event in self.full_stream(from_offset):
            if event.type != "text_delta" or not event.text:
                continue
            seen = attempts.get(event.step)
            attempts[event.step] = event.attempt
            yield TextDelta(event.text, event.step, event.attempt, restarted=seen is not None and event.attempt != seen)


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
    session: str | None = None,
) -> PromptHandle:
    """Start a prompt as a workflow of type ``<prompt name>``.

    ``config`` carries every run setting (timeouts, attempts...); ``model``, ``max_steps``,
    ``system``, ``options`` and ``session`` (whose memories of scope "session" the run
    shares, docs/memory.md) override its fields."""
    from lmthing.workflows.config import RunConfig

    from .start import start_run  # imports the workflows package: not on `lmthing approve`'s path

    name = prompt_name(prompt)
    overrides: dict[str, Any] = {"model": model, "max_steps": max_steps, "system": system, "session": session}
    if options is not None:
        overrides["options"] = ModelOptions.model_validate(options) if isinstance(options, dict) else options
    config = (config or RunConfig()).model_copy(update={k: v for k, v in overrides.items() if v is not None})
    payload = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
    handle = await start_run(
        client, name, payload, config=config, id=id or f"{name}-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue, summary=f"prompt {name}", result_type=RunResult,
    )
    return PromptHandle(handle, client)


async def run_prompt(client: Client, prompt: type[PromptWorkflow] | str, args: Any = None, **kwargs: Any) -> RunResult:
    """Start a prompt and wait for its result (lmthing's ``runPrompt``)."""
    return await (await start_prompt(client, prompt, args, **kwargs)).result()


def get_handle(client: Client, workflow_id: str) -> PromptHandle:
    return PromptHandle(client.get_workflow_handle(workflow_id, result_type=RunResult), client)
