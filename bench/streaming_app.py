"""The lmthing side of ``bench/streaming.py``: one prompt with one ``@tool`` activity tool,
called with ``openai:<model>`` against the local fake model server.

Kept in its own importable module (``bench.streaming_app``) because the workflow sandbox
re-imports the module that defines a prompt.
"""

from __future__ import annotations

from lmthing import prompt, tool

SYSTEM = "You are a benchmark agent. Use the lookup tool when asked to, then answer at length."
USER = "Explain, in about two hundred tokens, how tides work."


@tool
async def lookup(n: int) -> dict:
    """Look up a number and return a few facts about it."""
    return {"n": n, "square": n * n, "parity": "even" if n % 2 == 0 else "odd", "label": f"item-{n}"}


@prompt(max_steps=10)
def stream_agent(p):
    p.def_system("role", SYSTEM)
    p.def_tool(lookup)
    p.user(USER)
