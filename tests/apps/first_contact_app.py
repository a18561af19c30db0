"""Prompts for tests/test_first_contact.py: mistakes a new user makes."""

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call


class Opaque:
    """Not JSON: a tool that returns one of these cannot have its result sent."""


@tool
async def returns_an_object() -> dict:
    """Returns something that is not JSON."""
    return {"thing": Opaque()}


@tool
async def returns_three_megabytes() -> str:
    """Returns more than a Temporal payload holds."""
    return "x" * 3_000_000


@prompt(model=scripted_model("first-contact-results", [
    [tool_call("returns_an_object"), tool_call("returns_three_megabytes")], text("done"),
]))
def bad_tool_results(p):
    p.def_tool(returns_an_object)
    p.def_tool(returns_three_megabytes)
    p.user("Call both tools.")


class Task(BaseModel):
    task: str


def _recurse(args: Task, child):
    child.def_agent("recur", "Calls itself", Task, _recurse)  # and so on, forever, without a stop
    child.user(args.task)


@prompt(model=scripted_model(
    "first-contact-recursion",
    [tool_call("recur", {"task": "go"}), text("root done")],
    agents={"recur": [tool_call("recur", {"task": "again"}), text("stopped")]},
))
def self_calling_agent(p):
    p.def_agent("recur", "Calls itself", Task, _recurse)
    p.user("Start.")


@prompt(model=scripted_model("first-contact-await", [text("never")]))
def forgets_await(p):
    city = p.ask_human("Which city?")  # the mistake: no await
    p.user(city)
