"""The building blocks every orchestration is made of, and 004's plan combinators.

A node is something that runs with a :class:`~.context.Context` and returns a value:
``task(fn)`` (a workflow-side function), ``call_agent(name)`` (a child workflow),
``call_tool(tool)`` (an activity or in-workflow tool), and the combinators ``sequence``
(each output is the next input), ``choose`` (branch on a predicate or on an agent's
decision) and ``loop_while`` (bounded). ``parallel`` lives in :mod:`.parallel`, workflows
and pipelines in :mod:`.graph`, teams in :mod:`.teams`; all of them are nodes too, so they
nest in one another.

Every node is checked where it is built: a wrong argument raises :class:`DefinitionError`
with the fix, before any model call.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lmthing.prompt.stateful_prompt import PromptError

from .context import CODE_ERROR, Context, DefinitionError, OrchestrationFailed, StepFailed

ArgsSpec = Any  # None (the input), a value, or a function of the context


class Node(ABC):
    """Base of every orchestration node."""

    kind = "node"

    @abstractmethod
    async def run(self, ctx: Context) -> Any:
        """Run with ``ctx`` (its ``input`` is the value flowing in) and return the node's value."""

    def agents(self) -> set[str]:
        """Names of the agents this node (and what it contains) calls by name."""
        return set()

    def children(self) -> list[Node]:
        return []


async def call_user(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def call_check(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call a user's condition, predicate, evaluator or key function. One that raises is a
    bug, not a failed step: the orchestration fails at once and says where (no retry, no
    ``on_error`` route), instead of the error surfacing from deep inside."""
    try:
        return await call_user(fn, *args)
    except (StepFailed, PromptError):
        raise
    except Exception as err:
        if is_engine_error(err):
            raise
        raise OrchestrationFailed(f"{where} raised {type(err).__name__}: {err}", kind=CODE_ERROR) from None


def _args_of(spec: ArgsSpec, ctx: Context) -> Any:
    if spec is None:
        return ctx.input
    if callable(spec):
        return spec(ctx)
    return spec


@dataclass
class Task(Node):
    """A workflow-side function ``fn(ctx)`` (sync or async); deterministic like the prompt."""

    fn: Callable[[Context], Any]
    name: str = ""
    kind = "task"

    async def run(self, ctx: Context) -> Any:
        try:
            return await call_user(self.fn, ctx)
        except (StepFailed, PromptError):
            raise  # a failed call keeps its message; a misuse of the prompt API fails the run
        except Exception as err:
            if is_engine_error(err):
                raise  # the engine's own signals (non-determinism, sandbox) are not step failures
            raise StepFailed(ctx.where or self.name or "task", f"{type(err).__name__}: {err}") from None


@dataclass
class AgentCall(Node):
    """Run an agent as a child workflow with ``args`` (default: the input)."""

    name: str
    args: ArgsSpec = None
    kind = "agent"

    async def run(self, ctx: Context) -> Any:
        return await ctx.run_agent(self.name, _args_of(self.args, ctx), key=self.name)

    def agents(self) -> set[str]:
        return {self.name}


@dataclass
class ToolCall(Node):
    """Run a tool (a ``def_tool`` name or an ``@tool`` function) with ``args`` (default: the input)."""

    tool: Any
    args: ArgsSpec = None
    kind = "tool"

    async def run(self, ctx: Context) -> Any:
        name = getattr(self.tool, "name", self.tool)
        return await ctx.run_tool(self.tool, _args_of(self.args, ctx), key=str(name))


@dataclass
class Sequence(Node):
    """Nodes one after another, each output the next input; ``names`` label them (pipeline stages)."""

    nodes: list[Node]
    names: list[str] = field(default_factory=list)
    kind = "sequence"

    def __post_init__(self) -> None:
        if not self.nodes:
            raise DefinitionError("sequence: give at least one node")
        self.names = self.names or [str(i) for i in range(len(self.nodes))]

    async def run(self, ctx: Context) -> Any:
        value = ctx.input
        for name, node in zip(self.names, self.nodes, strict=True):
            value = await node.run(ctx.child(name, _join(ctx.where, name), input=value))
        return value

    def agents(self) -> set[str]:
        return set().union(*(n.agents() for n in self.nodes))

    def children(self) -> list[Node]:
        return list(self.nodes)


@dataclass
class Choose(Node):
    """Run one of ``branches`` (by name): the one ``predicate(ctx)`` returns (True/False pick
    ``"then"``/``"else"``), or the one agent ``decide`` names in its answer (a model decision)."""

    branches: dict[str, Node]
    predicate: Callable[[Context], Any] | None = None
    decide: str | None = None
    kind = "choose"

    def __post_init__(self) -> None:
        if (self.predicate is None) == (self.decide is None):
            raise DefinitionError("choose: give either a predicate or decide='<agent name>' (exactly one)")
        if not self.branches:
            raise DefinitionError("choose: give at least one branch")

    async def run(self, ctx: Context) -> Any:
        if self.predicate is not None:
            picked = await call_check(f"the predicate of choose {ctx.where or ''}".rstrip(), self.predicate, ctx)
            if isinstance(picked, bool):
                picked = "then" if picked else "else"
        else:
            assert self.decide is not None
            options = list(self.branches)
            answer = await ctx.run_agent(self.decide, {"task": _text(ctx.input), "options": options}, key=f"decide-{self.decide}")
            picked = pick_option(answer, options)
            if picked is None:
                raise StepFailed(ctx.where or "choose", f"agent '{self.decide}' answered {str(answer)[:200]!r}, which names none of {options}")
        node = self.branches.get(str(picked))
        ctx.trace.add(kind="choose", where=ctx.where or "choose", chose=str(picked) if node else None)
        if node is None:
            return ctx.input  # a predicate chose no branch: the value flows on unchanged
        return await node.run(ctx.child(str(picked), _join(ctx.where, str(picked))))

    def agents(self) -> set[str]:
        return set().union({self.decide} if self.decide else set(), *(n.agents() for n in self.branches.values()))

    def children(self) -> list[Node]:
        return list(self.branches.values())


@dataclass
class LoopWhile(Node):
    """Run ``body`` while ``predicate(ctx)`` holds, each output the next input, at most
    ``max_iterations`` times (then the loop ends with the last value)."""

    predicate: Callable[[Context], Any]
    body: Node
    max_iterations: int
    kind = "loop_while"

    def __post_init__(self) -> None:
        check_bound("loop_while", self.max_iterations)

    async def run(self, ctx: Context) -> Any:
        value, runs = ctx.input, 0
        while runs < self.max_iterations:
            probe = ctx.child(f"check-{runs}", ctx.where, input=value, iteration=runs)
            if not await call_check(f"the predicate of loop_while {ctx.where or ''}".rstrip(), self.predicate, probe):
                break
            value = await self.body.run(ctx.child(str(runs), _join(ctx.where, f"#{runs}"), input=value, iteration=runs))
            runs += 1
        ctx.trace.add(kind="loop_while", where=ctx.where or "loop_while", iterations=runs,
                      exhausted=runs >= self.max_iterations or None)
        return value

    def agents(self) -> set[str]:
        return self.body.agents()

    def children(self) -> list[Node]:
        return [self.body]


def check_bound(where: str, bound: Any) -> None:
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1:
        raise DefinitionError(f"{where}: max_iterations must be a positive int (a loop needs an exit bound), got {bound!r}")


def as_node(value: Any, where: str) -> Node:
    """A node from what a user may write: a node, or a function ``fn(ctx)``."""
    if isinstance(value, Node):
        return value
    if callable(value):
        return Task(value, name=getattr(value, "__name__", ""))
    raise DefinitionError(
        f"{where}: {value!r} is not something that can run; give a function fn(ctx), call_agent(name), "
        "call_tool(tool) or another orchestration node"
    )


def pick_option(answer: Any, options: list[str]) -> str | None:
    """The option an agent's answer names: a structured ``{"choice"|"option"|"vote"|"winner"}``,
    or text equal to an option (case and surrounding punctuation ignored), or text that
    names exactly one option."""
    if isinstance(answer, Mapping):
        for key in ("choice", "option", "vote", "winner", "answer"):
            if key in answer:
                return pick_option(answer[key], options)
        return None
    text = str(answer).strip().strip(".!\"'`*").strip()
    by_lower = {o.lower(): o for o in options}
    if text.lower() in by_lower:
        return by_lower[text.lower()]
    named = [o for o in options if o.lower() in text.lower()]
    return named[0] if len(named) == 1 else None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    from pydantic_core import to_jsonable_python

    return json.dumps(to_jsonable_python(value, fallback=repr), ensure_ascii=False)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


# --------------------------------------------------------------------------- builders
def task(fn: Callable[[Context], Any]) -> Task:
    """A workflow-side function as a node (004's ``Task``)."""
    if not callable(fn):
        raise DefinitionError(f"task: give a function fn(ctx), got {fn!r}")
    return Task(fn, name=getattr(fn, "__name__", ""))


def call_agent(name: str, args: ArgsSpec = None) -> AgentCall:
    """Run agent ``name`` as a child workflow; ``args`` a value or ``fn(ctx)`` (default: the input)."""
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"call_agent: give the agent's name (a def_agent or a prompt), got {name!r}")
    return AgentCall(name, args)


def call_tool(tool: Any, args: ArgsSpec = None) -> ToolCall:
    """Run a tool (a ``def_tool`` name or an ``@tool`` function); ``args`` a value or ``fn(ctx)``."""
    if not (isinstance(tool, str) and tool) and getattr(tool, "activity_name", None) is None:
        raise DefinitionError(f"call_tool: give a def_tool name or an @tool function, got {tool!r}")
    return ToolCall(tool, args)


def sequence(*nodes: Any) -> Sequence:
    """004's ``sequence``: each node's output is the next one's input."""
    return Sequence([as_node(n, f"sequence item {i}") for i, n in enumerate(nodes)])


def choose(
    predicate: Callable[[Context], Any] | None = None,
    then: Any = None,
    otherwise: Any = None,
    *,
    branches: Mapping[str, Any] | None = None,
    decide: str | None = None,
) -> Choose:
    """004's ``choose``: ``choose(pred, then, otherwise)``, or ``choose(pred, branches={...})``
    where ``pred`` returns a branch name, or ``choose(decide="router", branches={...})``
    where agent ``router`` is asked which branch to take (given ``{"task", "options"}``)."""
    named: dict[str, Any] = dict(branches or {})
    if then is not None:
        named["then"] = then
    if otherwise is not None:
        named["else"] = otherwise
    return Choose({k: as_node(v, f"choose branch {k!r}") for k, v in named.items()}, predicate, decide)


def loop_while(predicate: Callable[[Context], Any], body: Any, *, max_iterations: int) -> LoopWhile:
    """004's ``loop_while``: repeat ``body`` while ``predicate(ctx)`` holds (``ctx.input`` is
    the current value), at most ``max_iterations`` times."""
    if not callable(predicate):
        raise DefinitionError(f"loop_while: the predicate must be a function fn(ctx), got {predicate!r}")
    return LoopWhile(predicate, as_node(body, "loop_while body"), max_iterations)


def walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children():
        out += walk(child)
    return out


def is_engine_error(err: BaseException) -> bool:
    """An error of the workflow engine (Temporal's non-determinism or sandbox errors), which
    must reach the engine instead of being turned into a step failure."""
    return type(err).__module__.split(".")[0] == "temporalio"
