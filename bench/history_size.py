"""History bytes per model step, from 10 to 1,000 steps (issue 12: history linear in steps).

Runs ``tests/apps/history_app.history_rounds`` (N tool rounds, then an answer; each tool
result is ~600 bytes of text) on an embedded dev server and prints, for each N, the size of
the whole history (every run of a continue-as-new chain), its events, the bytes per step,
and what one more step cost since the previous N (the marginal cost, which is what stays
flat when history is linear and grows when it is quadratic).

Usage (from the repository root):

    python bench/history_size.py [--rounds 10,20,50,100,200,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def chain_bytes(client, workflow_id: str) -> tuple[int, int, int]:
    """(bytes, events, runs) over every run of ``workflow_id``'s continue-as-new chain."""
    from temporalio.api.history.v1 import History

    total = events = runs = 0
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history()
        total += len(History(events=history.events).SerializeToString())
        events += len(history.events)
        runs += 1
    return total, events, runs


async def main(rounds: list[int]) -> None:
    from lmthing.workers import create_worker
    from lmthing.workers.dev_server import start_dev_server
    from tests.apps import history_app
    from tests.support import new_id, start

    env = await start_dev_server()
    try:
        async with create_worker(env.client, app="tests.apps.history_app", task_queue="bench-history"):
            print("| steps | history bytes | events | runs | bytes per step | marginal bytes per step |")
            print("|---:|---:|---:|---:|---:|---:|")
            previous: tuple[int, int] | None = None
            for n in rounds:
                handle = await start(env.client, history_app.history_rounds, {"rounds": n},
                                     task_queue="bench-history", id=new_id("bench-history"))
                result = await handle.result()
                assert result.text == f"Read {n} pages.", result.text
                for _ in range(100):  # visibility is eventually consistent
                    size, events, runs = await chain_bytes(env.client, handle.id)
                    if runs == (await handle.status()).continued_runs + 1:
                        break
                    await asyncio.sleep(0.1)
                marginal = "" if previous is None else f"{(size - previous[1]) / (n - previous[0]):,.0f}"
                print(f"| {n} | {size:,} | {events:,} | {runs} | {size / n:,.0f} | {marginal} |")
                previous = (n, size)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", default="10,20,50,100,200,1000")
    options = parser.parse_args()
    os.chdir(ROOT)
    asyncio.run(main([int(n) for n in options.rounds.split(",")]))
    sys.stdout.flush()
    os._exit(0)  # the SDK's threads can abort interpreter teardown (temporalio/sdk-python#300)
