"""An app's prompts as MCP tools: listing them, and calling one as a durable run.

A tool call starts the prompt as an ordinary workflow (the same ``start_prompt`` as
``lmthing run`` and the Python client), follows its event stream to send MCP progress
notifications, and answers with the run's result. The run lives in Temporal, not in this
process: it shows in the UI, survives a worker crash, and can be replayed; the MCP client
gets its workflow id to find it there.

Arguments are checked here, against the prompt's args model, before anything is started:
a call with bad arguments is a tool error naming the field, not a failed run.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types
from pydantic import ValidationError

from lmthing.prompt.tools import format_validation_error

if TYPE_CHECKING:
    from temporalio.client import Client

    from lmthing.client import PromptHandle
    from lmthing.prompt.types import RunResult, StreamEvent
    from lmthing.workflows import PromptWorkflow

# What a client sees as the schema of a prompt that takes no arguments / any JSON object.
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
# How long a finished run's last progress notifications may take to go out before its answer.
PROGRESS_DRAIN_SECONDS = 2.0


class ExposeError(ValueError):
    """``--allow`` names a prompt the app does not have (a user error: exit code 2)."""


@dataclass(frozen=True)
class ExposedPrompt:
    """One prompt of the app, offered as the MCP tool of the same name."""

    prompt: type[PromptWorkflow]

    @property
    def name(self) -> str:
        return self.prompt.spec.name

    def tool(self) -> types.Tool:
        spec = self.prompt.spec
        if spec.args_model is not None:
            schema = spec.args_model.model_json_schema()
        else:
            schema = ANY_OBJECT if spec.takes_args else NO_ARGUMENTS
        description = spec.description or f"Runs the lmthing prompt {spec.name} as a durable workflow."
        return types.Tool(name=spec.name, description=description, input_schema=schema)

    def payload(self, arguments: dict[str, Any] | None) -> Any:
        """The run's input for these tool arguments; ValueError naming what is wrong."""
        spec = self.prompt.spec
        given = dict(arguments or {})
        if not spec.takes_args:
            if given:
                raise ValueError(f"tool {spec.name} takes no arguments; got {', '.join(sorted(given))}")
            return None
        model = spec.args_model
        if model is None:
            return given
        unknown = sorted(set(given) - set(model.model_fields))
        if unknown and model.model_config.get("extra") != "allow":
            fields = ", ".join(model.model_fields) or "none"
            raise ValueError(f"unknown argument(s) {', '.join(unknown)} (tool {spec.name} takes: {fields})")
        try:
            return model.model_validate(given).model_dump(mode="json")
        except ValidationError as err:
            raise ValueError(f"bad arguments for tool {spec.name}: {format_validation_error(err)}") from None


def choose_prompts(prompts: list[type[PromptWorkflow]], allow: list[str] | None) -> dict[str, ExposedPrompt]:
    """The prompts to expose: every one, or only those ``allow`` names (each must exist)."""
    by_name = {p.spec.name: ExposedPrompt(p) for p in prompts}
    if not allow:
        return by_name
    missing = [name for name in allow if name not in by_name]
    if missing:
        raise ExposeError(
            f"--allow {', '.join(missing)}: no such prompt in the app (its prompts: {', '.join(sorted(by_name)) or 'none'})"
        )
    return {name: by_name[name] for name in allow}


@dataclass
class PromptTools:
    """The MCP ``tools/list`` and ``tools/call`` handlers over an app's exposed prompts."""

    client: Client
    exposed: dict[str, ExposedPrompt]
    task_queue: str

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[e.tool() for e in self.exposed.values()])

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        entry = self.exposed.get(params.name)
        if entry is None:
            offered = ", ".join(sorted(self.exposed)) or "none"
            return tool_error(f"unknown tool {params.name!r}: this server offers {offered}")
        try:
            payload = entry.payload(params.arguments)
        except ValueError as err:
            return tool_error(str(err))
        from lmthing.client import start_prompt

        try:
            handle = await start_prompt(self.client, entry.prompt, payload, task_queue=self.task_queue)
        except Exception as err:  # noqa: BLE001 - e.g. Temporal unreachable: the client is told why
            return tool_error(f"could not start a run of {entry.name}: {cause_message(err)}")
        progress = asyncio.create_task(report_progress(handle, ctx))
        try:
            result = await handle.result()
        except Exception as err:  # noqa: BLE001 - a failed run is the caller's answer, not a server crash
            return tool_error(f"run {handle.id} failed: {cause_message(err)}", workflow_id=handle.id)
        finally:
            # The stream ends with the run's finish: let the last notifications out before the answer.
            await asyncio.wait([progress], timeout=PROGRESS_DRAIN_SECONDS)
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
        return answer(handle.id, result)


def answer(workflow_id: str, result: RunResult) -> types.CallToolResult:
    """The run's answer text, with its workflow id and structured output as structured content."""
    structured: dict[str, Any] = {
        "workflow_id": workflow_id, "text": result.text, "stop_reason": result.stop_reason, "steps": result.steps,
    }
    if result.structured is not None:
        structured["structured"] = result.structured
    if result.validation_error is not None:
        structured["validation_error"] = result.validation_error
    return types.CallToolResult(content=[types.TextContent(text=result.text)], structured_content=structured)


def tool_error(message: str, workflow_id: str | None = None) -> types.CallToolResult:
    structured = {"error": message, **({"workflow_id": workflow_id} if workflow_id else {})}
    return types.CallToolResult(content=[types.TextContent(text=message)], structured_content=structured, is_error=True)


def cause_message(err: BaseException) -> str:
    """The innermost failure's message: what actually went wrong in the run."""
    from temporalio.exceptions import TemporalError

    inner: BaseException = err
    while isinstance(inner, TemporalError) and inner.cause is not None:
        inner = inner.cause
    return getattr(inner, "message", None) or str(inner) or type(inner).__name__


async def report_progress(handle: PromptHandle, ctx: Any) -> None:
    """MCP progress notifications: the run's workflow id first (so a client that loses the
    connection can still find the run), then one per step, tool call and sub-agent (a no-op
    when the client asked for no progress). Progress is best-effort: a stream that breaks
    off leaves the call waiting on the run's result all the same."""
    count = 1
    with contextlib.suppress(Exception):
        await ctx.session.report_progress(count, None, f"run {handle.id} started")
        async for event in handle.full_stream():
            message = progress_message(event)
            if message is not None:
                count += 1
                await ctx.session.report_progress(count, None, message)


def progress_message(event: StreamEvent) -> str | None:
    step = event.step  # counted from 0, as everywhere in lmthing (docs/api.md)
    if event.type == "step_start":
        return f"step {step} started"
    if event.type == "tool_call" and event.tool_call is not None:
        return f"step {step}: calling tool {event.tool_call.name}"
    if event.type == "agent_start":
        return f"step {step}: sub-agent {event.agent} started"
    if event.type == "step_finish":
        return f"step {step} finished"
    return None
