"""Throughput of lmthing against a hand-written Temporal workflow: N concurrent 5-step runs
(5 model calls on the scripted model, 4 tool activities) on one worker.

Each side has one worker in its own process (``bench/throughput_app.py``), polling its own
task queue of the same embedded dev server: ``lmthing`` (``create_worker``, the
``bench.overhead_app`` prompt), ``lm+aes`` (the same with payload encryption on,
``LMTHING_PAYLOAD_KEY``; skip with ``--no-codec``), ``lm+otel`` (the same with OpenTelemetry
tracing on, exporting over OTLP/HTTP to a sink in this process; skip with ``--no-tracing``)
and ``baseline`` (the hand-written
``BaselineAgent`` of ``bench/overhead_baseline.py``, doing the same activities with the same
data converter and sandbox runner). A batch starts ``--runs`` runs, at most
``--concurrency`` in flight, and waits for all of them; batches of the sides are
interleaved, the order rotated each round; a warm-up batch per side is excluded.

Usage (from the repository root; both forms work):

    python bench/throughput.py [--runs 60] [--concurrency 20] [--rounds 3]
    python -m bench.throughput [...]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import temporalio
from temporalio.client import Client

from bench import overhead_app
from bench.overhead import _children_named, _cpu_seconds
from bench.overhead_baseline import BaselineAgent
from bench.throughput_app import STEPS
from lmthing.client import start_prompt
from lmthing.client.connect import data_converter
from lmthing.workers.dev_server import start_dev_server

ROOT = Path(__file__).resolve().parent.parent
KEY_VARS = ("LMTHING_PAYLOAD_KEY", "LMTHING_PAYLOAD_KEY_ID", "LMTHING_PAYLOAD_KEYS")


class TraceSink:
    """An OTLP/HTTP endpoint that takes the lm+otel worker's span exports and counts them
    (requests and bytes; the spans are not decoded, as a collector's receiver would)."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.port = 0
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        async def receive(request: web.Request) -> web.Response:
            self.requests += 1
            self.bytes += len(await request.read())
            return web.Response(body=b"", content_type="application/x-protobuf")

        app = web.Application()
        app.router.add_post("/v1/traces", receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Side:
    name: str
    kind: str  # "lm" or "base"
    queue: str
    client: Client | None = None
    proc: asyncio.subprocess.Process | None = None
    wall: list[float] = field(default_factory=list)  # seconds per measured batch
    latency: list[float] = field(default_factory=list)  # seconds per run, all measured runs
    worker_cpu: list[float] = field(default_factory=list)  # worker CPU seconds per batch
    server_cpu: list[float] = field(default_factory=list)
    rss_peak_kb: int = 0  # highest VmRSS sampled during measured batches
    rss_idle_kb: int = 0  # after the warm-up, before the first measured batch


async def start_worker(side: Side, address: str, env: dict[str, str]) -> None:
    side.proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.throughput_app", "--side", side.kind, "--address", address, "--task-queue", side.queue,
        cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(side.proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"worker for {side.name} did not start: {line!r}")


async def one_run(side: Side, model: str) -> float:
    t0 = time.perf_counter()
    if side.kind == "lm":
        handle = await start_prompt(
            side.client, overhead_app.overhead_agent, model=model, max_steps=STEPS,
            id=f"tp-{side.name}-{uuid.uuid4().hex[:10]}", task_queue=side.queue,
        )
        result = await handle.result()
        assert result.steps == STEPS and result.stop_reason == "answer", result
    else:
        handle = await side.client.start_workflow(
            BaselineAgent.run, STEPS, id=f"tp-base-{uuid.uuid4().hex[:10]}", task_queue=side.queue
        )
        result = await handle.result()
        assert result["steps"] == STEPS, result
    return time.perf_counter() - t0


async def batch(side: Side, model: str, runs: int, concurrency: int, server_pids: list[int], measured: bool) -> None:
    gate = asyncio.Semaphore(concurrency)
    pid = side.proc.pid
    done = asyncio.Event()

    async def limited() -> float:
        async with gate:
            return await one_run(side, model)

    async def sample_rss() -> None:
        while not done.is_set():
            side.rss_peak_kb = max(side.rss_peak_kb, _status_kb(pid, "VmRSS"))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample_rss()) if measured else None
    w0, s0, t0 = _cpu_seconds([pid]), _cpu_seconds(server_pids), time.perf_counter()
    latencies = await asyncio.gather(*(limited() for _ in range(runs)))
    wall = time.perf_counter() - t0
    done.set()
    if sampler:
        await sampler
        side.wall.append(wall)
        side.latency += latencies
        side.worker_cpu.append(_cpu_seconds([pid]) - w0)
        side.server_cpu.append(_cpu_seconds(server_pids) - s0)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))] if ys else float("nan")


def report(sides: list[Side], runs: int, concurrency: int, rounds: int) -> None:
    print()
    print(f"{rounds} batches per side of {runs} runs ({STEPS} steps each), at most {concurrency} in flight; "
          "interleaved, warm-up excluded; medians over batches.")
    head = (
        f"{'side':<9} | {'runs/s':>7} {'steps/s':>8} {'vs base':>7} | {'run ms p50':>10} {'p90':>6} | "
        f"{'wkr CPU ms/run':>14} {'srv CPU ms/run':>14} | {'RSS idle MB':>11} {'RSS peak MB':>11}"
    )
    print(head)
    print("-" * len(head))
    base = next((s for s in sides if s.kind == "base"), None)
    base_rate = runs / med(base.wall) if base else float("nan")
    for s in sides:
        rate = runs / med(s.wall)
        print(
            f"{s.name:<9} | {rate:>7.1f} {rate * STEPS:>8.1f} {rate / base_rate:>7.2f} | "
            f"{med(s.latency) * 1e3:>10.0f} {pct(s.latency, 0.9) * 1e3:>6.0f} | "
            f"{med(s.worker_cpu) / runs * 1e3:>14.1f} {med(s.server_cpu) / runs * 1e3:>14.1f} | "
            f"{s.rss_idle_kb / 1024:>11.0f} {s.rss_peak_kb / 1024:>11.0f}"
        )
    print()
    print("runs/s: runs in a batch / the batch's wall time (first start -> last result); steps/s = runs/s x 5 model")
    print("steps. run ms: start -> result of each run, from the client. wkr CPU: the side's worker process; srv CPU:")
    print("the dev server (it serves every side, but only one side runs at a time). RSS: the worker process,")
    print("after the warm-up batch (idle) and the highest value sampled every 20 ms during measured batches.")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs per batch (default 60)")
    parser.add_argument("--concurrency", type=int, default=20, help="runs in flight at once (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="measured batches per side (default 3)")
    parser.add_argument("--warmup", type=int, default=20, help="runs in the warm-up batch per side (default 20)")
    parser.add_argument("--no-codec", action="store_true", help="skip the lm+aes side (payload encryption)")
    parser.add_argument("--no-tracing", action="store_true", help="skip the lm+otel side (OpenTelemetry traces)")
    args = parser.parse_args(argv)
    if min(args.runs, args.concurrency, args.rounds) < 1:
        parser.error("--runs, --concurrency and --rounds must be positive")

    print(f"temporalio {temporalio.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
          "starting dev server and workers...", flush=True)
    plain_env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("OTEL_")}
    sink = TraceSink()
    await sink.start()
    otel_env = {**plain_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}"}
    aes_env = {**plain_env, "LMTHING_PAYLOAD_KEY": base64.b64encode(os.urandom(32)).decode(), "LMTHING_PAYLOAD_KEY_ID": "bench"}
    for name in KEY_VARS:  # the dev server's client and the plain sides: no encryption
        os.environ.pop(name, None)
    env = await start_dev_server()
    sides = [Side("lmthing", "lm", "tp-lmthing"), Side("baseline", "base", "tp-baseline")]
    if not args.no_codec:
        sides.append(Side("lm+aes", "lm", "tp-lm-aes"))
    if not args.no_tracing:
        sides.append(Side("lm+otel", "lm", "tp-lm-otel"))
    try:
        server_pids = _children_named("temporal")
        address = env.client.service_client.config.target_host
        model = overhead_app.script_for(STEPS)
        for s in sides:
            encrypted = s.name == "lm+aes"
            os.environ.update({k: v for k, v in aes_env.items() if k in KEY_VARS} if encrypted else {})
            config = env.client.config()
            config["data_converter"] = data_converter()
            s.client = Client(**config)
            for name in KEY_VARS:
                os.environ.pop(name, None)
            await start_worker(s, address, aes_env if encrypted else otel_env if s.name == "lm+otel" else plain_env)
        t_start = time.perf_counter()
        for s in sides:
            await batch(s, model, args.warmup, args.concurrency, server_pids, measured=False)
            s.rss_idle_kb = _status_kb(s.proc.pid, "VmRSS")
        for i in range(args.rounds):
            order = sides[i % len(sides):] + sides[: i % len(sides)]
            for s in order:
                t0 = time.perf_counter()
                await batch(s, model, args.runs, args.concurrency, server_pids, measured=True)
                print(f"  round {i + 1} {s.name}: {args.runs} runs in {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"  total {time.perf_counter() - t_start:.0f} s")
        report(sides, args.runs, args.concurrency, args.rounds)
        if not args.no_tracing:
            print(f"lm+otel exported {sink.bytes / 1024:.0f} KB of spans in {sink.requests} OTLP requests "
                  f"(warm-up and measured batches; the worker exports in the background, batched).")
    finally:
        for s in sides:
            if s.proc and s.proc.returncode is None:
                s.proc.stdin.close()
                try:
                    await asyncio.wait_for(s.proc.wait(), 30)
                except TimeoutError:
                    s.proc.kill()
        await env.shutdown()
        await sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
