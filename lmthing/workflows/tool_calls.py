"""Running the tool calls of one model reply: validation, callbacks, activities,
in-workflow functions, composites and sub-agents.

Failure contract (ARCHITECTURE.md): bad arguments and tool errors go back to the model
and the run goes on; a tool marked ``critical`` fails the run instead. Several calls in one
reply run concurrently; results come back in call order.

What the model reads is lmthing's (docs/api.md, "Parity with lmthing"): a call it cannot
make, bad arguments, and the error of a tool without callbacks arrive as the bare message
(the AI SDK's error text); a tool with callbacks fails as ``{"error": message}``, which is
also what its ``on_error`` receives; a sub-agent's answer arrives as its text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TemporalError, is_cancelled_exception
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from lmthing.memory.cache import cache_ref, cached_result
from lmthing.observability import tracing
from lmthing.prompt.agents import AgentDef
from lmthing.prompt.humans import ApprovalPolicy
from lmthing.prompt.lifecycle import ErrorEvent, LifecycleEvent, ToolEvent
from lmthing.prompt.stateful_prompt import PreparedStep, PromptError
from lmthing.prompt.tools import (
    ActivityOptions,
    CompositeToolDef,
    ToolCallInfo,
    ToolDef,
    counted_attempts,
    error_message,
    parse_composite_calls,
    temporal_attempts,
    unavailable_tool_message,
)
from lmthing.prompt.types import RunResult, ToolActivityInput, ToolCall, ToolResult
from lmthing.resilience.breaker import BreakerConfig, CircuitBreakerRef

from . import routing
from .agent_calls import AgentCalls, _error
from .errors import cause_message as _cause_message, non_deterministic
from .humans import HumanLoop, dump_args, modified_args
from .resilience_host import RunResilience
from .retries import retry_options, with_retries

# Starts a sub-agent as a child workflow: (agent, args, child id, composite name) -> result.
StartAgent = Callable[[AgentDef, Any, str, str | None], Awaitable[RunResult]]
# Starts another prompt (by workflow type name) as a child workflow: (name, args, child id) -> result.
StartPrompt = Callable[[str, Any, str], Awaitable[RunResult]]


class ToolFailure(Exception):
    """A tool call ended in an error that goes back to the model; ``message`` is its text
    (what lmthing's ``error.message`` was), ``detail`` says which tool and how, for the
    failure of a run (a critical tool)."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message


@dataclass
class ToolRunner(AgentCalls):
    """Runs one step's tool calls for a workflow; tracks what is running for ``status``."""

    workflow_id: str
    start_agent: StartAgent
    humans: HumanLoop | None = None
    # Runs the prompt's lifecycle handlers (before_tool, after_tool, on_error).
    fire: Callable[[str, Callable[[], LifecycleEvent]], Awaitable[None]] | None = None
    # The run's current step, for events of calls made from workflow-side code.
    current_step: Callable[[], int] = lambda: 0
    start_prompt: StartPrompt | None = None
    running_tools: list[str] = field(default_factory=list)
    running_agents: list[str] = field(default_factory=list)
    # Guards, validators, retries and fallbacks (def_guard... docs/resilience.md); the run's
    # state for guards, a note on the step's record, and the prompt's tools by name.
    resilience: RunResilience | None = None
    state: Callable[[], dict[str, Any]] = dict
    note: Callable[[dict[str, Any]], None] = lambda note: None
    tool_named: Callable[[str], Any] = lambda name: None
    # The run's memory service: its def_cache definitions and scopes (docs/memory.md).
    memory: Any = None
    _approvals: dict[str, ApprovalPolicy] = field(default_factory=dict)
    _breakers: dict[str, BreakerConfig] = field(default_factory=dict)

    async def run_all(self, calls: list[ToolCall], prepared: PreparedStep, step: int) -> list[ToolResult]:
        self._approvals = prepared.approvals
        self._breakers = prepared.breakers
        return list(await asyncio.gather(*(self._run_call(c, prepared, step) for c in calls)))

    async def _run_call(self, call: ToolCall, prepared: PreparedStep, step: int) -> ToolResult:
        target = prepared.callables.get(call.name)
        if target is None:
            # Unknown, disabled or filtered out at this step: lmthing's text names every tool
            # the prompt defines (the AI SDK's tool set), not only those offered at this call.
            return _error(call, unavailable_tool_message(call.name, prepared.defined))
        if isinstance(target, ToolDef):
            output, is_error, content = await self._run_tool(target, call.args, call.id, step, call.id)
            return ToolResult(tool_call_id=call.id, name=call.name, result=output, is_error=is_error, content=content)
        if isinstance(target, CompositeToolDef):
            return await self._run_composite_tool(target, call, step)
        if isinstance(target, AgentDef):
            return await self._run_agent(target, call, step)
        return await self._run_composite_agent(target, call, step)

    # ----------------------------------------------------------------------- single tool
    async def _run_tool(
        self, tdef: ToolDef, raw_args: Any, call_id: str, step: int, key_id: str
    ) -> tuple[Any, bool, str | None]:
        """``(result, is_error, content)``: ``content`` is the text the model reads when it is
        not the JSON of ``result`` (an error it gets as the bare message)."""
        where = "activity" if tdef.runs_as_activity else "workflow"
        with tracing.span(f"execute_tool {tdef.name}", tracing.tool_attributes(tdef.name, call_id, where)) as span:
            event = ToolEvent(name="before_tool", step=step, tool=tdef.name, call_id=call_id, args=raw_args)
            await self._fire("before_tool", lambda: event)
            output, is_error, content = await self._run_tool_traced(tdef, raw_args, call_id, step, key_id)
            if is_error:
                tracing.mark_error(span, _error_text(output), "ToolError")
            await self._after(event, output, is_error, "ToolError")
            return output, is_error, content

    async def _fire(self, name: str, make: Callable[[], LifecycleEvent]) -> None:
        if self.fire is not None:
            await self.fire(name, make)

    async def _after(self, before: ToolEvent, output: Any, is_error: bool, error_type: str) -> None:
        """``after_tool`` for the call ``before`` announced, and ``on_error`` when it failed."""
        await self._fire("after_tool", lambda: before.model_copy(update={"name": "after_tool", "result": output, "is_error": is_error}))
        if is_error:
            await self._fire("on_error", lambda: ErrorEvent(
                name="on_error", step=before.step, where="tool", error=_error_text(output), error_type=error_type, tool=before.tool
            ))

    async def _run_tool_traced(
        self, tdef: ToolDef, raw_args: Any, call_id: str, step: int, key_id: str, tried: frozenset[str] = frozenset()
    ) -> tuple[Any, bool, str | None]:
        args, problem = tdef.parse_input(raw_args)
        if problem is not None:
            return {"error": problem}, True, problem
        refused = self.resilience.domain_refusal(tdef.name, args) if self.resilience is not None else None
        if refused is not None:  # def_constraint "domains": a host the tree does not allow
            message, note = refused
            self.note(note)
            return {"error": message}, True, message
        stopped = await self._guard(tdef.name, tdef.guards, args, step, tdef)
        if stopped is not None:
            action, result, is_error = stopped
            if action == "throw":
                return await self._handle_failure(tdef, args, ToolFailure(result["error"]))
            return result, is_error, None
        if tdef.approval and self.humans is not None:
            record = await self.humans.request_approval(
                self._approvals[tdef.approval], tool=tdef.name, args=dump_args(args), tool_def=tdef
            )
            if record.action == "deny":
                return {"denied": True, "by": record.by, "reason": record.reason}, True, None
            args = modified_args(tdef, record, args)
        if tdef.before_call is not None:
            early = await _call_user(tdef.before_call, f"before_call of tool '{tdef.name}'", args)
            if early is not None:
                return (*_jsonable(early, tdef.name), None)
        self.running_tools.append(tdef.name)
        try:
            if tdef.runs_as_activity:
                output = await self._run_activity(tdef, args, call_id, key_id, step)
            else:
                output = await _call_in_workflow(tdef, args, ToolCallInfo(tool_call_id=call_id, step=step, workflow_id=self.workflow_id))
        except ToolFailure as failure:
            return await self._recover(tdef, args, failure, call_id, step, key_id, tried)
        finally:
            self.running_tools.remove(tdef.name)
        problem = tdef.check_response(output)
        if problem is None and tdef.validator is not None:
            output, problem = await self._validate(tdef, output)
        if problem is not None:
            return await self._recover(tdef, args, ToolFailure(problem), call_id, step, key_id, tried)
        if tdef.on_success is not None:
            replaced = await _call_user(tdef.on_success, f"on_success of tool '{tdef.name}'", args, output)
            if replaced is not None:
                output = replaced
        return (*_jsonable(output, tdef.name), None)

    async def _guard(self, name: str, guards: tuple[str, ...], args: Any, step: int,
                     tdef: ToolDef | None = None) -> tuple[str, Any, bool] | None:
        """``(action, result, is_error)`` when a guard of tool or agent ``name`` stops the
        call (``action``: throw, skip or denied), else None: the call goes on."""
        if self.resilience is None:
            return None

        async def ask(policy: ApprovalPolicy, message: str) -> Any:
            assert self.humans is not None
            policy = self._approvals.get(policy.name, policy)  # the guard's approval=, when the prompt defines it
            return await self.humans.request_approval(policy, tool=name, args=dump_args(args), message=message,
                                                      tool_def=tdef)

        outcome = await self.resilience.guard(name, guards, self.state(), args, step,
                                              ask if self.humans is not None else None)
        if outcome is None:
            return None
        self.note({"kind": "guard", "guard": outcome.guard, "tool": name, "action": outcome.action})
        return outcome.action, outcome.result, outcome.is_error

    async def _validate(self, tdef: ToolDef, output: Any) -> tuple[Any, str | None]:
        """The output its ``def_validator`` passed (sanitized), or the failure's text; with
        ``retry_on_failure`` it asks the model to call again while retries are left."""
        assert self.resilience is not None and tdef.validator is not None
        verdict = await self.resilience.validate_output(tdef.validator, output)
        if verdict is None or verdict.valid:
            return (verdict.value if verdict is not None else output), None
        message = verdict.message(tdef.validator)
        if tdef.retry_on_failure and self.resilience.tool_retry_allowed(tdef.name, tdef.max_retries):
            message += ". Call the tool again with arguments that fix this."
        self.note({"kind": "validation", "target": tdef.name, "validator": tdef.validator, "error": message})
        return output, message

    async def _recover(self, tdef: ToolDef, args: Any, failure: ToolFailure, call_id: str, step: int, key_id: str,
                       tried: frozenset[str]) -> tuple[Any, bool, str | None]:
        """A failed call under a ``def_fallback``: its alternative tools in order (same
        arguments), then a ``default`` value; else the failure as usual."""
        spec, alternatives = self.resilience.book.tool_fallback(tdef.name, tdef.fallback) if self.resilience else (None, ())
        if spec is None:
            return await self._handle_failure(tdef, args, failure)
        errors = [{"tool": tdef.name, "error": failure.message}]
        tried = tried | {tdef.name}
        for name in alternatives:
            alt = self.tool_named(name)
            if not isinstance(alt, ToolDef) or name in tried:
                continue
            output, is_error, content = await self._run_tool_traced(alt, dump_args(args), call_id, step,
                                                                    f"{key_id}:{name}", tried | {name})
            if not is_error:
                self.note({"kind": "fallback", "fallback": spec.name, "tool": tdef.name, "answered_by": name, "errors": errors})
                return output, False, content
            errors.append({"tool": name, "error": _error_text(output)})
        if spec.strategy == "default":
            self.note({"kind": "fallback", "fallback": spec.name, "tool": tdef.name, "answered_by": "default",
                       "errors": errors if spec.log_error else []})
            return (*_jsonable(spec.default_value, tdef.name), None)
        self.note({"kind": "fallback", "fallback": spec.name, "tool": tdef.name, "answered_by": None, "errors": errors})
        return await self._handle_failure(tdef, args, failure)

    async def _handle_failure(self, tdef: ToolDef, args: Any, failure: ToolFailure) -> tuple[Any, bool, str | None]:
        if tdef.critical:
            raise ApplicationError(
                f"Critical tool '{tdef.name}' failed: {failure.detail}", type="CriticalToolFailed", non_retryable=True
            )
        error = {"error": failure.message}
        if tdef.on_error is not None:
            # lmthing's defTool passed {error: message} (and used a non-undefined return);
            # its defFunction passed the Error itself.
            seen = failure if tdef.on_error_gets_exception else dict(error)
            recovered = await _call_user(tdef.on_error, f"on_error of tool '{tdef.name}'", args, seen)
            if recovered is not None:
                return (*_jsonable(recovered, tdef.name), None)
        # A tool lmthing would not have wrapped (no callbacks) failed through the AI SDK: the
        # model read the bare message.
        return error, True, None if tdef.has_callbacks else failure.message

    async def _run_activity(self, tdef: ToolDef, args: Any, call_id: str, key_id: str, step: int) -> Any:
        at = tdef.fn
        opts: ActivityOptions = tdef.activity_options or at.options  # type: ignore[union-attr]
        spec = self.resilience.book.retries.get(tdef.retry) if self.resilience and tdef.retry else None
        if spec is not None:  # def_retry: its policy instead of the tool's own
            opts = dataclasses.replace(opts, retry=retry_options(spec))
        payload = args.model_dump(mode="json") if isinstance(args, BaseModel) else dict(args)
        cache = self._cache_ref(tdef, payload)
        try:
            output = await with_retries(spec, lambda: workflow.execute_activity(
                at.activity_name,  # type: ignore[union-attr]
                ToolActivityInput(args=payload, tool_call_id=call_id, idempotency_key=f"{self.workflow_id}:{key_id}", step=step,
                                  max_attempts=counted_attempts(opts), circuit_breaker=self._breaker_ref(tdef),
                                  allowed_domains=(self.resilience.allowlists() or None) if self.resilience else None,
                                  cache=cache),
                start_to_close_timeout=opts.start_to_close_timeout,
                schedule_to_close_timeout=opts.schedule_to_close_timeout,
                heartbeat_timeout=opts.heartbeat_timeout,
                task_queue=opts.task_queue or routing.tool_task_queue(),
                retry_policy=RetryPolicy(
                    initial_interval=opts.retry.initial_interval,
                    backoff_coefficient=opts.retry.backoff_coefficient,
                    maximum_interval=opts.retry.maximum_interval,
                    maximum_attempts=temporal_attempts(opts),
                    non_retryable_error_types=list(opts.retry.non_retryable_error_types),
                ),
                summary=f"{tdef.name} (retry {spec.name})" if spec is not None else None,
            ))
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # the caller is being cancelled: no tool error goes back to a model
            cause = _cause_message(err) or "Error"
            raise ToolFailure(cause, f"Tool '{tdef.name}' failed: {cause}") from None
        if cache is None:
            return output
        result, answered = cached_result(output)
        self.note({"kind": "cache", "cache": cache["name"], "tool": tdef.name, "hit": answered == "hit"})
        return result

    def _cache_ref(self, tdef: ToolDef, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The def_cache ``tdef`` names, with this call's key, as the activity receives it."""
        if tdef.cache is None:
            return None
        spec = self.memory.caches.get(tdef.cache) if self.memory is not None else None
        try:
            ref = cache_ref(spec, tdef.cache, tdef.name, payload,
                            self.memory.scope(spec.scope) if self.memory is not None and spec is not None else "global")
        except PromptError as err:
            raise ApplicationError(str(err), type="PromptError", non_retryable=True) from None
        return ref.model_dump(mode="json")

    def _breaker_ref(self, tdef: ToolDef) -> CircuitBreakerRef | None:
        """The breaker the tool's activity asks before each attempt (docs/circuit-breakers.md)."""
        if tdef.circuit_breaker is None:
            return None
        config = self._breakers.get(tdef.circuit_breaker)
        if config is None:
            raise ApplicationError(
                f"Tool '{tdef.name}' names circuit breaker {tdef.circuit_breaker!r}, which the prompt function does not "
                f"define; add p.def_circuit_breaker({tdef.circuit_breaker!r}, ...)", type="PromptError", non_retryable=True,
            )
        return CircuitBreakerRef(name=tdef.circuit_breaker, config=config, task_queue=workflow.info().task_queue)

    # -------------------------------------------------------------------- composite tool
    async def _run_composite_tool(self, cdef: CompositeToolDef, call: ToolCall, step: int) -> ToolResult:
        calls, problem = parse_composite_calls(call.args, cdef.name)
        if problem is not None:
            return _error(call, problem)
        results: list[dict[str, Any]] = []
        # Sub-calls run one after another: they often depend on each other (write, then read).
        for index, sub_call in enumerate(calls):
            name = str(sub_call.get("name"))
            sub = cdef.member(name)
            if sub is None:
                results.append({"name": name, "result": {"error": f"Unknown sub-tool: {name}"}})
                continue
            output, _, _ = await self._run_tool(sub, sub_call.get("args") or {}, call.id, step, f"{call.id}:{index}")
            results.append({"name": name, "result": output})
        return ToolResult(tool_call_id=call.id, name=call.name, result={"results": results})

    async def run_tool(self, tdef: ToolDef, raw_args: Any, *, call_id: str, step: int, key: str) -> tuple[Any, bool]:
        """Run one tool from workflow-side code (``p.call_tool``) with every tool semantic:
        validation, approval, callbacks, response schema, activity or in-workflow, critical.
        ``key`` is appended to the workflow id for the idempotency key. Returns
        ``(result, is_error)``."""
        output, is_error, _ = await self._run_tool(tdef, raw_args, call_id, step, key)
        return output, is_error


def _error_text(output: Any) -> str:
    if isinstance(output, dict) and "error" in output:
        return str(output["error"])
    return str(output)


def _jsonable(output: Any, tool_name: str) -> tuple[Any, bool]:
    try:
        return to_jsonable_python(output), False
    except PydanticSerializationError as err:
        return {"error": f"Tool '{tool_name}' returned a value that cannot be sent to the model: {err}"}, True


async def _call_user(fn: Callable[..., Any], where: str, *args: Any) -> Any:
    """Call a user callback; a determinism violation fails the run, other errors propagate."""
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
    except RestrictedWorkflowAccessError as err:
        raise non_deterministic(where, err) from None


async def _call_in_workflow(tdef: ToolDef, args: Any, info: ToolCallInfo) -> Any:
    fn = tdef.fn
    try:
        params = len(inspect.signature(fn).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        params = 1
    try:
        result = fn(args, info) if params >= 2 else fn(args) if params == 1 else fn()  # type: ignore[operator]
        if inspect.isawaitable(result):
            result = await result
        return result
    except RestrictedWorkflowAccessError as err:
        raise non_deterministic(f"Tool '{tdef.name}'", err) from None
    except (TemporalError, asyncio.CancelledError):
        raise
    except Exception as err:
        # In-workflow tools are deterministic, so retrying could not help: the error goes
        # straight to the model (or fails the run when the tool is critical), as its message.
        raise ToolFailure(error_message(err), f"Tool '{tdef.name}' raised {type(err).__name__}: {err}") from None
