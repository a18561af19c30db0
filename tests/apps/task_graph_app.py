"""Prompts for the task graph plugin tests (tests/test_task_graph.py).

Imported by the session worker and by subprocess workers (crash test); imports only lmthing,
pydantic and the standard library."""

from __future__ import annotations

import asyncio
import re

from lmthing import prompt, tool
from lmthing.plugins.task_graph import TaskGraphFailed, TaskInput, task_graph_plugin
from lmthing.testing import scripted_model, text, tool_call

DIAMOND = [
    {"id": "A", "title": "Research", "description": "Find facts", "unblocks": ["B", "C"], "required_capabilities": ["web-search"]},
    {"id": "B", "title": "Draft", "description": "Write a draft"},
    {"id": "C", "title": "Figures", "description": "Make figures"},
    {"id": "D", "title": "Assemble", "description": "Put it together", "dependencies": ["B", "C"]},
]
# Seconds each task's sub-agent takes: B is slower than C, so C completes first.
DELAYS = {"A": 0.1, "B": 0.8, "C": 0.3, "D": 0.1, "E": 0.1}


def _task_id(request) -> str:
    return re.search(r"Task (\S+):", request.messages[0].content).group(1)


def worker_reply(request):
    tid = _task_id(request)
    return text(f"out-{tid}", delay=DELAYS.get(tid, 0.1))


def worker(args: TaskInput, child):
    child.user(f"Task {args.id}: {args.title}\nContext: {args.input_context}")


@tool
async def tg_pause(seconds: float) -> dict:
    """Wait a while (stands in for slow work)."""
    await asyncio.sleep(seconds)
    return {"waited": seconds}


# ------------------------------------------------------------------------ model tools
CYCLE = [
    {"id": "x", "title": "X", "dependencies": ["z"]},
    {"id": "y", "title": "Y", "dependencies": ["x"]},
    {"id": "z", "title": "Z", "dependencies": ["y"]},
    {"id": "free", "title": "Free"},
]
BAD_REF = [{"id": "a", "title": "A", "dependencies": ["ghost"]}, {"id": "b", "title": "B", "unblocks": ["phantom"]}]

TOOLS = scripted_model(
    "task-graph-tools",
    [
        [tool_call("generateTaskGraph", {"tasks": CYCLE})],
        [tool_call("generateTaskGraph", {"tasks": BAD_REF})],
        [tool_call("generateTaskGraph", {"tasks": DIAMOND})],
        [tool_call("getUnblockedTasks", {})],
        [tool_call("updateTaskStatus", {"taskId": "D", "status": "in_progress"})],
        [tool_call("updateTaskStatus", {"taskId": "nope", "status": "completed"})],
        [tool_call("updateTaskStatus", {"taskId": "A", "status": "in_progress"})],
        [tool_call("updateTaskStatus", {"taskId": "A", "status": "completed", "output_result": "facts"})],
        [tool_call("updateTaskStatus", {"taskId": "A", "status": "failed"})],
        [tool_call("updateTaskStatus", {"taskId": "C", "status": "failed", "output_result": "no data"})],
        [tool_call("spawnTask", {"id": "E", "title": "Publish", "dependencies": ["D"]})],
        [tool_call("spawnTask", {"title": "Loop", "dependencies": ["E"], "unblocks": ["A"]})],
        [tool_call("forkTask", {"id": "F", "title": "Synthesis", "dependencies": ["B"]})],
        [tool_call("askHuman", {"id": "Q", "question": "Which year?", "dependencies": ["C"]})],
        [tool_call("answerQuestion", {"taskId": "C", "answer": "use 2024 data"})],
        [tool_call("answerQuestion", {"taskId": "Q", "answer": "2024"})],
        [tool_call("readTree", {})],
        text("done"),
    ],
)


@prompt(model=TOOLS, plugins=[task_graph_plugin])
def graph_tools(p):
    p.def_system("role", "You are a planner.")
    p.def_task_graph([{"id": "seed", "title": "Seed"}])
    p.user("Plan")


ASK = scripted_model(
    "task-graph-ask",
    [[tool_call("askHuman", {"id": "city", "question": "Which city?", "answer_options": ["Paris", "Oslo"], "unblocks": ["B"]})],
     [tool_call("askHuman", {"question": "Who?", "dependencies": ["ghost"]})],
     text("asked")],
)


@prompt(model=ASK, plugins=[task_graph_plugin])
def graph_ask(p):
    p.def_task_graph(DIAMOND)
    p.user("Ask")


# ------------------------------------------------------------------------ engine runs
DIAMOND_MODEL = scripted_model(
    "task-graph-diamond",
    [tool_call("runTaskGraph", {"max_concurrency": 2}), text("graph done")],
    agents={"worker": [worker_reply]},
)


@prompt(model=DIAMOND_MODEL, plugins=[task_graph_plugin])
def diamond(p):
    p.def_agent("worker", "Does one task", TaskInput, worker)
    p.def_task_graph(DIAMOND, agent="worker")
    p.user("Run the graph")


# A -> B (fails) -> D;  A -> C -> E
FLAKY_GRAPH = [
    {"id": "A", "title": "A"},
    {"id": "B", "title": "B", "dependencies": ["A"]},
    {"id": "C", "title": "C", "dependencies": ["A"]},
    {"id": "D", "title": "D", "dependencies": ["B"]},
    {"id": "E", "title": "E", "dependencies": ["C"]},
]


def flaky(args: TaskInput, child):
    if args.id == "B":
        raise RuntimeError("B cannot be done")
    child.user(f"Task {args.id}: {args.title}\nContext: {args.input_context}")


def _policy_body(p, policy: str):
    p.def_agent("flaky", "Fails on B", TaskInput, flaky)

    async def run(args):
        try:
            graph = await p.run_task_graph(FLAKY_GRAPH, agent="flaky", max_concurrency=1, on_failure=policy)
        except TaskGraphFailed as err:
            return {"raised": str(err), "failed": err.failed, "graph": err.graph}
        return {"graph": graph}

    p.def_tool("run", "Run the graph", None, run)
    p.user("Go")


def _policy_model(policy: str) -> str:
    return scripted_model(f"task-graph-{policy}", [tool_call("run", {}), text("over")], agents={"flaky": [worker_reply]})


@prompt(model=_policy_model("fail_fast"), plugins=[task_graph_plugin])
def fail_fast(p):
    _policy_body(p, "fail_fast")


@prompt(model=_policy_model("continue"), plugins=[task_graph_plugin])
def keep_going(p):
    _policy_body(p, "continue")


@prompt(model=_policy_model("skip_dependents"), plugins=[task_graph_plugin])
def skip_dependents(p):
    _policy_body(p, "skip_dependents")


def sleeper(args: TaskInput, child):
    child.def_tool(tg_pause)
    child.user(f"Task {args.id}")


CANCEL = scripted_model(
    "task-graph-cancel",
    [tool_call("runTaskGraph", {"agent": "sleeper", "max_concurrency": 2}), text("never")],
    agents={"sleeper": [tool_call("tg_pause", {"seconds": 5}), text("woke")]},
)


@prompt(model=CANCEL, plugins=[task_graph_plugin])
def cancellable_graph(p):
    p.def_agent("sleeper", "Sleeps", TaskInput, sleeper)
    p.def_task_graph([{"id": "S1", "title": "One"}, {"id": "S2", "title": "Two"}, {"id": "S3", "title": "Three", "dependencies": ["S1"]}])
    p.user("Sleep")


CRASH = scripted_model(
    "task-graph-crash", [tool_call("run", {}), text("reported")], agents={"worker": [worker_reply]},
)


@prompt(model=CRASH, plugins=[task_graph_plugin])
def crash_graph(p):
    p.def_agent("worker", "Does one task", TaskInput, worker)
    p.def_task_graph(DIAMOND)

    async def run(args):
        done = await p.run_task_graph(None, agent="worker", max_concurrency=2)
        return {"result": ", ".join(f"{n['id']}={n['status']}" for n in done)}

    p.def_tool("run", "Run the graph", None, run)
    p.user("Report")
