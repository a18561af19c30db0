"""Orchestration on the prompt: ``p.def_workflow`` / ``p.run_workflow``, ``p.def_pipeline`` /
``p.run_pipeline``, ``p.def_parallel`` / ``p.run_parallel``, ``p.def_team`` / ``p.run_team``,
``p.run_plan`` and ``p.select_agents``.

Every prompt has these (the engine adds this plugin to each run). They are built on the
prompt's public calls only: agents run through ``p.call_agent`` (a ``def_agent``) or
``p.call_prompt`` (another prompt by name), tools through ``p.call_tool``.

A prompt function runs again before every model step, so a run started from it is keyed:
``p.run_workflow(name, input, key=...)`` runs once per key and returns the recorded result
on later runs of the function (kept in ``def_state`` under ``"_lmthing_runs"``, so it also
survives continue-as-new). Declared with ``as_tool=True``, the orchestration is also a tool
that the model can call; each call is a run of its own.
"""

from __future__ import annotations

import weakref
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from lmthing.prompt.agents import AgentDef, CompositeAgentDef
from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.prompt.tools import ActivityTool, ToolDef, activity_tool_def

from . import registry
from .context import Context, DefinitionError, OrchestrationFailed, StepFailed
from .graph import Pipeline, PipelineResult, Step, Workflow, WorkflowResult, pipeline, workflow
from .nodes import Node, walk
from .parallel import Parallel, ParallelResult, parallel
from .teams import Team, TeamResult, TeamRun, lead_agent_name

RUNS_STATE_KEY = "_lmthing_runs"
_DEFS: weakref.WeakKeyDictionary[StatefulPrompt, dict[str, Any]] = weakref.WeakKeyDictionary()


class OrchestrationTask(BaseModel):
    """The default tool schema of an orchestration offered to the model."""

    task: str


class PromptHost:
    """Runs an orchestration's agents and tools through the prompt's own calls."""

    def __init__(self, p: StatefulPrompt) -> None:
        self.p = p

    async def run_agent(self, name: str, args: Any, key: str) -> dict[str, Any]:
        if self.p.defined_agent(name.partition(".")[0]) is not None:
            return await self.p.call_agent(name, args if args is not None else {}, key=key)
        return await self.p.call_prompt(name, args, key=key)

    async def run_tool(self, tool: Any, args: Any, key: str) -> tuple[Any, bool]:
        return await self.p.call_tool(self._tool(tool), args, call_id=key, step=self.p.current_step, key=key)

    def _tool(self, tool: Any) -> ToolDef:
        if isinstance(tool, ActivityTool):
            return activity_tool_def(tool)
        found = self.p.defined_tool(str(tool))
        if not isinstance(found, ToolDef):
            tools, _ = self.p.defined_names()
            raise PromptError(f"no tool {tool!r} is defined (defined: {', '.join(tools) or 'none'}); declare it with def_tool or pass an @tool function")
        return found

    def has_agent(self, name: str) -> bool:
        owner, _, member = name.partition(".")
        found = self.p.defined_agent(owner)
        if isinstance(found, CompositeAgentDef):
            return bool(member) and found.member(member) is not None
        return isinstance(found, AgentDef) or registry.get(name) is not None

    def agent_names(self) -> list[str]:
        return self.p.defined_names()[1] + registry.names()


def check_agents(node: Node, host: Any, where: str) -> None:
    """Every agent ``node`` calls by name exists: raised where the orchestration is declared."""
    _check_names(node.agents(), host, where)


def _check_names(names: Any, host: Any, where: str) -> None:
    unknown = sorted(a for a in set(names) if not host.has_agent(a))
    if unknown:
        known = ", ".join(host.agent_names()) or "none"
        raise DefinitionError(
            f"{where}: no agent {', '.join(repr(a) for a in unknown)} is defined (agents: {known}); "
            "declare it with def_agent before this line, or define a prompt of that name on the worker"
        )


def _defs(p: StatefulPrompt) -> dict[str, Any]:
    return _DEFS.setdefault(p, {})


def _declare(p: StatefulPrompt, kind: str, name: str, node: Node, *, as_tool: bool, description: str, schema: Any) -> Node:
    check_agents(node, PromptHost(p), f"{kind} {name!r}")
    for inner in walk(node):
        if isinstance(inner, TeamRun) and inner.pattern == "hierarchical" and p.defined_agent(lead_agent_name(inner.team.name)) is None:
            raise DefinitionError(f"{kind} {name!r}: team {inner.team.name!r} runs hierarchical; declare it with p.def_team(..., lead=...) first")
    _defs(p)[f"{kind}:{name}"] = node
    if as_tool:
        _offer_as_tool(p, kind, name, node, description, schema)
    return node


def _offer_as_tool(p: StatefulPrompt, kind: str, name: str, node: Node, description: str, schema: Any) -> None:
    async def run_as_tool(args: Any, info: Any) -> Any:
        value = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        if schema is None and isinstance(value, dict):
            value = value.get("task")
        result = await _execute(p, kind, name, node, value, f"tool-{info.tool_call_id}")
        return to_jsonable_python(result)

    p.def_tool(name, description or f"Run the {kind} '{name}'.", schema or OrchestrationTask, run_as_tool)


async def _execute(p: StatefulPrompt, kind: str, name: str, node: Node, value: Any, key: str) -> Any:
    ctx = Context(host=PromptHost(p), key=f"{kind}.{name}.{key}", input=value, where="")
    try:
        result = await node.execute(ctx) if hasattr(node, "execute") else await node.run(ctx)  # type: ignore[attr-defined]
    except StepFailed as err:  # a group or team that failed as a whole
        p.record_note({"kind": kind, "name": name, "key": key, "status": "failed", "error": str(err), "trace": ctx.trace.entries})
        raise OrchestrationFailed(f"{kind} {name!r} failed: {err}", {"trace": ctx.trace.entries}, kind=f"{kind.title()}Failed") from None
    except OrchestrationFailed as err:
        p.record_note({"kind": kind, "name": name, "key": key, "status": "failed", "error": str(err), "trace": ctx.trace.entries})
        raise
    summary = result.model_dump(mode="json", exclude={"trace"}) if isinstance(result, BaseModel) else {"output": to_jsonable_python(result, fallback=repr)}
    p.record_note({"kind": kind, "name": name, "key": key, "status": "ok", **summary, "trace": ctx.trace.entries})
    return result


async def _run_once(p: StatefulPrompt, kind: str, name: str, node: Node, value: Any, key: str | None, result_type: Any) -> Any:
    """Run ``node`` once per ``key`` in this prompt run; later runs of the prompt function
    get the recorded outcome (a failure is raised again) instead of running it again."""
    memo_key = f"{kind}:{name}:{key or 'default'}"
    runs, set_runs = p.def_state(RUNS_STATE_KEY, {})
    if memo_key in runs:
        done = runs[memo_key]
        if "failed" in done:
            raise OrchestrationFailed(done["failed"], done.get("record"), kind=done.get("kind", "OrchestrationFailed"))
        return result_type.model_validate(done["result"]) if isinstance(result_type, type) and issubclass(result_type, BaseModel) else done["result"]
    try:
        result = await _execute(p, kind, name, node, value, key or "default")
    except OrchestrationFailed as err:
        failure = {"failed": str(err), "record": err.record, "kind": err.kind}
        set_runs(lambda prev: {**(prev or {}), memo_key: failure})
        raise
    # The trace is on the step record already; the state keeps the outcome only.
    kept = result.model_dump(mode="json", exclude={"trace"}) if isinstance(result, BaseModel) else to_jsonable_python(result, fallback=repr)
    set_runs(lambda prev: {**(prev or {}), memo_key: {"result": kept}})
    return result


def _lookup(p: StatefulPrompt, kind: str, name: Any) -> tuple[str, Node]:
    if isinstance(name, Node):
        check_agents(name, PromptHost(p), f"{kind} {getattr(name, 'name', kind)!r}")
        return str(getattr(name, "name", kind)), name
    found = _defs(p).get(f"{kind}:{name}")
    if found is None:
        known = ", ".join(k.split(":", 1)[1] for k in _defs(p) if k.startswith(f"{kind}:")) or "none"
        raise PromptError(f"run_{kind}: no {kind} {name!r} is declared in this prompt ({kind}s: {known}); declare it with def_{kind} first")
    return str(name), found


# ---------------------------------------------------------------------------- the API
def def_workflow(
    p: StatefulPrompt, name: str, steps: list[Step], *, max_duration: float | None = None,
    max_iterations: int | None = None, description: str = "", as_tool: bool = False, schema: Any = None,
) -> Workflow:
    """001's ``defWorkflow``: named steps with conditions, routing, retries, timeouts and loops."""
    wf = workflow(name, steps, max_duration=max_duration, max_iterations=max_iterations, description=description)
    return _declare(p, "workflow", name, wf, as_tool=as_tool, description=description, schema=schema)  # type: ignore[return-value]


async def run_workflow(p: StatefulPrompt, name: str | Workflow, input: Any = None, *, key: str | None = None) -> WorkflowResult:
    wf_name, node = _lookup(p, "workflow", name)
    return await _run_once(p, "workflow", wf_name, node, input, key, WorkflowResult)


def def_pipeline(p: StatefulPrompt, name: str, stages: list[Any], *, description: str = "", as_tool: bool = False, schema: Any = None) -> Pipeline:
    """001's ``defPipeline``: stages in order, each output the next input."""
    return _declare(p, "pipeline", name, pipeline(name, stages), as_tool=as_tool, description=description, schema=schema)  # type: ignore[return-value]


async def run_pipeline(p: StatefulPrompt, name: str | Pipeline, input: Any = None, *, key: str | None = None) -> PipelineResult:
    """001's ``executePipeline``."""
    pl_name, node = _lookup(p, "pipeline", name)
    return await _run_once(p, "pipeline", pl_name, node, input, key, PipelineResult)


def def_parallel(p: StatefulPrompt, name: str, branches: Any, *, description: str = "", as_tool: bool = False,
                 schema: Any = None, **options: Any) -> Parallel:
    """001's ``defParallel``: branches with ``aggregation``, ``min_success``, ``timeout``..."""
    node = parallel(branches, name=name, **options)
    return _declare(p, "parallel", name, node, as_tool=as_tool, description=description, schema=schema)  # type: ignore[return-value]


async def run_parallel(p: StatefulPrompt, name: str | Parallel, input: Any = None, *, key: str | None = None) -> ParallelResult:
    """001's ``executeParallel``."""
    par_name, node = _lookup(p, "parallel", name)
    return await _run_once(p, "parallel", par_name, node, input, key, ParallelResult)


def def_team(p: StatefulPrompt, name: str, members: list[str], *, lead: str | None = None, judge: str | None = None,
             description: str = "") -> Team:
    """000's ``AgentTeam``: declared agents under one name; run a pattern with ``p.run_team``.
    With ``lead``, a hidden agent ``<name>__lead`` is declared too: the lead with the members
    as its tools (hierarchical), which needs the lead and the members to be def_agents."""
    team = Team(name, list(members) if isinstance(members, (list, tuple)) else members, lead, judge, description)
    _check_names([*team.members, *(a for a in (lead, judge) if a)], PromptHost(p), f"team {name!r}")
    if lead is not None:
        _declare_lead(p, team, lead)
    _defs(p)[f"team:{name}"] = team
    return team


def _declare_lead(p: StatefulPrompt, team: Team, lead: str) -> None:
    lead_def = p.defined_agent(lead)
    members = [p.defined_agent(m) for m in team.members]
    if not isinstance(lead_def, AgentDef) or not all(isinstance(m, AgentDef) for m in members):
        raise DefinitionError(f"team {team.name!r}: a hierarchical team's lead and members must be def_agents of this prompt")

    def lead_with_members(args: Any, child: StatefulPrompt) -> Any:
        for m in members:
            assert isinstance(m, AgentDef)
            child.def_agent(m.name, m.description, m.schema, m.fn, model=m.model, system=m.system,
                            response_schema=m.response_schema, plugins=m.plugins, max_steps=m.max_steps,
                            schema_retries=m.schema_retries, critical=m.critical)
        return lead_def.fn(args, child)

    p.def_agent(lead_agent_name(team.name), f"Lead of team {team.name}", lead_def.schema, lead_with_members,
                model=lead_def.model, system=lead_def.system, response_schema=lead_def.response_schema,
                plugins=lead_def.plugins, max_steps=lead_def.max_steps, hidden=True)


async def run_team(p: StatefulPrompt, name: str | Team, pattern: str, input: Any = None, *, key: str | None = None,
                   **options: Any) -> TeamResult:
    """Run one pattern of a team: ``sequential``, ``parallel``, ``hierarchical``, ``vote``
    (``options=[...]``, ``tie_break``), ``consensus`` (``max_rounds``), ``debate`` (``rounds``, ``judge``)."""
    team = name if isinstance(name, Team) else _defs(p).get(f"team:{name}")
    if not isinstance(team, Team):
        known = ", ".join(k.split(":", 1)[1] for k in _defs(p) if k.startswith("team:")) or "none"
        raise PromptError(f"run_team: no team {name!r} is declared in this prompt (teams: {known}); declare it with def_team first")
    node = team.pattern(pattern, **options)
    _declare(p, "team", f"{team.name}.{pattern}", node, as_tool=False, description="", schema=None)
    return await _run_once(p, "team", f"{team.name}.{pattern}", node, input, key, TeamResult)


async def run_plan(p: StatefulPrompt, node: Any, input: Any = None, *, key: str | None = None) -> Any:
    """Run a plan built from 004's combinators (``sequence``, ``parallel``, ``choose``,
    ``loop_while``, ``task``, ``call_agent``...); returns its value."""
    if not isinstance(node, Node):
        raise PromptError(f"run_plan: give a plan node (sequence(...), parallel(...), ...), got {node!r}")
    check_agents(node, PromptHost(p), "plan")
    return await _run_once(p, "plan", getattr(node, "name", None) or node.kind, node, input, key, None)


def def_handoff(p: StatefulPrompt, agent: str, description: str | None = None) -> Any:
    """003's agent handoff (as in the OpenAI Agents SDK): a tool ``transfer_to_<agent>`` that
    hands the conversation to def_agent ``agent``. After the step's tool calls the run goes on
    as that agent (its function, system prompt, tools and model), with the same conversation
    and state; the handoff is on the step record and in ``RunResult.handoffs``."""
    target = p.defined_agent(agent)
    if not isinstance(target, AgentDef):
        _, agents = p.defined_names()
        raise DefinitionError(f"def_handoff({agent!r}): no such def_agent (agents: {', '.join(agents) or 'none'}); declare it with def_agent first")

    def transfer(args: Any) -> dict[str, Any]:
        value = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        if not p.request_handoff(agent, value):
            return {"error": "Multiple handoffs detected, ignoring this one."}
        return {"assistant": agent}

    return p.def_tool(f"transfer_to_{agent}", description or f"Handoff to the {agent} agent to handle the request. {target.description}".strip(),
                      target.schema, transfer)


def select_agents(p: StatefulPrompt, capabilities: list[str]) -> list[str]:
    """000's ``AgentPool.select``: names of the prompt's def_agents and the worker's prompts
    that declare every one of ``capabilities``."""
    wanted = set(capabilities)
    own = [n for n in p.defined_names()[1] if isinstance(a := p.defined_agent(n), AgentDef) and wanted <= set(a.capabilities)]
    return own + [e.name for e in registry.select(wanted) if e.kind == "prompt" and e.name not in own]


class _OrchestrationPlugin:
    """Added to every prompt run by the engine: the orchestration ``def_*`` / ``run_*`` API."""

    def_workflow = staticmethod(def_workflow)
    run_workflow = staticmethod(run_workflow)
    def_pipeline = staticmethod(def_pipeline)
    run_pipeline = staticmethod(run_pipeline)
    execute_pipeline = staticmethod(run_pipeline)
    def_parallel = staticmethod(def_parallel)
    run_parallel = staticmethod(run_parallel)
    execute_parallel = staticmethod(run_parallel)
    def_team = staticmethod(def_team)
    run_team = staticmethod(run_team)
    run_plan = staticmethod(run_plan)
    def_handoff = staticmethod(def_handoff)
    select_agents = staticmethod(select_agents)


orchestration_plugin = _OrchestrationPlugin()
