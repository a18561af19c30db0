"""Prompts for tests/test_cli_agents.py (``lmthing agents list``): the cases
tests/apps/orchestration_app.py does not have. Never run, only listed (and scanned). The
names are prefixed: the session worker of tests/conftest.py registers every tests/apps module."""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import agent, call_agent, def_pipeline, prompt


class Query(BaseModel):
    question: str = "What is new?"
    depth: int = 1


class Note(BaseModel):
    text: str


def child(args, c):
    c.user(str(args))


@prompt(capabilities=["research"])
async def agents_list_researcher(p, args: Query):
    """Researches a question with helpers (its args have defaults, so it can be scanned)."""
    print("researcher scanned")  # must not end up in --json output
    p.def_agent("searcher", "Searches the web", Query, child, capabilities=["search", "research"])
    p.def_agent("writers", "Writes things", [
        agent("poet", "Writes poems", Note, child),
        agent("critic", "Criticises", Note, child, capabilities=["review"]),
    ])
    p.def_team("panel", ["searcher"], lead="searcher")  # declares the hidden agent panel__lead
    await p.call_agent("searcher", {"question": args.question}, key="first")  # a scan stops here
    p.def_agent("after_start", "Declared after the call: not found by a scan", Note, child)


@prompt
def agents_list_broken(p):
    """Fails while being scanned."""
    p.def_agent("early", "Declared before the failure", Note, child)
    raise RuntimeError("no database in this process")


@prompt
def agents_list_untyped(p, args):
    """Takes any JSON."""
    p.user(str(args))


agents_list_relay = def_pipeline("agents_list_relay", [("ask", call_agent("agents_list_researcher"))], description="Asks the researcher.")
