"""The worker process of ``bench/throughput.py``: one worker, for one side, in its own
process so that its memory (RSS) and CPU are measured alone.

    python -m bench.throughput_app --side lm|base --address HOST:PORT --task-queue Q

``lm`` is a worker from ``create_worker`` for ``bench.overhead_app`` (the prompt and its
``lookup`` tool, with the scripted model registered in this process); ``base`` is a plain
``temporalio`` worker for the hand-written ``BaselineAgent`` of ``bench.overhead_baseline``,
with lmthing's data converter and sandbox runner. Prints ``ready`` once polling and runs
until its stdin closes. With ``LMTHING_PAYLOAD_KEY`` in its environment the lm worker
encrypts payloads (``lmthing.codec``), and with ``OTEL_EXPORTER_OTLP_ENDPOINT`` it exports
traces, like any lmthing worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.worker import Worker

from bench import overhead_app
from bench.overhead_baseline import BaselineAgent, baseline_lookup, baseline_model_call
from lmthing.client import connect
from lmthing.observability.tracing import configure_tracing
from lmthing.workers import create_worker, sandbox_runner

STEPS = 5


async def serve(side: str, address: str, task_queue: str) -> None:
    client = await connect(address)
    if side == "lm":
        configure_tracing()  # as `lmthing worker` does: on when OTEL_EXPORTER_OTLP_ENDPOINT is set
        overhead_app.script_for(STEPS)
        worker = create_worker(client, app=overhead_app, task_queue=task_queue)
    else:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BaselineAgent],
            activities=[baseline_model_call, baseline_lookup],
            workflow_runner=sandbox_runner(),
        )
    async with worker:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("lm", "base"), required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.side, args.address, args.task_queue))
