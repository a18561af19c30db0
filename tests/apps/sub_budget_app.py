"""Prompts for the nested-budget tests (tests/test_sub_budgets.py): a sub-agent with a token
budget of its own inside its tree's budget, and a grandchild spending from both."""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call


class Task(BaseModel):
    task: str


class Limits(BaseModel):
    tree: float
    team: float


def _thinker(args: Task, child):
    notes, set_notes = child.def_state("notes", 0)
    child.def_tool("think", "Think one more step", None, lambda a: set_notes(notes + 1) or {"notes": notes + 1})
    child.user(f"Work on: {args.task}")


def _lead(limit: float):
    def lead(args: Task, child):
        child.def_constraint("team", "tokens", max=limit)  # the lead's subtree: a budget of its own
        child.def_agent("helper", "A helper", Task, _thinker, max_steps=30)
        notes, set_notes = child.def_state("notes", 0)
        child.def_tool("think", "Think one more step", None, lambda a: set_notes(notes + 1) or {"notes": notes + 1})
        child.user(f"Lead: {args.task}")
    return lead


THINK = [tool_call("think", {})]
NESTED = scripted_model(
    "sub-budget",
    [tool_call("lead", {"task": "plan"}), *[THINK] * 10, text("the root is done")],
    agents={"lead": [tool_call("helper", {"task": "help"}), *[THINK] * 30], "helper": THINK},
    repeat=True,
)


@prompt(model=NESTED, max_steps=12)
def nested_budget(p, limits: Limits):
    p.def_constraint("tree", "tokens", max=limits.tree)
    p.def_agent("lead", "The team lead", Task, _lead(limits.team), max_steps=30)
    notes, set_notes = p.def_state("notes", 0)
    p.def_tool("think", "Think one more step", None, lambda a: set_notes(notes + 1) or {"notes": notes + 1})
    p.user("Lead the work.")
