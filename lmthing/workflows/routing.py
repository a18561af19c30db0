"""Which task queue a run's model calls and tool activities are sent to.

Worker pools (``lmthing worker --role workflows|models|tools``) put model calls and tool
activities on queues of their own, so each pool scales (and is rate-limited) on its own.
The choice is made where the activity is scheduled, in workflow code, which cannot read a
worker's flags. So the workflows worker writes its routing here when it is built
(:func:`lmthing.workers.create_worker` calls :func:`set_routes`), keyed by the workflow
task queue it polls, and workflow code looks it up by ``workflow.info().task_queue``.
Sub-agents are child workflows on their parent's queue, so they route the same way.

No routing for a queue means everything stays on the workflow's own queue (``--role all``).

Every workflows worker polling one queue must be started with the same routing, like any
other worker setting: a worker with another routing sends the activities it schedules
elsewhere. Routing is not part of the replay check (Temporal compares an activity's type and
id, not its queue), so changing it is safe for runs in flight: activities scheduled after
the change go to the new queues.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass(frozen=True)
class ActivityRoutes:
    """Where the activities of workflows on one task queue go."""

    model_task_queue: str
    tool_task_queue: str


_ROUTES: dict[str, ActivityRoutes] = {}


def set_routes(workflow_task_queue: str, routes: ActivityRoutes | None) -> None:
    """Route the activities of workflows on ``workflow_task_queue`` (None: their own queue)."""
    if routes is None:
        _ROUTES.pop(workflow_task_queue, None)
    else:
        _ROUTES[workflow_task_queue] = routes


def routes_for(workflow_task_queue: str) -> ActivityRoutes | None:
    return _ROUTES.get(workflow_task_queue)


def model_task_queue() -> str:
    """The queue for this run's model calls (workflow code only)."""
    queue = workflow.info().task_queue
    routes = _ROUTES.get(queue)
    return routes.model_task_queue if routes else queue


def tool_task_queue() -> str:
    """The queue for this run's tool activities (workflow code only)."""
    queue = workflow.info().task_queue
    routes = _ROUTES.get(queue)
    return routes.tool_task_queue if routes else queue
