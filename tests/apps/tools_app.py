"""Prompts and tools for the tool-execution tests."""

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from lmthing import RetryOptions, ToolContext, prompt, tool
from lmthing.testing import scripted_model, text, tool_call
import tests.unregistered_tools as extra_tools  # a module, not a tool: the worker won't register it


class AddArgs(BaseModel):
    a: int
    b: int


@tool
async def add(a: int, b: int, ctx: ToolContext) -> dict:
    """Add two integers."""
    return {"sum": a + b, "key": ctx.idempotency_key, "attempt": ctx.attempt}


@tool
async def slow_echo(word: str, delay: float = 0.3) -> dict:
    """Echo a word after a delay."""
    await asyncio.sleep(delay)
    return {"echo": word}


@tool(retry=RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=3))
def flaky(fail: bool = True) -> dict:
    """Always fails (a sync tool: runs in a thread)."""
    raise RuntimeError("upstream is down")


@tool(retry=RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=2), critical=True)
def must_work() -> dict:
    """A critical tool that fails."""
    raise RuntimeError("disk full")


@prompt(model=scripted_model("tools-mixed", [tool_call("add", {"a": 2, "b": 3}), tool_call("note", {"text": "hi"}), text("5")]))
def mixed(p):
    notes, set_notes = p.def_state("notes", [])
    p.def_tool(add)
    p.def_tool("note", "Keep a note", None, lambda args: set_notes([*notes, args["text"]]) or {"ok": True})
    p.user("Add 2 and 3")


@prompt(
    model=scripted_model(
        "tools-concurrent",
        [tool_call("slow_echo", {"word": "first", "delay": 0.5}), tool_call("slow_echo", {"word": "second", "delay": 0.1}), text("ok")],
    )
)
def concurrent(p):
    p.def_tool(slow_echo)
    p.user("Echo twice")


@prompt(
    model=scripted_model(
        "tools-invalid",
        [
            [tool_call("add", {"a": "not a number", "b": 1})],
            [tool_call("add", '{"a": 1, "b": ')],
            [tool_call("missing", {})],
            text("recovered"),
        ],
    )
)
def invalid_args(p):
    p.def_tool(add)
    p.user("Try")


@prompt(model=scripted_model("tools-failing", [tool_call("flaky", {}), text("it failed")]))
def failing(p):
    p.def_tool(flaky)
    p.user("Try")


@prompt(model=scripted_model("tools-critical", [tool_call("must_work", {}), text("unreachable")]))
def critical(p):
    p.def_tool(must_work)
    p.user("Try")


@prompt(model=scripted_model("tools-critical-inwf", [tool_call("boom", {}), text("unreachable")]))
def critical_in_workflow(p):
    p.def_tool("boom", "Explodes", None, lambda args: 1 / 0, critical=True)
    p.user("Try")


@prompt(
    model=scripted_model(
        "tools-callbacks",
        [
            [tool_call("short", {"a": 1, "b": 2})],
            [tool_call("replaced", {"a": 1, "b": 2})],
            [tool_call("recovered", {"a": 1, "b": 2})],
            [tool_call("kept_error", {"a": 1, "b": 2})],
            [tool_call("bad_shape", {"a": 1, "b": 2})],
            text("done"),
        ],
    )
)
def callbacks(p):
    calls, set_calls = p.def_state("calls", [])

    def record(name):
        set_calls(lambda c: [*c, name])

    def real(args):
        record("executed")
        return {"sum": args.a + args.b}

    def broken(args):
        raise ValueError("bad input")

    class Sum(BaseModel):
        sum: int

    p.def_tool("short", "Short-circuited", AddArgs, real, before_call=lambda args: {"cached": True})
    p.def_tool("replaced", "Output replaced", AddArgs, real, on_success=lambda args, out: {"sum": out["sum"] * 10})
    p.def_tool("recovered", "Error recovered", AddArgs, broken, on_error=lambda args, err: {"fallback": err["error"]})
    p.def_tool("kept_error", "Error kept", AddArgs, broken, on_error=lambda args, err: None)
    p.def_tool("bad_shape", "Wrong output shape", AddArgs, lambda args: {"total": 3}, response_schema=Sum)
    p.user("Try callbacks")


class Path(BaseModel):
    path: str


class Write(BaseModel):
    path: str
    content: str


@prompt(
    model=scripted_model(
        "tools-composite",
        [
            tool_call(
                "file",
                {
                    "calls": [
                        {"name": "write", "args": {"path": "a.txt", "content": "Hello"}},
                        {"name": "read", "args": {"path": "missing.txt"}},
                        {"name": "read", "args": {"path": "a.txt"}},
                        {"name": "delete", "args": {"path": "a.txt"}},
                        {"name": "add", "args": {"a": 4, "b": 5}},
                    ]
                },
            ),
            text("done"),
        ],
    )
)
def composite(p):
    files, set_files = p.def_state("files", {})

    def write(args):
        set_files(lambda f: {**f, args.path: args.content})
        return {"success": True}

    def read(args):
        current = p.get_state("files")
        if args.path not in current:
            raise FileNotFoundError(args.path)
        return {"content": current[args.path]}

    p.def_tool(
        "file",
        "File operations",
        [
            tool("write", "Write a file", Write, write),
            tool("read", "Read a file", Path, read),
            tool("add", "Add numbers (an activity)", AddArgs, add),
        ],
    )
    p.user("Use files")


@prompt(model=scripted_model("tools-slow", [tool_call("slow_echo", {"word": "x", "delay": 1.5}), text("done")]))
def slow(p):
    p.def_state("phase", "started")
    p.def_tool(slow_echo)
    p.user("Be slow")


@prompt(model=scripted_model("tools-unregistered", [tool_call("forgotten", {"x": 1}), text("went on")]))
def uses_unregistered_tool(p):
    p.def_tool(extra_tools.forgotten)
    p.user("Try")
