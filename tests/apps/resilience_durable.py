"""Prompts for the resilience durability tests (tests/test_resilience_durability.py): a model
cascade, workflow-run retries, a guard that asks a person, and a budgeted tree of sub-agents,
each run by a worker that is SIGKILLed in the middle.

The tools are activities of the worker process that runs them, not of the test process, so
what they did is kept where every worker and the test see it: one file per run and tool
under ``$RESDUR_DIR`` (:func:`calls_of`), a line per call naming the process that made it.
That is the flaky service's and the file store's own record: a call repeated after a kill
shows there, whatever the history says.

Imported by the session worker (tests/conftest.py) and by the subprocess workers of
tests/worker_process.py; the workflow sandbox re-imports it, so it imports only lmthing,
pydantic, temporalio and the standard library.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

DIR_VARIABLE = "RESDUR_DIR"
PONDER_SECONDS = 0.5


def calls_of(workflow_id: str, tool_name: str) -> list[int]:
    """The pids of the processes that called ``tool_name`` for run ``workflow_id``, in order."""
    path = Path(os.environ.get(DIR_VARIABLE, tempfile.gettempdir())) / f"{workflow_id}.{tool_name}"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _count_call(tool_name: str) -> int:
    path = Path(os.environ.get(DIR_VARIABLE, tempfile.gettempdir())) / f"{activity.info().workflow_id}.{tool_name}"
    with path.open("a") as f:
        f.write(f"{os.getpid()}\n")
    return len(path.read_text().split())


class Note(BaseModel):
    text: str


class Task(BaseModel):
    task: str


# ----------------------------------------------------------------------------- cascade
# The models are real providers (openai, anthropic) on the fake wire servers of the test.
@prompt(fallback="models", max_steps=3)
def resdur_cascade(p):
    notes, set_notes = p.def_state("notes", [])
    p.def_retry("twice", max_attempts=2, backoff="constant", base_delay=0.1)
    p.def_fallback("models", "cascade", cascade=[{"model": "openai:gpt-4o", "retry": "twice"}, "anthropic:claude-haiku-4-5"],
                   retry_delay=0.2)
    p.def_tool("note", "Save a note.", Note, lambda a: set_notes([*notes, a.text]) or {"saved": len(notes) + 1})
    p.user("Note what you like, then say what you noted.")


# ----------------------------------------------------------------------- run retries
@tool
def resdur_flaky(q: str) -> dict:
    """Ask a service that resets every connection."""
    raise ConnectionError(f"connection reset (call {_count_call('resdur_flaky')})")


RETRY_ATTEMPTS = 4


@prompt(model=scripted_model("resdur-retry", [
    tool_call("resdur_flaky", {"q": "tea"}),
    lambda request: text(f"gave up: {request.messages[-1].content}"),
]))
def resdur_retry(p):
    # Linear backoff: the workflow runs the attempts, with a durable timer between them.
    p.def_retry("net", max_attempts=RETRY_ATTEMPTS, backoff="linear", base_delay=1.0, max_delay=1.5,
                retryable_errors=["ConnectionError"])
    p.def_tool(resdur_flaky, retry="net")
    p.user("Fetch tea.")


# ------------------------------------------------------------------------- guard asks
@tool
def resdur_remove(path: str) -> dict:
    """Remove a file from the store."""
    return {"removed": path, "removals": _count_call("resdur_remove")}


@prompt(model=scripted_model("resdur-guard", [
    tool_call("resdur_remove", {"path": "notes.txt"}),
    lambda request: text(f"the store said: {request.messages[-1].content}"),
]))
def resdur_guard(p):
    p.def_guard("safe_mode", lambda c: not c.args.path.endswith(".txt"), on_fail="ask", message="text files are protected")
    p.def_tool(resdur_remove, guards=["safe_mode"])
    p.user("Remove notes.txt.")


# ---------------------------------------------------------------------- budgeted tree
@tool(timeout=timedelta(seconds=3))
async def resdur_ponder(topic: str) -> dict:
    """Think about a topic for a while."""
    await asyncio.sleep(PONDER_SECONDS)
    return {"topic": topic, "thought": f"{topic} is worth a thought"}


AGENTS = ("a", "b", "c")
PONDER_STEPS = 4


def _ponderer(args: Task, child):
    child.def_tool(resdur_ponder)
    child.user(f"Ponder: {args.task}")


# The root asks its agents one after another, so the tree spends in the same order in
# every run, and a budget is crossed at the same step of the same agent.
TREE = scripted_model(
    "resdur-tree",
    [*[[tool_call(name, {"task": f"part {name}"})] for name in AGENTS], text("the tree is done")],
    agents={name: [*[[tool_call("resdur_ponder", {"topic": f"{name}{i}"})] for i in range(PONDER_STEPS)],
                   text(f"{name} is done")] for name in AGENTS},
)


@prompt(model=TREE, max_steps=len(AGENTS) + 2)
def resdur_tree(p, args: Task):
    p.def_constraint("tokens", "tokens", max=float(args.task))
    for name in AGENTS:
        p.def_agent(name, f"Ponderer {name}", Task, _ponderer, max_steps=PONDER_STEPS + 2)
    p.user("Split the work.")


# A budgeted root that waits for a person: alive, so it answers budget reports meanwhile.
@prompt(model=scripted_model("resdur-waiting-root", [tool_call("resdur_remove", {"path": "old.txt"}), text("done")]))
def resdur_waiting_root(p):
    p.def_constraint("tokens", "tokens", max=1000)
    p.def_guard("safe_mode", lambda c: False, on_fail="ask", message="ask first")
    p.def_tool(resdur_remove, guards=["safe_mode"])
    p.user("Remove old.txt.")
