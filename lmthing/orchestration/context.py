"""What an orchestration run works with: the host that runs agents and tools, the context a
step or branch receives, the trace of what ran, and the errors.

Engine-neutral: nothing here imports temporalio. Inside a Temporal workflow the host starts
child workflows and activities, ``asyncio`` timers are durable Temporal timers and a
cancelled task is a cancellation request that the history shows; in a unit test the same
code runs on a plain event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from lmthing.prompt.stateful_prompt import PromptError


class DefinitionError(PromptError):
    """An orchestration is declared wrongly (unknown step or agent, unbounded loop, ...); raised
    where it is declared, before anything runs. The message names the fix."""


class StepFailed(Exception):
    """One action failed (its agent answered with an error, its tool failed, its function
    raised, or it timed out); ``where`` names the step, stage or branch."""

    def __init__(self, where: str, message: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message
        self.timed_out = timed_out


# The kind of OrchestrationFailed for a user function (condition, predicate...) that raised.
CODE_ERROR = "OrchestrationCodeError"


class OrchestrationFailed(PromptError):
    """A whole workflow, pipeline, parallel group or team failed; ``record`` is its trace."""

    def __init__(self, message: str, record: dict[str, Any] | None = None, *, kind: str = "OrchestrationFailed") -> None:
        super().__init__(message)
        self.record = record or {}
        self.kind = kind


class Host(Protocol):
    """Runs the durable parts: an agent as a child workflow, a tool as an activity (or an
    in-workflow function). Keys are unique within the run and make the child ids."""

    async def run_agent(self, name: str, args: Any, key: str) -> dict[str, Any]:
        """``{"response", "structured"?, "validationError"?}`` or ``{"error"}``."""

    async def run_tool(self, tool: Any, args: Any, key: str) -> tuple[Any, bool]:
        """``(result, is_error)``."""

    def has_agent(self, name: str) -> bool:
        """Whether ``name`` can be run (for checks made where an orchestration is declared)."""

    def agent_names(self) -> list[str]:
        """Every agent this host can run, for error messages."""


class Results(dict[str, Any]):
    """Earlier step results by step id; ``ctx.results.analyze`` reads like ``ctx.results["analyze"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no result for step {name!r} (steps with results: {', '.join(self) or 'none'})") from None


@dataclass
class Trace:
    """The record of one orchestration run: every node that ran, in order. It is returned
    in the result, kept on the step record (``handle.steps()``) and shown by queries."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **entry: Any) -> dict[str, Any]:
        clean = {k: to_jsonable_python(v, fallback=repr) for k, v in entry.items() if v is not None}
        self.entries.append(clean)
        return clean


@dataclass
class Context:
    """What a step action, a stage or a branch receives.

    ``input`` is the orchestration's input (or, in a pipeline or plan, the value flowing in),
    ``results`` the earlier steps' results, ``state`` a dict shared by every step of the run,
    ``error`` the failure that routed here (``on_error`` targets), ``iteration`` how many
    times this step has run before, ``attempt`` the retry attempt (1-based).
    """

    host: Host
    key: str
    input: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    results: Results = field(default_factory=Results)
    trace: Trace = field(default_factory=Trace)
    where: str = ""
    step: str | None = None
    iteration: int = 0
    attempt: int = 1
    error: str | None = None
    _calls: int = 0

    def child(self, key: str, where: str, **changes: Any) -> Context:
        """A context for a nested node: same host, state and trace, its own key."""
        return Context(
            host=self.host, key=f"{self.key}/{key}", input=changes.pop("input", self.input), state=self.state,
            results=changes.pop("results", self.results), trace=self.trace, where=where, **changes,
        )

    def _next_key(self, key: str | None) -> str:
        if key is not None:
            return f"{self.key}/{key}"
        self._calls += 1
        return f"{self.key}/{self._calls}"

    async def run_agent(self, name: str, args: Any = None, *, key: str | None = None) -> Any:
        """Run agent ``name`` (a ``def_agent`` of the prompt, or a prompt by name) as a child
        workflow; returns its structured reply if it has a response schema, else its text.
        An agent that fails raises :class:`StepFailed` (a step's retries and ``on_error`` apply)."""
        outcome = await self.host.run_agent(name, _jsonable(args), self._next_key(key))
        if "error" in outcome:
            raise StepFailed(self.where or name, str(outcome["error"]))
        if outcome.get("validationError"):
            raise StepFailed(self.where or name, f"agent '{name}' answered without matching its response schema: {outcome['validationError']}")
        return outcome["structured"] if outcome.get("structured") is not None else outcome.get("response", "")

    async def run_tool(self, tool: Any, args: Any = None, *, key: str | None = None) -> Any:
        """Run a tool (a ``def_tool`` name of the prompt, or an ``@tool`` function) as the
        model's call would run; a tool error raises :class:`StepFailed`."""
        result, is_error = await self.host.run_tool(tool, _jsonable(args) if args is not None else {}, self._next_key(key))
        if is_error:
            message = result.get("error", result) if isinstance(result, dict) else result
            raise StepFailed(self.where or getattr(tool, "name", str(tool)), str(message))
        return result


Action = Callable[[Context], Any | Awaitable[Any]]


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value) if value is not None else None


async def with_timeout(coro: Awaitable[Any], seconds: float | None, where: str) -> Any:
    """Await ``coro``; past ``seconds`` (a durable timer in a workflow) it is cancelled (a
    real cancellation of its child workflows and activities) and :class:`StepFailed` says so."""
    if seconds is None:
        return await coro
    # Not asyncio.wait_for: a cancelled child workflow ends with its own (cancelled) error,
    # which wait_for would raise instead of the timeout.
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task in done:
        return task.result()
    raise StepFailed(where, f"timed out after {seconds:g} s (cancelled)", timed_out=True)


def elapsed_since(start: float) -> float:
    """Seconds since ``start`` on the running loop's clock (workflow time in a workflow)."""
    return asyncio.get_running_loop().time() - start


def now() -> float:
    return asyncio.get_running_loop().time()
