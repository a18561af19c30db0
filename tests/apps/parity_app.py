"""Prompts that pin what the model (and a callback) sees against lmthing, string for string
(tests/test_parity.py; the texts come from lmthing's source and tests at 4a7107c2)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lmthing import agent, prompt, tool
from lmthing.plugins import task_list_plugin
from lmthing.plugins.functions import function_plugin, func_agent
from lmthing.plugins.task_graph import task_graph_plugin
from lmthing.prompt.tools import RetryOptions
from lmthing.prompt.tools import tool as sub_tool
from lmthing.testing import scripted_model, text, tool_call


class Nothing(BaseModel):
    pass


class Task(BaseModel):
    task: str


class AddArgs(BaseModel):
    a: int
    b: int


class X(BaseModel):
    x: int


class Data(BaseModel):
    data: str


# ------------------------------------------------------------ calls the model cannot make
UNAVAILABLE = scripted_model(
    "parity-unavailable",
    [
        [tool_call("worker", {"task": "do it"}), tool_call("t1", {})],
        [tool_call("t2", {})],
        text("done"),
    ],
)


@prompt(model=UNAVAILABLE)
def unavailable(p):
    """lmthing's defEffect test: t1 disabled at step 0; 'worker' never exists."""
    t1 = p.def_tool("t1", "Tool 1", Nothing, lambda args: {})
    p.def_agent("helper", "Helps", Task, lambda args, child: child.user(args.task))
    p.def_tool("t2", "Tool 2", Nothing, lambda args: {"ok": True})

    def effect(ctx, mod):
        if ctx.step_number == 0:
            t1.disable()

    p.def_effect(effect)
    p.user("msg")


@prompt(model=scripted_model("parity-no-tools", [tool_call("ghost", {}), text("done")]))
def no_tools(p):
    p.user("msg")


# ---------------------------------------------------------------- arguments the model got wrong
INVALID = scripted_model(
    "parity-invalid",
    [
        [tool_call("add", {"a": "x", "b": 1})],
        [tool_call("add", "{bad")],
        [tool_call("ops", {"calls": "nope"})],
        text("done"),
    ],
)


@prompt(model=INVALID)
def invalid_input(p):
    p.def_tool("add", "Add", AddArgs, lambda args: {"sum": args.a + args.b})
    p.def_tool("ops", "Operations", [sub_tool("double", "Double", X, lambda args: {"result": args.x * 2})])
    p.user("Add")


# ------------------------------------------------------------------------- failing tools
@tool(retry=RetryOptions(maximum_attempts=1))
async def parity_explode(x: int) -> dict:
    """Fails every time."""
    raise RuntimeError("the fuse blew")


def _divide(args: AddArgs):
    if args.b == 0:
        raise ValueError("Division by zero")
    return {"result": args.a / args.b}


ERRORS = scripted_model(
    "parity-errors",
    [
        [
            tool_call("plain", {"a": 10, "b": 0}),
            tool_call("kept", {"a": 10, "b": 0}),
            tool_call("handled", {"a": 10, "b": 0}),
            tool_call("parity_explode", {"x": 1}),
            tool_call("plain", {"a": 10, "b": 2}),
            tool_call("ops", {"calls": [
                {"name": "double", "args": {"x": 5}},
                {"name": "risky", "args": {"x": 0}},
                {"name": "ghost", "args": {}},
            ]}),
        ],
        text("done"),
    ],
)


def _risky(args: X):
    if args.x == 0:
        raise ValueError("Cannot process zero")
    return {"result": args.x * 2}


@prompt(model=ERRORS)
def tool_errors(p):
    seen, set_seen = p.def_state("on_error_args", [])

    def record(args, error):
        set_seen(lambda s: [*s, error])
        return None

    p.def_tool("plain", "Divide", AddArgs, _divide)
    p.def_tool("kept", "Divide, error kept", AddArgs, _divide, on_error=record)
    p.def_tool("handled", "Divide, error handled", AddArgs, _divide,
               on_error=lambda args, error: {"error_handled": True, "message": "Tool failed gracefully", "was": error["error"]})
    p.def_tool(parity_explode)
    p.def_tool("ops", "Operations", [
        sub_tool("double", "Double", X, lambda args: {"result": args.x * 2}),
        sub_tool("risky", "Risky operation", X, _risky),
    ])
    p.user("Divide 10 by 0")


# ------------------------------------------------------------------------------- sub-agents
class Analysis(BaseModel):
    summary: str = Field(description="Summary of the analysis")
    score: float = Field(description="Score from 0-100")


class Status(BaseModel):
    status: str
    errors: list[str]


def analyse(args: Data, child):
    child.user(f"Analyze: {args.data}")


def broken_agent(args: Data, child):
    raise KeyError("language")


AGENTS = scripted_model(
    "parity-agents",
    [
        [tool_call("analyst", {"data": "sample data"})],
        [tool_call("terse", {"data": "x"})],
        [tool_call("validator", {"data": "test"})],
        [tool_call("team", {"calls": [
            {"name": "ghost", "args": {}}, {"name": "member", "args": {"data": "m"}}, {"name": "failing", "args": {"data": "f"}},
        ]})],
        [tool_call("broken", {"data": "b"})],
        text("Analysis complete!"),
    ],
    agents={
        "analyst": [text('{"summary": "Analysis shows positive trends", "score": 85}')],
        "terse": [text("short answer")],
        "validator": [text('{"status": "ok"}')],
        "member": [text("member answer")],
    },
)


@prompt(model=AGENTS)
def agents(p):
    p.def_agent("analyst", "Analyze data with structured output", Data, analyse,
                response_schema=Analysis, system="You are a data analyst.")
    p.def_agent("terse", "Answers briefly", Data, analyse, system="You are terse.")
    p.def_agent("validator", "Validate", Data, analyse, response_schema=Status, schema_retries=0)
    p.def_agent("team", "A team", [agent("member", "A member", Data, analyse), agent("failing", "Fails", Data, broken_agent)])
    p.def_agent("broken", "Always fails", Data, broken_agent)
    p.user("Please analyze the sample data")


# ------------------------------------------------------------------------------ task list
TASKS = [
    {"id": "1", "name": "Research the topic"},
    {"id": "2", "name": "Write implementation"},
    {"id": "3", "name": "Add tests", "status": "completed"},
]

TASK_LIST = scripted_model(
    "parity-task-list",
    [
        [tool_call("completeTask", {"taskId": "1"})],
        [tool_call("startTask", {"taskId": "3"})],
        [tool_call("failTask", {"taskId": "3"})],
        [tool_call("startTask", {"taskId": "9"})],
        [tool_call("failTask", {"taskId": "2"})],
        text("done"),
    ],
)


@prompt(model=TASK_LIST, plugins=[task_list_plugin])
def task_list(p):
    p.def_task_list(TASKS)
    p.user("Complete the tasks")


# ------------------------------------------------------------------------------ task graph
GRAPH = [
    {"id": "research", "title": "Research", "description": "Research the topic", "unblocks": ["write"],
     "required_capabilities": ["web-search"]},
    {"id": "write", "title": "Write", "description": "Write the report", "dependencies": ["research"],
     "assigned_subagent": "writer"},
]

TASK_GRAPH = scripted_model(
    "parity-task-graph",
    [
        [tool_call("updateTaskStatus", {"taskId": "write", "status": "in_progress"})],
        [tool_call("updateTaskStatus", {"taskId": "research", "status": "in_progress"})],
        [tool_call("updateTaskStatus", {"taskId": "research", "status": "in_progress"})],
        [tool_call("updateTaskStatus", {"taskId": "research", "status": "completed", "output_result": "facts"})],
        [tool_call("updateTaskStatus", {"taskId": "research", "status": "failed"})],
        [tool_call("askHuman", {"id": "q1", "question": "Which city?", "answer_options": ["Paris", "Oslo"], "dependencies": ["write"]})],
        text("done"),
    ],
)


@prompt(model=TASK_GRAPH, plugins=[task_graph_plugin])
def task_graph(p):
    p.def_system("role", "You are a planner.")
    p.def_task_graph(GRAPH)
    p.user("Execute the task graph.")


# ---------------------------------------------------------------------------- functions
class Sum(BaseModel):
    sum: int


class Findings(BaseModel):
    findings: list[str]


def _explode(args: AddArgs):
    raise RuntimeError("Execution failed")


FUNCTIONS = scripted_model(
    "parity-functions",
    [
        [tool_call("runToolCode", {"code": "r = calculate(a=10, b=5)\nr"})],
        [tool_call("runToolCode", {"code": "r = nope(a=1)"})],
        [tool_call("runToolCode", {"code": "x = 1\nr = failing(a=1, b=2)"})],
        [tool_call("runToolCode", {"code": "r = team.researcher(data='x')"})],
        text("done"),
    ],
    agents={"researcher": [text('{"nothing": true}')]},
)


@prompt(model=FUNCTIONS, plugins=[function_plugin])
def functions(p):
    errors, set_errors = p.def_state("on_error", [])

    def record(args, error):
        set_errors(lambda e: [*e, {"type": type(error).__name__, "message": error.message}])

    p.def_function("calculate", "Add two numbers", AddArgs, lambda args: {"total": args.a + args.b}, response_schema=Sum)
    p.def_function("failing", "Always fails", AddArgs, _explode, on_error=record)
    p.def_function_agent("team", "Specialists", [
        func_agent("researcher", "Research a topic", Data, analyse, response_schema=Findings, schema_retries=0),
    ])
    p.user("Calculate 10 + 5")
