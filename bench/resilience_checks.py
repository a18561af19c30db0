"""Per-step CPU cost of guard, validator and budget checks (issue 16: under 0.2 ms a step).

Two parts, in one command:

* **micro**: the in-workflow checks called directly, timeit-style, outside Temporal:
  ``guard_holds`` / ``RunResilience.guard`` (the guard of one tool call), ``validate`` /
  ``RunResilience.validate_output`` (a schema and a check on one tool output),
  ``BudgetLedger.spend`` and the root's per-step budget path (``RunBudget.spent`` ->
  ``_spend``, replicated, since it reads ``workflow.now()`` and needs a workflow); then the
  same in a loop inside a workflow (the sandbox), with the real ``RunBudget.spent`` of a
  root. Microseconds per call, min and median of repeats.
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

    python bench/resilience_checks.py [--steps 20] [--runs 15] [--rounds 3] [--warmup 2]
                                      [--variants baseline,guards,...] [--micro-only] [--no-micro]
                                      [--timers] [--profile VARIANT] [--alone]
    python -m bench.resilience_checks [...]

``--timers`` also wraps the checks in the worker (``RunResilience.check`` / ``guard`` /
``validate_output``, ``RunBudget.spent`` / ``answer``) in thread-CPU timers: their cost in
situ, in the workflow threads, per model step. ``--profile VARIANT`` runs cProfile over the
main thread (activities, client) during that variant's runs and over those checks in the
workflow threads (one round, no table), and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import threading
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
from lmthing.resilience.budget import BudgetLedger, Constraint, Spend
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
    ``workflow.info()`` / ``workflow.now()`` calls that need a workflow: build the Spend,
    spend it (``_spend``: the ledger, then the deadline)."""
    status, _ = ledger.spend(Spend(run_id="bench-root", tokens=412 + 9, cost_usd=0.0))
    out_of_time = ledger.out_of_time(now)
    if status.exceeded is None and out_of_time is not None:
        status.exceeded = out_of_time
    return status.exceeded


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
        "time.time() (for scale)": time.time,
    }
    out = []
    for name, fn in cases.items():
        fn()  # warm
        times = [t / number for t in timeit.repeat(fn, number=number, repeat=repeat)]
        out.append((name, min(times) * 1e6, statistics.median(times) * 1e6))
    return out


async def sandbox_micro(client: Client, number: int) -> None:
    """The checks in a loop inside a workflow (bench_rc_micro): in the sandbox, as in a run."""
    found = {}
    for r in range(5):
        one = await client.execute_workflow(app.RcMicro.run, number, id=f"bench-rc-micro-{uuid.uuid4().hex[:8]}",
                                            task_queue=TASK_QUEUE)
        for name, us in one.items():
            found.setdefault(name, []).append(us)
    print(f"\nmicro in a workflow (sandbox): {number} calls x 5 workflows; us per call")
    print(f"{'check':<56} {'min us':>8} {'median us':>10}")
    for name, xs in found.items():
        print(f"{name:<56} {min(xs):>8.2f} {med(xs):>10.2f}")


# ---------------------------------------------------------------------------- timers
# --timers: the real checks in the real worker, each wrapped in a thread-CPU timer (lmthing is
# passed through the workflow sandbox, so the workflows call these very class attributes).
# A coroutine is timed step by step (each send), so time it spends suspended (a child's
# budget activity) is not counted: what is counted is the workflow thread's CPU in the check.
TIMED = [
    ("RunResilience.check", "lmthing.workflows.resilience_host", "RunResilience", "check"),
    ("RunResilience.guard", "lmthing.workflows.resilience_host", "RunResilience", "guard"),
    ("RunResilience.validate_output", "lmthing.workflows.resilience_host", "RunResilience", "validate_output"),
    ("RunBudget.spent", "lmthing.workflows.budget_host", "RunBudget", "spent"),
    ("RunBudget.answer", "lmthing.workflows.budget_host", "RunBudget", "answer"),
]
TIMERS: dict[tuple[str, str], list[int]] = {}  # (variant, check) -> [ns, calls]
CURRENT = [""]
OUTERMOST = "outermost"  # time in timed checks not nested in another
_depth = threading.local()


def _count(acc: list[int], ns: int, first: bool) -> None:
    acc[0] += ns
    if first and getattr(_depth, "n", 0) == 0:
        outer = TIMERS.setdefault((CURRENT[0], OUTERMOST), [0, 0])
        outer[0] += ns
        outer[1] += 1


PROFILE: list[str | None] = [None]  # --profile VARIANT: cProfile the outermost checks of that variant
PROFILERS: list[cProfile.Profile] = []  # one per workflow thread (cProfile profiles the thread it is enabled on)


def _profiler() -> cProfile.Profile | None:
    if PROFILE[0] is None or PROFILE[0] != CURRENT[0] or getattr(_depth, "n", 0) != 0:
        return None
    prof = getattr(_depth, "prof", None)
    if prof is None:
        prof = _depth.prof = cProfile.Profile()
        PROFILERS.append(prof)
    return prof


def _enter() -> int:
    prof = _profiler()
    if prof is not None:
        prof.enable()
    _depth.n = getattr(_depth, "n", 0) + 1
    return time.thread_time_ns()


def _leave(t0: int) -> int:
    ns = time.thread_time_ns() - t0
    _depth.n -= 1
    prof = _profiler()
    if prof is not None:
        prof.disable()
    return ns


class _TimedSteps:
    def __init__(self, coro: Any, acc: list[int]) -> None:
        self.coro, self.acc = coro, acc

    def __await__(self) -> Any:
        gen, value, error = self.coro.__await__(), None, None
        self.acc[1] += 1
        while True:
            t0 = _enter()
            try:
                yielded = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as done:
                _count(self.acc, _leave(t0), True)
                return done.value
            except BaseException:
                _count(self.acc, _leave(t0), True)
                raise
            _count(self.acc, _leave(t0), True)
            try:
                value, error = (yield yielded), None
            except BaseException as err:  # noqa: BLE001 - handed on to the coroutine
                value, error = None, err


def install_timers() -> None:
    import functools
    import importlib
    import inspect

    for label, module, cls, attr in TIMED:
        owner = getattr(importlib.import_module(module), cls)
        fn = getattr(owner, attr)

        def acc(_label: str = label) -> list[int]:
            return TIMERS.setdefault((CURRENT[0], _label), [0, 0])

        if inspect.iscoroutinefunction(fn):
            def wrapped(*a: Any, _fn: Any = fn, _acc: Any = acc, **k: Any) -> Any:
                return _TimedSteps(_fn(*a, **k), _acc())
        else:
            def wrapped(*a: Any, _fn: Any = fn, _acc: Any = acc, **k: Any) -> Any:
                box = _acc()
                box[1] += 1
                t0 = _enter()
                try:
                    return _fn(*a, **k)
                finally:
                    _count(box, _leave(t0), True)
        setattr(owner, attr, functools.wraps(fn)(wrapped))


def timer_cost(number: int = 20000) -> float:
    """Microseconds one timed call costs the timer itself (an empty coroutine, timed as above)."""
    acc, current = [0, 0], CURRENT[0]
    CURRENT[0] = "(calibration)"

    async def nothing() -> None:
        return None

    t0 = time.thread_time_ns()
    for _ in range(number):
        _drive(_TimedSteps(nothing(), acc).__await__())
    untimed = time.thread_time_ns()
    for _ in range(number):
        _drive(nothing())
    CURRENT[0] = current
    return ((untimed - t0) - (time.thread_time_ns() - untimed)) / number / 1e3


def report_timers(names: list[str], steps: int, runs: int) -> None:
    cost = timer_cost()
    print(f"\nIn-worker thread CPU of the checks (--timers), us per model step [calls per run], over {runs} runs "
          f"per variant; 'outermost' sums the checks not nested in another, less the timer's own cost "
          f"({cost:.2f} us per timed call, measured here):")
    labels = [label for label, *_ in TIMED]
    print(f"{'variant':<14} " + " ".join(f"{lab:>30}" for lab in labels) + f" {OUTERMOST + ' us/step':>18} {'vs base':>8}")
    outer_of: dict[str, float] = {}
    for n in names:
        ms, cells = model_steps(n, steps), []
        for lab in labels:
            ns, calls = TIMERS.get((n, lab), [0, 0])
            cells.append(f"{ns / 1e3 / runs / ms:>8.2f} [{calls / runs:>5.1f}/run]" if calls else f"{'-':>30}")
        ns, calls = TIMERS.get((n, OUTERMOST), [0, 0])
        outer = outer_of[n] = (ns / 1e3 - calls * cost) / runs / ms
        base = outer_of.get(VARIANTS[n][1])
        vs = f"{outer - base:>+8.2f}" if base is not None and VARIANTS[n][1] != n else f"{'':>8}"
        print(f"{n:<14} " + " ".join(f"{c:>30}" for c in cells) + f" {outer:>18.2f} {vs}")
    print("RunBudget.answer is the root's lmthing_budget update handler (tree only); the child's RunBudget.spent")
    print("includes scheduling the lmthing.budget activity (its time suspended, waiting for it, is not counted).")


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
                CURRENT[0] = n
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
        print(f"\ncProfile of the main thread (activities, client, worker loop) during the {runs * rounds} "
              f"'{profile}' runs:")
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    if PROFILERS:
        stats = pstats.Stats(PROFILERS[0])
        for prof in PROFILERS[1:]:
            stats.add(prof)
        print(f"\ncProfile of the timed checks in the workflow threads during the '{profile}' runs:")
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
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
            f"{'srv CPU ms':>10} | {'py CPU ms/step vs base':>24} {'[rounds]':>14} {'paired [p25..p75]':>22} | {'wall ms/step vs base':>20} | "
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
            pairs = sorted((a - b) * 1e3 / ms for x, y in zip(v.rounds, base.rounds) for a, b in zip(x.cpu, y.cpu))
            paired = f"{med(pairs):+.3f} [{pairs[len(pairs) // 4]:+.2f}..{pairs[(3 * len(pairs)) // 4]:+.2f}]"
            diff = f"{med(d_cpu):>+24.3f} {'[' + spread(d_cpu, fmt='+.3f') + ']':>14} {paired:>22}"
            dwall, dsrv = f"{med(d_wall):>+20.2f}", f"{med(d_srv):>+23.2f}"
        else:
            diff, dwall, dsrv = f"{'(baseline)':>24} {'':>14} {'':>22}", f"{'':>20}", f"{'':>23}"
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
    print("per round, then the median of the rounds [their min..max]; paired: the median over all runs of (variant")
    print("run - baseline run of the same rotation) / model steps [quartiles].")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="model steps per agent (default 20: 19 tool calls)")
    parser.add_argument("--runs", type=int, default=15, help="measured runs per variant and round (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per variant, excluded (default 2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--alone", action="store_true",
                        help="measure only the --variants given, not their baselines too (for an outside profiler)")
    parser.add_argument("--micro-only", action="store_true", help="only the micro-benchmark (no server)")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmark")
    parser.add_argument("--micro-number", type=int, default=20000, help="calls per micro timing (default 20000)")
    parser.add_argument("--timers", action="store_true",
                        help="also time the checks inside the worker (thread CPU per check; adds its own small cost)")
    parser.add_argument("--profile", choices=list(VARIANTS), help="cProfile this variant's runs (one round)")
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or args.steps < 2 or args.runs < 1 or args.rounds < 1:
        parser.error(f"unknown variants {unknown}" if unknown else "--steps >= 2, --runs and --rounds >= 1")
    for n in list(names):  # a variant is reported against its baseline, so measure that too
        if VARIANTS[n][1] not in names and not args.alone:
            names.insert(0, VARIANTS[n][1])
    print(f"temporalio {temporalio.__version__}, Python {sys.version.split()[0]}", flush=True)

    if not args.no_micro:
        print(f"\nmicro: the checks called directly, {args.micro_number} calls x 7 repeats; us per call")
        print(f"{'check':<56} {'min us':>8} {'median us':>10}")
        for name, lo, mid in micro(args.micro_number, 7):
            print(f"{name:<56} {lo:>8.2f} {mid:>10.2f}")
    if args.micro_only:
        return 0

    if args.timers or args.profile:
        PROFILE[0] = args.profile
        install_timers()
    print("\nstarting dev server...", flush=True)
    env = await start_dev_server()
    try:
        client = env.client
        SERVER_PIDS[:] = children_named("temporal")
        rounds = 1 if args.profile else args.rounds
        async with create_worker(client, app=app, task_queue=TASK_QUEUE, workflows=[app.RcMicro]):
            if not args.no_micro:
                await sandbox_micro(client, args.micro_number // 10)
            t0 = time.perf_counter()
            found = await measure(client, names, args.steps, args.runs, rounds, args.warmup, args.profile)
            print(f"  all runs in {time.perf_counter() - t0:.1f} s", flush=True)
        if not args.profile:
            report(found, args.steps, args.runs, rounds)
        if args.timers and not args.profile:
            report_timers(names, args.steps, args.runs * rounds)
    finally:
        await env.shutdown()
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without interpreter teardown: the SDK's Rust threads can abort CPython while it
    # finalizes (temporalio/sdk-python#300; tests/conftest.py does the same).
    import os

    os._exit(code)
