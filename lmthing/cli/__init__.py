"""``lmthing ...``: run prompts, workers and a local Temporal server from the shell.

A thin layer over :mod:`lmthing.workers` (worker factory, embedded dev server) and
:mod:`lmthing.client` (connect, start, query): the CLI builds nothing of its own.

One module per command group: :mod:`.common` (the typer app, errors, loading an app,
connecting), :mod:`.worker`, :mod:`.dev`, :mod:`.run`, :mod:`.history` (replay, history
export, reset), :mod:`.people` (approvals, approve, answer), :mod:`.codec_server` and
:mod:`.agents` (agents list), :mod:`.breakers` (circuit breakers), :mod:`.memory` (memory
list / show / search / forget), :mod:`.mcp_serve` (mcp serve), :mod:`.project` (new, test). Importing this package registers every command on ``app``.

Every ``lmthing`` command imports all of them, so none imports Temporal, the worker or the
engine at module level (see :mod:`.common`): ``lmthing --help`` loads typer and rich only,
and each command loads what it uses when it runs.
"""

from __future__ import annotations

import os
import sys

# The command modules register their commands on ``app`` when imported; this order is the
# order of ``lmthing --help``.
from .common import (
    MAX_SHOWN_CHARS,
    UI_PORT_OFFSET,
    AddressOption,
    AppOption,
    CliError,
    NamespaceOption,
    TaskQueueOption,
    app,
    build_worker,
    cause_message,
    connect_to,
    console,
    ensure_port_free,
    err_console,
    flush_traces,
    guess_ui_url,
    import_app,
    parse_input,
    pick_prompt,
    prompts_of,
    serve_until_signal,
    server_address,
    start_server,
    start_tracing_from_env,
    ui_port_for,
)
from . import worker, dev, run, chat  # noqa: F401 - the modules (their commands: worker.worker, ...)
from .worker import LogFormat, WorkerRole, check_app_for_role, configure_logging
from .run import EventPrinter, follow, run_with_worker
from .history import ReplayAppOption, history_app, history_export, replay, reset
from .people import answer, approvals, approve
from .codec_server import codec_server
from .breakers import breakers
from .agents import ListedAgent, agents_app, agents_list, list_agents, scan_agents
from .memory import memory_app
from .mcp_serve import mcp_app
from .project import new, test_project

__all__ = [
    "MAX_SHOWN_CHARS", "UI_PORT_OFFSET", "AddressOption", "AppOption", "CliError", "EventPrinter", "ListedAgent",
    "LogFormat", "NamespaceOption", "ReplayAppOption", "TaskQueueOption", "WorkerRole", "agents_app", "agents_list",
    "answer", "app", "approvals", "approve", "breakers", "build_worker", "cause_message", "check_app_for_role", "codec_server",
    "configure_logging", "connect_to", "console", "ensure_port_free", "err_console", "flush_traces", "follow",
    "guess_ui_url", "history_app", "history_export", "import_app", "list_agents", "main", "mcp_app", "memory_app", "new",
    "parse_input", "pick_prompt",
    "prompts_of", "replay", "reset", "run_with_worker", "scan_agents", "serve_until_signal", "server_address",
    "start_server", "start_tracing_from_env", "test_project", "ui_port_for",
]


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
