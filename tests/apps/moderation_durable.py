"""A prompt whose inputs and outputs go through OpenAI's moderation endpoint, for the SIGKILL
test in tests/test_moderation_durability.py (the worker runs in a subprocess)."""

from __future__ import annotations

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call


@tool
def note_down(item: str) -> dict:
    """Write an item down."""
    return {"noted": item}


@prompt(model=scripted_model("mod-durable", [tool_call("note_down", {"item": "milk"}), text("Noted: milk.")]),
        max_steps=3)
def moderated_notes(p):
    p.def_moderation("safety", model="openai:omni-moderation-latest", action="flag")
    p.def_tool(note_down)
    p.user("Note down milk, you idiot.")
