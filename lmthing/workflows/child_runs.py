"""The child workflows of a prompt workflow: sub-agents (``def_agent``), other prompts
(``call_prompt``) and handoffs, with the run config each child gets (its model policy, the
tree's budget link and domain allowlists) and the limits on nesting. A mixin of
:class:`~lmthing.workflows.prompt_workflow.PromptWorkflow`.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError

from lmthing.orchestration import registry
from lmthing.prompt.agents import AgentDef
from lmthing.prompt.stateful_prompt import StatefulPrompt
from lmthing.prompt.types import ModelOptions, RunResult, StepRecord, add_cost

from .agent_body import BUILTIN_PLUGINS, AgentBody, agent_label, dump as _dump, handed_off
from .config import AgentFrame, RunConfig
from .errors import cause_message
from .search_attributes import child_attributes
from .agent_calls import AgentNotStarted, child_summary

# Sub-agents below the root prompt, at most (an agent that calls itself must stop somewhere).
MAX_AGENT_DEPTH = 10
# Temporal's default limit on a workflow id (limit.maxIDLength).
MAX_WORKFLOW_ID_CHARS = 1000


class ChildRuns:
    """Starting children; the attributes are the workflow's (set in its ``__init__``)."""

    def _hand_off(self, prompt: StatefulPrompt, body: AgentBody, config: RunConfig, handoff: tuple[str, Any],
                  record: StepRecord) -> AgentBody:
        """Go on as agent ``handoff[0]`` (``def_handoff``): same conversation and state, the
        agent's function, system prompt, response schema and model from the next step on."""
        name, args = handoff
        adef = prompt.defined_agent(name)
        assert isinstance(adef, AgentDef)  # request_handoff checked it
        source = self._agent_label(config) or self.spec.name
        frame = AgentFrame(body_args=_dump(body.args_for_children), state=self._prepared_state, agent=name)
        self._handoffs.append(frame)
        new = handed_off(body, adef, args, frame)
        prompt.switch_definition(base_system=config.system, agent_system=None if config.system else adef.system,
                                 response_schema=adef.response_schema, response_instruction=adef.response_instruction,
                                 plugins=[*new.plugins, *BUILTIN_PLUGINS])
        record.orchestration.append({"kind": "handoff", "from": source, "to": name, "args": _dump(args)})
        return new

    def _agent_label(self, config: RunConfig) -> str | None:
        return agent_label([*config.agent_path, *self._handoffs])

    async def _call_prompt(self, name: str, args: Any, key: str) -> dict[str, Any]:
        """``p.call_prompt``: another prompt of this worker, as a child workflow."""
        entry = registry.get(name)
        if entry is None or entry.kind != "prompt":
            known = ", ".join(registry.names("prompt")) or "none"
            return {"error": f"No prompt named {name!r} is defined on this worker (prompts: {known})"}
        return await self._runner.run_prompt(name, _dump(args), key)  # type: ignore[union-attr]

    async def _start_prompt_child(self, name: str, args: Any, child_id: str, config: RunConfig) -> RunResult:
        """Start prompt ``name`` as a child: its own model and definition, this run's settings
        for timeouts, attempts and streaming."""
        child_config = config.model_copy(
            update={"agent_path": [], "model": None, "max_steps": None, "system": None, "options": ModelOptions(),
                    "model_policy": None, "budget": self._budget.child_link(), "domains": self._resilience.allowlists()}
        )
        return await self._run_child(name, child_id, name, [args, child_config])

    async def _start_agent(
        self, adef: AgentDef, args: Any, child_id: str, composite: str | None, body: AgentBody, model: str, config: RunConfig
    ) -> RunResult:
        depth = len(body.parent_frames) + 1
        if depth > MAX_AGENT_DEPTH:
            path = "/".join(f.sub or f.agent for f in body.parent_frames)
            raise AgentNotStarted(
                f"Agent '{adef.name}' was not started: it would run {depth} levels below the root prompt "
                f"({path}/{adef.name}), over the limit of {MAX_AGENT_DEPTH}. An agent that calls itself needs a "
                "condition that stops it."
            )
        if len(child_id) > MAX_WORKFLOW_ID_CHARS:
            raise AgentNotStarted(
                f"Agent '{adef.name}' was not started: its workflow id would be {len(child_id)} characters, over "
                f"Temporal's limit of {MAX_WORKFLOW_ID_CHARS}; use shorter agent names or keys, or nest less."
            )
        frame = AgentFrame(
            body_args=_dump(body.args_for_children),
            state=self._prepared_state,
            agent=composite or adef.name,
            sub=adef.name if composite else None,
        )
        child_model = adef.model or model
        child_config = config.model_copy(
            update={"agent_path": [*body.parent_frames, frame], "model": child_model, "max_steps": None,
                    "system": None, "model_policy": self._resilience.child_policy(
                        adef.retry, adef.fallback, child_model, f"def_agent({adef.name!r})"),
                    "budget": self._budget.child_link(), "domains": self._resilience.allowlists()}
        )
        return await self._run_child(adef.name, child_id, workflow.info().workflow_type, [_dump(args), child_config])

    async def _run_child(self, agent: str, child_id: str, workflow_type: str, args: list[Any]) -> RunResult:
        """Run a child workflow for agent ``agent``; its start and end are on the stream, and
        what it cost joins this run's totals."""
        step = self._status.step
        self._events.agent("agent_start", step, agent, child_id)
        try:
            result: RunResult = await workflow.execute_child_workflow(
                workflow_type, args=args, id=child_id, result_type=RunResult, static_summary=child_summary(agent, child_id),
                search_attributes=child_attributes(agent, workflow.info().typed_search_attributes, args[1].search_attributes),
            )
        except FailureError as err:
            self._events.agent("agent_finish", step, agent, child_id, error=cause_message(err))
            raise
        self._events.agent("agent_finish", step, agent, child_id)
        self._child_usage = self._child_usage + result.usage
        self._child_cost = add_cost(self._child_cost, result.cost_usd)
        return result
