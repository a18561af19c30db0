"""History bytes of a long chat with and without ``def_context`` (issue 17, docs/context.md).

A long-lived agent (``bench/context_app.bench_context_chat``, scripted model) answers N asks
(default 200), each one turn of one model call; it continues as new every 50 turns, carrying
its conversation. Three runs of the same chat: no context window, ``sliding_window`` and
``summarize`` (max_tokens 2000, reserved 500, keep_last 4). For each it prints the history
bytes of the whole continue-as-new chain, its events, what the second half of the chat cost
per turn against the first half (flat = linear history), the input tokens of the last
model call and of all of them (by the model's own estimate, what a provider would bill), and
the size of the conversation the last continue-as-new carried, and the summary calls.

    python bench/context_history.py [--turns 200] [--turns-per-run 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUEUE = "bench-context"


async def _history(client, workflow_id: str, run_ids: list[str]) -> tuple[int, int, list[int], int, int]:
    """(bytes, events, bytes at each ask's update, carried conversation bytes of the last
    run, summary calls)."""
    total = events = summaries = 0
    marks: list[int] = []
    carried = 0
    for run_id in run_ids:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        for event in history.events:
            if event.HasField("workflow_execution_update_accepted_event_attributes"):
                marks.append(total)
            if event.user_metadata.HasField("summary") and json.loads(event.user_metadata.summary.data) == "summarize context":
                summaries += 1
            total += event.ByteSize()
            events += 1
        start = history.events[0].workflow_execution_started_event_attributes
        if len(start.input.payloads) > 2:
            carried = len(json.dumps(json.loads(start.input.payloads[2].data).get("messages", [])))
    return total, events, marks, carried, summaries


async def chat(client, strategy: str | None, turns: int, turns_per_run: int) -> dict:
    from lmthing.client.messaging import start_agent
    from bench.context_app import Chat, bench_context_chat
    from tests.support import new_id

    agent = await start_agent(client, bench_context_chat, Chat(strategy=strategy), id=new_id("bench-context"),
                              config={"turns_per_run": turns_per_run, "stream": False}, task_queue=QUEUE)
    replies = [await agent.ask(f"Where is item {i} of the catalogue, the one about harbour {i}?", id=f"q{i}")
               for i in range(turns)]
    status = await agent.status()
    run_ids = [*status.earlier_runs, (await agent.handle.describe()).run_id]
    await agent.stop()
    size, events, marks, carried, summaries = await _history(client, agent.id, run_ids)
    half = turns // 2
    first, second = marks[half] - marks[0], size - marks[half]
    return {"strategy": strategy or "none", "bytes": size, "events": events, "runs": len(run_ids),
            "first_half": first / half, "second_half": second / (turns - half),
            "last_input": replies[-1].usage.input_tokens, "all_input": sum(r.usage.input_tokens for r in replies),
            "carried": carried, "summaries": summaries}


async def main(turns: int, turns_per_run: int) -> None:
    from lmthing.workers import create_worker
    from lmthing.workers.dev_server import start_dev_server

    env = await start_dev_server()
    try:
        async with create_worker(env.client, app="bench.context_app", task_queue=QUEUE):
            rows = [await chat(env.client, s, turns, turns_per_run) for s in (None, "sliding_window", "summarize")]
    finally:
        await env.shutdown()
    print(f"{turns} turns, continue-as-new every {turns_per_run}:\n")
    print("| def_context | history bytes | events | runs | summary calls | bytes/turn, 1st half | bytes/turn, 2nd half "
          "| input tokens, last call | input tokens, all calls | carried conversation bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['strategy']} | {r['bytes']:,} | {r['events']:,} | {r['runs']} | {r['summaries']} "
              f"| {r['first_half']:,.0f} | {r['second_half']:,.0f} | {r['last_input']:,} | {r['all_input']:,} "
              f"| {r['carried']:,} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--turns-per-run", type=int, default=50)
    options = parser.parse_args()
    os.chdir(ROOT)
    asyncio.run(main(options.turns, options.turns_per_run))
    sys.stdout.flush()
    os._exit(0)  # the SDK's threads can abort interpreter teardown (temporalio/sdk-python#300)
