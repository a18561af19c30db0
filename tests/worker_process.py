"""An lmthing worker in its own process, for tests that kill workers (test_durability.py).

    python -m tests.worker_process --address HOST:PORT --task-queue QUEUE \
        [--app tests.apps.durable] [--identity NAME] [--sticky-timeout SECONDS]

Runs from the repository root (so ``tests`` is importable). Prints ``READY <identity>`` on
stdout once the worker is polling, then runs until it is killed (SIGKILL in the tests;
SIGTERM/SIGINT shut it down gracefully).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from datetime import timedelta

from temporalio.client import Client

from lmthing.client import data_converter
from lmthing.workers import create_worker

READY = "READY"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--app", action="append", default=None)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--identity", default=None)
    parser.add_argument("--sticky-timeout", type=float, default=None,
                        help="seconds a workflow task waits on this worker's sticky queue (SDK default 10)")
    args = parser.parse_args(argv)

    identity = args.identity or f"worker-process-{os.getpid()}"
    client = await Client.connect(
        args.address, namespace=args.namespace, data_converter=data_converter(), identity=identity
    )
    options: dict[str, object] = {}
    if args.sticky_timeout is not None:
        options["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=args.sticky_timeout)
    worker = create_worker(
        client,
        app=args.app or ["tests.apps.durable"],
        task_queue=args.task_queue,
        graceful_shutdown_timeout=timedelta(seconds=1),
        **options,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        # `async with` has started the worker's run task; its pollers start right away.
        print(f"{READY} {identity}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
