"""What every ``lmthing`` command shares: the typer app, the consoles, user errors
(:class:`CliError`, printed without a traceback), loading an app module, connecting, the
embedded dev server, and the common options.

Every ``lmthing`` command imports the whole CLI, so nothing here or in the command modules
imports Temporal, the worker or the engine at module level: each function imports what it
uses, and ``lmthing --help`` or ``lmthing approve`` pays only for its own path (issue 14).
tests/test_cli_startup.py checks that ``import lmthing.cli`` leaves them out."""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from lmthing.workers.health import WorkerHealth
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

# lmthing.workers.DEFAULT_TASK_QUEUE, the default of the options, without importing the
# worker side at start-up (tests/test_cli_startup.py checks that they agree).
DEFAULT_TASK_QUEUE = "lmthing"
UI_PORT_OFFSET = 1000  # `temporal server start-dev` serves its UI on the gRPC port + 1000
MAX_SHOWN_CHARS = 400
T = TypeVar("T")


class CliError(Exception):
    """An error the user can fix: printed in red, without a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _execute(make: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; user errors and Ctrl-C end it with a message, no traceback."""
    import asyncio  # here, not at the top: asyncio alone is a quarter of `lmthing --help`'s imports

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(make())
    except CliError as err:
        err_console.print(f"[red]Error:[/red] {escape(str(err))}")
        raise typer.Exit(err.code) from None

    except KeyboardInterrupt:
        err_console.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130) from None


def _execute_sync(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except CliError as err:
        err_console.print(f"[red]Error:[/red] {escape(str(err))}")
        raise typer.Exit(err.code) from None


# ------------------------------------------------------------------------ loading an app
def import_app(target: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` file (as a module named after its stem, with
    its folder first on ``sys.path``, so the workflow sandbox can re-import it by name)."""
    path = Path(target)
    if path.is_dir():
        hint = f" (it is a package: run from its parent folder with --app {path.name})" if (path / "__init__.py").is_file() else ""
        raise CliError(f"{target} is a folder; give a .py file in it or a dotted module name{hint}", code=2)
    if path.is_file() and path.suffix != ".py":
        raise CliError(f"{target} is not a .py file: an app is a Python module (a .py file or a dotted module name)", code=2)
    if target.endswith(".py") or path.is_file():
        return _import_file(path)
    _prepend_path(Path.cwd())
    return _import_module(target, target)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CliError(f"No such file: {path}", code=2)
    if not path.stem.isidentifier():
        fixed = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
        raise CliError(
            f"{path.name}: the workflow sandbox re-imports the app by its module name, and {path.stem!r} is not a valid "
            f"one; rename the file to {fixed}.py",
            code=2,
        )
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
    from lmthing.workers import collect

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
    import difflib

    close = difflib.get_close_matches(name, [p.spec.name for p in prompts], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise CliError(f"No prompt named {name!r} in {module.__name__}; it defines: {names}.{hint}", code=2)


def build_worker(
    client: Client, module: ModuleType, task_queue: str | None, shutdown_timeout: float, **role_options: Any
) -> Worker:
    """A worker for ``module`` (``role_options``: ``role``, ``model_task_queue``, ... of create_worker)."""
    from lmthing.workers import create_worker

    try:
        return create_worker(
            client, app=module, task_queue=task_queue, graceful_shutdown_timeout=timedelta(seconds=shutdown_timeout),
            **role_options,
        )
    except (TypeError, ValueError) as err:
        raise CliError(str(err), code=2) from None


def check_not_empty(options: dict[str, str | None]) -> None:
    """An option given as an empty string is a mistake, not a default."""
    for option, value in options.items():
        if value is not None and not value.strip():
            raise CliError(f"{option} is empty; give a value or leave the option out", code=2)


def parse_input(raw: str | None, option: str = "--input") -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise CliError(f"{option} is not valid JSON: {err.msg} at position {err.pos} (in {raw!r})", code=2) from None


# ---------------------------------------------------------------------------- connecting
def server_address(option: str | None) -> str | None:
    return option or os.environ.get("TEMPORAL_ADDRESS") or None


async def connect_to(
    address: str | None, namespace: str | None, *, wait: bool = False, wait_timeout: float | None = None,
    on_retry: Callable[[int, float, Exception], None] | None = None, **client_options: Any,
) -> Client:
    """Connect with lmthing's client settings (``address`` None: $TEMPORAL_ADDRESS, else the
    Temporal profile, else localhost:7233; TLS / API key from TEMPORAL_* variables).
    ``wait``: a server that does not answer yet is tried again (``connect_waiting``) for
    ``wait_timeout`` seconds (None: until it answers), ``on_retry`` told of each failure."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.service import RPCError, RPCStatusCode

    from lmthing.client.connect import (
        DEFAULT_ADDRESS,
        ConnectionConfigError,
        TemporalUnreachable,
        connect,
        connect_waiting,
        namespace_missing_message,
    )

    try:
        if wait:
            client = await connect_waiting(address, namespace, timeout=wait_timeout, on_retry=on_retry, **client_options)
        else:
            client = await connect(address, namespace, **client_options)
    except ConnectionConfigError as err:
        raise CliError(str(err), code=2) from None
    except TemporalUnreachable as err:
        raise CliError(str(err)) from None
    # A missing namespace would otherwise surface later, deep inside a worker or a query.
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(namespace_missing_message(client.namespace), code=2) from None
        raise CliError(f"Temporal at {address or DEFAULT_ADDRESS} refused to describe namespace {client.namespace!r}: {err.message}") from None
    return client


async def _connect_for(address: str | None, namespace: str | None) -> Client:
    return await connect_to(server_address(address), namespace)


async def start_server(**kwargs: Any) -> Any:
    """The embedded dev server, without its banner on our stdout or its warnings on stderr."""
    from lmthing.workers.dev_server import start_dev_server

    try:
        with _child_stdout_silenced():
            # "never": a query cancelled as the run ends is logged as an ERROR, noise to a user.
            return await start_dev_server(extra_args=["--log-level", "never"], **kwargs)
    except FileNotFoundError as err:
        raise CliError(str(err)) from None
    except RuntimeError as err:
        raise CliError(f"The embedded Temporal server did not start: {err}") from None


def ensure_port_free(port: int, option: str) -> None:
    """Fail clearly: the SDK would silently connect to whatever already listens there."""
    from lmthing.workers.dev_server import port_in_use

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
    import asyncio

    if worker is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return
    from lmthing.workers.health import run_until_signal

    error = await run_until_signal(
        worker, health,
        on_stop=lambda: console.print("Shutting down the worker (running activities get the graceful timeout to finish)..."),
    )
    if error is not None:
        raise CliError(f"The worker stopped: {cause_message(error)}")


# ------------------------------------------------------------------------------ printing
def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def cause_message(err: BaseException | None) -> str:
    """The innermost failure message: the one that says what actually went wrong."""
    from temporalio.exceptions import TemporalError

    inner = err
    while isinstance(inner, TemporalError) and inner.cause is not None:
        inner = inner.cause
    return (getattr(inner, "message", None) or str(inner)) if inner else "unknown error"


def ui_port_for(grpc_port: int) -> int:
    return grpc_port + UI_PORT_OFFSET


def guess_ui_url(address: str) -> str:
    """Where the dev server's UI would be for this gRPC address (set LMTHING_UI_URL otherwise)."""
    host, _, port = address.rpartition(":")
    return f"http://{host or 'localhost'}:{ui_port_for(int(port)) if port.isdigit() else 8233}"


# ------------------------------------------------------------------------------ options
AppOption = Annotated[str, typer.Option("--app", help="Module (dotted name) or .py file defining the prompts and tools.")]
TaskQueueOption = Annotated[str, typer.Option(help="Task queue the worker polls and runs start on.")]
AddressOption = Annotated[
    str | None, typer.Option(help="Temporal frontend host:port (default: $TEMPORAL_ADDRESS, else localhost:7233)")
]
NamespaceOption = Annotated[str | None, typer.Option(help="Temporal namespace (default: $TEMPORAL_NAMESPACE, else default)")]


# ------------------------------------------------------------------------------- tracing
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
