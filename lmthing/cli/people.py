"""People in the loop: ``lmthing approvals``, ``approve`` and ``answer``."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from .common import (
    AddressOption,
    CliError,
    NamespaceOption,
    _connect_for,
    _execute,
    _json,
    _shorten,
    app,
    cause_message,
    console,
    parse_input,
)

if TYPE_CHECKING:
    from lmthing.client import PromptHandle


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
                f"[cyan]{escape(item.workflow_id)}[/cyan] [bold]{r.id}[/bold] {r.kind} (step {r.step}): "
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
        args = parse_input(modify, "--modify") if modify is not None else None
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
    from temporalio.service import RPCError, RPCStatusCode

    from lmthing.client import get_handle

    client = await _connect_for(address, namespace)
    try:
        console.print(await send(get_handle(client, workflow_id)))
    except WorkflowUpdateFailedError as err:
        raise CliError(f"Refused: {cause_message(err)}") from None
    except RPCError as err:
        if "already completed" in err.message:
            raise CliError(
                f"Run {workflow_id} has finished: nothing in it waits for a person any more (its decisions are in "
                "its result). `lmthing approvals` lists the runs that wait.", code=2,
            ) from None
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"No run {workflow_id!r} on this server; `lmthing approvals` lists the runs that wait.", code=2) from None
        raise CliError(f"Cannot reach workflow {workflow_id}: {err.message}") from None


def _who(by: str | None) -> str:
    return by or os.environ.get("USER") or "cli"
