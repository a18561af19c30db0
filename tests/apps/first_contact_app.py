"""Prompts for tests/test_first_contact.py: mistakes a new user makes."""

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
