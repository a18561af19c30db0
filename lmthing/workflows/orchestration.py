"""Orchestrations as workflow types of their own: ``def_workflow`` at module level.

``code_review = def_workflow("code_review", [step(...), ...])`` makes a Temporal workflow type
named ``code_review`` that a worker registers like a prompt, so it starts from Python
(``start_orchestration``), from ``temporal workflow start --type code_review --input '{...}'``
or from the UI. Its agents are prompts of the worker (each a child workflow, named after the
workflow id, the step and the attempt), its tools ``@tool`` functions (activities), its
timeouts durable timers; a failure ends it with a non-retryable error that names the step.
``def_pipeline``, ``def_parallel`` and ``def_orchestration`` (any node: a team pattern, a plan)
do the same for the other constructs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from lmthing.orchestration import registry
from lmthing.orchestration.context import Context, OrchestrationFailed, StepFailed, Trace
from lmthing.orchestration.graph import Step, pipeline, workflow as make_workflow
from lmthing.orchestration.nodes import Node
from lmthing.orchestration.parallel import parallel
from lmthing.prompt.stateful_prompt import PromptError
from lmthing.prompt.tools import ActivityTool, activity_tool_def
from lmthing.prompt.types import RunResult

from .config import RunConfig, warn_unknown_fields
from .errors import non_deterministic
from .search_attributes import child_attributes
from .errors import cause_message as _cause_message
from .agent_calls import child_summary, outcome_of
from .tool_calls import ToolRunner

_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


class WorkflowHost:
    """Runs a standalone orchestration's agents (prompts, by name) and tools (``@tool``)."""

    def __init__(self, config: RunConfig, trace: Trace) -> None:
        self.config = config
        self.trace = trace
        self.running: list[str] = []
        self._tools = ToolRunner(workflow_id=workflow.info().workflow_id, start_agent=_no_sub_agents)

    async def run_agent(self, name: str, args: Any, key: str) -> dict[str, Any]:
        if not self.has_agent(name):
            return {"error": f"No prompt named {name!r} is defined on this worker (prompts: {', '.join(self.agent_names()) or 'none'})"}
        child_id = f"{workflow.info().workflow_id}/{name}/{key}"
        self.running.append(name)
        try:
            result: RunResult = await workflow.execute_child_workflow(
                name, args=[args, self.config], id=child_id, result_type=RunResult, static_summary=child_summary(name, child_id),
                search_attributes=child_attributes(name, workflow.info().typed_search_attributes, self.config.search_attributes),
            )
        except ChildWorkflowError as err:
            return {"error": f"Agent '{name}' failed: {_cause_message(err)}"}
        finally:
            self.running.remove(name)
        return outcome_of(result, structured=True)

    async def run_tool(self, tool: Any, args: Any, key: str) -> tuple[Any, bool]:
        if not isinstance(tool, ActivityTool):
            return {"error": f"A standalone orchestration runs @tool functions; {tool!r} is not one (pass the function itself)"}, True
        self.running.append(tool.name)
        try:
            return await self._tools.run_tool(activity_tool_def(tool), args, call_id=key, step=0, key=key)
        finally:
            self.running.remove(tool.name)

    def has_agent(self, name: str) -> bool:
        entry = registry.get(name)
        return entry is not None and entry.kind == "prompt"

    def agent_names(self) -> list[str]:
        return registry.names("prompt")


async def _no_sub_agents(*_: Any) -> RunResult:  # pragma: no cover - a standalone run has no def_agent
    raise ApplicationError("A standalone orchestration has no def_agent sub-agents; name a prompt instead", non_retryable=True)


class OrchestrationStatus(BaseModel):
    name: str
    phase: str = "running"
    running: list[str] = []
    finished_steps: int = 0


class OrchestrationWorkflow:
    """Base of the workflow classes ``def_workflow`` and its siblings generate."""

    node: ClassVar[Node]
    orchestration_name: ClassVar[str]
    input_model: ClassVar[type[BaseModel] | None] = None

    @workflow.init
    def __init__(self, input: Any = None, config: RunConfig | None = None) -> None:
        self._trace = Trace()
        self._phase = "running"
        self._host: WorkflowHost | None = None

    @workflow.query
    def steps(self) -> list[dict[str, Any]]:
        """What ran so far: every step, stage, branch group and team pattern, in order."""
        return list(self._trace.entries)

    @workflow.query
    def status(self) -> OrchestrationStatus:
        running = list(self._host.running) if self._host else []
        return OrchestrationStatus(name=self.orchestration_name, phase=self._phase, running=running,
                                   finished_steps=len(self._trace.entries))

    async def _execute(self, input: Any, config: Any) -> Any:
        name = self.orchestration_name
        try:
            run_config = RunConfig.model_validate(config or {})
            warn_unknown_fields(run_config, name)
            if self.input_model is not None:
                input = self.input_model.model_validate(input if input is not None else {}).model_dump(mode="json")
        except ValidationError as err:
            from lmthing.prompt.tools import format_validation_error

            what = "run config" if err.title == "RunConfig" else "input"
            raise ApplicationError(f"Invalid {what} for {self.node.kind} '{name}': {format_validation_error(err)}",
                                   type="InvalidOrchestrationInput", non_retryable=True) from None
        self._host = WorkflowHost(run_config, self._trace)
        ctx = Context(host=self._host, key=self.node.kind, input=input, trace=self._trace)
        try:
            result = await self.node.execute(ctx) if hasattr(self.node, "execute") else await self.node.run(ctx)  # type: ignore[attr-defined]
        except OrchestrationFailed as err:
            self._phase = "failed"
            raise ApplicationError(str(err), err.record, type=err.kind, non_retryable=True) from None
        except StepFailed as err:
            self._phase = "failed"
            raise ApplicationError(f"{self.node.kind} '{name}' failed: {err}", type="OrchestrationFailed", non_retryable=True) from None
        except RestrictedWorkflowAccessError as err:
            self._phase = "failed"
            raise non_deterministic(f"{self.node.kind} '{name}'", err) from None
        except PromptError as err:
            self._phase = "failed"
            raise ApplicationError(f"{self.node.kind} '{name}': {err}", type="PromptError", non_retryable=True) from None
        except (workflow.NondeterminismError, FailureError):
            raise
        except Exception as err:  # a bug in the orchestration's own code: fail the run, not the task, forever
            self._phase = "failed"
            raise ApplicationError(f"{self.node.kind} '{name}' raised {type(err).__name__}: {err}",
                                   type="OrchestrationCodeError", non_retryable=True) from None
        self._phase = "finished"
        if hasattr(result, "trace"):
            result.trace = list(self._trace.entries)
        return result


# @workflow.init and @workflow.run must have identical parameters, annotations included.
# Any, not RunConfig: a config that does not decode must fail the run, not every workflow
# task (see RUN_PARAMETERS in prompt_workflow.py).
OrchestrationWorkflow.__init__.__annotations__ = {"input": Any, "config": Any, "return": None}


def def_orchestration(name: str, node: Node, *, description: str = "", input_model: type[BaseModel] | None = None,
                      capabilities: list[str] | None = None, module: str | None = None) -> type[OrchestrationWorkflow]:
    """Any orchestration node (a team pattern, a plan...) as a workflow type named ``name``.
    Bind the result at module level (``review = def_orchestration(...)``): the worker finds
    it there, like a prompt."""
    if not isinstance(node, Node):
        raise TypeError(f"def_orchestration({name!r}): give an orchestration node, got {node!r}")
    result_type = _result_type(node)

    async def run(self: OrchestrationWorkflow, input: Any = None, config: RunConfig | None = None) -> Any:
        return await self._execute(input, config)

    ident = _IDENTIFIER.sub("_", name)
    module = module or _caller_module()
    run.__qualname__ = f"{ident}.run"
    run.__module__ = module
    run.__annotations__ = {"input": Any, "config": Any, "return": result_type}
    cls = type(ident, (OrchestrationWorkflow,), {
        "node": node, "orchestration_name": name, "input_model": input_model, "run": workflow.run(run),
        "__doc__": description or f"The {node.kind} {name!r}.",
    })
    cls.__module__ = module
    registry.register(registry.AgentEntry(
        name=name, kind="workflow", description=description, capabilities=registry.check_capabilities(name, capabilities),
        input_schema=input_model.model_json_schema() if input_model else None, module=module,
        extra={"construct": node.kind},
    ))
    return workflow.defn(name=name)(cls)


def def_workflow(name: str, steps: list[Step], *, max_duration: float | None = None, max_iterations: int | None = None,
                 description: str = "", input_model: type[BaseModel] | None = None,
                 capabilities: list[str] | None = None) -> type[OrchestrationWorkflow]:
    """001's ``defWorkflow`` as a workflow type of its own (see the module docstring)."""
    node = make_workflow(name, steps, max_duration=max_duration, max_iterations=max_iterations, description=description)
    return def_orchestration(name, node, description=description, input_model=input_model, capabilities=capabilities,
                             module=_caller_module())


def def_pipeline(name: str, stages: list[Any], *, description: str = "", input_model: type[BaseModel] | None = None,
                 capabilities: list[str] | None = None) -> type[OrchestrationWorkflow]:
    """001's ``defPipeline`` as a workflow type of its own."""
    return def_orchestration(name, pipeline(name, stages), description=description, input_model=input_model,
                             capabilities=capabilities, module=_caller_module())


def def_parallel(name: str, branches: Any, *, description: str = "", input_model: type[BaseModel] | None = None,
                 capabilities: list[str] | None = None, **options: Any) -> type[OrchestrationWorkflow]:
    """001's ``defParallel`` as a workflow type of its own."""
    return def_orchestration(name, parallel(branches, name=name, **options), description=description,
                             input_model=input_model, capabilities=capabilities, module=_caller_module())


def _result_type(node: Node) -> Any:
    from lmthing.orchestration.graph import Pipeline, PipelineResult, Workflow, WorkflowResult
    from lmthing.orchestration.parallel import Parallel, ParallelResult
    from lmthing.orchestration.teams import TeamResult, TeamRun

    for kind, result in ((Workflow, WorkflowResult), (Pipeline, PipelineResult), (Parallel, ParallelResult), (TeamRun, TeamResult)):
        if isinstance(node, kind):
            return result
    return Any


def _caller_module() -> str:
    import sys

    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("lmthing.workflows"):
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_globals.get("__name__", "__main__") if frame is not None else "__main__"


def is_orchestration(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, OrchestrationWorkflow) and obj is not OrchestrationWorkflow


def bind_to_module(cls: type[OrchestrationWorkflow], module_name: str, attribute: str) -> None:
    """The sandbox re-imports a workflow class as ``from <module> import <class name>``: name
    the class after the attribute of its own module that holds it (``review = def_workflow(...)``)."""
    import sys

    own = sys.modules.get(module_name)
    names = [k for k, v in vars(own).items() if v is cls] if own is not None else []
    if not names:
        raise TypeError(
            f"{cls.node.kind} '{cls.orchestration_name}' must be bound at module level in {module_name} "
            f"(e.g. {attribute} = def_workflow(...)), so the workflow sandbox can re-import it"
        )
    attribute = names[0]
    cls.__name__ = cls.__qualname__ = attribute
    cls.run.__qualname__ = f"{attribute}.run"  # type: ignore[attr-defined]


def check_agents_known(cls: type[OrchestrationWorkflow], prompt_names: Callable[[], list[str]]) -> None:
    """Every agent the orchestration names is a prompt of the worker (checked when the
    worker is built, before any run starts)."""
    known = set(prompt_names())
    unknown = sorted(a for a in cls.node.agents() if a not in known)
    if unknown:
        raise ValueError(
            f"{cls.node.kind} '{cls.orchestration_name}' calls agent {', '.join(repr(a) for a in unknown)}, but no prompt "
            f"of this worker has that name (prompts: {', '.join(sorted(known)) or 'none'}); define it with @prompt in the app"
        )
