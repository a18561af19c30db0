"""A prompt of N tool rounds, for tests/test_history_size.py and bench/history_size.py:
how many history bytes one more step costs."""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

MAX_ROUNDS = 1000


class Rounds(BaseModel):
    rounds: int


@tool
async def hist_fetch(page: int) -> dict:
    """Fetches one page of a document."""
    return {"page": page, "text": f"Page {page}: " + "lorem ipsum dolor sit amet " * 20}


def _round(request):
    """Step k < N: fetch page k; step N: answer. N is read from the user's message. The
    model checks that it sees the whole conversation (the user's message, then a call and
    its result per step), however its worker rebuilt it."""
    rounds = int(request.messages[0].content.split()[1])
    if len(request.messages) != 1 + 2 * request.step or not request.tools:
        return text(f"Lost the conversation at step {request.step}: {len(request.messages)} messages, {len(request.tools)} tools.")
    if request.step < rounds:
        return tool_call("hist_fetch", {"page": request.step})
    return text(f"Read {rounds} pages.")


@prompt(model=scripted_model("history-rounds", [_round] * (MAX_ROUNDS + 1)), max_steps=MAX_ROUNDS + 1)
def history_rounds(p, args: Rounds):
    p.def_tool(hist_fetch)
    p.user(f"Fetch {args.rounds} pages, one per step, then say how many you read.")
