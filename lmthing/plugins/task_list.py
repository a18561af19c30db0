"""The task list plugin: lmthing's ``defTaskList``, written only on the public ``def_*`` API.

Pass ``plugins=[task_list_plugin]`` and call ``p.def_task_list([...])`` in the prompt
function; it returns ``(tasks, set_tasks)`` and gives the model three tools:

* ``startTask {taskId}``: pending -> in_progress, failed -> in_progress (restart);
  already in progress is a no-op success; a completed task cannot be restarted.
* ``completeTask {taskId}``: in_progress | failed -> completed; already completed is a
  no-op success; a pending task must be started first.
* ``failTask {taskId, reason?}``: pending | in_progress -> failed (the reason goes to
  ``metadata.failureReason``); already failed is a no-op success; a completed task cannot
  be failed.

Every result is ``{"success", "taskId", "message"}`` plus ``"task"`` (the task after the
call) when the id exists; the messages are lmthing's, word for word (an unknown id names the
ids that exist). The ``taskId`` parameter lists the current ids as an ``enum`` (lmthing
listed the initial ones), but any string is accepted, so a wrong one gets the "not found"
message rather than a validation error.

Every model call gets a ``taskList`` system part rendered by :func:`render_task_status`
(lmthing re-rendered it only on steps where the list changed and dropped it otherwise; we
show it on every step). The list lives in prompt state under ``"taskList"`` as plain dicts,
so it is durable and visible through the ``state`` query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

STATE_KEY = "taskList"
SYSTEM_PART = "taskList"
CLOSING_LINE = 'Use "startTask" to begin a pending task, "completeTask" when finished, and "failTask" if there is an error.'

TaskStatus = Literal["pending", "in_progress", "completed", "failed"]


class Task(BaseModel):
    """One task. Ids are strings (numbers are accepted and turned into strings)."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    id: str
    name: str
    status: TaskStatus = "pending"
    metadata: dict[str, Any] | None = None


class TaskIdArgs(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    taskId: str = Field(description="The ID of the task")


class FailTaskArgs(TaskIdArgs):
    reason: str | None = Field(default=None, description="The reason why the task failed")


@lru_cache(maxsize=256)
def _args_models(ids: tuple[str, ...]) -> tuple[type[TaskIdArgs], type[FailTaskArgs]]:
    """The tools' argument models with ``taskId`` shown as an enum of ``ids`` (lmthing's
    ``z.enum(taskIds)``); validation still takes any string."""
    if not ids:
        return TaskIdArgs, FailTaskArgs
    field = (str, Field(description="The ID of the task", json_schema_extra={"enum": list(ids)}))
    return (
        create_model("TaskIdArgs", __base__=TaskIdArgs, taskId=field),
        create_model("FailTaskArgs", __base__=FailTaskArgs, taskId=field),
    )


def _normalize(tasks: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Validate tasks (dicts or :class:`Task`) and store them as JSON-compatible dicts."""
    out: list[dict[str, Any]] = []
    for t in tasks or []:
        task = t if isinstance(t, Task) else Task.model_validate(t)
        out.append(task.model_dump(exclude_none=True))
    return out


def _ids(tasks: list[dict[str, Any]]) -> str:
    return ", ".join(t["id"] for t in tasks)


def render_task_status(tasks: Iterable[Any]) -> str:
    """The status block the model sees every step (the value of the ``taskList`` part), as
    lmthing wrote it: In Progress, Pending and Completed always (``  (none)`` when empty),
    Failed only when a task failed::

        ## Current Task Status

        ### In Progress (1)
          - [1] Research the topic

        ### Pending (2)
          - [2] Write implementation
          - [3] Add tests

        ### Completed (0)
          (none)

        Use "startTask" to begin a pending task, "completeTask" when finished, and "failTask" if there is an error.
    """
    items = _normalize(tasks)

    def section(title: str, status: str) -> str:
        chosen = [t for t in items if t["status"] == status]
        lines = "\n".join(f"  - [{t['id']}] {t['name']}" for t in chosen) or "  (none)"
        return f"### {title} ({len(chosen)})\n{lines}"

    text = "\n\n".join(
        ["## Current Task Status", section("In Progress", "in_progress"), section("Pending", "pending"), section("Completed", "completed")]
    ) + "\n\n"
    if any(t["status"] == "failed" for t in items):
        # lmthing's template: one newline, not two, between the failed tasks and the last line.
        text += section("Failed", "failed") + "\n"
    return text + CLOSING_LINE


def def_task_list(p: Any, tasks: Iterable[Any] | None = None) -> tuple[list[dict[str, Any]], Callable[[Any], None]]:
    """lmthing ``defTaskList(tasks)``: ``(tasks, set_tasks)``.

    ``tasks`` is the initial list (used on the first run only, like ``def_state``). The
    returned list is this run's snapshot as dicts; ``set_tasks`` takes a list or a function
    ``prev -> next`` and validates what it gets, so tasks added through it are addressable
    by the tools from then on."""
    current, set_state = p.def_state(STATE_KEY, _normalize(tasks))

    def set_tasks(value: Any) -> None:
        if callable(value):
            set_state(lambda prev: _normalize(value(list(prev or []))))
        else:
            set_state(_normalize(value))

    def now() -> list[dict[str, Any]]:
        return list(p.get_state(STATE_KEY) or [])

    def update(task_id: str, **changes: Any) -> dict[str, Any]:
        updated: dict[str, Any] = {}

        def apply(prev: list[dict[str, Any]]) -> list[dict[str, Any]]:
            nonlocal updated
            out = []
            for t in prev:
                if t["id"] == task_id:
                    t = {**t, **changes}
                    if t.get("metadata") is None:
                        t.pop("metadata", None)
                    updated = t
                out.append(t)
            return out

        set_tasks(apply)
        return updated

    def find(task_id: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        items = now()
        return items, next((t for t in items if t["id"] == task_id), None)

    def not_found(task_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "success": False,
            "taskId": task_id,
            "message": f'Task with ID "{task_id}" not found. Available task IDs: {_ids(items)}',
        }

    def result(success: bool, task_id: str, message: str, task: dict[str, Any]) -> dict[str, Any]:
        return {"success": success, "taskId": task_id, "message": message, "task": task}

    def start_task(args: TaskIdArgs) -> dict[str, Any]:
        items, task = find(args.taskId)
        if task is None:
            return not_found(args.taskId, items)
        name, status = task["name"], task["status"]
        if status == "in_progress":
            return result(True, args.taskId, f'Task "{name}" is already in progress', task)
        if status == "completed":
            return result(False, args.taskId, f'Task "{name}" is already completed and cannot be restarted', task)
        updated = update(args.taskId, status="in_progress")
        if status == "failed":
            return result(True, args.taskId, f'Restarted failed task: "{name}"', updated)
        return result(True, args.taskId, f'Started task: "{name}"', updated)

    def complete_task(args: TaskIdArgs) -> dict[str, Any]:
        items, task = find(args.taskId)
        if task is None:
            return not_found(args.taskId, items)
        name, status = task["name"], task["status"]
        if status == "completed":
            return result(True, args.taskId, f'Task "{name}" is already completed', task)
        if status == "pending":
            return result(False, args.taskId, f'Task "{name}" is still pending. Use startTask first to begin work on it.', task)
        updated = update(args.taskId, status="completed")
        return result(True, args.taskId, f'Completed task: "{name}"', updated)

    def fail_task(args: FailTaskArgs) -> dict[str, Any]:
        items, task = find(args.taskId)
        if task is None:
            return not_found(args.taskId, items)
        name, status = task["name"], task["status"]
        if status == "failed":
            return result(True, args.taskId, f'Task "{name}" is already failed', task)
        if status == "completed":
            return result(False, args.taskId, f'Task "{name}" is already completed and cannot be failed', task)
        # lmthing: metadata {...metadata, failureReason: reason}; without a reason the key is
        # undefined, so the task shows "metadata": {} (or its other keys).
        metadata = {k: v for k, v in (task.get("metadata") or {}).items() if k != "failureReason"}
        if args.reason:
            metadata["failureReason"] = args.reason
        updated = update(args.taskId, status="failed", metadata=metadata)
        suffix = f" - {args.reason}" if args.reason else ""
        return result(True, args.taskId, f'Failed task: "{name}"{suffix}', updated)

    id_args, fail_args = _args_models(tuple(t["id"] for t in now()))
    p.def_tool(
        "startTask",
        "Mark a task as started/in-progress. Call this before beginning work on a task.",
        id_args,
        start_task,
    )
    p.def_tool(
        "completeTask",
        "Mark a task as completed. Call this when you have finished work on a task.",
        id_args,
        complete_task,
    )
    p.def_tool(
        "failTask",
        "Mark a task as failed. Call this when a task cannot be completed due to an error or blocker.",
        fail_args,
        fail_task,
    )
    # No deps: the block is added to every model call (lmthing re-rendered it only when the
    # list changed, so steps without a change lost it).
    p.def_effect(lambda ctx, step_modifier: step_modifier("systems", [{"name": SYSTEM_PART, "value": render_task_status(now())}]))
    return list(current), set_tasks


task_list_plugin: dict[str, Callable[..., Any]] = {"def_task_list": def_task_list}
"""Pass in ``plugins=[task_list_plugin]`` to get ``p.def_task_list``."""

__all__ = ["CLOSING_LINE", "STATE_KEY", "Task", "TaskStatus", "def_task_list", "render_task_status", "task_list_plugin"]
