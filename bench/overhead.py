"""Per-step orchestration overhead of lmthing against a hand-written Temporal workflow.

Both run the same sequence on the same embedded dev server, in the same worker process,
with the same data converter and sandboxed runner: N model-call activities (the scripted
model on the lmthing side) and N-1 tool activities, one after another. Runs are sequential
and interleaved (lmthing, baseline, baseline, lmthing, ...); warm-up runs are excluded.

Usage (from the repository root; both forms work):

    python bench/overhead.py [--runs 20] [--steps 10,20] [--warmup 2] [--provider scripted|openai]
    python -m bench.overhead [...]

``--provider openai`` puts the real model-call path on both sides: lmthing's OpenAI provider
(official SDK, streaming) and, in the baseline, an activity calling the official SDK's
Chat Completions, both against the fake OpenAI server of tests/fakes (in this process; it
replies a ``lookup`` call until N-1 tool results are in, then the answer), as the peer
harness in ../shared/bench-peers measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make ``bench`` importable (the sandbox re-imports bench.overhead_app).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

import temporalio

from lmthing.client import start_prompt
from lmthing.workers import create_worker, sandbox_runner
from lmthing.workers.dev_server import start_dev_server

from bench import overhead_app
from bench.procstat import children_named, cpu_seconds
from bench.overhead_baseline import (
    MODEL_ACTIVITY,
    OPENAI_MODEL_ACTIVITY,
    BaselineAgent,
    baseline_lookup,
    baseline_model_call,
    baseline_openai_model_call,
)

LM_QUEUE = "bench-overhead-lmthing"
BASE_QUEUE = "bench-overhead-baseline"




SERVER_PIDS: list[int] = []


@dataclass
class Side:
    times: list[float] = field(default_factory=list)  # seconds, one per measured run
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process (all threads) per run
    events: list[int] = field(default_factory=list)
    json_bytes: list[int] = field(default_factory=list)
    proto_bytes: list[int] = field(default_factory=list)
    wf_tasks: list[int] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # CPU seconds of the dev server per run


async def run_lmthing(client: Client, model: str, steps: int) -> tuple[float, float, float, WorkflowHandle]:
    s0, c0, t0 = cpu_seconds(SERVER_PIDS), time.process_time(), time.perf_counter()
    if model == "openai":
        handle = await start_prompt(
            client, overhead_app.overhead_agent_openai, steps, max_steps=steps,
            id=f"bench-lm-{uuid.uuid4().hex[:10]}", task_queue=LM_QUEUE,
        )
    else:
        handle = await start_prompt(
            client, overhead_app.overhead_agent, model=model, max_steps=steps,
            id=f"bench-lm-{uuid.uuid4().hex[:10]}", task_queue=LM_QUEUE,
        )
    result = await handle.result()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = cpu_seconds(SERVER_PIDS) - s0
    assert result.steps == steps and result.stop_reason == "answer", result
    return elapsed, cpu, server, handle.handle


async def run_baseline(client: Client, steps: int, model_activity: str) -> tuple[float, float, float, WorkflowHandle]:
    s0, c0, t0 = cpu_seconds(SERVER_PIDS), time.process_time(), time.perf_counter()
    handle = await client.start_workflow(
        BaselineAgent.run, args=[steps, model_activity], id=f"bench-base-{uuid.uuid4().hex[:10]}", task_queue=BASE_QUEUE
    )
    result = await handle.result()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = cpu_seconds(SERVER_PIDS) - s0
    assert result["steps"] == steps, result
    return elapsed, cpu, server, handle


async def record_history(side: Side, handle: WorkflowHandle) -> None:
    history = await handle.fetch_history()
    side.events.append(len(history.events))
    side.json_bytes.append(len(history.to_json().encode()))
    side.proto_bytes.append(History(events=history.events).ByteSize())
    side.wf_tasks.append(sum(1 for e in history.events if e.HasField("workflow_task_completed_event_attributes")))


async def measure(client: Client, steps: int, runs: int, warmup: int, only: str | None, provider: str) -> tuple[Side, Side]:
    model = "openai" if provider == "openai" else overhead_app.script_for(steps)
    model_activity = OPENAI_MODEL_ACTIVITY if provider == "openai" else MODEL_ACTIVITY
    sides = [s for s in ("lm", "base") if only in (None, s)]
    for _ in range(warmup):
        if "lm" in sides:
            await run_lmthing(client, model, steps)
        if "base" in sides:
            await run_baseline(client, steps, model_activity)
    lm, base = Side(), Side()
    handles: list[tuple[Side, WorkflowHandle]] = []
    for i in range(runs):
        for which in sides if i % 2 == 0 else sides[::-1]:
            if which == "lm":
                side, (elapsed, cpu, server, handle) = lm, await run_lmthing(client, model, steps)
            else:
                side, (elapsed, cpu, server, handle) = base, await run_baseline(client, steps, model_activity)
            side.times.append(elapsed)
            side.cpu.append(cpu)
            side.server_cpu.append(server)
            handles.append((side, handle))
    # Histories are fetched after the timed runs so that fetching never overlaps a run.
    for side, handle in handles:
        await record_history(side, handle)
    return lm, base


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))] if ys else float("nan")


def report(results: list[tuple[int, Side, Side]], runs: int) -> None:
    print()
    print(f"{runs} sequential runs per side and step count, interleaved, warm-up excluded; medians.")
    head = (
        f"{'steps':>5} {'side':<8} | {'run ms':>7} {'p10-p90 ms':>11} | {'py CPU ms':>9} {'srv CPU ms':>10} | "
        f"{'events':>6} {'/step':>5} {'wf tasks':>8} | {'JSON KB':>7} {'proto KB':>8} {'proto B/step':>12}"
    )
    print(head)
    print("-" * len(head))
    for steps, lm, base in results:
        for name, side in (("lmthing", lm), ("baseline", base)):
            if not side.times:
                continue
            print(
                f"{steps:>5} {name:<8} | {med(side.times) * 1e3:>7.1f} "
                f"{f'{pct(side.times, 0.1) * 1e3:.0f}-{pct(side.times, 0.9) * 1e3:.0f}':>11} | "
                f"{med(side.cpu) * 1e3:>9.1f} {med(side.server_cpu) * 1e3:>10.1f} | "
                f"{med(side.events):>6.0f} {med(side.events) / steps:>5.1f} {med(side.wf_tasks):>8.0f} | "
                f"{med(side.json_bytes) / 1e3:>7.1f} {med(side.proto_bytes) / 1e3:>8.1f} "
                f"{med(side.proto_bytes) / steps:>12.0f}"
            )
    print()
    for steps, lm, base in results:
        if not (lm.times and base.times):
            continue
        lm_ms, base_ms = med(lm.times) * 1e3, med(base.times) * 1e3
        paired = med([a / b for a, b in zip(lm.times, base.times)])
        print(
            f"{steps:>3} steps: lmthing/baseline = {lm_ms / base_ms:.2f} (median of paired ratios {paired:.2f}); "
            f"overhead per step = {(lm_ms - base_ms) / steps:+.2f} ms; "
            f"python CPU per step = {(med(lm.cpu) - med(base.cpu)) * 1e3 / steps:+.2f} ms; "
            f"history bytes lmthing/baseline = {med(lm.proto_bytes) / med(base.proto_bytes):.2f} (proto), "
            f"{med(lm.json_bytes) / med(base.json_bytes):.2f} (JSON)"
        )
    print()
    print("run ms: start_workflow -> result, from the client. py CPU: CPU time of this process (client +")
    print("both workers, all threads) during the run; srv CPU: CPU time of the dev server process.")
    print("JSON KB: len(WorkflowHistory.to_json()) (indented protobuf JSON, payloads base64);")
    print("proto KB: History(events=...).ByteSize(), the serialized protobuf size.")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per side and step count (default 20)")
    parser.add_argument("--steps", default="10,20", help="comma-separated model-step counts (default 10,20)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per side, excluded (default 2)")
    parser.add_argument("--only", choices=("lm", "base"), help="run one side only (for profiling)")
    parser.add_argument("--provider", choices=("scripted", "openai"), default="scripted",
                        help="scripted model (default) or the OpenAI provider path against a fake server")
    args = parser.parse_args(argv)
    step_counts = [int(s) for s in args.steps.split(",") if s.strip()]
    if any(s < 1 for s in step_counts) or args.runs < 1:
        parser.error("--steps and --runs must be positive")

    print(f"temporalio {temporalio.__version__}, Python {sys.version.split()[0]}; starting dev server...", flush=True)
    env = await start_dev_server()
    fake = None
    if args.provider == "openai":
        from tests.fakes import FakeModelServer

        fake = await FakeModelServer().__aenter__()
        fake.script(*[overhead_app.fake_openai_reply] * 1_000_000)
        os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = fake.openai_base_url, "sk-fake"
    try:
        client = env.client
        SERVER_PIDS[:] = children_named("temporal")
        lm_worker = create_worker(client, app=overhead_app, task_queue=LM_QUEUE)
        base_worker = Worker(
            client,
            task_queue=BASE_QUEUE,
            workflows=[BaselineAgent],
            activities=[baseline_model_call, baseline_openai_model_call, baseline_lookup],
            workflow_runner=sandbox_runner(),
        )
        results = []
        async with lm_worker, base_worker:
            for steps in step_counts:
                t0 = time.perf_counter()
                lm, base = await measure(client, steps, args.runs, args.warmup, args.only, args.provider)
                print(f"  {steps} steps: {len(lm.times) + len(base.times)} runs in {time.perf_counter() - t0:.1f} s", flush=True)
                results.append((steps, lm, base))
        report(results, args.runs)
    finally:
        if fake is not None:
            await fake.__aexit__(None, None, None)
        await env.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
