"""Start-up time of ``lmthing`` commands (issue 14, "Slow commands").

Each row is the wall time of a fresh subprocess, from spawn to exit, as a person at a shell
sees it (``time lmthing ...``): median and minimum of ``--runs`` runs after ``--warmup``
runs.

* ``python -c pass``: the interpreter alone, the floor of every row.
* ``python -c "import lmthing"``, ``python -c "import lmthing.cli"``: the package and the
  CLI as imported by every command.
* ``python -c "import temporalio.client"``, ``python -c "from lmthing.client import
  connect, get_handle"``: the Temporal SDK's client alone, and what ``approve`` imports to
  send an update, for reading the ``approve`` row.
* ``lmthing --help``, ``lmthing approvals --help``.
* ``lmthing approve <workflow id> a1 --address ...``: one approval decided against a
  running dev server, next to the same update sent by Temporal's own CLI
  (``temporal workflow update execute --name decide ...``, the binary from
  ``lmthing.workers.dev_server.temporal_cli_path()``) as the baseline.

For the ``approve`` rows the benchmark starts an embedded dev server
(``lmthing.workers.dev_server.start_dev_server()``) and a worker for
``tests/apps/humans_app.py`` in this process. Each measured decision gets its own new run
of the prompt ``pay``, started and waited on (``handle.pending()`` non-empty) before the
clock starts; the run is then awaited to its end, so no workflow work overlaps the next
measurement. ``lmthing`` and ``temporal`` alternate.

``lmthing`` is the console script installed beside this Python (else ``python -m
lmthing``); with ``PYTHONPATH`` set, the subprocesses import lmthing from there.

Usage (from the repository root; both forms work):

    python bench/cli_startup.py [--runs 15] [--warmup 2] [--approvals 15]
    python -m bench.cli_startup [...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    # Run as a script: the worker's sandbox re-imports tests.apps.humans_app by name.
    sys.path.insert(0, str(ROOT))

APP = "tests.apps.humans_app"
PROMPT = "pay"


def lmthing_command() -> list[str]:
    script = Path(sys.executable).parent / "lmthing"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lmthing"]


def child_env() -> dict[str, str]:
    """No Temporal settings or payload keys leaking in (the baseline sends plain JSON)."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LMTHING_PAYLOAD_")) and k != "LMTHING_MODEL"
    }


def timed(argv: Sequence[str], expect: str | None = None) -> float:
    """Seconds from spawn to exit; fails loudly if the command fails (or misses ``expect``)."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=120)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or (expect is not None and expect not in done.stdout):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def row(name: str, samples: list[float]) -> tuple[str, float, float, int]:
    return name, statistics.median(samples), min(samples), len(samples)


def measure_commands(runs: int, warmup: int) -> list[tuple[str, float, float, int]]:
    py, lm = sys.executable, lmthing_command()
    commands: list[tuple[str, list[str], str | None]] = [
        ("python -c pass", [py, "-c", "pass"], None),
        ('python -c "import lmthing"', [py, "-c", "import lmthing"], None),
        ('python -c "import lmthing.cli"', [py, "-c", "import lmthing.cli"], None),
        ('python -c "import temporalio.client"', [py, "-c", "import temporalio.client"], None),
        (
            'python -c "from lmthing.client import connect, get_handle"',
            [py, "-c", "from lmthing.client import connect, get_handle"],
            None,
        ),
        ("lmthing --help", [*lm, "--help"], "approvals"),
        ("lmthing approvals --help", [*lm, "approvals", "--help"], "--address"),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    for i in range(warmup + runs):
        for name, argv, expect in commands:  # interleaved: load hits every row alike
            elapsed = timed(argv, expect)
            if i >= warmup:
                samples[name].append(elapsed)
    return [row(name, samples[name]) for name, _, _ in commands]


async def measure_approve(runs: int, warmup: int) -> list[tuple[str, float, float, int]]:
    from lmthing.client import start_prompt
    from lmthing.workers import create_worker
    from lmthing.workers.dev_server import start_dev_server, temporal_cli_path

    env = await start_dev_server()
    client = env.client
    address = client.service_client.config.target_host
    task_queue = f"bench-cli-{uuid.uuid4().hex[:8]}"
    temporal, lm = temporal_cli_path(), lmthing_command()
    samples: dict[str, list[float]] = {"lmthing": [], "temporal": []}
    try:
        async with create_worker(client, app=APP, task_queue=task_queue):
            for i in range(warmup + runs):
                for side in ("lmthing", "temporal") if i % 2 == 0 else ("temporal", "lmthing"):
                    handle = await start_prompt(client, PROMPT, task_queue=task_queue)
                    approval = await _first_pending(handle)
                    if side == "lmthing":
                        argv = [*lm, "approve", handle.id, approval, "--address", address]
                        expect = f"approve recorded for {approval}"
                    else:
                        argv = [
                            temporal, "workflow", "update", "execute", "--address", address,
                            "--workflow-id", handle.id, "--name", "decide",
                            "--input", json.dumps({"id": approval, "action": "approve"}),
                        ]
                        expect = approval
                    elapsed = await asyncio.to_thread(timed, argv, expect)
                    result = await handle.result()
                    assert [d.action for d in result.decisions] == ["approve"], result.decisions
                    if i >= warmup:
                        samples[side].append(elapsed)
    finally:
        await env.shutdown()
    return [
        row("lmthing approve <wf> a1 --address ...", samples["lmthing"]),
        row("temporal workflow update execute --name decide ... (baseline)", samples["temporal"]),
    ]


async def _first_pending(handle) -> str:  # noqa: ANN001 - a PromptHandle
    for _ in range(500):
        try:
            pending = await handle.pending()
        except Exception:  # noqa: BLE001 - the first workflow task may not have run yet
            pending = []
        if pending:
            return pending[0].id
        await asyncio.sleep(0.02)
    raise SystemExit(f"{handle.id} never waited for an approval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured runs per command (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="runs per command left out (default 2)")
    parser.add_argument("--approvals", type=int, default=15, help="measured decisions per side (default 15; 0: skip)")
    options = parser.parse_args()

    rows = measure_commands(options.runs, options.warmup)
    if options.approvals > 0:
        rows += asyncio.run(measure_approve(options.approvals, options.warmup))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"lmthing command: {' '.join(lmthing_command())}; {os.cpu_count()} cores, load average {load:.2f}")
    print()
    print("| command | median s | min s | runs |")
    print("|---|---:|---:|---:|")
    for name, median, low, count in rows:
        print(f"| `{name}` | {median:.3f} | {low:.3f} | {count} |")


if __name__ == "__main__":
    main()
