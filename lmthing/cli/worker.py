"""``lmthing worker``: a worker (or one worker pool) for an app until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
from enum import Enum
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from lmthing.workers.health import WorkerHealth
    from lmthing.workers.roles import PoolPlan

from .common import (
    AddressOption,
    AppOption,
    CliError,
    check_not_empty,
    NamespaceOption,
    _execute,
    _execute_sync,
    app,
    build_worker,
    connect_to,
    console,
    err_console,
    flush_traces,
    import_app,
    prompts_of,
    serve_until_signal,
    server_address,
    start_tracing_from_env,
)

log = logging.getLogger("lmthing.worker")


class LogFormat(str, Enum):
    text = "text"
    json = "json"


class UnknownWorkflows(str, Enum):
    fail = "fail"
    retry = "retry"


class WorkerRole(str, Enum):
    all = "all"
    workflows = "workflows"
    models = "models"
    tools = "tools"


@app.command()
def worker(
    app_target: AppOption,
    role: Annotated[
        WorkerRole,
        typer.Option(
            help="What this worker runs: all (prompts, model calls and tools on one queue), or one pool of "
            "workflows / models / tools, each on its own task queue and scaled on its own."
        ),
    ] = WorkerRole.all,
    task_queue: Annotated[
        str | None,
        typer.Option(help="Task queue to poll (default: lmthing; lmthing-models for --role models, lmthing-tools for --role tools)."),
    ] = None,
    model_queue: Annotated[
        str | None, typer.Option(help="With --role workflows: the queue of the runs' model calls (default: <task-queue>-models).")
    ] = None,
    tool_queue: Annotated[
        str | None, typer.Option(help="With --role workflows: the queue of the runs' tool activities (default: <task-queue>-tools).")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            help="Activities per second the whole task queue may start, across all its workers (Temporal's task-queue "
            "rate limit, enforced by the server), e.g. a model provider's requests per second with --role models."
        ),
    ] = None,
    max_concurrent: Annotated[int | None, typer.Option(min=1, help="Activities this worker runs at once.")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            min=0, help="Seconds to keep trying while Temporal does not answer (each try logged, /readyz 503 "
            "meanwhile); default: until it answers.",
        ),
    ] = None,
    shutdown_timeout: Annotated[
        float, typer.Option(help="On SIGTERM/SIGINT, seconds running activities get to finish before they are cancelled.")
    ] = 30.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Serve /metrics (lmthing and Temporal SDK), /healthz and /readyz on this port."),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="LMTHING_LOG_FORMAT",
            help="json: one JSON object per log line on stderr, with the run's workflow id, run id, prompt and "
            "step, secrets redacted (for log collectors); text: Python's default.",
        ),
    ] = LogFormat.text,
    log_level: Annotated[
        str, typer.Option(envvar="LMTHING_LOG_LEVEL", help="Lowest level logged: debug, info, warning, error.")
    ] = "info",
    unknown_workflows: Annotated[
        UnknownWorkflows | None,
        typer.Option(
            envvar="LMTHING_UNKNOWN_WORKFLOWS",
            help="A run of a workflow type this worker lacks: fail it at once, naming the known types (a misspelt "
            "--type), or retry its workflow task as Temporal does (for pools whose workers may differ, e.g. during a "
            "rolling deploy that adds a prompt).",
        ),
    ] = None,
    tools_entry_points: Annotated[
        bool,
        typer.Option(
            "--tools-entry-points",
            help="Also run the @tool functions installed packages publish in the entry-point group lmthing.tools "
            "(docs/tools.md), on top of the app's.",
        ),
    ] = False,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="For development: run the worker in a child process and start it again (after a graceful drain) "
            "whenever a .py file under the app's folder or the current folder changes. Needs watchfiles "
            "(pip install 'lmthing[dev]').",
        ),
    ] = False,
    log_redact: Annotated[
        list[str] | None,
        typer.Option(
            envvar="LMTHING_LOG_REDACT",
            help="With --log-format json: a field name whose values are logged as [REDACTED], on top of the "
            "defaults (api_key, authorization, password, secret, token...). Repeat it, or set "
            "LMTHING_LOG_REDACT to names separated by spaces.",
        ),
    ] = None,
) -> None:
    """Run a worker for the prompts and @tools of an app until SIGINT/SIGTERM (then drain)."""
    if reload:
        _execute_sync(lambda: _run_reloading(app_target))
        return

    async def go() -> None:
        check_not_empty({"--task-queue": task_queue, "--model-queue": model_queue, "--tool-queue": tool_queue})
        from lmthing.client.namespace import register_search_attributes
        from lmthing.workers import WorkerRoleError
        from lmthing.workers.health import WorkerHealth
        from lmthing.workers.roles import plan_pool

        configure_logging(log_format, log_level, log_redact or [])
        options: dict[str, Any] = {}
        if rate_limit is not None:
            if rate_limit <= 0:
                raise CliError(f"--rate-limit must be above 0 (activities per second), not {rate_limit}.", code=2)
            options["max_task_queue_activities_per_second"] = rate_limit
        if max_concurrent is not None:
            options["max_concurrent_activities"] = max_concurrent
        try:
            plan = plan_pool(role.value, task_queue, model_queue, tool_queue, options)
        except WorkerRoleError as err:
            raise CliError(str(err), code=2) from None
        module = import_app(app_target)
        extra_tools = _entry_point_tools() if tools_entry_points else []
        if extra_tools:
            options["tools"] = extra_tools
        check_app_for_role(module, plan, extra_tools)
        if metrics_port is not None:
            from lmthing.observability.metrics import metrics_runtime

            metrics_runtime(set_default=True)  # before connecting: the client's runtime reports SDK metrics
        start_tracing_from_env()  # before the worker is built: it adds Temporal's tracing plugin
        # Probes answer before Temporal does: live, and not ready while the worker waits for it.
        health = WorkerHealth(None)
        ops = await _start_ops_server(metrics_port, health) if metrics_port is not None else None
        try:
            client = await connect_to(server_address(address), namespace, wait=True, wait_timeout=connect_timeout,
                                      on_retry=lambda n, pause, err: _waiting_for_temporal(health, n, pause, err))
        except BaseException:
            if ops is not None:
                await ops.close()
            raise
        w = build_worker(
            client, module, plan.task_queue, shutdown_timeout,
            role=plan.role, model_task_queue=model_queue, tool_task_queue=tool_queue,
            unknown_workflows=(unknown_workflows or UnknownWorkflows.fail).value, **options,
        )
        health.client, health.worker = client, w
        if ops is not None and plan.workflows:
            ops.watch_runs(client, plan.task_queue)
        _print_worker_banner(module, plan, f"{client.service_client.config.target_host} (namespace {client.namespace})",
                             extra_tools)
        if plan.workflows:
            problem = await register_search_attributes(client)
            if problem:
                err_console.print(f"[yellow]Warning:[/yellow] {escape(problem)}")
        try:
            await serve_until_signal(w, health)
        finally:
            if ops is not None:
                await ops.close()
        flush_traces()
        console.print("Worker stopped.")

    _execute(go)


def _entry_point_tools() -> list[Any]:
    """The tools of the entry-point group ``lmthing.tools`` (a package that does not load: a clear error)."""
    from lmthing.tools.registry import ToolRegistry

    try:
        return ToolRegistry().load_entry_points()
    except (ImportError, TypeError, ValueError) as err:
        raise CliError(f"--tools-entry-points: {err}", code=2) from None


def check_app_for_role(module: ModuleType, plan: PoolPlan, extra_tools: list[Any] | None = None) -> None:
    """Fail before connecting when the app has nothing for this role to run."""
    from lmthing.workers import collect

    if plan.workflows:
        prompts_of(module)
    elif plan.role == "tools" and not collect([module])[1] and not extra_tools:
        raise CliError(
            f"No @tool functions in {module.__name__}: a tools pool runs @tool activities (tools defined inside a "
            "prompt run in the workflows pool). Give the app that defines them, or run no tools pool.",
            code=2,
        )


def configure_logging(log_format: LogFormat, level: str, redact: list[str]) -> None:
    """The worker's logging: JSON lines (``lmthing.observability.logging``) or plain text."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise CliError(f"--log-level {level!r} is not a level; use debug, info, warning or error.", code=2)
    if log_format is LogFormat.json:
        from lmthing.observability.logging import configure_json_logging

        configure_json_logging(redact, level=number)
    else:
        logging.getLogger().setLevel(number)  # with _execute's plain format


async def _start_ops_server(port: int, health: WorkerHealth) -> Any:
    """/metrics, /healthz and /readyz on ``port`` (0: a free port, printed)."""
    from lmthing.observability.endpoints import start_ops_server

    try:
        ops = await start_ops_server(port, health=health)
    except OSError as err:
        raise CliError(f"Cannot serve metrics and probes on port {port}: {err.strerror or err}") from None
    console.print(f"Metrics and probes: http://0.0.0.0:{ops.port}/metrics, /healthz, /readyz")
    return ops


def _waiting_for_temporal(health: WorkerHealth, attempt: int, pause: float, err: Exception) -> None:
    """Log a failed connection attempt, and say why on /readyz until the next one."""
    health.connecting = f"waiting for Temporal (attempt {attempt} failed): {err}"
    log.warning("%s Trying again in %.0f s (attempt %d).", err, pause, attempt + 1)


def _print_worker_banner(module: ModuleType, plan: PoolPlan, where: str, extra_tools: list[Any] | None = None) -> None:
    from lmthing.workers import collect

    prompts, tools = collect([module])
    tools += [t for t in extra_tools or () if t not in tools]
    pool = "" if plan.role == "all" else f" ({plan.role} pool)"
    console.print(f"[bold]Worker[/bold]{pool} for {module.__name__} on task queue [cyan]{plan.task_queue}[/cyan] at {where}")
    if plan.workflows:
        console.print(f"  prompts: {', '.join(p.spec.name for p in prompts)}")
    if plan.routes is not None:
        console.print(f"  model calls go to [cyan]{plan.routes.model_task_queue}[/cyan], tool activities to [cyan]{plan.routes.tool_task_queue}[/cyan]")
    if plan.model_calls and not plan.workflows:
        console.print("  runs: model calls (lmthing.model_call)")
    if plan.tools:
        console.print(f"  tools:   {', '.join(t.name for t in tools) or '(none)'}")
    console.print("  Ctrl-C (or SIGTERM) stops it gracefully.")


def _run_reloading(app_target: str) -> None:
    """``lmthing worker ... --reload``: this command again without ``--reload``, in a child
    process that watchfiles stops (SIGINT: the worker drains) and starts again on a change."""
    import shlex
    import sys
    from pathlib import Path

    try:
        import watchfiles
    except ImportError:
        raise CliError("--reload needs the watchfiles package: pip install 'lmthing[dev]'", code=2) from None
    argv = [a for a in sys.argv[1:] if a != "--reload"]
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "lmthing", *argv])
    folders = {Path.cwd()}
    if app_target.endswith(".py"):
        folders.add(Path(app_target).resolve().parent)
    else:
        import importlib.util

        try:
            spec = importlib.util.find_spec(app_target.split(".")[0])
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            folders.add(Path(spec.origin).resolve().parent)
    console.print(f"[bold]Reloading[/bold] on changes under {', '.join(sorted(str(f) for f in folders))}")

    def changed(changes: set[tuple[object, str]]) -> None:
        err_console.print(f"lmthing worker --reload: {len(changes)} change(s) ({sorted(p for _, p in changes)[0]}); "
                          "restarting the worker")

    watchfiles.run_process(*sorted(folders), target=command, target_type="command", callback=changed,
                           watch_filter=watchfiles.PythonFilter(), sigint_timeout=35)
