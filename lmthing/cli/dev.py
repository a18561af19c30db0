"""``lmthing dev``: a local Temporal server with its web UI (and a worker for an app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT_TASK_QUEUE,
    TaskQueueOption,
    _execute,
    app,
    build_worker,
    console,
    ensure_port_free,
    flush_traces,
    import_app,
    prompts_of,
    serve_until_signal,
    start_server,
    start_tracing_from_env,
    ui_port_for,
)
from .worker import _print_worker_banner


@app.command()
def dev(
    app_target: Annotated[str | None, typer.Option("--app", help="Also run a worker for this module or .py file.")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the server keeps its SQLite database (runs survive restarts).")] = Path(
        ".lmthing"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="gRPC port of the Temporal frontend.")] = 7233,
    ui_port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port of the Temporal web UI (default: --port + 1000)")] = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
) -> None:
    """Start a local Temporal server with its web UI (and a worker for an app) until Ctrl-C."""

    async def go() -> None:
        # Imported before "Ctrl-C stops everything." is printed, not only by serve_until_signal:
        # a Ctrl-C while the worker's signal handling is still being imported would end the
        # command with exit code 130 instead of a clean stop.
        from lmthing.workers.health import run_until_signal  # noqa: F401
        from lmthing.workers.roles import plan_pool

        module = import_app(app_target) if app_target else None
        db_file = data_dir / "temporal.db"
        ui = ui_port or ui_port_for(port)
        for number, option in ((port, "--port"), (ui, "--ui-port")):
            ensure_port_free(number, option)
        start_tracing_from_env()
        env = await start_server(db_file=db_file, port=port, ui=True, ui_port=ui)
        try:
            w = build_worker(env.client, module, task_queue, 30.0) if module and prompts_of(module) else None
            console.print(f"[bold]Temporal dev server[/bold] (data in {db_file})")
            console.print(f"  gRPC: localhost:{port}   (export TEMPORAL_ADDRESS=localhost:{port})")
            console.print(f"  UI:   http://localhost:{ui}")
            if module:
                _print_worker_banner(module, plan_pool("all", task_queue), f"localhost:{port}")
            console.print("Ctrl-C stops everything.")
            await serve_until_signal(w)
        finally:
            await env.shutdown()
            flush_traces()
        console.print("Stopped.")

    _execute(go)
