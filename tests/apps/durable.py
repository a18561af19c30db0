"""A long, stateful prompt for the durability tests (tests/test_durability.py).

Six tool rounds and a final answer (seven model steps). Every round the model calls

- ``record``: an in-workflow tool (a closure over ``def_state`` setters) that counts and
  logs entries; it runs inside the workflow, so after a worker dies its effects must be
  rebuilt by replay, exactly once each;
- ``slow_lookup``: an ``@tool`` activity that takes ~0.4 s, so a test can kill the worker
  while an attempt is running. Its short start-to-close timeout lets Temporal notice the
  lost attempt and retry it on another worker within seconds.

The final answer is computed by the scripted model from what it was sent (system prompt
and tool results), so a run whose state or conversation was damaged answers differently.

Imported by the session worker (tests/conftest.py) and by the subprocess workers of
tests/worker_process.py; the workflow sandbox re-imports it, so it imports only lmthing,
pydantic and the standard library.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.prompt.types import ModelRequest
from lmthing.testing import scripted_model, text, tool_call

ITEMS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
LOOKUP_SECONDS = 0.4


@tool(timeout=timedelta(seconds=3))
async def slow_lookup(item: str) -> dict:
    """Look an item up in a slow catalogue."""
    await asyncio.sleep(LOOKUP_SECONDS)
    return {"item": item, "score": len(item) * 10}


class Entry(BaseModel):
    entry: str


def _final_answer(request: ModelRequest) -> object:
    """The last step: sum the scores the model was given and echo the counter it sees."""
    scores = []
    for m in request.messages:
        if m.role == "tool" and m.name == "slow_lookup" and m.content:
            scores.append(json.loads(m.content)["score"])
    return text(f"Looked up {len(scores)} items, total score {sum(scores)}. Context: {request.system}")


_ROUNDS: list[object] = []
for _i, _item in enumerate(ITEMS):
    _ROUNDS += [
        text(f"Round {_i}: {_item}."),
        tool_call("record", {"entry": _item}),
        tool_call("slow_lookup", {"item": _item}),
    ]

DURABLE_MODEL = scripted_model("durable-counter", [*_ROUNDS, _final_answer])

EXPECTED_STEPS = len(ITEMS) + 1


@prompt(model=DURABLE_MODEL, max_steps=EXPECTED_STEPS + 2)
def durable_counter(p):
    count, set_count = p.def_state("count", 0)
    log, set_log = p.def_state("log", [])
    p.def_system("role", "You catalogue items, one per round.")
    p.def_var("recorded", count)
    p.def_var("last_entry", log[-1] if log else "none")
    p.user("Catalogue every item.")

    def record(args: Entry):
        set_count(lambda c: c + 1)
        set_log(lambda entries: [*entries, args.entry])
        return {"recorded": args.entry, "count": p.get_state("count")}

    p.def_tool("record", "Record an entry in the catalogue log.", Entry, record)
    p.def_tool(slow_lookup)
