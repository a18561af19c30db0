"""004's multi-agent demo: a planner, a retriever and a synthesizer that coordinate through
topics and a shared blackboard, each a long-lived agent (a workflow that waits for messages).

    python -m examples.research_team                     # offline: embedded server, scripted models
    python -m examples.research_team --address localhost:7233   # on `lmthing dev`, to browse it in the UI

- ``planner`` gets the question (an ``ask``), publishes one task per topic to
  ``research.tasks`` and writes the plan on the board ``research``;
- ``retriever`` is subscribed to ``research.tasks``: for each task it looks the topic up
  (``search_notes``, an activity), writes the finding on the board, then publishes its key
  to ``research.findings``;
- ``synthesizer`` is subscribed to ``research.findings``: it reads the board, and once every
  planned finding is there it writes the ``answer``.

The script prints the three agents' merged stream (``follow_team``), each line tagged with
its agent, and then the board. On real models, give each prompt ``model=`` (or ``--model``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import last_user_text, scripted_model, text, tool_call

class Team(BaseModel):
    """Every agent's argument: the team's name, which names its board and topics (so teams
    on one server do not hear each other)."""

    name: str = "research"

    @property
    def board(self) -> str:
        return self.name

    @property
    def tasks(self) -> str:
        return f"{self.name}.tasks"

    @property
    def findings(self) -> str:
        return f"{self.name}.findings"
TOPICS = ["durability", "messaging"]
NOTES = {
    "durability": "Temporal records every step in history, so a run survives a crashed worker.",
    "messaging": "Agents exchange messages through signals and updates; topics fan them out.",
}


@tool
def search_notes(topic: str) -> str:
    """Look a topic up in the team's notes."""
    return NOTES.get(topic, f"nothing on {topic}")


def _last(request: Any) -> Any:
    return request.messages[-1]


def _publish_topic(request: Any) -> str:
    """The topic the agent's publish tool offers (its description ends "One of: <topic>.")."""
    publish = next(t for t in request.tools if t.name == "publish")
    return publish.description.rsplit("One of: ", 1)[-1].rstrip(".")


def _task_of(message_text: str) -> str:
    return message_text.rsplit("find:", 1)[-1].split("<", 1)[0].strip()


# ---------------------------------------------------------------------------- planner
def _plan(request: Any) -> Any:
    if _last(request).role == "user":
        question = last_user_text(request)
        tasks = _publish_topic(request)
        return [*(tool_call("publish", {"topic": tasks, "content": f"find: {t}"}) for t in TOPICS),
                tool_call("board_write", {"key": "plan", "value": {"question": question, "tasks": TOPICS}})]
    return text(f"Planned {len(TOPICS)} research tasks.")


@prompt(model=scripted_model("team-planner", [_plan], repeat=True), max_steps=3)
def planner(p, team: Team):
    """Splits a question into research tasks for the team."""
    p.def_system("role", "You plan research: publish one task per topic, then write the plan on the board.")
    p.def_publish_tool([team.tasks])
    p.def_blackboard(team.board)


# -------------------------------------------------------------------------- retriever
def _retrieve(request: Any) -> Any:
    last = _last(request)
    topic = _task_of(last_user_text(request))
    if last.role == "user":
        return tool_call("search_notes", {"topic": topic})
    if last.name == "search_notes":
        return tool_call("board_write", {"key": f"finding:{topic}", "value": last.content})
    if last.name == "board_write":
        return tool_call("publish", {"topic": _publish_topic(request), "content": f"finding:{topic}"})
    return text(f"Stored finding:{topic}.")


@prompt(model=scripted_model("team-retriever", [_retrieve], repeat=True), max_steps=5)
def retriever(p, team: Team):
    """Looks up each research task and puts what it found on the board."""
    p.def_system("role", "You retrieve facts for research tasks and put them on the board.")
    p.def_tool(search_notes)
    p.def_publish_tool([team.findings])
    p.def_blackboard(team.board)


# ------------------------------------------------------------------------ synthesizer
def _synthesize(request: Any) -> Any:
    last = _last(request)
    if last.role == "user":
        return tool_call("board_read", {})
    if last.name == "board_read":
        entries = json.loads(last.content).get("entries", {})
        plan = entries.get("plan", {}).get("value", {})
        found = {k.split(":", 1)[1]: v["value"] for k, v in entries.items() if k.startswith("finding:")}
        missing = [t for t in plan.get("tasks", []) if t not in found]
        if missing or not plan:
            return text(f"Waiting for {', '.join(missing) or 'the plan'}.")
        answer = f"{plan['question']} " + " ".join(found[t] for t in plan["tasks"])
        return tool_call("board_write", {"key": "answer", "value": answer, "expected_version": 0})
    return text("The answer is on the board.")


@prompt(model=scripted_model("team-synthesizer", [_synthesize], repeat=True), max_steps=4)
def synthesizer(p, team: Team):
    """Writes the answer once every planned finding is on the board."""
    p.def_system("role", "You combine the findings on the board into one answer.")
    p.def_blackboard(team.board)


# ---------------------------------------------------------------------------- running
async def run_demo(client: Any, task_queue: str = "lmthing", question: str = "What makes agents on Temporal durable?",
                   prefix: str = "team", show: Any = print) -> dict[str, Any]:
    """Wire the team (subscriptions), ask the planner, follow the three agents until the
    answer is on the board; returns the board's contents. Needs a worker for this module."""
    import asyncio

    from lmthing.client.messaging import Board, follow_team, start_agent, subscribe

    ids = {name: f"{prefix}-{name}" for name in ("planner", "retriever", "synthesizer")}
    team = Team(name=prefix)
    await subscribe(client, team.tasks, ids["retriever"], retriever, team.model_dump(), task_queue=task_queue)
    await subscribe(client, team.findings, ids["synthesizer"], synthesizer, team.model_dump(), task_queue=task_queue)
    board = Board(client, team.board, task_queue=task_queue)
    plan = await start_agent(client, planner, team, id=ids["planner"], task_queue=task_queue)
    # The other two are started by their first delivery; follow them as they appear.
    events: list[Any] = []

    async def watch() -> None:
        async for event in follow_team(client, *ids.values()):
            events.append(event)
            if event.type in ("message", "reply", "tool_call"):
                show(_line(event, {v: k for k, v in ids.items()}))

    watcher = asyncio.ensure_future(watch())
    reply = await plan.ask(question)
    show(f"[planner] replied: {reply.text}")
    for _ in range(600):
        if "answer" in await board.contents():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the last events reach the merged stream
    watcher.cancel()
    contents = await board.contents()
    return {"board": contents, "events": events, "ids": ids, "board_name": team.board}


def _line(event: Any, names: dict[str, str]) -> str:
    who = names.get(event.source or "", event.source)
    if event.type == "tool_call" and event.tool_call:
        return f"[{who}] -> {event.tool_call.name} {json.dumps(event.tool_call.args)[:100]}"
    body = [line for line in (event.text or "").splitlines() if not line.startswith("<")]
    return f"[{who}] {event.type}: {(body[0] if body else '')[:100]}"


async def _main(address: str | None) -> None:
    import uuid

    from lmthing.workers import create_worker
    from lmthing.workers.dev_server import start_dev_server

    env = None
    if address:
        from lmthing.client import connect

        client = await connect(address)
    else:
        env = await start_dev_server(extra_args=["--log-level", "never"])
        client = env.client
    try:
        import examples.research_team as app

        async with create_worker(client, app=app, task_queue="lmthing"):
            outcome = await run_demo(client, prefix=f"team-{uuid.uuid4().hex[:6]}")
        print(f"\nBoard {outcome['board_name']!r}:")
        for key, entry in outcome["board"].items():
            print(f"  {key} (v{entry.version}, by {entry.writer}): {json.dumps(entry.value)[:120]}")
    finally:
        if env is not None:
            await env.shutdown()


if __name__ == "__main__":
    import argparse
    import asyncio
    import os
    import sys

    parser = argparse.ArgumentParser(description="004's planner + retriever + synthesizer demo")
    parser.add_argument("--address", default=None, help="Temporal host:port (default: an embedded server)")
    asyncio.run(_main(parser.parse_args().address))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (temporalio/sdk-python#300)
