"""Prompts for the context-window tests (tests/test_context.py, docs/context.md).

``context_sliding`` and ``context_summarize`` are long tool loops (one ``note`` call per step,
until the model stops) for a model behind the fake OpenAI wire server; ``context_chat`` is a
long-lived chat on a scripted model; ``context_relevance`` is one call over a conversation
with a related and an unrelated exchange. The workflow sandbox re-imports this module: it
imports only lmthing and pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text

TASK = "Take notes on the archive, one line per turn, until you have noted every shelf."
ROLE = "You are an archivist. You take notes with the note tool."
FILLER = "filed under the archive's east wing, shelf by shelf, box by box"

# The window of the loops below: what every request to the model must stay under.
MAX_TOKENS, RESERVED, KEEP_LAST = 1200, 200, 4


class Note(BaseModel):
    text: str


def _note(args: Note) -> str:
    return f"noted: {args.text}; {FILLER}"


def _loop(p) -> None:
    p.def_system("role", ROLE)
    p.def_tool("note", "Write one line of notes.", Note, _note)
    p.user(TASK)


@prompt(max_steps=80)
def context_sliding(p):
    p.def_context("sliding_window", max_tokens=MAX_TOKENS, reserved_tokens=RESERVED, keep_last=KEEP_LAST, keep_first=1)
    _loop(p)


@prompt(max_steps=80)
def context_summarize(p):
    p.def_context("summarize", max_tokens=MAX_TOKENS, reserved_tokens=RESERVED, keep_last=KEEP_LAST, keep_first=1,
                  summary_tokens=80)
    _loop(p)


@prompt(max_steps=80)
def context_unbounded(p):
    _loop(p)  # the same loop without def_context: every request carries the whole conversation


# ------------------------------------------------------------------------- relevance
VET = "My cat Miso needs a vet appointment next week, mornings only."
BUDGET = "Separately: the quarterly budget spreadsheet has forty rows of totals to reconcile by Friday."


@prompt(model=scripted_model("context-relevance", [lambda request: text(f"I see {len(request.messages)} messages.")]))
def context_relevance(p):
    p.def_context("relevance", max_tokens=70, keep_last=1)
    p.def_message("user", VET)
    p.def_message("assistant", "Noted: a morning vet appointment for Miso.")
    p.def_message("user", BUDGET)
    p.def_message("assistant", "Understood, forty rows of quarterly totals to reconcile by Friday.")
    p.user("Which morning suits the vet appointment for Miso?")


# ------------------------------------------------------------------------------ chat
class Chat(BaseModel):
    strategy: str | None = None  # None: no def_context


def _answer(request) -> object:
    return text(f"About '{last_user_text(request)}': {FILLER}.")


@prompt(model=scripted_model("context-chat", [_answer], repeat=True), max_steps=2)
def context_chat(p, args: Chat):
    if args.strategy is not None:
        p.def_context(args.strategy, max_tokens=300, reserved_tokens=100, keep_last=2)
    p.def_system("role", "You answer questions about the archive.")


@prompt(model=scripted_model("context-budget", [lambda request: text(f"turn {request.step}")], repeat=True), max_steps=12)
def context_budgeted(p):
    """Twelve answers asked again by a validator, under a token budget: summaries spend from it too."""
    p.def_context("summarize", max_tokens=160, keep_last=2, summary_tokens=20)
    p.def_constraint("tokens", "tokens", max=1_000_000)
    p.def_validator("twelve", check=lambda answer: answer == "turn 11" or f"again, {FILLER}", answer=True, max_retries=11)
    p.user(TASK)


@prompt(model=scripted_model("context-bad", [text("never")]))
def context_bad_window(p):
    p.def_context("sliding_window", max_tokens=1000, reserved_tokens=1000)
    p.user("hello")
