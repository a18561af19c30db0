"""Prompts for the budget tests (tests/test_budgets.py): a tree under a token budget, a
run under a duration budget, a parallel plan under a rate limit (def_constraint)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

from lmthing import call_agent, prompt
from lmthing.testing import scripted_model, text, tool_call

with workflow.unsafe.imports_passed_through():
    from tests.apps.rate_clock import record as record_call


class Task(BaseModel):
    task: str


def _thinker(args: Task, child):
    notes, set_notes = child.def_state("notes", 0)
    child.def_tool("think", "Think one more step", None, lambda a: set_notes(notes + 1) or {"notes": notes + 1})
    child.user(f"Work on: {args.task}")


THINK = [tool_call("think", {})]
TREE = scripted_model(
    "budget-tree",
    [[tool_call("a", {"task": "one"}), tool_call("b", {"task": "two"}), tool_call("c", {"task": "three"}),
      tool_call("group", {"task": "four"})], text("the tree is done")],
    agents={name: THINK for name in ("a", "b", "c", "d", "e")},
    repeat=True,
)


@prompt(model=TREE, max_steps=5)
def tree(p, args: Task):
    p.def_constraint("tokens", "tokens", max=float(args.task), warn=float(args.task) / 2)
    for name in ("a", "b", "c", "d", "e"):
        p.def_agent(name, f"Thinker {name}", Task, _thinker, max_steps=30)
    p.def_parallel("group", {n: call_agent(n, {"task": f"branch {n}"}) for n in ("d", "e")}, as_tool=True)
    p.user("Split the work.")


@prompt(model=scripted_model("budget-alone", THINK, repeat=True), max_steps=40)
def alone(p, args: Task):
    p.def_constraint("tokens", "tokens", max=float(args.task))
    notes, set_notes = p.def_state("notes", 0)
    p.def_tool("think", "Think one more step", None, lambda a: set_notes(notes + 1) or {"notes": notes + 1})
    p.user("Think.")


@prompt(model=scripted_model("budget-graceful", [*[THINK] * 30, text("my final answer")]), max_steps=40)
def graceful(p):
    p.def_constraint("tokens", "tokens", max=400, on_exceeded="graceful_stop")
    p.def_tool("think", "Think one more step", None, lambda a: {"ok": True})
    p.user("Think.")


@prompt(model=scripted_model("budget-clock", [[tool_call("wait", {})], [tool_call("wait", {})], text("never")]))
async def clock(p):
    import asyncio

    p.def_constraint("time", "duration", max=1.0)

    async def wait(_):
        await asyncio.sleep(1.5)  # a durable timer in the workflow
        return {"waited": 1.5}

    p.def_tool("wait", "Wait a while", None, wait)
    p.user("Wait twice.")


BRANCHES = 20


def _clocked(reply: str):
    def answer(request):
        record_call()  # in the model activity, when the provider is asked
        return text(reply)
    return answer


RATE = scripted_model("budget-rate", [_clocked("all branches ran")],
                      agents={f"w{i}": [_clocked(f"w{i} ok")] for i in range(BRANCHES)})


@prompt(model=RATE, max_steps=3)
async def rate_limited(p):
    p.def_constraint("calls", "rate", requests=5, period=1.0)
    for i in range(BRANCHES):
        p.def_agent(f"w{i}", f"Worker {i}", Task, lambda args, child: child.user(args.task))
    p.def_parallel("fan", {f"w{i}": call_agent(f"w{i}") for i in range(BRANCHES)})
    await p.run_parallel("fan", {"task": "go"}, key="fan")
    p.user("Report.")
