"""Which function a prompt run executes, and how a sub-agent or a handoff finds it again.

A run executes its prompt's function, or, for a sub-agent's child workflow, the agent's
function: usually a closure inside the parent's function, found again by re-running the
parent's function (as a *scan*: ``StatefulPrompt(scan_only=True)``) with the arguments and
state it had (``AgentFrame``), level by level from the root. A handoff (``def_handoff``)
appends a frame to the same path inside one workflow, so after continue-as-new the run finds
the agent it was handed to the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from lmthing.mcp.plugin import mcp_plugin
from lmthing.memory.plugin import memory_plugin
from lmthing.memory.context_plugin import context_plugin
from lmthing.messaging.plugin import messaging_plugin
from lmthing.orchestration.plugin import orchestration_plugin
from lmthing.plugins.roles import roles_plugin
from lmthing.resilience.plugin import resilience_plugin
from lmthing.prompt.agents import AgentDef, CompositeAgentDef
from lmthing.prompt.stateful_prompt import ScanStop, StatefulPrompt
from lmthing.prompt.stop import StopCondition
from lmthing.prompt.tools import format_validation_error

from .config import AgentFrame

if TYPE_CHECKING:
    from .prompt_workflow import PromptSpec

# Plugins every prompt run has (after the prompt's own): the orchestration, messaging,
# resilience, context-window, memory, template and role, and MCP APIs.
BUILTIN_PLUGINS: tuple[Any, ...] = (orchestration_plugin, messaging_plugin, resilience_plugin, context_plugin,
                                    memory_plugin, roles_plugin, mcp_plugin)


@dataclass
class AgentBody:
    """The function that builds a run's prompt, and how the run is shaped."""

    call: Callable[[StatefulPrompt], Any]
    plugins: list[Any]
    model: str | None
    system: str | None
    response_schema: type[BaseModel] | None
    max_steps: int | None
    schema_retries: int
    parent_frames: list[AgentFrame]
    args_for_children: Any
    # The root prompt's stop condition; sub-agents stop on their answer or max_steps.
    stop_when: StopCondition | None = None
    # The run was handed to this agent (def_handoff): its own model, if it has one, wins.
    handed_off: bool = False
    # The agent's own response-schema instruction (AgentDef.response_instruction), if any.
    response_instruction: str | None = None


async def resolve_body(
    spec: PromptSpec, agent_path: list[AgentFrame], handoffs: list[AgentFrame], args: Any, handoff_args: Any = None
) -> AgentBody:
    """The root prompt function, or, for a sub-agent run, the agent's function; after a
    handoff, the function of the agent the run was handed to."""
    frames = [*agent_path, *handoffs]
    stop_when = None if agent_path else spec.stop_when
    if not frames:
        root_args = validate_prompt_args(spec, args)
        call = (lambda p: spec.fn(p, root_args)) if spec.takes_args else spec.fn
        return AgentBody(call, list(spec.plugins), None, None, None, None, 0, [], root_args, stop_when)
    if handoffs:
        args = handoff_args
    plugins = list(spec.plugins)
    first_args = validate_prompt_args(spec, frames[0].body_args)
    call = (lambda p: spec.fn(p, first_args)) if spec.takes_args else spec.fn
    adef: AgentDef | None = None
    for level, frame in enumerate(frames):
        finder = StatefulPrompt(state=frame.state, plugins=[*plugins, *BUILTIN_PLUGINS], first_run=False, scan_only=True)
        stopped_at = None
        try:
            await finder.run_body(call)
        except ScanStop as stop:
            stopped_at = str(stop)  # the function started something here: what it defined before counts
        adef = find_agent(finder, frame, level, stopped_at)
        plugins = plugins + list(adef.plugins)
        next_args = frames[level + 1].body_args if level + 1 < len(frames) else args
        next_args, problem = adef.validate_args(next_args if next_args is not None else {})
        if problem is not None:
            raise ApplicationError(problem, type="InvalidAgentArgs", non_retryable=True)
        call = agent_call(adef, next_args)
    assert adef is not None
    return AgentBody(
        call, plugins, adef.model, adef.system, adef.response_schema, adef.max_steps, adef.schema_retries,
        list(frames), next_args, stop_when, handed_off=bool(handoffs), response_instruction=adef.response_instruction,
    )


def handed_off(body: AgentBody, adef: AgentDef, args: Any, frame: AgentFrame) -> AgentBody:
    """The body of agent ``adef`` the run ``body`` is handed to (``frame`` finds it again)."""
    return AgentBody(
        agent_call(adef, args), [*body.plugins, *adef.plugins], adef.model, adef.system, adef.response_schema,
        adef.max_steps, adef.schema_retries, [*body.parent_frames, frame], args, body.stop_when, handed_off=True,
        response_instruction=adef.response_instruction,
    )


def agent_label(frames: list[AgentFrame]) -> str | None:
    """The agent a run is (``researcher/summarizer`` below the root, the handoff target after
    a handoff); None for the root prompt itself."""
    return "/".join(f.sub or f.agent for f in frames) or None


def dump(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def validate_prompt_args(spec: PromptSpec, args: Any) -> Any:
    if spec.args_model is None:
        return args
    try:
        return spec.args_model.model_validate(args if args is not None else {})
    except ValidationError as err:
        raise ApplicationError(
            f"Invalid input for prompt '{spec.name}': {format_validation_error(err)}",
            type="InvalidPromptInput",
            non_retryable=True,
        ) from None


def find_agent(finder: StatefulPrompt, frame: AgentFrame, level: int, stopped_at: str | None = None) -> AgentDef:
    found = finder.defined_agent(frame.agent)
    if isinstance(found, CompositeAgentDef) and frame.sub:
        found = found.member(frame.sub)
    if not isinstance(found, AgentDef):
        where = f"{frame.agent}.{frame.sub}" if frame.sub else frame.agent
        early = (f" The parent's function was read up to its call of {stopped_at}(), which only a running parent "
                 "makes: declare sub-agents before it.") if stopped_at else ""
        raise ApplicationError(
            f"Sub-agent '{where}' is no longer defined by its parent prompt (level {level}); "
            f"the parent must define it with def_agent on every run.{early}",
            type="AgentNotFound",
            non_retryable=True,
        )
    return found


def agent_call(adef: AgentDef, args: Any) -> Callable[[StatefulPrompt], Any]:
    return lambda p: adef.fn(args, p)
