"""``lmthing ...``: run prompts, workers and a local Temporal server from the shell.

A thin layer over :mod:`lmthing.workers` (worker factory, embedded dev server) and
:mod:`lmthing.client` (connect, start, query): the CLI builds nothing of its own.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError
from temporalio.worker import Worker

from lmthing.client import PromptHandle, connect, get_handle, start_prompt
from lmthing.client.connect import DEFAULT_ADDRESS, ConnectionConfigError
from lmthing.prompt.types import RunResult, StreamEvent
from lmthing.workers import DEFAULT_TASK_QUEUE, collect, create_worker
from lmthing.workers import WorkerRoleError, register_search_attributes
from lmthing.workers.health import WorkerHealth, run_until_signal
from lmthing.workers.roles import PoolPlan, plan_pool
from lmthing.workers.dev_server import port_in_use, start_dev_server
from lmthing.workflows import PromptWorkflow

app = typer.Typer(
    name="lmthing",
    help="lmthing prompt functions as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

UI_PORT_OFFSET = 1000  # `temporal server start-dev` serves its UI on the gRPC port + 1000
MAX_SHOWN_CHARS = 400
T = TypeVar("T")


class CliError(Exception):
    """An error the user can fix: printed in red, without a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``lmthing`` and ``python -m lmthing`` (``argv`` without the program name).

    Ends the process with ``os._exit`` once the command is done: the Temporal SDK's Rust
    threads can abort the interpreter while it tears down ("PyGILState_Release ...
    finalizing", temporalio/sdk-python#300), which would turn a finished command into exit
    code 134."""
    try:
        app(args=argv, prog_name="lmthing", standalone_mode=True)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _execute(make: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; user errors and Ctrl-C end it with a message, no traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(make())
    except CliError as err:
        err_console.print(f"[red]Error:[/red] {escape(str(err))}")
        raise typer.Exit(err.code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130) from None


# ------------------------------------------------------------------------ loading an app
def import_app(target: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` file (as a module named after its stem, with
    its folder first on ``sys.path``, so the workflow sandbox can re-import it by name)."""
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        return _import_file(path)
    _prepend_path(Path.cwd())
    return _import_module(target, target)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CliError(f"No such file: {path}", code=2)
    _prepend_path(path.resolve().parent)
    module = _import_module(path.stem, str(path))
    loaded = Path(getattr(module, "__file__", "") or "").resolve()
    if loaded != path.resolve():
        raise CliError(
            f"Cannot import {path} as module {path.stem!r}: that name is already taken by {loaded or 'a built-in module'}. "
            "Rename the file.",
            code=2,
        )
    return module


def _prepend_path(folder: Path) -> None:
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _import_module(name: str, shown: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise CliError(
                f"Cannot find module {name!r}: give a dotted module name importable from the current "
                "folder or a path to a .py file.",
                code=2,
            ) from None
        raise CliError(f"Cannot import {shown}: {err}") from None
    except Exception as err:  # the user's module raised while being imported
        raise CliError(f"Cannot import {shown}: {type(err).__name__}: {err}") from None


def prompts_of(module: ModuleType) -> list[type[PromptWorkflow]]:
    prompts, _ = collect([module])
    if not prompts:
        raise CliError(
            f"No prompts found in {module.__name__} ({getattr(module, '__file__', '?')}): define one at "
            "module level with @prompt (from lmthing import prompt).",
            code=2,
        )
    return prompts


def pick_prompt(module: ModuleType, name: str | None) -> type[PromptWorkflow]:
    prompts = prompts_of(module)
    names = ", ".join(p.spec.name for p in prompts)
    if name is None:
        if len(prompts) > 1:
            raise CliError(f"{module.__name__} defines several prompts ({names}); choose one with --prompt.", code=2)
        return prompts[0]
    for p in prompts:
        if name in (p.spec.name, p.__name__):
            return p
    raise CliError(f"No prompt named {name!r} in {module.__name__}; it defines: {names}.", code=2)


def build_worker(
    client: Client, module: ModuleType, task_queue: str | None, shutdown_timeout: float, **role_options: Any
) -> Worker:
    """A worker for ``module`` (``role_options``: ``role``, ``model_task_queue``, ... of create_worker)."""
    try:
        return create_worker(
            client, app=module, task_queue=task_queue, graceful_shutdown_timeout=timedelta(seconds=shutdown_timeout),
            **role_options,
        )
    except (TypeError, ValueError) as err:
        raise CliError(str(err), code=2) from None


def check_app_for_role(module: ModuleType, plan: PoolPlan) -> None:
    """Fail before connecting when the app has nothing for this role to run."""
    if plan.workflows:
        prompts_of(module)
    elif plan.role == "tools" and not collect([module])[1]:
        raise CliError(
            f"No @tool functions in {module.__name__}: a tools pool runs @tool activities (tools defined inside a "
            "prompt run in the workflows pool). Give the app that defines them, or run no tools pool.",
            code=2,
        )


def parse_input(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise CliError(f"--input is not valid JSON: {err.msg} at position {err.pos} (in {raw!r})", code=2) from None


# ---------------------------------------------------------------------------- connecting
def server_address(option: str | None) -> str | None:
    return option or os.environ.get("TEMPORAL_ADDRESS") or None


async def connect_to(address: str | None, namespace: str | None, **client_options: Any) -> Client:
    """Connect with lmthing's client settings (``address`` None: $TEMPORAL_ADDRESS, else the
    Temporal profile, else localhost:7233; TLS / API key from TEMPORAL_* variables)."""
    try:
        return await connect(address, namespace, **client_options)
    except ConnectionConfigError as err:
        raise CliError(str(err), code=2) from None
    except RuntimeError as err:
        raise CliError(f"Cannot connect to Temporal at {address or DEFAULT_ADDRESS}: {err}") from None


async def start_server(**kwargs: Any) -> Any:
    """The embedded dev server, without its banner on our stdout or its warnings on stderr."""
    try:
        with _child_stdout_silenced():
            return await start_dev_server(extra_args=["--log-level", "error"], **kwargs)
    except FileNotFoundError as err:
        raise CliError(str(err)) from None
    except RuntimeError as err:
        raise CliError(f"The embedded Temporal server did not start: {err}") from None


def ensure_port_free(port: int, option: str) -> None:
    """Fail clearly: the SDK would silently connect to whatever already listens there."""
    if port_in_use(port):
        raise CliError(f"Port {port} is already in use (another Temporal server?); choose another with {option}.")


@contextmanager
def _child_stdout_silenced() -> Iterator[None]:
    """Point fd 1 at /dev/null while the server process is spawned (it inherits it)."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


async def serve_until_signal(worker: Worker | None, health: WorkerHealth | None = None) -> None:
    """Run ``worker`` (if any) until SIGINT/SIGTERM, then shut it down gracefully."""
    if worker is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return
    error = await run_until_signal(
        worker, health,
        on_stop=lambda: console.print("Shutting down the worker (running activities get the graceful timeout to finish)..."),
    )
    if error is not None:
        raise CliError(f"The worker stopped: {cause_message(error)}")


# ------------------------------------------------------------------------------ commands
AppOption = Annotated[str, typer.Option("--app", help="Module (dotted name) or .py file defining the prompts and tools.")]
TaskQueueOption = Annotated[str, typer.Option(help="Task queue the worker polls and runs start on.")]
AddressOption = Annotated[
    str | None, typer.Option(help="Temporal frontend host:port (default: $TEMPORAL_ADDRESS, else localhost:7233)")
]
NamespaceOption = Annotated[str | None, typer.Option(help="Temporal namespace (default: $TEMPORAL_NAMESPACE, else default)")]


class LogFormat(str, Enum):
    text = "text"
    json = "json"


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
    shutdown_timeout: Annotated[
        float, typer.Option(help="On SIGTERM/SIGINT, seconds running activities get to finish before they are cancelled.")
    ] = 30.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics (lmthing and Temporal SDK), /healthz and /readyz on this port."),
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

    async def go() -> None:
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
        check_app_for_role(module, plan)
        if metrics_port is not None:
            from lmthing.observability.metrics import metrics_runtime

            metrics_runtime(set_default=True)  # before connecting: the client's runtime reports SDK metrics
        start_tracing_from_env()  # before the worker is built: it adds Temporal's tracing plugin
        client = await connect_to(server_address(address), namespace)
        w = build_worker(
            client, module, plan.task_queue, shutdown_timeout,
            role=plan.role, model_task_queue=model_queue, tool_task_queue=tool_queue, **options,
        )
        health = WorkerHealth(client, w)
        ops = await _start_ops_server(metrics_port, health, client, plan) if metrics_port is not None else None
        _print_worker_banner(module, plan, f"{client.service_client.config.target_host} (namespace {client.namespace})")
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


def start_tracing_from_env() -> None:
    """OpenTelemetry traces when the standard ``OTEL_*`` variables ask for them."""
    from lmthing.observability.tracing import TracingConfigError, configure_tracing

    try:
        provider = configure_tracing()
    except TracingConfigError as err:
        raise CliError(str(err), code=2) from None
    if provider is not None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        console.print(f"Traces: OpenTelemetry{f' to {endpoint}' if endpoint else ''}")


def flush_traces() -> None:
    """Export the spans still buffered before the command exits (a no-op without tracing)."""
    from lmthing.observability.tracing import force_flush

    force_flush()


async def _start_ops_server(port: int, health: WorkerHealth, client: Client, plan: PoolPlan) -> Any:
    """/metrics, /healthz and /readyz on ``port`` (0: a free port, printed)."""
    from lmthing.observability.endpoints import start_ops_server

    try:
        ops = await start_ops_server(
            port, health=health, client=client, task_queue=plan.task_queue if plan.workflows else None
        )
    except OSError as err:
        raise CliError(f"Cannot serve metrics and probes on port {port}: {err.strerror or err}") from None
    console.print(f"Metrics and probes: http://0.0.0.0:{ops.port}/metrics, /healthz, /readyz")
    return ops


def _print_worker_banner(module: ModuleType, plan: PoolPlan, where: str) -> None:
    prompts, tools = collect([module])
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


@app.command()
def dev(
    app_target: Annotated[str | None, typer.Option("--app", help="Also run a worker for this module or .py file.")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the server keeps its SQLite database (runs survive restarts).")] = Path(
        ".lmthing"
    ),
    port: Annotated[int, typer.Option(help="gRPC port of the Temporal frontend.")] = 7233,
    ui_port: Annotated[int | None, typer.Option(help="Port of the Temporal web UI (default: --port + 1000)")] = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
) -> None:
    """Start a local Temporal server with its web UI (and a worker for an app) until Ctrl-C."""

    async def go() -> None:
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


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="A .py file or a dotted module name that defines the prompt.")],
    prompt: Annotated[str | None, typer.Option("--prompt", help="Which prompt, when the module defines several.")] = None,
    model: Annotated[
        str | None, typer.Option(help="provider:model (default: $LMTHING_MODEL, else the prompt's own model)")
    ] = None,
    input: Annotated[str | None, typer.Option("--input", help="The prompt's arguments, as JSON.")] = None,  # noqa: A002
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many model steps.")] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Temporal frontend host:port (default: $TEMPORAL_ADDRESS, else an embedded in-memory server)"),
    ] = None,
    namespace: NamespaceOption = None,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
) -> None:
    """Run one prompt to completion, printing each step as it happens."""
    args = _execute_sync(lambda: parse_input(input))
    # Tool and model errors show in the step output; no activity tracebacks in between.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)

    async def go() -> None:
        module = import_app(target)
        chosen = pick_prompt(module, prompt)
        chosen_model = model or os.environ.get("LMTHING_MODEL") or None
        where = server_address(address)
        start_tracing_from_env()
        try:
            if where:
                client = await connect_to(where, namespace)
                await run_with_worker(client, module, chosen, args, chosen_model, max_steps, task_queue, where)
                return
            env = await start_server()
            try:
                await run_with_worker(env.client, module, chosen, args, chosen_model, max_steps, task_queue, None)
            finally:
                await env.shutdown()
        finally:
            flush_traces()

    _execute(go)


def _execute_sync(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except CliError as err:
        err_console.print(f"[red]Error:[/red] {escape(str(err))}")
        raise typer.Exit(err.code) from None


async def run_with_worker(
    client: Client,
    module: ModuleType,
    chosen: type[PromptWorkflow],
    args: Any,
    model: str | None,
    max_steps: int | None,
    task_queue: str,
    address: str | None,
) -> None:
    w = build_worker(client, module, task_queue, 5.0)
    async with w:
        handle = await start_prompt(client, chosen, args, model=model, max_steps=max_steps, task_queue=task_queue)
        console.print(f"[bold]Running[/bold] {chosen.spec.name} as workflow [cyan]{handle.id}[/cyan]")
        try:
            result = await follow(handle, EventPrinter())
        except WorkflowFailureError as err:
            _print_lookup(handle.id, client.namespace, address)
            raise CliError(f"Run failed: {cause_message(err)}") from None
    _print_result(result)
    _print_lookup(handle.id, client.namespace, address)


# ----------------------------------------------------------------------- following a run
async def follow(handle: PromptHandle, printer: EventPrinter) -> RunResult:
    """Print the run's events as they happen (text token by token), then return its result."""
    async for event in handle.full_stream():
        printer.show(event)
    printer.end_text()
    return await handle.result()


class EventPrinter:
    """Prints a run's stream: a header per step, the model's text as it arrives, tool
    calls and results, sub-agents; a model call retried mid-stream is marked."""

    def __init__(self) -> None:
        self._in_text = False
        self._attempts: dict[int, int] = {}

    def show(self, event: StreamEvent) -> None:
        if event.type == "step_start":
            self.end_text()
            console.print(f"[bold cyan]Step {event.step + 1}[/bold cyan]")
        elif event.type == "text_delta" and event.text:
            self._text(event)
        elif event.type == "step_finish":
            self.end_text()
        elif event.type == "tool_call" and event.tool_call:
            call = event.tool_call
            console.print(f"  [yellow]→ {escape(call.name)}[/yellow] {escape(_shorten(_json(call.args)))}")
        elif event.type == "tool_result" and event.tool_result:
            result = event.tool_result
            style = "red" if result.is_error else "green"
            console.print(f"  [{style}]← {escape(result.name)}[/{style}] {escape(_shorten(_json(result.result)))}")
        elif event.type == "agent_start":
            console.print(f"  [magenta]… sub-agent {escape(event.agent or '')} is running as a child workflow[/magenta]")
        elif event.type == "agent_finish" and event.error:
            console.print(f"  [red]sub-agent {escape(event.agent or '')} failed: {escape(event.error)}[/red]")

    def _text(self, event: StreamEvent) -> None:
        previous = self._attempts.get(event.step)
        self._attempts[event.step] = event.attempt
        if previous is not None and previous != event.attempt:
            self.end_text()
            console.print(f"  [dim](the model call was retried: attempt {event.attempt}, its text starts over)[/dim]")
        if not self._in_text:
            console.print("  ", end="")
            self._in_text = True
        console.print(escape(event.text or ""), end="", soft_wrap=True, highlight=False)

    def end_text(self) -> None:
        if self._in_text:
            console.print()
            self._in_text = False


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def cause_message(err: BaseException | None) -> str:
    """The innermost failure message: the one that says what actually went wrong."""
    inner = err
    while isinstance(inner, TemporalError) and inner.cause is not None:
        inner = inner.cause
    return (getattr(inner, "message", None) or str(inner)) if inner else "unknown error"


def _print_result(result: RunResult) -> None:
    console.print("[bold green]Answer[/bold green]")
    console.print(escape(result.text))
    u = result.usage
    console.print(
        f"[dim]{result.steps} step(s), stop reason: {result.stop_reason}; "
        f"usage: {u.input_tokens} input + {u.output_tokens} output tokens[/dim]"
    )
    if result.state:
        console.print(f"[dim]State: {escape(_json(result.state))}[/dim]")


def ui_port_for(grpc_port: int) -> int:
    return grpc_port + UI_PORT_OFFSET


def guess_ui_url(address: str) -> str:
    """Where the dev server's UI would be for this gRPC address (set LMTHING_UI_URL otherwise)."""
    host, _, port = address.rpartition(":")
    return f"http://{host or 'localhost'}:{ui_port_for(int(port)) if port.isdigit() else 8233}"


def _print_lookup(workflow_id: str, namespace: str, address: str | None) -> None:
    console.print(f"Workflow id: [cyan]{escape(workflow_id)}[/cyan]")
    if address is None:
        console.print(
            "[dim]The embedded in-memory Temporal server stopped with this command. For a persistent server "
            "with a web UI, run `lmthing dev` and then `lmthing run ... --address localhost:7233`.[/dim]"
        )
        return
    ui = os.environ.get("LMTHING_UI_URL") or guess_ui_url(address)
    console.print(f"Temporal UI: {ui}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, safe='')}")
    console.print(f"[dim]or: temporal workflow show --address {address} --workflow-id {workflow_id}[/dim]")


# ----------------------------------------------------- replay, history export, reset
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


async def _connect_for(address: str | None, namespace: str | None) -> Client:
    return await connect_to(server_address(address), namespace)


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
        typer.Option("--to-step", min=1, help="Redo from step N's model call (steps 1..N-1 are kept from history)."),
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


# ------------------------------------------------------------------- people in the loop
@app.command()
def approvals(address: AddressOption = None, namespace: NamespaceOption = None) -> None:
    """List pending approvals and questions across running workflows."""

    async def go() -> None:
        from lmthing.client.people import list_waiting

        client = await _connect_for(address, namespace)
        waiting = await list_waiting(client)
        if not waiting:
            console.print("Nothing is waiting for a person.")
            return
        for item in waiting:
            r = item.request
            what = f"tool {r.tool} {_shorten(_json(r.args))}" if r.kind == "approval" else f"options: {', '.join(r.options) or 'free text'}"
            deadline = f", default {r.default} at {r.deadline}" if r.deadline else ""
            console.print(
                f"[cyan]{escape(item.workflow_id)}[/cyan] [bold]{r.id}[/bold] {r.kind} (step {r.step + 1}): "
                f"{escape(r.message)} — {escape(what)}{escape(deadline)}"
            )
        console.print(
            "[dim]Decide: lmthing approve <workflow-id> <id> [--deny | --modify JSON] [--reason ...]; "
            "answer: lmthing answer <workflow-id> <id> <text>[/dim]"
        )

    _execute(go)


@app.command()
def approve(
    workflow_id: Annotated[str, typer.Argument(help="Workflow id of the waiting run.")],
    approval_id: Annotated[str, typer.Argument(help="Approval id, e.g. a1 (see `lmthing approvals`).")],
    deny: Annotated[bool, typer.Option("--deny", help="Deny instead of approving.")] = False,
    modify: Annotated[str | None, typer.Option("--modify", help="Run the tool with these arguments (JSON).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the run's decision record).")] = None,
    by: Annotated[str | None, typer.Option(help="Who decides (default: $USER).")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Approve, deny or modify a pending tool call; a refused decision says why."""

    async def go() -> None:
        if deny and modify is not None:
            raise CliError("Give at most one of --deny and --modify.", code=2)
        args = parse_input(modify) if modify is not None else None
        action = "deny" if deny else "modify" if modify is not None else "approve"
        await _decide(address, namespace, workflow_id, lambda h: h.decide(approval_id, action, args=args, reason=reason, by=_who(by)))

    _execute(go)


@app.command()
def answer(
    workflow_id: Annotated[str, typer.Argument(help="Workflow id of the waiting run.")],
    question_id: Annotated[str, typer.Argument(help="Question id, e.g. q1 (see `lmthing approvals`).")],
    text: Annotated[str, typer.Argument(help="The answer.")],
    by: Annotated[str | None, typer.Option(help="Who answers (default: $USER).")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Answer a pending question; a refused answer says why."""

    async def go() -> None:
        await _decide(address, namespace, workflow_id, lambda h: h.answer(question_id, text, by=_who(by)))

    _execute(go)


async def _decide(address: str | None, namespace: str | None, workflow_id: str, send: Callable[[PromptHandle], Awaitable[str]]) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    client = await _connect_for(address, namespace)
    try:
        console.print(await send(get_handle(client, workflow_id)))
    except WorkflowUpdateFailedError as err:
        raise CliError(f"Refused: {cause_message(err)}") from None
    except RPCError as err:
        raise CliError(f"Cannot reach workflow {workflow_id}: {err.message}") from None


def _who(by: str | None) -> str:
    return by or os.environ.get("USER") or "cli"


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Address to bind (it decrypts for anyone who reaches it).")] = "127.0.0.1",
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Origin of the Temporal UI allowed to call it (repeatable; default http://localhost:8233)."),
    ] = None,
) -> None:
    """Serve the Temporal codec server protocol (/encode, /decode) with the LMTHING_PAYLOAD_* keys,
    so the Temporal UI (Settings > Codec Server) or `temporal --codec-endpoint` show decrypted payloads."""

    async def go() -> None:
        from lmthing.codec import (
            DEFAULT_CORS_ORIGINS,
            EncryptionCodec,
            PayloadKeyConfigError,
            codec_server_app,
        )

        try:
            codec = EncryptionCodec.from_env()
        except PayloadKeyConfigError as err:
            raise CliError(str(err), code=2) from None
        if codec is None:
            raise CliError("No payload key: set LMTHING_PAYLOAD_KEY (and LMTHING_PAYLOAD_KEY_ID) or LMTHING_PAYLOAD_KEYS.", code=2)
        try:
            from aiohttp import web
        except ImportError:
            raise CliError("The codec server needs aiohttp: pip install aiohttp") from None

        origins = cors_origin or list(DEFAULT_CORS_ORIGINS)
        runner = web.AppRunner(codec_server_app(codec, origins))
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as err:
                raise CliError(f"Cannot listen on {host}:{port}: {err.strerror or err}") from None
            console.print(f"[bold]Codec server[/bold] on http://{host}:{port} (keys: {', '.join(codec.key_ids)}; encrypting with {codec.current})")
            console.print(f"  CORS origins: {', '.join(origins)}")
            console.print("  Ctrl-C (or SIGTERM) stops it.")
            await serve_until_signal(None)
        finally:
            await runner.cleanup()
        console.print("Codec server stopped.")

    _execute(go)
