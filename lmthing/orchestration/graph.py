"""Workflows of named steps (``001`` defWorkflow) and linear pipelines (``001`` defPipeline).

A workflow runs its steps from the first one. After a step, the run goes to its
``on_success`` step (default: the next one in the list); a step that still fails after its
``retries`` goes to its ``on_error`` step (which sees ``ctx.error``), or fails the workflow;
a step whose ``condition`` is false is skipped (the next one in the list runs). Routing back
to an earlier step makes a loop, which must be bounded: ``max_iterations`` on a step of the
loop or on the workflow; a step that would run more often fails the workflow. ``END`` ends
the workflow. ``timeout`` (per attempt) and ``max_duration`` (the whole) are durable timers;
what runs when they fire is cancelled.

Everything is checked when the workflow is declared (unknown routes, unbounded loops, bad
numbers), so a wrong workflow never starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from .context import CODE_ERROR, Context, DefinitionError, OrchestrationFailed, Results, StepFailed, with_timeout
from .nodes import Node, as_node, call_agent, call_check, call_tool

END = "__end__"


class StepRun(BaseModel):
    """One run of one step, as the result and the trace show it."""

    step: str
    status: str  # "ok" | "skipped" | "failed"
    iteration: int = 0
    attempts: int = 0
    error: str | None = None


class WorkflowResult(BaseModel):
    """What a workflow returns: ``output`` is the last successful step's result."""

    name: str
    output: Any = None
    results: dict[str, Any] = Field(default_factory=dict)
    runs: list[StepRun] = Field(default_factory=list)
    state: dict[str, Any] = Field(default_factory=dict)
    trace: list[dict[str, Any]] = Field(default_factory=list)


@dataclass
class Step:
    id: str
    action: Node
    condition: Callable[[Context], Any] | None = None
    on_success: str | None = None
    on_error: str | None = None
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    max_iterations: int | None = None


def step(
    id: str,
    action: Any = None,
    *,
    agent: str | None = None,
    tool: Any = None,
    args: Any = None,
    condition: Callable[[Context], Any] | None = None,
    on_success: str | None = None,
    on_error: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    max_iterations: int | None = None,
) -> Step:
    """One workflow step: an ``action`` (``fn(ctx)`` or a node), or ``agent=`` / ``tool=``
    with ``args`` (a value or ``fn(ctx)``; default: the workflow's input)."""
    where = f"step {id!r}"
    if not isinstance(id, str) or not id or id == END:
        raise DefinitionError(f"step: the id must be a non-empty string other than {END!r}, got {id!r}")
    given = [x for x in (action, agent, tool) if x is not None]
    if len(given) != 1:
        raise DefinitionError(f"{where}: give exactly one of action=fn(ctx), agent='<name>' or tool=<tool>")
    if args is not None and action is not None:
        raise DefinitionError(f"{where}: args= goes with agent= or tool=; an action reads ctx.input itself")
    node = call_agent(agent, args) if agent is not None else call_tool(tool, args) if tool is not None else as_node(action, where)
    if condition is not None and not callable(condition):
        raise DefinitionError(f"{where}: condition must be a function fn(ctx) -> bool, got {condition!r}")
    _check_count(where, "retries", retries, 0)
    if not isinstance(retry_delay, (int, float)) or retry_delay < 0:
        raise DefinitionError(f"{where}: retry_delay is in seconds and must be >= 0, got {retry_delay!r}")
    _check_seconds(where, "timeout", timeout)
    if max_iterations is not None:
        _check_count(where, "max_iterations", max_iterations, 1)
    return Step(id, node, condition, on_success, on_error, retries, float(retry_delay), timeout, max_iterations)


def _check_count(where: str, what: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise DefinitionError(f"{where}: {what} must be an int >= {low}, got {value!r}")


def _check_seconds(where: str, what: str, value: Any) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
        raise DefinitionError(f"{where}: {what} is in seconds and must be > 0, got {value!r}")


@dataclass
class Workflow(Node):
    name: str
    steps: list[Step]
    max_duration: float | None = None
    max_iterations: int | None = None
    description: str = ""
    kind = "workflow"
    _by_id: dict[str, Step] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        where = f"workflow {self.name!r}"
        if not self.steps or not all(isinstance(s, Step) for s in self.steps):
            raise DefinitionError(f"{where}: give a list of step(...) items (at least one)")
        for s in self.steps:
            if s.id in self._by_id:
                raise DefinitionError(f"{where}: two steps have the id {s.id!r}; step ids must be unique")
            self._by_id[s.id] = s
        known = ", ".join(self._by_id)
        for s in self.steps:
            for what, target in (("on_success", s.on_success), ("on_error", s.on_error)):
                if target is not None and target != END and target not in self._by_id:
                    raise DefinitionError(f"{where}: step {s.id!r} routes {what} to unknown step {target!r} (steps: {known}; END ends the workflow)")
        _check_seconds(where, "max_duration", self.max_duration)
        if self.max_iterations is not None:
            _check_count(where, "max_iterations", self.max_iterations, 1)
        for loop in self._loops():
            if self.max_iterations is None and all(self._by_id[i].max_iterations is None for i in loop):
                raise DefinitionError(
                    f"{where}: steps {' -> '.join(loop)} -> {loop[0]} form a loop with no exit bound; set max_iterations "
                    f"on one of them (step(..., max_iterations=N)) or on the workflow"
                )

    def _next(self, index: int) -> str:
        return self.steps[index + 1].id if index + 1 < len(self.steps) else END

    def _edges(self) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {}
        for i, s in enumerate(self.steps):
            targets = {s.on_success or self._next(i), self._next(i)} if s.condition else {s.on_success or self._next(i)}
            if s.on_error:
                targets.add(s.on_error)
            edges[s.id] = {t for t in targets if t != END}
        return edges

    def _loops(self) -> list[list[str]]:
        """The routing graph's strongly connected parts that loop (Tarjan), in step order."""
        edges, index, low, stack, on_stack, out = self._edges(), {}, {}, [], set(), []
        counter = [0]

        def visit(v: str) -> None:
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on_stack.add(v)
            for w in sorted(edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                part = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    part.append(w)
                    if w == v:
                        break
                if len(part) > 1 or v in edges[v]:
                    order = [s.id for s in self.steps]
                    out.append(sorted(part, key=order.index))

        for s in self.steps:
            if s.id not in index:
                visit(s.id)
        return out

    def agents(self) -> set[str]:
        return set().union(*(s.action.agents() for s in self.steps))

    def children(self) -> list[Node]:
        return [s.action for s in self.steps]

    async def run(self, ctx: Context) -> Any:
        try:
            return (await self.execute(ctx)).output
        except OrchestrationFailed as err:  # nested in another orchestration: that step failed
            if err.kind == CODE_ERROR:
                raise  # a bug in a condition or predicate stays a bug
            raise StepFailed(ctx.where or self.name, str(err)) from None

    async def execute(self, ctx: Context) -> WorkflowResult:
        where = ctx.where or f"workflow {self.name!r}"
        out = WorkflowResult(name=self.name)
        results = Results()
        first = len(ctx.trace.entries)
        at: list[str] = [self.steps[0].id]
        try:
            await with_timeout(self._walk(ctx, out, results, at, first), self.max_duration, where)
        except StepFailed as err:
            if not err.timed_out:
                raise
            done = ", ".join(r.step for r in out.runs if r.status == "ok") or "none"
            out.runs.append(StepRun(step=at[0], status="failed", error="cancelled: max_duration exceeded"))
            raise OrchestrationFailed(
                f"{where} exceeded max_duration of {self.max_duration:g} s during step {at[0]!r} (it was cancelled); "
                f"steps finished: {done}", self._record(out, results, ctx, first), kind="MaxDurationExceeded",
            ) from None
        self._record(out, results, ctx, first)
        return out

    def _record(self, out: WorkflowResult, results: Results, ctx: Context, first: int) -> dict[str, Any]:
        out.results, out.state, out.trace = dict(results), dict(ctx.state), ctx.trace.entries[first:]
        return out.model_dump(mode="json")

    async def _walk(self, ctx: Context, out: WorkflowResult, results: Results, at: list[str], first: int) -> None:
        runs = {s.id: 0 for s in self.steps}
        current, error = self.steps[0].id, None
        order = [s.id for s in self.steps]
        while current != END:
            at[0] = current
            s = self._by_id[current]
            index = order.index(current)
            iteration = runs[s.id]
            sctx = ctx.child(f"{s.id}.{iteration}", s.id, results=results, step=s.id, iteration=iteration, error=error)
            error = None
            if s.condition is not None and not await call_check(f"workflow {self.name!r}: the condition of step {s.id!r}", s.condition, sctx):
                out.runs.append(StepRun(step=s.id, status="skipped", iteration=iteration))
                ctx.trace.add(kind="step", workflow=self.name, step=s.id, status="skipped", iteration=iteration)
                current = self._next(index)
                continue
            bound = s.max_iterations or self.max_iterations
            if bound is not None and iteration >= bound:
                out.runs.append(StepRun(step=s.id, status="failed", iteration=iteration, error="max_iterations reached"))
                raise OrchestrationFailed(
                    f"workflow {self.name!r}: step {s.id!r} would run a {iteration + 1}th time; its max_iterations is {bound}",
                    self._record(out, results, ctx, first), kind="MaxIterationsExceeded",
                )
            runs[s.id] += 1
            try:
                value, attempts = await self._attempts(s, sctx)
            except StepFailed as err:
                attempts = s.retries + 1
                out.runs.append(StepRun(step=s.id, status="failed", iteration=iteration, attempts=attempts, error=err.reason))
                ctx.trace.add(kind="step", workflow=self.name, step=s.id, status="failed", iteration=iteration,
                              attempts=attempts, error=err.reason, routed_to=s.on_error)
                if s.on_error is None:
                    raise OrchestrationFailed(
                        f"workflow {self.name!r} failed at step {s.id!r} after {attempts} attempt(s): {err.reason}",
                        self._record(out, results, ctx, first), kind="WorkflowStepFailed",
                    ) from None
                current, error = s.on_error, err.reason
                continue
            results[s.id] = value
            out.output = value
            out.runs.append(StepRun(step=s.id, status="ok", iteration=iteration, attempts=attempts))
            ctx.trace.add(kind="step", workflow=self.name, step=s.id, status="ok", iteration=iteration, attempts=attempts)
            current = s.on_success or self._next(index)

    async def _attempts(self, s: Step, sctx: Context) -> tuple[Any, int]:
        for attempt in range(1, s.retries + 2):
            actx = sctx.child(str(attempt), sctx.where, results=sctx.results, step=s.id, iteration=sctx.iteration,
                              attempt=attempt, error=sctx.error)
            try:
                return await with_timeout(s.action.run(actx), s.timeout, s.id), attempt
            except StepFailed:
                if attempt > s.retries:
                    raise
                if s.retry_delay:
                    await asyncio.sleep(s.retry_delay)  # a durable timer in a workflow
        raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------- pipeline
class PipelineResult(BaseModel):
    name: str
    output: Any = None
    stages: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Pipeline(Node):
    """Stages in order, each stage's output the next one's input. A plain function stage is
    called with the value (``fn(value)``); a node (``call_agent``, ``task``...) gets it as
    ``ctx.input``."""

    name: str
    stages: list[tuple[str, Node]]
    kind = "pipeline"

    def agents(self) -> set[str]:
        return set().union(*(n.agents() for _, n in self.stages))

    def children(self) -> list[Node]:
        return [n for _, n in self.stages]

    async def run(self, ctx: Context) -> Any:
        try:
            return (await self.execute(ctx)).output
        except OrchestrationFailed as err:
            if err.kind == CODE_ERROR:
                raise
            raise StepFailed(ctx.where or self.name, str(err)) from None

    async def execute(self, ctx: Context) -> PipelineResult:
        out = PipelineResult(name=self.name)
        value = ctx.input
        for stage_name, node in self.stages:
            sctx = ctx.child(stage_name, f"pipeline {self.name!r} stage {stage_name!r}", input=value, step=stage_name)
            try:
                value = await node.run(sctx)
            except StepFailed as err:
                ctx.trace.add(kind="stage", pipeline=self.name, stage=stage_name, status="failed", error=err.reason)
                raise OrchestrationFailed(
                    f"pipeline {self.name!r} failed at stage {stage_name!r}: {err.reason}",
                    out.model_dump(mode="json"), kind="PipelineStageFailed",
                ) from None
            out.stages[stage_name] = value
            ctx.trace.add(kind="stage", pipeline=self.name, stage=stage_name, status="ok")
        out.output = value
        return out


class _ValueStage(Node):
    """A plain function stage: ``fn(value)``."""

    kind = "task"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    async def run(self, ctx: Context) -> Any:
        from .nodes import Task

        return await Task(lambda c: self.fn(c.input), name=getattr(self.fn, "__name__", "")).run(ctx)


def pipeline(name: str, stages: list[Any]) -> Pipeline:
    """Stages as ``(name, fn_or_node)`` pairs or ``{"stage": name, "fn": ...}`` dicts (001's form)."""
    where = f"pipeline {name!r}"
    if not isinstance(stages, list) or not stages:
        raise DefinitionError(f"{where}: give a list of stages, e.g. [('extract', fn), ('summarize', call_agent('writer'))]")
    out: list[tuple[str, Node]] = []
    for i, item in enumerate(stages):
        if isinstance(item, Mapping) and "stage" in item:
            stage_name, fn = item["stage"], item.get("fn", item.get("action"))
        elif isinstance(item, tuple) and len(item) == 2:
            stage_name, fn = item
        else:
            raise DefinitionError(f"{where}: stage {i} must be (name, fn) or {{'stage': name, 'fn': fn}}, got {item!r}")
        if not isinstance(stage_name, str) or not stage_name:
            raise DefinitionError(f"{where}: stage {i} needs a non-empty name, got {stage_name!r}")
        if stage_name in (n for n, _ in out):
            raise DefinitionError(f"{where}: two stages are named {stage_name!r}")
        node = fn if isinstance(fn, Node) else _ValueStage(fn) if callable(fn) else as_node(fn, f"{where} stage {stage_name!r}")
        out.append((stage_name, node))
    return Pipeline(name, out)


def workflow(
    name: str, steps: list[Step], *, max_duration: float | None = None, max_iterations: int | None = None, description: str = ""
) -> Workflow:
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"def_workflow: the name must be a non-empty string, got {name!r}")
    return Workflow(name, list(steps) if isinstance(steps, (list, tuple)) else steps, max_duration, max_iterations, description)
