"""Standalone orchestrations (``def_workflow``, ``def_parallel``) against hand-written Temporal
workflows that start the same child workflows.

Two scenarios, each run by lmthing and by a baseline on the same embedded dev server (same
data converter, same sandboxed runner, same worker):

* ``workflow``: ``bench_five_steps`` (``def_workflow``, 5 steps one after another), against
  ``BaselineFiveSteps`` (5 ``execute_child_workflow`` calls in a loop);
* ``parallel``: ``bench_ten_branches`` (``def_parallel``, 10 branches, aggregation ``all``),
  against ``BaselineTenBranches`` (10 ``execute_child_workflow`` calls under ``asyncio.gather``).

Both sides' workflows are registered on one worker, built by ``create_worker`` (the baseline
classes are added with its ``workflows=``), on one task queue. Every child is the
prompt ``bench_worker`` (one scripted model call) on that queue, with the same arguments, the
same ``RunConfig`` and ids of the same length on both sides, so what differs is the
orchestration layer of the parent. Runs are sequential and interleaved (lmthing, baseline,
baseline, lmthing, ...); warm-up runs are excluded.

Usage (from the repository root; both forms work):

    python bench/orchestration.py [--runs 30] [--warmup 3] [--scenarios workflow,parallel]
    python -m bench.orchestration [...]
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
    # Run as a script: make ``bench`` importable (the sandbox re-imports bench.orchestration_app).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import temporalio
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle

from lmthing.client import start_orchestration
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server

from bench.procstat import children_named, cpu_seconds
from bench import orchestration_app as app
from bench.orchestration_baseline import BaselineFiveSteps, BaselineTenBranches

TASK_QUEUE = "bench-orchestration"
SERVER_PIDS: list[int] = []




@dataclass
class Scenario:
    name: str
    lmthing: type
    baseline: type
    children: int
    what: str


SCENARIOS = {
    "workflow": Scenario("workflow", app.five_steps, BaselineFiveSteps, app.STEPS, "def_workflow, 5 sequential steps"),
    "parallel": Scenario("parallel", app.ten_branches, BaselineTenBranches, app.BRANCHES, "def_parallel, 10 branches, all"),
}


@dataclass
class HistorySize:
    events: int = 0
    proto: int = 0
    child_events: int = 0  # summed over the children
    child_proto: int = 0
    children: int = 0
    wf_tasks: int = 0  # the parent's WorkflowTaskCompleted events
    wft_ms: float = 0.0  # the parent's workflow tasks, started -> completed, summed (server timestamps)

    @property
    def total_events(self) -> int:
        return self.events + self.child_events

    @property
    def total_proto(self) -> int:
        return self.proto + self.child_proto


@dataclass
class Side:
    times: list[float] = field(default_factory=list)  # seconds per measured run
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process per run
    server_cpu: list[float] = field(default_factory=list)  # CPU seconds of the dev server per run
    handles: list[WorkflowHandle] = field(default_factory=list)
    histories: list[HistorySize] = field(default_factory=list)

    def hist(self, what: str) -> float:
        """Median over the fetched histories of one HistorySize attribute."""
        return med([getattr(h, what) for h in self.histories])


def _run_id(side: str) -> str:
    # Same length on both sides: child ids (and so history bytes) are built from it.
    return f"bench-orch-{side}-{uuid.uuid4().hex[:10]}"


async def run_lmthing(client: Client, sc: Scenario) -> tuple[float, float, float, WorkflowHandle]:
    s0, c0, t0 = cpu_seconds(SERVER_PIDS), time.process_time(), time.perf_counter()
    handle = await start_orchestration(client, sc.lmthing, None, id=_run_id("lm"), task_queue=TASK_QUEUE)
    result = await handle.result()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = cpu_seconds(SERVER_PIDS) - s0
    values = result.results if sc.name == "workflow" else result.value
    assert len(values) == sc.children and set(values.values()) == {"done"}, result
    return elapsed, cpu, server, handle.handle


async def run_baseline(client: Client, sc: Scenario) -> tuple[float, float, float, WorkflowHandle]:
    s0, c0, t0 = cpu_seconds(SERVER_PIDS), time.process_time(), time.perf_counter()
    handle = await client.start_workflow(sc.baseline.run, id=_run_id("bl"), task_queue=TASK_QUEUE)
    result = await handle.result()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = cpu_seconds(SERVER_PIDS) - s0
    values = result["results"] if sc.name == "workflow" else result["value"]
    assert len(values) == sc.children and set(values.values()) == {"done"}, result
    return elapsed, cpu, server, handle


async def history_size(client: Client, handle: WorkflowHandle) -> HistorySize:
    """The parent's history, and its children's summed (found from the parent's events)."""
    history = await handle.fetch_history()
    out = HistorySize(events=len(history.events), proto=History(events=history.events).ByteSize())
    started = {}
    for event in history.events:
        if event.HasField("workflow_task_started_event_attributes"):
            started[event.event_id] = event.event_time.ToNanoseconds()
        elif event.HasField("workflow_task_completed_event_attributes"):
            out.wf_tasks += 1
            begin = started[event.workflow_task_completed_event_attributes.started_event_id]
            out.wft_ms += (event.event_time.ToNanoseconds() - begin) / 1e6
        if event.HasField("child_workflow_execution_started_event_attributes"):
            execution = event.child_workflow_execution_started_event_attributes.workflow_execution
            child = await client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id).fetch_history()
            out.children += 1
            out.child_events += len(child.events)
            out.child_proto += History(events=child.events).ByteSize()
    return out


async def measure(
    client: Client, sc: Scenario, runs: int, warmup: int, only: str | None, history_runs: int
) -> tuple[Side, Side]:
    sides = [s for s in ("lm", "base") if only in (None, s)]
    for _ in range(warmup):
        for which in sides:
            await (run_lmthing if which == "lm" else run_baseline)(client, sc)
    lm, base = Side(), Side()
    for i in range(runs):
        for which in sides if i % 2 == 0 else sides[::-1]:
            side = lm if which == "lm" else base
            elapsed, cpu, server, handle = await (run_lmthing if which == "lm" else run_baseline)(client, sc)
            side.times.append(elapsed)
            side.cpu.append(cpu)
            side.server_cpu.append(server)
            side.handles.append(handle)
    # Fetched after the timed runs so that fetching never overlaps a run. Sizes vary a little
    # from run to run (how many child completions one workflow task takes in, how the
    # children's stream signals fall), so every measured run's history is read (or the last
    # ``history_runs``) and medians reported.
    for side in (lm, base):
        for handle in side.handles[-history_runs:] if history_runs else side.handles:
            side.histories.append(await history_size(client, handle))
    return lm, base


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))] if ys else float("nan")


def _pair(a: float, b: float, fmt: str) -> str:
    return f"{a:{fmt}} / {b:{fmt}}"


def report(results: list[tuple[Scenario, Side, Side]], runs: int) -> None:
    print()
    print(f"{runs} sequential runs per side and scenario, interleaved, warm-up excluded; medians.")
    head = (
        f"{'scenario':<9} {'side':<8} | {'run ms':>7} {'p90 ms':>7} | {'py CPU ms':>9} {'srv CPU ms':>10} | "
        f"{'wf tasks':>8} {'wft ms':>6} | {'events':>6} {'proto B':>8} | {'+children events':>16} {'proto KB':>8}"
    )
    print(head)
    print("-" * len(head))
    for sc, lm, base in results:
        for name, side in (("lmthing", lm), ("baseline", base)):
            if not side.times:
                continue
            print(
                f"{sc.name:<9} {name:<8} | {med(side.times) * 1e3:>7.1f} {pct(side.times, 0.9) * 1e3:>7.1f} | "
                f"{med(side.cpu) * 1e3:>9.1f} {med(side.server_cpu) * 1e3:>10.1f} | "
                f"{side.hist('wf_tasks'):>8.0f} {side.hist('wft_ms'):>6.1f} | "
                f"{side.hist('events'):>6.0f} {side.hist('proto'):>8.0f} | "
                f"{side.hist('total_events'):>16.0f} {side.hist('total_proto') / 1e3:>8.1f}"
            )
    both = [(sc, lm, base) for sc, lm, base in results if lm.times and base.times]
    if not both:
        return
    print()
    print("| scenario | lmthing run ms (p90) | baseline run ms (p90) | ratio (paired) | py CPU ms lm / base | "
          "srv CPU ms lm / base | parent wf tasks, wft ms lm / base | parent events lm / base | "
          "parent proto B lm / base | with children: events lm / base | with children: proto KB lm / base |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc, lm, base in both:
        ratio = med(lm.times) / med(base.times)
        paired = med([a / b for a, b in zip(lm.times, base.times)])
        print(
            f"| {sc.name} ({sc.what}) | {med(lm.times) * 1e3:.1f} ({pct(lm.times, 0.9) * 1e3:.1f}) | "
            f"{med(base.times) * 1e3:.1f} ({pct(base.times, 0.9) * 1e3:.1f}) | **{ratio:.2f}** ({paired:.2f}) | "
            f"{_pair(med(lm.cpu) * 1e3, med(base.cpu) * 1e3, '.1f')} | "
            f"{_pair(med(lm.server_cpu) * 1e3, med(base.server_cpu) * 1e3, '.0f')} | "
            f"{lm.hist('wf_tasks'):.0f}, {lm.hist('wft_ms'):.1f} / {base.hist('wf_tasks'):.0f}, {base.hist('wft_ms'):.1f} | "
            f"{_pair(lm.hist('events'), base.hist('events'), '.0f')} | {_pair(lm.hist('proto'), base.hist('proto'), '.0f')} | "
            f"{_pair(lm.hist('total_events'), base.hist('total_events'), '.0f')} | "
            f"{_pair(lm.hist('total_proto') / 1e3, base.hist('total_proto') / 1e3, '.1f')} |"
        )
    print()
    for sc, lm, base in both:
        diff = med(lm.times) - med(base.times)
        print(
            f"{sc.name}: lmthing/baseline = {med(lm.times) / med(base.times):.2f} "
            f"(goal <= 1.10; median of paired ratios {med([a / b for a, b in zip(lm.times, base.times)]):.2f}); "
            f"{diff * 1e3:+.1f} ms per run, {diff * 1e3 / sc.children:+.2f} ms per child; "
            f"python CPU {(med(lm.cpu) - med(base.cpu)) * 1e3:+.1f} ms per run; "
            f"parent workflow-task time {lm.hist('wft_ms') - base.hist('wft_ms'):+.1f} ms per run; "
            f"parent history {lm.hist('proto') / base.hist('proto'):.2f}x (proto bytes), "
            f"with children {lm.hist('total_proto') / base.hist('total_proto'):.2f}x; "
            f"{lm.hist('children'):.0f} / {base.hist('children'):.0f} children per run"
        )
    print()
    print("run ms: start -> result, from the client. py CPU: CPU time of this process (client + the")
    print("worker, all threads, children included) during the run; srv CPU: the dev server's.")
    print("From the histories (medians over the measured runs, or the last --history-runs of them):")
    print("wf tasks = the parent's WorkflowTaskCompleted events, wft ms = their started -> completed")
    print("times summed (server timestamps: the parent's own workflow code on the worker, the part")
    print("the orchestration layer adds to); events = len(history.events), proto =")
    print("History(events=...).ByteSize(); 'with children' adds every child workflow's history.")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="measured runs per side and scenario (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs per side and scenario, excluded (default 3)")
    parser.add_argument("--scenarios", default="workflow,parallel", help="comma-separated: workflow, parallel (default both)")
    parser.add_argument("--history-runs", type=int, default=0,
                        help="read the histories of the last N measured runs per side only (default 0: all)")
    parser.add_argument("--only", choices=("lm", "base"), help="run one side only (for profiling)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        parser.error(f"--scenarios: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(SCENARIOS)}")
    if args.runs < 1 or args.warmup < 0 or args.history_runs < 0:
        parser.error("--runs must be positive, --warmup and --history-runs >= 0")

    print(f"temporalio {temporalio.__version__}, Python {sys.version.split()[0]}; starting dev server...", flush=True)
    env = await start_dev_server()
    try:
        client = env.client
        SERVER_PIDS[:] = children_named("temporal")
        # create_worker sets workflows= itself and takes no extra workflow classes; a worker
        # plugin (passed through **worker_options) adds the baseline's, so both sides' parents
        # and every child share one worker and one task queue. (With the baseline parents on a
        # worker of their own, each parallel run took ~3 more events, one more workflow task,
        # than lmthing's: the idle worker picked up every child event at once.)
        worker = create_worker(
            client, app="bench.orchestration_app", task_queue=TASK_QUEUE,
            workflows=[BaselineFiveSteps, BaselineTenBranches],
        )
        results = []
        async with worker:
            for name in names:
                sc = SCENARIOS[name]
                t0 = time.perf_counter()
                lm, base = await measure(client, sc, args.runs, args.warmup, args.only, args.history_runs)
                print(f"  {name}: {len(lm.times) + len(base.times)} runs in {time.perf_counter() - t0:.1f} s", flush=True)
                results.append((sc, lm, base))
        report(results, args.runs)
    finally:
        await env.shutdown()
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    # Leave without interpreter teardown: the SDK's Rust threads can still release the GIL
    # while Python finalizes, which aborts the process ("Fatal Python error:
    # PyGILState_Release", exit 134) after the results are printed; seen in about 1 of 8
    # runs here (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
