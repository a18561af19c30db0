"""Activities for ``@tool`` functions (``lmthing.tool.<name>``), and a catch-all that turns
a tool missing from this worker into a clear failure instead of a run that waits forever."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from lmthing.activities.attempts import AttemptLedger
from lmthing.activities.breakers import guarded
from lmthing.activities.caches import ToolCaches
from lmthing.activities.limits import check_size
from lmthing.activities.memory import classified
from lmthing.memory.types import CacheRef
from lmthing.observability import metrics
from lmthing.observability.logging import current_step
from lmthing.prompt.tools import (
    ActivityTool,
    DomainNotAllowed,
    ToolContext,
    context_param,
    format_validation_error,
)
from lmthing.prompt.types import ToolActivityInput


def tool_activity(tool: ActivityTool, resources: Any = None, caches: ToolCaches | None = None) -> Callable[..., Any]:
    """The activity that runs ``tool``: validates arguments, injects ``ToolContext``.
    ``resources``: the worker's :class:`~lmthing.workers.resources.ResourceRegistry`, which
    the context hands out (``ctx.resource(name)``, ``ctx.acquire(name)``). With a
    ``def_cache`` on the call (``payload.cache``), it answers from ``caches`` when it can."""
    ctx_name = context_param(tool.fn)
    is_async = inspect.iscoroutinefunction(tool.fn)

    async def run(payload: ToolActivityInput) -> Any:
        start = time.perf_counter()
        failure: BaseException | None = None
        step_token = current_step.set(payload.step)  # on the tool's log lines
        try:
            return await _run(payload)
        except BaseException as err:
            failure = err
            raise
        finally:
            current_step.reset(step_token)
            outcome = "cancelled" if isinstance(failure, asyncio.CancelledError) else metrics.outcome_of(failure)
            metrics.record_tool_call(tool=tool.name, outcome=outcome, seconds=time.perf_counter() - start)

    async def _run(payload: ToolActivityInput) -> Any:
        try:
            args = tool.args_model.model_validate(payload.args)
        except ValidationError as err:
            raise ApplicationError(
                f"Invalid arguments for tool '{tool.name}': {format_validation_error(err)}",
                type="InvalidToolArgs",
                non_retryable=True,
            ) from None
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if ctx_name:
            info = activity.info()
            kwargs[ctx_name] = ToolContext(
                workflow_id=info.workflow_id or "",
                run_id=info.workflow_run_id or "",
                tool_call_id=payload.tool_call_id,
                idempotency_key=payload.idempotency_key,
                attempt=info.attempt,
                allowed_domains=payload.allowed_domains or [],
            )
            if resources is not None:
                kwargs[ctx_name]._resources = resources.access()
        ledger = AttemptLedger(payload.max_attempts)  # see activities/attempts.py
        ledger.check_left(tool.name)

        def call() -> Any:
            return tool.fn(**kwargs) if is_async else asyncio.to_thread(tool.fn, **kwargs)

        async def execute() -> Any:
            try:
                result = await ledger.run(guarded(payload.circuit_breaker, call))
            except DomainNotAllowed as err:  # the allowlist will not change between attempts
                raise ApplicationError(str(err), type="DomainNotAllowed", non_retryable=True) from None
            except Exception as err:  # noqa: BLE001  (the tool's own failure: counted, then raised)
                failure = ledger.failed(err)
                if failure is err:
                    raise
                raise failure from err
            return _sendable(tool.name, result)

        if payload.cache is None:
            return await execute()
        if caches is None:
            raise ApplicationError(f"Tool '{tool.name}' is cached (def_cache) but this worker has no memory store",
                                   type="MemoryStoreError", non_retryable=True)
        return await classified(lambda: caches.run(CacheRef.model_validate(payload.cache), execute))

    run.__name__ = f"tool_{tool.name}"
    return activity.defn(name=tool.activity_name)(run)


def _sendable(name: str, result: Any) -> Any:
    """The tool's result as JSON data that fits a payload; anything else is a non-retryable
    error that says why (running the tool again would return the same thing)."""
    try:
        data = to_jsonable_python(result)
    except PydanticSerializationError as err:
        raise ApplicationError(
            f"Tool '{name}' returned a {type(result).__name__} that cannot be sent as JSON ({err}). Return "
            "JSON-compatible data: dicts, lists, str, numbers, bools, None or pydantic models.",
            type="ToolResultNotSerializable",
            non_retryable=True,
        ) from None
    size = len(to_json(data))
    check_size(size, "ToolResultTooLarge", lambda limit: (
        f"Tool '{name}' returned {size:,} bytes; results over {limit:,} bytes do not fit a Temporal "
        "payload (the server's limit is 2 MB). Return a reference instead (a file name, a URL, an id) or less data"
    ))
    return data


@activity.defn(dynamic=True)
async def unregistered_activity(args: Sequence[RawValue]) -> Any:
    name = activity.info().activity_type
    raise ApplicationError(
        f"Activity {name!r} is not registered on this worker. If it is an @tool function, the worker "
        "must know it: pass it in create_worker(tools=[...]) or import it in the worker's --app module.",
        type="ActivityNotRegistered",
        non_retryable=True,
    )
