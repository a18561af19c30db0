"""Prompts for the real-provider tests (tests/test_providers.py). They name no model: each
test passes ``model=`` (``openai:...``, ``anthropic:...``, a custom provider, an alias) and
points the provider at a fake server through the worker's environment."""

from pydantic import BaseModel, Field

from lmthing import prompt


class AddArgs(BaseModel):
    a: int = Field(description="First addend")
    b: int = Field(description="Second addend")


class NoteArgs(BaseModel):
    text: str


SYSTEM_ROLE = "You are a careful calculator."


@prompt(max_steps=6)
def calc(p):
    notes, set_notes = p.def_state("notes", [])
    p.def_system("role", SYSTEM_ROLE)
    p.def_tool("add", "Add two integers", AddArgs, lambda args: {"sum": args.a + args.b})
    p.def_tool("note", "Keep a note for later", NoteArgs, lambda args: set_notes([*notes, args.text]) or {"ok": True})
    p.user("Add 2 and 3, and 4 and 5, then note the results.")


@prompt(max_steps=3)
def chat(p):
    p.user("Say hello.")


class Verdict(BaseModel):
    verdict: str
    confidence: float


@prompt(max_steps=3)
def judge(p):
    p.def_agent(
        "judge",
        "Judge a claim",
        NoteArgs,
        lambda args, child: child.user(f"Judge: {args.text}"),
        response_schema=Verdict,
    )
    p.user("Is the sky green?")
