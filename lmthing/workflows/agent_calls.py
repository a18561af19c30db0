"""Sub-agents called as tools (``def_agent``, composite agents, ``p.call_agent`` and
``p.call_prompt``): a mixin of :class:`~lmthing.workflows.tool_calls.ToolRunner`, which
starts each as a child workflow and gives the caller its outcome in lmthing's shape."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from lmthing.observability import tracing
from lmthing.prompt.agents import AgentDef, CompositeAgentDef
from lmthing.prompt.lifecycle import ToolEvent
from lmthing.prompt.tools import parse_composite_calls
from lmthing.prompt.types import RunResult, ToolCall, ToolResult

from .errors import cause_message as _cause_message


class AgentNotStarted(Exception):
    """A sub-agent's child workflow was not started (nested too deep, id too long): the
    caller gets the reason as the agent's error, like a failed agent."""


class AgentCalls:
    """The sub-agent calls of a tool runner; the attributes are the ToolRunner's."""

    # ------------------------------------------------------------------------ sub-agents
    async def _run_agent(self, adef: AgentDef, call: ToolCall, step: int) -> ToolResult:
        outcome = await self._agent_outcome(
            adef, None, f"{self.workflow_id}/{adef.name}/{call.id}", None, call_id=call.id, step=step, raw_args=call.args
        )
        # lmthing's model read a sub-agent's answer as plain text (its middleware unwrapped
        # {response, steps}), and a failure as the bare error message; with a validation
        # error it read the JSON (we leave out the child's steps).
        content = None
        if "error" in outcome:
            content = str(outcome["error"])
        elif "validationError" not in outcome:
            content = str(outcome.get("response", ""))
        return ToolResult(tool_call_id=call.id, name=call.name, result=outcome, is_error="error" in outcome, content=content)

    async def _run_composite_agent(self, cdef: CompositeAgentDef, call: ToolCall, step: int) -> ToolResult:
        calls, problem = parse_composite_calls(call.args, cdef.name)
        if problem is not None:
            return _error(call, problem)

        async def one(index: int, sub_call: dict[str, Any]) -> dict[str, Any]:
            name = str(sub_call.get("name"))
            sub = cdef.member(name)
            if sub is None:
                return {"name": name, "response": f"Error: Unknown sub-agent: {name}"}
            child_id = f"{self.workflow_id}/{cdef.name}/{call.id}/{index}-{name}"
            raw = sub_call.get("args") or {}
            outcome = await self._agent_outcome(sub, None, child_id, cdef.name, call_id=call.id, step=step, raw_args=raw)
            if "error" in outcome:
                return {"name": name, "response": f"Error: {outcome['error']}"}
            return {"name": name, **outcome}

        # Unlike lmthing (one by one), the sub-agents of a composite call run concurrently.
        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
        return ToolResult(tool_call_id=call.id, name=call.name, result={"results": list(results)})

    async def run_agent(self, adef: AgentDef, args: Any, key: str, composite: str | None) -> dict[str, Any]:
        """Run a sub-agent from workflow-side code (``p.call_agent``), as the model would;
        the outcome also has ``structured`` (the parsed reply) for an agent with a response schema."""
        owner = f"{composite}/{adef.name}" if composite else adef.name
        raw = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        return await self._agent_outcome(
            adef, args, f"{self.workflow_id}/{owner}/{key}", composite, call_id=key, step=self.current_step(), raw_args=raw,
            structured=True,
        )

    async def run_prompt(self, name: str, args: Any, key: str) -> dict[str, Any]:
        """Run another prompt of the worker as a child workflow (``p.call_prompt``)."""
        assert self.start_prompt is not None
        child_id = f"{self.workflow_id}/{name}/{key}"
        attributes = {tracing.OPERATION: "invoke_agent", tracing.AGENT_NAME: name, "lmthing.child_workflow_id": child_id}
        with tracing.span(f"execute_tool {name}", attributes) as span:
            self.running_agents.append(name)
            try:
                result = await self.start_prompt(name, args, child_id)
            except ChildWorkflowError as err:
                tracing.mark_error(span, _cause_message(err), "AgentError")
                return {"error": f"Agent '{name}' failed: {_cause_message(err)}"}
            finally:
                self.running_agents.remove(name)
            return outcome_of(result, structured=True)

    async def _agent_outcome(
        self, adef: AgentDef, args: Any, child_id: str, composite: str | None, *, call_id: str, step: int, raw_args: Any,
        structured: bool = False,
    ) -> dict[str, Any]:
        """Run a sub-agent's child workflow (``args`` already validated, or None to validate
        ``raw_args`` first): ``{"response": ...}`` or ``{"error": ...}``. To the prompt's
        handlers it is a tool call."""
        attributes = {**tracing.tool_attributes(adef.name, call_id, "agent"), "lmthing.child_workflow_id": child_id}
        with tracing.span(f"execute_tool {adef.name}", attributes) as span:
            event = ToolEvent(name="before_tool", step=step, tool=adef.name, call_id=call_id, args=raw_args, kind="agent")
            await self._fire("before_tool", lambda: event)
            problem = None
            if args is None:
                args, problem = adef.parse_input(raw_args)
            stopped = await self._guard(adef.name, adef.guards, args, step) if problem is None else None
            if problem is not None:
                outcome: dict[str, Any] = {"error": problem}
            elif stopped is not None:
                action, result, is_error = stopped
                outcome = {"error": result.get("error") or f"denied: {result.get('reason')}"} if is_error else {
                    "response": f"Skipped: {result['reason']} (guard '{result['guard']}')"}
            else:
                outcome = await self._agent_outcome_traced(adef, args, child_id, composite, structured)
            if "error" in outcome:
                tracing.mark_error(span, str(outcome["error"]), "AgentError")
            await self._after(event, outcome, "error" in outcome, "AgentError")
            return outcome

    async def _agent_outcome_traced(
        self, adef: AgentDef, args: Any, child_id: str, composite: str | None, structured: bool
    ) -> dict[str, Any]:
        self.running_agents.append(adef.name)
        try:
            result = await self.start_agent(adef, args, child_id, composite)
        except AgentNotStarted as err:
            return {"error": str(err)}
        except ChildWorkflowError as err:
            if adef.critical:
                raise ApplicationError(
                    f"Critical agent '{adef.name}' failed: {_cause_message(err)}", type="CriticalAgentFailed", non_retryable=True
                ) from None
            # lmthing's model got the child's error.message.
            return {"error": _cause_message(err) or "Error"}
        finally:
            self.running_agents.remove(adef.name)
        return outcome_of(result, structured=structured)


def child_summary(agent: str, child_id: str) -> str:
    """What the Temporal UI shows for an agent's child workflow (its type is the root prompt's
    for a def_agent): the agent and where in the parent it was started."""
    where = child_id.removeprefix(workflow.info().workflow_id + "/")
    return f"agent {agent} · {where}" if where != agent else f"agent {agent}"


def outcome_of(result: RunResult, *, structured: bool) -> dict[str, Any]:
    """What a finished sub-agent gives its caller: the model gets ``{"response",
    "validationError"?}`` (lmthing's shape); workflow-side callers also get ``structured``."""
    outcome: dict[str, Any] = {"response": result.text}
    if result.validation_error:
        outcome["validationError"] = result.validation_error
    if structured and result.structured is not None:
        outcome["structured"] = result.structured
    return outcome


def _error(call: ToolCall, message: str) -> ToolResult:
    """A call that could not run: the model reads the bare message (the AI SDK's error text)."""
    return ToolResult(tool_call_id=call.id, name=call.name, result={"error": message}, is_error=True, content=message)
