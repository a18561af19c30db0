"""``lmthing replay``, ``lmthing history export`` and ``lmthing reset``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .common import (
    AddressOption,
    CliError,
    NamespaceOption,
    _connect_for,
    _execute,
    app,
    console,
    err_console,
    import_app,
    prompts_of,
    server_address,
)


# The logic lives in lmthing.client.replay / .reset / .history; these commands only parse,
# connect and print. Imported inside the commands: the Replayer pulls in the worker side.
ReplayAppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="LMTHING_APP",
        help="Module (dotted name) or .py file with the prompts as they are now: the code to check (default: $LMTHING_APP).",
    ),
]


@contextmanager
def _history_errors() -> Iterator[None]:
    from lmthing.client.history import HistoryError

    try:
        yield
    except HistoryError as err:
        raise CliError(str(err)) from None


@app.command()
def replay(
    workflow_id: Annotated[
        str | None, typer.Argument(help="Workflow id of the run to replay (its history is fetched from the server).")
    ] = None,
    app_target: ReplayAppOption = None,
    history_file: Annotated[
        Path | None, typer.Option("--history-file", help="Replay this history JSON (from `lmthing history export`) instead.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Replay only this run (default: every run of the continue-as-new chain).")
    ] = None,
    children: Annotated[bool, typer.Option("--children", help="Also replay the sub-agents' child workflows.")] = False,
    file_workflow_id: Annotated[
        str | None,
        typer.Option(
            "--workflow-id",
            help="With --history-file: the run's workflow id (default: from the file's first event, else its name).",
        ),
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Replay a run's history against the current code: deterministic, or where it diverges.

    Prints "deterministic" (exit code 0), or the step and the command where the code no
    longer does what the run recorded (exit code 1)."""

    async def go() -> bool:
        from lmthing.client.history import load_history_file
        from lmthing.client.replay import replay_history, replay_workflow

        if (workflow_id is None) == (history_file is None):
            raise CliError("Give a workflow id or --history-file FILE (one of them).", code=2)
        if not app_target:
            raise CliError(
                "Give --app MODULE (or set LMTHING_APP): the module or .py file with the prompts to replay against.", code=2
            )
        module = import_app(app_target)
        workflows = prompts_of(module)
        # The Replayer logs a traceback for a run it cannot replay; the report says it better.
        logging.getLogger("temporalio.worker._workflow").setLevel(logging.CRITICAL)
        with _history_errors():
            if history_file is not None:
                history = load_history_file(history_file, file_workflow_id)
                reports = [await replay_history(history, workflows)]
            else:
                client = await _connect_for(address, namespace)
                reports = await replay_workflow(client, workflow_id or "", workflows, run_id=run_id, children=children)
        for report in reports:
            _print_replay_report(report, module.__name__)
        return all(r.deterministic for r in reports)

    if not _execute(go):
        raise typer.Exit(1)


def _print_replay_report(report: Any, app_name: str) -> None:
    head = f"{escape(report.workflow_id)} (run {report.run_id}, {report.events} events) against {escape(app_name)}:"
    if report.deterministic:
        console.print(f"{head} [green]deterministic[/green]")
        return
    if report.error is not None:
        console.print(f"{head} [red]replay failed[/red]")
        console.print(f"  {escape(report.error)}")
        return
    d = report.divergence
    console.print(f"{head} [red]NOT deterministic[/red]")
    console.print(f"  Diverged at {escape(d.where())}")
    recorded = d.recorded or ["(no command recorded by that workflow task)"]
    console.print(f"  History recorded: {escape(recorded[0])}")
    for line in recorded[1:]:
        console.print(f"                    {escape(line)}")
    console.print(f"  The code now:     {escape(d.message)}")
    if d.step is not None:
        console.print(
            f"[dim]  Runs in flight would stop at step {d.step} on workers with this code. Keep the old behaviour for "
            f"them with workflow.patched(), or, after deploying, continue this run from there with "
            f"`lmthing reset {escape(report.workflow_id)} --to-step {d.step}`. See docs/operations.md.[/dim]"
        )


history_app = typer.Typer(help="Workflow histories: export them to replay later or to keep as tests.", no_args_is_help=True)
app.add_typer(history_app, name="history")


@history_app.command("export")
def history_export(
    workflow_id: Annotated[str, typer.Argument(help="Workflow id of the run.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File (or folder: <workflow-id>.json in it) to write; default: stdout."),
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Which run (default: the latest).")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Write a run's history as JSON, to replay later or to keep as a replay test.

    `lmthing replay --history-file` and Temporal's Replayer read it. Put it in
    tests/histories/ to keep replaying it in the test suite."""

    async def go() -> None:
        from lmthing.client.history import fetch_run, file_name_for, to_json

        client = await _connect_for(address, namespace)
        with _history_errors():
            run = await fetch_run(client, workflow_id, run_id)
        text = to_json(run.history)
        if output is None:
            sys.stdout.write(text)
            return
        target = output / file_name_for(workflow_id) if output.is_dir() else output
        try:
            target.write_text(text)
        except OSError as err:
            raise CliError(f"Cannot write {target}: {err}") from None
        err_console.print(f"Wrote {escape(str(target))}: {len(run.events)} events of run {run.run_id}")

    _execute(go)


@app.command()
def reset(
    workflow_id: Annotated[str, typer.Argument(help="Workflow id of the run to reset.")],
    to_step: Annotated[
        int | None,
        typer.Option("--to-step", min=0, help="Redo from step N's model call; steps count from 0 (steps 0..N-1 are kept from history)."),
    ] = None,
    last_failure: Annotated[
        bool, typer.Option("--last-failure", help="Redo from the workflow task that scheduled what failed last.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the history and shown in the UI).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Reset this run (default: the latest).")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Reset a run to before a step or its last failure; it goes on with the current code.

    A Temporal reset: a new run continues from the workflow task before that point with the
    workers' current code, without redoing the model calls before it."""

    async def go() -> None:
        from lmthing.client.connect import DEFAULT_ADDRESS
        from lmthing.client.reset import reset_workflow

        if (to_step is None) == (not last_failure):
            raise CliError("Give exactly one of --to-step N and --last-failure.", code=2)
        client = await _connect_for(address, namespace)
        with _history_errors():
            outcome = await reset_workflow(
                client, workflow_id, to_step=to_step, last_failure=last_failure, run_id=run_id, reason=reason
            )
        point = outcome.point
        console.print(
            f"Reset {escape(workflow_id)} (run {outcome.base_run_id}) to event {point.event_id}: {escape(point.description)}."
        )
        console.print(f"  Model steps kept from history, not called again: {point.steps_kept}")
        if outcome.was_running:
            console.print("  The old run was still running: Temporal terminated it.")
        console.print(f"New run id: {outcome.new_run_id}")
        where = server_address(address) or DEFAULT_ADDRESS
        console.print(
            f"[dim]Follow it: temporal workflow show --address {where} --workflow-id {escape(workflow_id)} "
            f"--run-id {outcome.new_run_id}[/dim]"
        )

    _execute(go)
