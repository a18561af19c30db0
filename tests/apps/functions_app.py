"""Prompts for the function plugin tests (tests/test_functions.py).

Imported by the session worker and by the subprocess worker of the crash test, and
re-imported by the workflow sandbox: only lmthing, pydantic and the standard library.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.plugins.functions import func, func_agent, function_plugin
from lmthing.testing import scripted_model, text, tool_call
from tests.hostile_snippets import HOSTILE


class AddArgs(BaseModel):
    a: int
    b: int


class MulArgs(BaseModel):
    a: float
    b: float


class Sum(BaseModel):
    sum: int


class Product(BaseModel):
    product: float


@tool
async def lookup(item: str) -> dict:
    """Look up the score of an item (an activity)."""
    return {"item": item, "score": len(item) * 10}


@tool
async def square(x: float) -> dict:
    """Square a number (an activity)."""
    return {"value": x * x}


SCRIPT = '''r = calculate(a=15, b=27)
p = math.multiply(a=r["sum"], b=2)
s = lookup(item="gamma")
q = math.square(x=3)
names = [w.upper() for w in ["a", "b"]]
print(f"product={p['product']}", s["score"], q["value"])
{"sum": r["sum"], "product": p["product"], "score": s["score"], "square": q["value"], "names": names}
'''


@prompt(
    model=scripted_model(
        "functions-script",
        [
            [tool_call("runToolCode", {"code": SCRIPT})],
            [tool_call("runToolCode", {"code": "x = calculate(a=1, b=2)\nx['sum']"})],
            text("done"),
        ],
    ),
    plugins=[function_plugin],
)
def functions_script(p):
    _calls, set_calls = p.def_state("calls", [])
    p.def_function(
        "calculate",
        "Add two numbers",
        AddArgs,
        lambda args: set_calls(lambda c: [*c, "calculate"]) or {"sum": args.a + args.b},
        response_schema=Sum,
    )
    p.def_function("lookup", "Look up an item", lookup)
    p.def_function(
        "math",
        "Math operations",
        [
            func("multiply", "Multiply two numbers", MulArgs, lambda args: {"product": args.a * args.b}, response_schema=Product),
            func("square", "Square a number", None, square),
        ],
    )
    p.user("Calculate 15 + 27, then multiply by 2")


STATIC_ERRORS = '''x = calculate(a="15", c=2)
y = nope(z=1)
z = math.divide(a=1, b=2)
w = math.multiply(a=1)
calculate(1, 2)
'''


@prompt(
    model=scripted_model(
        "functions-static",
        [
            [tool_call("runToolCode", {"code": STATIC_ERRORS})],
            [tool_call("runToolCode", {"code": "x = 1\nif x ==:\n    pass"})],
            text("gave up"),
        ],
    ),
    plugins=[function_plugin],
)
def functions_static_errors(p):
    calls, set_calls = p.def_state("calls", 0)
    p.def_function("calculate", "Add two numbers", AddArgs, lambda args: set_calls(calls + 1) or {"sum": args.a + args.b})
    p.def_function("math", "Math operations", [func("multiply", "Multiply", MulArgs, lambda a: {"product": a.a * a.b})])
    p.user("Try")


@prompt(
    model=scripted_model(
        "functions-callbacks",
        [
            [tool_call("runToolCode", {"code": "[short(a=1, b=2), replaced(a=1, b=2), recovered(a=1, b=2)]"})],
            [tool_call("runToolCode", {"code": "x = replaced(a=2, b=2)\ny = bad_shape(a=1, b=2)\nprint('unreachable')"})],
            [tool_call("runToolCode", {"code": "print('before')\nkept_error(a=1, b=2)"})],
            text("done"),
        ],
    ),
    plugins=[function_plugin],
)
def functions_callbacks(p):
    _calls, set_calls = p.def_state("calls", [])

    def real(args):
        set_calls(lambda c: [*c, f"real:{args.a}+{args.b}"])
        return {"sum": args.a + args.b}

    def broken(args):
        raise ValueError("bad input")

    p.def_function("short", "Short-circuited", AddArgs, real, before_call=lambda args: {"sum": -1})
    p.def_function("replaced", "Output replaced", AddArgs, real, on_success=lambda args, out: {"sum": out["sum"] * 10})
    p.def_function("recovered", "Error recovered", AddArgs, broken, on_error=lambda args, err: {"sum": 0, "note": str(err)})
    p.def_function("kept_error", "Error kept", AddArgs, broken, on_error=lambda args, err: None)
    p.def_function("bad_shape", "Wrong output shape", AddArgs, lambda args: {"total": 3}, response_schema=Sum)
    p.user("Try callbacks")


# One end-to-end hostile run: an escape attempt, an infinite loop, a memory bomb.
HOSTILE_E2E = [code for id_, code, _ in HOSTILE if id_ in ("subclasses", "infinite-while", "str-bomb")]


@prompt(
    model=scripted_model(
        "functions-hostile",
        [*([tool_call("runToolCode", {"code": code})] for code in HOSTILE_E2E), text("contained")],
    ),
    plugins=[function_plugin],
)
def functions_hostile(p):
    p.def_function("calculate", "Add two numbers", AddArgs, lambda args: {"sum": args.a + args.b})
    p.user("Escape")


# ------------------------------------------------------------------ function agents


class TopicArgs(BaseModel):
    topic: str


class Findings(BaseModel):
    findings: list[str]
    confidence: float


def research(args, child):
    child.user(f"Research: {args.topic}")


@prompt(
    model=scripted_model(
        "functions-agents",
        [
            tool_call(
                "runToolCode",
                {"code": 'r = researcher(topic="tides")\ns = team.summarize(topic=r["findings"][0])\n{"r": r, "s": s}'},
            ),
            text("done"),
        ],
        agents={
            "fn-researcher": [text('{"findings": ["the moon pulls"], "confidence": 0.9}')],
            "summarize": [text("Tides: the moon pulls.")],
        },
    ),
    plugins=[function_plugin],
)
def functions_agents(p):
    p.def_function_agent("researcher", "Research a topic", TopicArgs, research, response_schema=Findings)
    p.def_function_agent("team", "A team", [func_agent("summarize", "Summarize", TopicArgs, research)])
    p.user("Research tides")


# ------------------------------------------------------------------ crash mid-script

SLOW_SECONDS = 2.0


@tool(timeout=timedelta(seconds=4))
async def step_one(x: int) -> dict:
    """First step (fast activity)."""
    return {"value": x + 1}


@tool(timeout=timedelta(seconds=4))
async def slow_step(x: int) -> dict:
    """Second step (slow activity: the worker is killed while it runs)."""
    await asyncio.sleep(SLOW_SECONDS)
    return {"value": x * 10}


@tool(timeout=timedelta(seconds=4))
async def step_three(x: int) -> dict:
    """Third step (fast activity)."""
    return {"value": x + 3}


class NoteArgs(BaseModel):
    text: str


CRASH_SCRIPT = '''a = step_one(x=1)
n = note(text="after one")
b = slow_step(x=a["value"])
c = step_three(x=b["value"])
c["value"]
'''


@prompt(
    model=scripted_model("functions-crash", [tool_call("runToolCode", {"code": CRASH_SCRIPT}), text("done")]),
    plugins=[function_plugin],
)
def functions_crash(p):
    _notes, set_notes = p.def_state("notes", [])

    def note(args):
        set_notes(lambda n: [*n, args.text])
        return {"count": len(p.get_state("notes"))}

    p.def_function("step_one", "Step one", step_one)
    p.def_function("note", "Take a note (in the workflow)", NoteArgs, note)
    p.def_function("slow_step", "Slow step", slow_step)
    p.def_function("step_three", "Step three", step_three)
    p.user("Run the pipeline")
