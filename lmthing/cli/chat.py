"""``lmthing chat``: a REPL on a long-lived agent (000's playground), tokens as they arrive.

The agent is a workflow under a stable id: leaving the REPL leaves it waiting (it costs
nothing but a waiting workflow), and ``lmthing chat FILE --id ID`` later, against the same
server, resumes the same conversation. The REPL runs a worker for the file while it is
open, so the agent's turns run here; between sessions no worker is needed.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .common import (
    DEFAULT_TASK_QUEUE,
    CliError,
    NamespaceOption,
    _execute,
    _execute_sync,
    app,
    build_worker,
    cause_message,
    check_not_empty,
    connect_to,
    console,
    import_app,
    parse_input,
    pick_prompt,
    server_address,
    start_server,
)

if TYPE_CHECKING:
    from temporalio.client import Client

    from lmthing.client.messaging import AgentHandle

EXIT_WORDS = ("/quit", "/exit")
# Earlier turns shown when a session resumes a conversation.
SHOWN_ON_RESUME = 3


@app.command()
def chat(
    target: Annotated[str, typer.Argument(help="A .py file or a dotted module name that defines the prompt.")],
    agent_id: Annotated[str | None, typer.Option("--id", help="The agent's workflow id: the same id resumes the same conversation.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Which prompt, when the module defines several.")] = None,
    model: Annotated[str | None, typer.Option(help="provider:model (default: $LMTHING_MODEL, else the prompt's own model)")] = None,
    input: Annotated[str | None, typer.Option("--input", help="The prompt's arguments, as JSON.")] = None,  # noqa: A002
    address: Annotated[
        str | None,
        typer.Option(help="Temporal frontend host:port (default: $TEMPORAL_ADDRESS, else an embedded in-memory server, "
                     "which ends with the session: use `lmthing dev` to resume later)"),
    ] = None,
    namespace: NamespaceOption = None,
    task_queue: Annotated[str | None, typer.Option(help="Task queue of the agent and this command's worker "
                                                   "(default: lmthing-chat-<prompt> with --address).")] = None,
) -> None:
    """Chat with a prompt running as a long-lived agent; `/quit` or end of input leaves (the agent stays)."""
    args = _execute_sync(lambda: parse_input(input))
    _execute_sync(lambda: check_not_empty({"--id": agent_id, "--model": model, "--task-queue": task_queue}))
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)

    async def go() -> None:
        module = import_app(target)
        chosen = pick_prompt(module, prompt)
        chosen_model = model or os.environ.get("LMTHING_MODEL") or None
        where = server_address(address)
        if where:
            client = await connect_to(where, namespace)
            queue = task_queue or f"lmthing-chat-{chosen.spec.name}"
            await _session(client, module, chosen, args, chosen_model, queue, agent_id)
            return
        env = await start_server()
        try:
            await _session(env.client, module, chosen, args, chosen_model, task_queue or DEFAULT_TASK_QUEUE, agent_id)
        finally:
            await env.shutdown()

    _execute(go)


async def _session(client: Client, module: Any, chosen: Any, args: Any, model: str | None, queue: str, agent_id: str | None) -> None:
    from lmthing.client.messaging import start_agent

    agent_id = agent_id or f"chat-{chosen.spec.name}-{uuid.uuid4().hex[:8]}"
    queue = await _queue_of_running(client, agent_id, chosen.spec.name) or queue
    async with build_worker(client, module, queue, 5.0):
        agent = await start_agent(client, chosen, args, id=agent_id, model=model, task_queue=queue)
        status = await agent.status()
        if status.phase in ("finished", "failed"):
            raise CliError(f"Agent {agent_id!r} has ended ({status.phase}); chat with a new --id")
        if status.turns:
            console.print(f"[bold]Resuming[/bold] [cyan]{escape(agent_id)}[/cyan]: {status.turns} earlier turn(s)")
            await _show_earlier(agent)
        else:
            console.print(f"[bold]Chatting with[/bold] {escape(chosen.spec.name)} as [cyan]{escape(agent_id)}[/cyan] "
                          f"[dim](resume later with --id {escape(agent_id)}; /quit to leave)[/dim]")
        while True:
            line = await _read_line()
            if line is None or line.strip() in EXIT_WORDS:
                break
            if not line.strip():
                continue
            await _turn(agent, line.strip())
        console.print(f"[dim]Left {escape(agent_id)} waiting for its next message.[/dim]")


async def _queue_of_running(client: Client, agent_id: str, prompt: str) -> str | None:
    """The task queue of the agent running under ``agent_id`` (its turns run there, so this
    session's worker polls it), None if none runs; another prompt under that id is an error."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        described = await client.get_workflow_handle(agent_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise CliError(f"Could not look up agent {agent_id!r}: {err.message}") from None
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    if described.workflow_type != prompt:
        raise CliError(f"Workflow {agent_id!r} is a {described.workflow_type!r} run, not prompt {prompt!r}; use another --id", code=2)
    return described.task_queue


async def _show_earlier(agent: AgentHandle) -> None:
    from lmthing.prompt.types import Message

    messages = await agent.handle.query("conversation", result_type=list[Message])
    turns = [m for m in messages if m.role in ("user", "assistant") and m.content]
    for m in turns[-2 * SHOWN_ON_RESUME:]:
        who = "you" if m.role == "user" else "agent"
        console.print(f"[dim]{who}: {escape(m.content or '')}[/dim]")


async def _read_line() -> str | None:
    import asyncio

    prompt_text = "you> " if sys.stdin.isatty() else ""
    line = await asyncio.get_running_loop().run_in_executor(None, _input, prompt_text)
    return line


def _input(prompt_text: str) -> str | None:
    try:
        return input(prompt_text)
    except EOFError:
        return None


async def _turn(agent: AgentHandle, text: str) -> None:
    from lmthing.client.messaging import MessageRefused, ReceiverFull
    from lmthing.messaging.types import AgentReply

    console.print("agent> ", end="")
    try:
        async for piece in agent.ask_streaming(text, sender="lmthing chat"):
            if isinstance(piece, AgentReply):
                console.print()
                return
            if piece.restarted:
                console.print("\n[dim](the model call was retried; its text starts over)[/dim]\nagent> ", end="")
            console.print(escape(str(piece)), end="", soft_wrap=True, highlight=False)
    except (MessageRefused, ReceiverFull) as err:
        console.print(f"\n[red]{escape(str(err))}[/red]")
    except Exception as err:  # noqa: BLE001  (a failed turn ends the agent: say why, keep the REPL honest)
        raise CliError(f"The agent failed: {cause_message(err)}") from None
