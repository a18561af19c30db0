"""``lmthing mcp serve``: an app's prompts as the tools of an MCP server (docs/mcp-server.md).

A thin edge over :mod:`lmthing.mcp_server`: it loads the app, connects to Temporal and
serves; the runs it starts are run by ``lmthing worker --app MODULE`` (or, for
development, by the worker ``--with-worker`` starts in this process). Over stdio nothing
but the protocol may reach stdout, so every message of this command goes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from .common import (
    DEFAULT_TASK_QUEUE,
    AddressOption,
    AppOption,
    CliError,
    NamespaceOption,
    TaskQueueOption,
    _execute,
    app,
    build_worker,
    check_not_empty,
    connect_to,
    err_console,
    import_app,
    prompts_of,
    server_address,
)

DEFAULT_TOKEN_ENV = "LMTHING_MCP_TOKEN"
DEFAULT_PORT = 8765

mcp_app = typer.Typer(help="MCP: serve an app's prompts as the tools of an MCP server.", no_args_is_help=True)
app.add_typer(mcp_app, name="mcp")


@mcp_app.command("serve")
def mcp_serve(
    app_target: AppOption,
    transport: Annotated[str, typer.Option(help="stdio (a desktop client spawns this command) or http (streamable HTTP at /mcp).")] = "stdio",
    host: Annotated[str, typer.Option(help="With --transport http: the interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="With --transport http: the port to listen on.")] = DEFAULT_PORT,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Expose only this prompt (repeat it for more; default: every prompt of the app)."),
    ] = None,
    token_env: Annotated[
        str, typer.Option(help="With --transport http: the environment variable holding the bearer token clients must send.")
    ] = DEFAULT_TOKEN_ENV,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="With --transport http: accept requests without a token.")] = False,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a worker for the app in this process (development).")
    ] = False,
    task_queue: TaskQueueOption = DEFAULT_TASK_QUEUE,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Serve the app's prompts as MCP tools: each call starts a durable run and answers with its result."""
    if transport not in ("stdio", "http"):
        _fail(f"--transport {transport!r}: choose stdio or http")
    token = _token(transport, token_env, no_auth)

    async def go() -> None:
        from lmthing.mcp_server import ExposeError, build_server, choose_prompts, serve_http, serve_stdio

        check_not_empty({"--task-queue": task_queue})
        # Over stdio, stdout is the protocol: what the app prints while imported goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            module = import_app(app_target)
        try:
            exposed = choose_prompts(prompts_of(module), allow)
        except ExposeError as err:
            raise CliError(str(err), code=2) from None
        client = await connect_to(server_address(address), namespace)
        server = build_server(client, exposed, task_queue, module.__name__)
        where = f"http://{host}:{port}/mcp" if transport == "http" else "stdio"
        auth = "" if transport == "stdio" else (" without authorization" if token is None else " (bearer token required)")
        err_console.print(
            f"MCP server for {escape(module.__name__)} on {where}{auth}: tools {escape(', '.join(exposed))}; "
            f"runs on task queue {escape(task_queue)}" + (" (worker in this process)" if with_worker else "")
        )
        serve = serve_stdio(server) if transport == "stdio" else serve_http(server, host, port, token)
        if not with_worker:
            await serve
            return
        async with build_worker(client, module, task_queue, 5.0):
            await serve

    _execute(go)


def _token(transport: str, token_env: str, no_auth: bool) -> str | None:
    """The bearer token HTTP clients must send; None over stdio or with --no-auth."""
    if transport == "stdio" or no_auth:
        return None
    token = os.environ.get(token_env, "").strip()
    if not token:
        _fail(
            f"--transport http needs a bearer token: set ${token_env} (or name another variable with --token-env), "
            "or pass --no-auth to serve without authorization"
        )
    return token


def _fail(message: str) -> None:
    err_console.print(f"[red]Error:[/red] {escape(message)}")
    raise typer.Exit(2)
