"""Worker roles: which part of lmthing a worker runs, and on which task queue.

One worker can run everything (role ``all``: prompts, model calls and tools on one queue,
the default). Under load the three parts want different things: workflow tasks are short
and CPU-bound, model calls wait on a provider and are bounded by its rate limit, tools
wait on whatever they call. So each can be a pool of its own, on its own task queue,
scaled (and rate-limited) on its own:

=========== ============================================ =====================
role        registers                                    default task queue
=========== ============================================ =====================
all         prompts, ``lmthing.model_call``, tools        ``lmthing``
workflows   prompts (and the in-workflow code sandbox)   ``lmthing``
models      ``lmthing.model_call``                       ``lmthing-models``
tools       ``lmthing.tool.<name>`` + unknown-tool catch  ``lmthing-tools``
=========== ============================================ =====================

A workflows pool sends its runs' model calls to ``<task queue>-models`` and their tool
activities to ``<task queue>-tools`` unless told otherwise (:mod:`lmthing.workflows.routing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from lmthing.client.handle import DEFAULT_TASK_QUEUE
from lmthing.workflows.routing import ActivityRoutes

Role = Literal["all", "workflows", "models", "tools"]
ROLES: tuple[str, ...] = get_args(Role)
MODELS_SUFFIX = "-models"
TOOLS_SUFFIX = "-tools"

# Worker options that only concern activities: meaningless for a pool that runs none.
ACTIVITY_OPTIONS = {
    "max_task_queue_activities_per_second": "--rate-limit",
    "max_concurrent_activities": "--max-concurrent",
    "max_activities_per_second": None,
}


class WorkerRoleError(ValueError):
    """A role and options that do not fit together; the message says what to change."""


@dataclass(frozen=True)
class PoolPlan:
    """What a worker of one role registers, where it polls, and where its runs' activities go."""

    role: Role
    task_queue: str
    workflows: bool
    model_calls: bool
    tools: bool
    routes: ActivityRoutes | None


def default_task_queue(role: Role) -> str:
    return {"models": DEFAULT_TASK_QUEUE + MODELS_SUFFIX, "tools": DEFAULT_TASK_QUEUE + TOOLS_SUFFIX}.get(
        role, DEFAULT_TASK_QUEUE
    )


def plan_pool(
    role: str,
    task_queue: str | None = None,
    model_task_queue: str | None = None,
    tool_task_queue: str | None = None,
    worker_options: Mapping[str, Any] | None = None,
) -> PoolPlan:
    """Check a role and its options, and resolve the defaults."""
    if role not in ROLES:
        raise WorkerRoleError(f"Unknown worker role {role!r}: choose one of {', '.join(ROLES)}.")
    chosen: Role = role  # type: ignore[assignment]
    queue = task_queue or default_task_queue(chosen)
    if chosen != "workflows" and (model_task_queue or tool_task_queue):
        given = "model_task_queue (--model-queue)" if model_task_queue else "tool_task_queue (--tool-queue)"
        raise WorkerRoleError(
            f"{given} says where a workflows pool sends its runs' activities; a worker of role {chosen!r} does not "
            f"schedule them. Use role 'workflows' for it, and give a {chosen!r} pool its queue with task_queue "
            "(--task-queue)."
        )
    if chosen == "workflows":
        for option, flag in ACTIVITY_OPTIONS.items():
            if (worker_options or {}).get(option) is not None:
                shown = f"{option} ({flag})" if flag else option
                example = f"lmthing worker --role models {flag} N" if flag else f"create_worker(role='models', {option}=N)"
                raise WorkerRoleError(
                    f"{shown} limits activities, and a worker of role 'workflows' runs none: set it on the pool that "
                    f"runs them, role 'models' or 'tools' ({example})."
                )
        routes = ActivityRoutes(
            model_task_queue=model_task_queue or queue + MODELS_SUFFIX,
            tool_task_queue=tool_task_queue or queue + TOOLS_SUFFIX,
        )
        return PoolPlan(chosen, queue, workflows=True, model_calls=False, tools=False, routes=routes)
    return PoolPlan(
        chosen,
        queue,
        workflows=chosen == "all",
        model_calls=chosen in ("all", "models"),
        tools=chosen in ("all", "tools"),
        routes=None,
    )
