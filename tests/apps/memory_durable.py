"""A prompt for tests/test_memory_durability.py: it remembers two facts (two memory writes,
each embedded through the fake server) before its model call."""

from __future__ import annotations

from lmthing import prompt
from lmthing.testing import scripted_model, text


@prompt(model=scripted_model("memory-durable", [text("both facts are stored")]))
async def two_facts(p, args: dict):
    facts = p.def_memory("durable-facts", "vector", scope="run", dimensions=16)
    for fact in args["facts"]:
        await facts.remember(fact)
    p.user("Store the facts.")
