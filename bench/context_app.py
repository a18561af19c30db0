"""What bench/context_history.py runs: a long-lived chat on a scripted model, without a
context window or under ``def_context`` (sliding_window, summarize). The workflow sandbox
re-imports this module: it imports only lmthing and pydantic."""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text

ANSWER = ("the archive keeps it in the east wing, on the shelf by the window, with the maps of the coast "
          "and the letters of the harbour master; ask the archivist for the key")


class Chat(BaseModel):
    strategy: str | None = None  # None: no def_context
    max_tokens: int = 2000
    reserved_tokens: int = 500


def _answer(request):
    return text(f"About '{last_user_text(request)}': {ANSWER}.")


@prompt(model=scripted_model("bench-context", [_answer], repeat=True), max_steps=2)
def bench_context_chat(p, args: Chat):
    """A chat whose context window is the benchmark's variable."""
    if args.strategy is not None:
        p.def_context(args.strategy, max_tokens=args.max_tokens, reserved_tokens=args.reserved_tokens, keep_last=4)
    p.def_system("role", "You answer questions about the archive, briefly.")
