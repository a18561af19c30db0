"""Per-step CPU cost of guard, validator and budget checks (issue 16: under 0.2 ms a step).

Two parts, in one command:

* **micro**: the in-workflow checks called directly, timeit-style, outside Temporal:
  ``guard_holds`` / ``RunResilience.guard`` (the guard of one tool call), ``validate`` /
  ``RunResilience.validate_output`` (a schema and a check on one tool output),
  ``BudgetLedger.spend`` and the root's whole per-step budget path (``RunBudget.spent`` ->
  ``answer`` -> ``BudgetLedger.spend``, its pydantic round trips replicated, since it reads
  ``workflow.now()`` and needs a workflow). Microseconds per call, min and median of repeats.
* **runs**: real runs on an embedded dev server and one worker in this process, scripted
  model (no network), N model steps of which N-1 call the ``@tool`` activity ``lookup``
  (bench/resilience_checks_app.py), in these variants, interleaved run by run:

  - ``baseline``: no resilience definitions;
  - ``guards``: a ``def_guard`` (on_fail "skip", a condition on the run's state that holds)
    on the tool, and a ``def_validator`` (pydantic schema + check) on its output;
  - ``budget``: a ``def_constraint`` tokens budget that never stops the run (the run is the
    root: its ledger is in its own memory, no activity);
  - ``both``: guards and budget;
  - ``tree_baseline`` / ``tree_budget``: a root that calls one sub-agent (a child
    workflow) doing the N steps, without / with the token budget on the root. With it,
    every step of the sub-agent reports to the root through the ``lmthing.budget``
    activity, which sends the ``lmthing_budget`` update to the root.

  CPU is ``time.process_time()`` of this process (worker + client, all threads) during one
  run, and the dev server's CPU from /proc. Per variant: median over a round's runs; the
  table gives the median of the rounds' medians and their spread (min-max over rounds), and
  the difference to its baseline (``baseline`` for the one-agent variants,
  ``tree_baseline`` for ``tree_budget``) per model step.

Usage (from the repository root; both forms work):

    python bench/resilience_checks.py [--steps 20] [--runs 10] [--rounds 3] [--warmup 2]
                                      [--variants baseline,guards,...] [--micro-only] [--no-micro]
                                      [--profile VARIANT]
    python -m bench.resilience_checks [...]

``--profile VARIANT`` runs cProfile over this process during that variant's runs (one
round, no table) and prints the top functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
import timeit
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make ``bench`` importable (the sandbox re-imports bench.resilience_checks_app).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import temporalio
from temporalio.client import Client

from lmthing.client import start_prompt
from lmthing.resilience.book import GuardDef, ValidatorDef
from lmthing.resilience.budget import BudgetLedger, BudgetStatus, Constraint, Spend
from lmthing.resilience.checks import GuardCheck, guard_holds, validate
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server
from lmthing.workflows.resilience_host import RunResilience

from bench import resilience_checks_app as app
from bench.overhead_app import lookup
from bench.procstat import children_named, cpu_seconds

TASK_QUEUE = "bench-resilience-checks"
SERVER_PIDS: list[int] = []

# variant -> (prompt, its baseline, tree?)
VARIANTS: dict[str, tuple[Any, str, bool]] = {
    "baseline": (app.rc_baseline, "baseline", False),
    "guards": (app.rc_guards, "baseline", False),
    "budget": (app.rc_budget, "baseline", False),
    "both": (app.rc_both, "baseline", False),
    "tree_baseline": (app.rc_tree_baseline, "tree_baseline", True),
    "tree_budget": (app.rc_tree_budget, "tree_baseline", True),
}


# ------------------------------------------------------------------------------ micro
def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends (the checks await nothing here) to its value."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the check suspended; it cannot be timed this way")


def _root_budget_step(ledger: BudgetLedger, now: float) -> Any:
    """What the root's ``RunBudget.spent`` does per model step (budget_host.py), minus the
    ``workflow.info()`` / ``workflow.now()`` calls that need a workflow: build the Spend, dump
    it, ``answer`` it (validate, spend, out_of_time, dump the status), read the status back."""
    spend = Spend(run_id="bench-root", tokens=412 + 9, cost_usd=0.0)
    call = {"op": "spend", "spend": spend.model_dump()}
    status, _ = ledger.spend(Spend.model_validate(call.get("spend") or {}))
    out_of_time = ledger.out_of_time(now)
    if status.exceeded is None and out_of_time is not None:
        status.exceeded = out_of_time
    return BudgetStatus.model_validate(status.model_dump(mode="json")).exceeded


def micro(number: int, repeat: int) -> list[tuple[str, float, float]]:
    guard = GuardDef(name="allowed", condition=app.allowed, on_fail="skip", message="lookups are off", tools=("lookup",))
    validator = ValidatorDef(name="facts", schema=app.Facts, check=app.plausible)
    args = lookup.args_model(n=7)  # what a guard sees: the parsed arguments
    state = {"allowed": True}
    check = GuardCheck(state=state, args=args, tool="lookup", step=3)
    output = {"n": 7, "square": 49, "parity": "odd", "label": "item-7"}
    res = RunResilience()
    res.book.guards["allowed"] = guard
    res.book.validators["facts"] = validator
    ledger = BudgetLedger([Constraint(name="tokens", type="tokens", max=app.TOKENS_MAX)])
    now = time.time()

    cases = {
        "guard_holds (one guard, condition on state)": lambda: _drive(guard_holds(guard, check)),
        "RunResilience.guard (lookup + GuardCheck + guard_holds)":
            lambda: _drive(res.guard("lookup", (), state, args, 3, None)),
        "validate (pydantic schema + check)": lambda: _drive(validate(validator, output)),
        "RunResilience.validate_output": lambda: _drive(res.validate_output("facts", output)),
        "BudgetLedger.spend (tokens constraint)": lambda: ledger.spend(Spend(run_id="bench-root", tokens=421)),
        "root's budget step (RunBudget.spent path, replicated)": lambda: _root_budget_step(ledger, now),
    }
    out = []
    for name, fn in cases.items():
        fn()  # warm
        times = [t / number for t in timeit.repeat(fn, number=number, repeat=repeat)]
        out.append((name, min(times) * 1e6, statistics.median(times) * 1e6))
    return out


# ------------------------------------------------------------------------------- runs
@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    srv: list[float] = field(default_factory=list)


@dataclass
class Variant:
    name: str
    rounds: list[Samples] = field(default_factory=list)
    shape: dict[str, int] = field(default_factory=dict)  # history of one run: events, activities by type


def model_steps(variant: str, steps: int) -> int:
    return steps + 2 if VARIANTS[variant][2] else steps


async def one_run(client: Client, variant: str, steps: int) -> tuple[float, float, float, Any]:
    fn, _, is_tree = VARIANTS[variant]
    model = app.tree_script_for(steps) if is_tree else app.script_for(steps)
    s0, c0, t0 = cpu_seconds(SERVER_PIDS), time.process_time(), time.perf_counter()
    handle = await start_prompt(client, fn, model=model, id=f"bench-rc-{variant}-{uuid.uuid4().hex[:10]}",
                                task_queue=TASK_QUEUE)
    result = await handle.result()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    srv = cpu_seconds(SERVER_PIDS) - s0
    want = 2 if is_tree else steps
    assert result.steps == want and result.stop_reason == "answer", (variant, result)
    return wall, cpu, srv, handle


async def shape_of(client: Client, handle: Any, is_tree: bool) -> dict[str, int]:
    """Events and scheduled activities by type of one run (the root and, in a tree, its child)."""
    out: dict[str, int] = {}
    histories = [await handle.handle.fetch_history()]
    if is_tree:
        for e in histories[0].events:
            if e.HasField("child_workflow_execution_started_event_attributes"):
                ex = e.child_workflow_execution_started_event_attributes.workflow_execution
                histories.append(await client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id).fetch_history())
    for h in histories:
        out["events"] = out.get("events", 0) + len(h.events)
        for e in h.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                name = e.activity_task_scheduled_event_attributes.activity_type.name
                out[name] = out.get(name, 0) + 1
            elif e.HasField("workflow_execution_update_accepted_event_attributes"):
                out["updates"] = out.get("updates", 0) + 1
            elif e.HasField("workflow_task_completed_event_attributes"):
                out["wf tasks"] = out.get("wf tasks", 0) + 1
    return out


async def measure(client: Client, names: list[str], steps: int, runs: int, rounds: int, warmup: int,
                  profile: str | None) -> dict[str, Variant]:
    found = {n: Variant(n) for n in names}
    for _ in range(warmup):
        for n in names:
            await one_run(client, n, steps)
    profiler = cProfile.Profile() if profile else None
    last: dict[str, Any] = {}
    for r in range(rounds):
        t0 = time.perf_counter()
        for v in found.values():
            v.rounds.append(Samples())
        for i in range(runs):
            k = (i + r) % len(names)
            for n in names[k:] + names[:k]:  # rotate the order, so load hits every variant alike
                if profiler is not None and n == profile:
                    profiler.enable()
                wall, cpu, srv, handle = await one_run(client, n, steps)
                if profiler is not None and n == profile:
                    profiler.disable()
                s = found[n].rounds[-1]
                s.wall.append(wall)
                s.cpu.append(cpu)
                s.srv.append(srv)
                last[n] = handle
        print(f"  round {r + 1}: {runs * len(names)} runs in {time.perf_counter() - t0:.1f} s", flush=True)
    for n, handle in last.items():
        found[n].shape = await shape_of(client, handle, VARIANTS[n][2])
    if profiler is not None:
        stats = pstats.Stats(profiler)
        print(f"\ncProfile of this process during the {runs * rounds} '{profile}' runs (worker + client):")
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
    return found


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def round_medians(v: Variant, what: str) -> list[float]:
    return [med(getattr(s, what)) for s in v.rounds]


def spread(xs: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    return f"{format(min(xs) * scale, fmt)}..{format(max(xs) * scale, fmt)}"


def report(found: dict[str, Variant], steps: int, runs: int, rounds: int) -> None:
    print()
    print(f"{rounds} rounds x {runs} runs per variant, interleaved; {steps} steps per agent "
          f"({steps - 1} lookup calls). Per variant: median of the rounds' medians [min..max over rounds].")
    head = (f"{'variant':<14} {'model steps':>11} | {'wall ms':>7} {'[spread]':>15} | {'py CPU ms':>9} {'[spread]':>15} | "
            f"{'srv CPU ms':>10} | {'py CPU ms/step vs base':>24} {'[rounds]':>14} | {'wall ms/step vs base':>20} | "
            f"{'srv CPU ms/step vs base':>23}")
    print(head)
    print("-" * len(head))
    for n, v in found.items():
        base = found.get(VARIANTS[n][1])
        ms = model_steps(n, steps)
        wall, cpu, srv = round_medians(v, "wall"), round_medians(v, "cpu"), round_medians(v, "srv")
        if base is not None and base is not v:
            d_cpu = [(a - b) * 1e3 / ms for a, b in zip(cpu, round_medians(base, "cpu"))]
            d_wall = [(a - b) * 1e3 / ms for a, b in zip(wall, round_medians(base, "wall"))]
            d_srv = [(a - b) * 1e3 / ms for a, b in zip(srv, round_medians(base, "srv"))]
            diff = f"{med(d_cpu):>+24.3f} {'[' + spread(d_cpu, fmt='+.3f') + ']':>14}"
            dwall, dsrv = f"{med(d_wall):>+20.2f}", f"{med(d_srv):>+23.2f}"
        else:
            diff, dwall, dsrv = f"{'(baseline)':>24} {'':>14}", f"{'':>20}", f"{'':>23}"
        print(f"{n:<14} {ms:>11} | {med(wall) * 1e3:>7.1f} {'[' + spread(wall, 1e3, '.1f') + ']':>15} | "
              f"{med(cpu) * 1e3:>9.1f} {'[' + spread(cpu, 1e3, '.1f') + ']':>15} | {med(srv) * 1e3:>10.1f} | "
              f"{diff} | {dwall} | {dsrv}")
    print()
    print("History of one run per variant (root + child in a tree): events, workflow tasks, updates, activities:")
    for n, v in found.items():
        print(f"  {n:<14} " + ", ".join(f"{k} {c}" for k, c in sorted(v.shape.items())))
    print()
    print("py CPU: time.process_time() of this process (worker + client, all threads) during one run;")
    print("srv CPU: the dev server's CPU (/proc, 10 ms resolution). ms/step: (variant - its baseline) / model steps,")
    print("per round, then the median of the rounds [their min..max].")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="model steps per agent (default 20: 19 tool calls)")
    parser.add_argument("--runs", type=int, default=10, help="measured runs per variant and round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per variant, excluded (default 2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--micro-only", action="store_true", help="only the micro-benchmark (no server)")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmark")
    parser.add_argument("--micro-number", type=int, default=20000, help="calls per micro timing (default 20000)")
    parser.add_argument("--profile", choices=list(VARIANTS), help="cProfile this variant's runs (one round)")
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or args.steps < 2 or args.runs < 1 or args.rounds < 1:
        parser.error(f"unknown variants {unknown}" if unknown else "--steps >= 2, --runs and --rounds >= 1")
    for n in list(names):  # a variant is reported against its baseline, so measure that too
        if VARIANTS[n][1] not in names:
            names.insert(0, VARIANTS[n][1])
    print(f"temporalio {temporalio.__version__}, Python {sys.version.split()[0]}", flush=True)

    if not args.no_micro:
        print(f"\nmicro: the checks called directly, {args.micro_number} calls x 7 repeats; us per call")
        print(f"{'check':<56} {'min us':>8} {'median us':>10}")
        for name, lo, mid in micro(args.micro_number, 7):
            print(f"{name:<56} {lo:>8.2f} {mid:>10.2f}")
    if args.micro_only:
        return 0

    print("\nstarting dev server...", flush=True)
    env = await start_dev_server()
    try:
        client = env.client
        SERVER_PIDS[:] = children_named("temporal")
        rounds = 1 if args.profile else args.rounds
        async with create_worker(client, app=app, task_queue=TASK_QUEUE):
            t0 = time.perf_counter()
            found = await measure(client, names, args.steps, args.runs, rounds, args.warmup, args.profile)
            print(f"  all runs in {time.perf_counter() - t0:.1f} s", flush=True)
        if not args.profile:
            report(found, args.steps, args.runs, rounds)
    finally:
        await env.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
