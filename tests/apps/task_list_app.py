"""Prompts that drive the task list plugin through every transition (tests/test_task_list.py)."""

from pydantic import BaseModel

from lmthing import prompt
from lmthing.plugins import Task, task_list_plugin
from lmthing.testing import scripted_model, text, tool_call

INITIAL = [
    {"id": "1", "name": "Research the topic", "status": "pending"},
    {"id": "2", "name": "Write implementation", "status": "pending"},
    {"id": "3", "name": "Add tests", "status": "pending"},
]

# A list is one step (bare consecutive tool calls would share a step); step 13 makes
# three calls in one step.
TRANSITIONS_SCRIPT = [
    [tool_call("startTask", {"taskId": "1"})],  # 0 pending -> in_progress
    [tool_call("startTask", {"taskId": "1"})],  # 1 already in progress
    [tool_call("completeTask", {"taskId": "2"})],  # 2 pending: start it first
    [tool_call("completeTask", {"taskId": "1"})],  # 3 in_progress -> completed
    [tool_call("completeTask", {"taskId": "1"})],  # 4 already completed
    [tool_call("startTask", {"taskId": "1"})],  # 5 completed cannot restart
    [tool_call("failTask", {"taskId": "1"})],  # 6 completed cannot fail
    [tool_call("startTask", {"taskId": "2"})],  # 7 pending -> in_progress
    [tool_call("failTask", {"taskId": "2", "reason": "API down"})],  # 8 in_progress -> failed
    [tool_call("failTask", {"taskId": "2"})],  # 9 already failed
    [tool_call("startTask", {"taskId": "2"})],  # 10 failed -> in_progress (restart)
    [tool_call("failTask", {"taskId": "2"})],  # 11 in_progress -> failed, no reason
    [tool_call("completeTask", {"taskId": "2"})],  # 12 failed -> completed
    [  # 13 unknown ids, all three tools
        tool_call("startTask", {"taskId": "x"}),
        tool_call("completeTask", {"taskId": "x"}),
        tool_call("failTask", {"taskId": "x"}),
    ],
    [tool_call("failTask", {"taskId": 3, "reason": "skipped"})],  # 14 pending -> failed; numeric id
    text("done"),  # 15
]


@prompt(model=scripted_model("task-list-transitions", TRANSITIONS_SCRIPT), max_steps=30, plugins=[task_list_plugin])
def task_list_transitions(p):
    p.def_system("role", "You manage tasks.")
    p.def_task_list(INITIAL)
    p.user("Complete all tasks.")


class AddArgs(BaseModel):
    name: str


SETTER_SCRIPT = [
    [tool_call("startTask", {"taskId": "2"})],  # 0 unknown yet
    [tool_call("addTask", {"name": "Second"})],  # 1 setter(prev -> next) from a tool
    [tool_call("startTask", {"taskId": "2"})],  # 2 the added task is addressable
    [tool_call("completeTask", {"taskId": "2"})],  # 3
    [tool_call("replaceTasks")],  # 4 setter(list) with a Task model and a numeric id
    [tool_call("startTask", {"taskId": "10"})],  # 5
    [tool_call("startTask", {"taskId": "2"})],  # 6 gone after the replacement
    text("done"),  # 7
]


@prompt(model=scripted_model("task-list-setter", SETTER_SCRIPT), plugins=[task_list_plugin])
def task_list_setter(p):
    tasks, set_tasks = p.def_task_list([Task(id="1", name="First")])
    p.def_var("TASK_IDS", ",".join(t["id"] for t in tasks))  # this run's snapshot

    def add(args: AddArgs):
        set_tasks(lambda prev: [*prev, {"id": str(len(prev) + 1), "name": args.name}])
        return {"added": args.name}

    def replace(args):
        set_tasks([Task(id="9", name="Replacement"), {"id": 10, "name": "Numeric id", "metadata": {"k": 1}}])
        return {"replaced": True}

    p.def_tool("addTask", "Add a task", AddArgs, add)
    p.def_tool("replaceTasks", "Replace the task list", None, replace)
    p.user("Go")
