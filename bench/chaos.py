"""Runs under repeated worker crashes and a server restart (issue 16: crash-proof defaults).

R runs of a prompt with five 1-second tool steps (one after another) are started together; meanwhile the
worker process is SIGKILLed every K seconds and started again at once, and the Temporal
server (SQLite-backed, same port) is restarted once. Each run's time from start to result
is compared with the same runs undisturbed (measured first, in the same session): the
median ratio. Both tool settings run: today's default (heartbeats every few seconds; the
activity counts the tool's own failures) and the old one (no heartbeat).

    python bench/chaos.py [--runs 8] [--kill-every 3] [--prompts chaos_now,chaos_plain]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmthing.client import connect, start_prompt
from lmthing.workers.dev_server import start_dev_server

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "bench-chaos"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_worker(address: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.worker_process", "--address", address, "--task-queue", QUEUE,
        "--app", "bench.chaos_app", "--sticky-timeout", "2", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 60)
    return proc


async def timed_runs(client, prompt: str, runs: int) -> list[float]:
    async def one() -> float:
        started = time.monotonic()
        handle = await start_prompt(client, prompt, id=f"{prompt}-{uuid.uuid4().hex[:8]}", task_queue=QUEUE)
        result = await handle.result()
        assert result.text == "finished", result
        return time.monotonic() - started

    return list(await asyncio.gather(*(one() for _ in range(runs))))


async def chaos(address: str, worker: list[asyncio.subprocess.Process], kill_every: float, restart_server) -> None:
    """Kill the worker every ``kill_every`` s (starting a new one at once); restart the server once."""
    kills = 0
    while True:
        await asyncio.sleep(kill_every)
        worker[0].send_signal(signal.SIGKILL)
        await worker[0].wait()
        kills += 1
        if kills == 2:
            await restart_server()
        worker[0] = await start_worker(address)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--prompts", default="chaos_now,chaos_plain", help="which tool settings to run")
    args = parser.parse_args()
    port = free_port()
    address = f"127.0.0.1:{port}"
    db = Path(tempfile.mkdtemp()) / "chaos.db"
    env = [await start_dev_server(db_file=db, port=port, extra_args=["--log-level", "never"])]

    async def restart_server() -> None:
        await env[0].shutdown()
        env[0] = await start_dev_server(db_file=db, port=port, extra_args=["--log-level", "never"])

    client = await connect(address)
    worker = [await start_worker(address)]
    rows = []
    try:
        for prompt in args.prompts.split(","):
            calm = await timed_runs(client, prompt, args.runs)
            disturber = asyncio.ensure_future(chaos(address, worker, args.kill_every, restart_server))
            try:
                stormy = await asyncio.wait_for(timed_runs(client, prompt, args.runs), 900)
            finally:
                disturber.cancel()
                await asyncio.gather(disturber, return_exceptions=True)
            if worker[0].returncode is not None:
                worker[0] = await start_worker(address)
            rows.append((prompt, statistics.median(calm), statistics.median(stormy), max(stormy)))
    finally:
        worker[0].kill()
        await env[0].shutdown()
    print(f"{args.runs} concurrent runs of five 1-second tool steps; worker SIGKILLed every {args.kill_every:.0f} s, "
          "server restarted once\n")
    print("| tool options | undisturbed median s | under chaos median s | ratio | slowest under chaos s |")
    print("|---|---:|---:|---:|---:|")
    names = {"chaos_now": "default (heartbeat 5 s, own attempts)", "chaos_plain": "no heartbeat (before issue 16)"}
    for prompt, calm, stormy, worst in rows:
        print(f"| {names[prompt]} | {calm:.2f} | {stormy:.2f} | {stormy / calm:.1f}x | {worst:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
