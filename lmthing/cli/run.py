"""``lmthing run``: run one prompt to completion, printing each step as it happens."""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from .common import (
    DEFAULT_TASK_QUEUE,
    CliError,
    NamespaceOption,
    _execute,
    _execute_sync,
    _json,
    _shorten,
    app,
    build_worker,
    cause_message,
    check_not_empty,
    connect_to,
    console,
    flush_traces,
    guess_ui_url,
    import_app,
    parse_input,
    pick_prompt,
    server_address,
    start_server,
    start_tracing_from_env,
)

if TYPE_CHECKING:
    from temporalio.client import Client

    from lmthing.client import PromptHandle
    from lmthing.prompt.humans import PendingRequest
    from lmthing.prompt.types import RunResult, StreamEvent
    from lmthing.workflows import PromptWorkflow


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="A .py file or a dotted module name that defines the prompt.")],
    prompt: Annotated[str | None, typer.Option("--prompt", help="Which prompt, when the module defines several.")] = None,
    model: Annotated[
        str | None, typer.Option(help="provider:model (default: $LMTHING_MODEL, else the prompt's own model)")
    ] = None,
    input: Annotated[str | None, typer.Option("--input", help="The prompt's arguments, as JSON.")] = None,  # noqa: A002
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many model steps.")] = None,
    session: Annotated[
        str | None, typer.Option(help="The session the run belongs to: its memories of scope 'session' are shared "
                                 "with the other runs of that session (docs/memory.md).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Temporal frontend host:port (default: $TEMPORAL_ADDRESS, else an embedded in-memory server)"),
    ] = None,
    namespace: NamespaceOption = None,
    task_queue: Annotated[
        str | None,
        typer.Option(help="Task queue of this command's worker and run (default: lmthing-run-<prompt> with --address, "
                     "so a worker of another app on the server's default queue never takes the run; lmthing on the "
                     "embedded server)."),
    ] = None,
) -> None:
    """Run one prompt to completion, printing each step as it happens."""
    args = _execute_sync(lambda: parse_input(input))
    _execute_sync(lambda: check_not_empty({"--model": model, "--task-queue": task_queue, "--session": session}))
    # Tool and model errors show in the step output; no activity tracebacks in between.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)

    async def go() -> None:
        module = import_app(target)
        chosen = pick_prompt(module, prompt)
        _check_input(chosen, args, input is not None)
        chosen_model = model or os.environ.get("LMTHING_MODEL") or None
        where = server_address(address)
        start_tracing_from_env()
        try:
            if where:
                client = await connect_to(where, namespace)
                queue = task_queue or f"lmthing-run-{chosen.spec.name}"
                await run_with_worker(client, module, chosen, args, chosen_model, max_steps, queue, where, session)
                return
            env = await start_server()
            try:
                queue = task_queue or DEFAULT_TASK_QUEUE
                await run_with_worker(env.client, module, chosen, args, chosen_model, max_steps, queue, None, session)
            finally:
                await env.shutdown()
        finally:
            flush_traces()

    _execute(go)


def _check_input(chosen: type[PromptWorkflow], args: Any, given: bool) -> None:
    """--input must fit the prompt: none for a prompt without arguments, and no field its
    arguments do not have (pydantic would drop it without a word)."""
    spec = chosen.spec
    if given and not spec.takes_args:
        raise CliError(f"Prompt '{spec.name}' takes no arguments; leave --input out", code=2)
    model = spec.args_model
    if model is not None and isinstance(args, dict):
        unknown = sorted(set(args) - set(model.model_fields))
        if unknown and model.model_config.get("extra") != "allow":
            fields = ", ".join(model.model_fields) or "none"
            raise CliError(
                f"--input has field(s) {', '.join(unknown)} that prompt '{spec.name}' does not take (its fields: {fields})",
                code=2,
            )
    if model is not None and given:
        # The worker would refuse it too, but only after a run was started (and failed).
        from pydantic import ValidationError

        from lmthing.prompt.tools import format_validation_error

        try:
            model.model_validate(args)
        except ValidationError as err:
            raise CliError(f"--input does not fit prompt '{spec.name}': {format_validation_error(err)}", code=2) from None


async def run_with_worker(
    client: Client,
    module: ModuleType,
    chosen: type[PromptWorkflow],
    args: Any,
    model: str | None,
    max_steps: int | None,
    task_queue: str,
    address: str | None,
    session: str | None = None,
) -> None:
    import asyncio

    from temporalio.client import WorkflowFailureError

    from lmthing.client import start_prompt

    w = build_worker(client, module, task_queue, 5.0)
    async with w:
        handle = await start_prompt(client, chosen, args, model=model, max_steps=max_steps, task_queue=task_queue,
                                    session=session)
        console.print(f"[bold]Running[/bold] {chosen.spec.name} as workflow [cyan]{handle.id}[/cyan]"
                      + (f" [dim](task queue {escape(task_queue)})[/dim]" if address is not None else ""))
        # The run may wait on a person; nobody could reach an embedded server without its address.
        people = asyncio.create_task(_watch_people(handle, address or client.service_client.config.target_host, address is None))
        try:
            result = await follow(handle, EventPrinter())
        except WorkflowFailureError as err:
            _print_lookup(handle.id, client.namespace, address)
            raise CliError(f"Run failed: {cause_message(err)}") from None
        finally:
            people.cancel()
            await asyncio.gather(people, return_exceptions=True)
    _print_result(result)
    _print_lookup(handle.id, client.namespace, address)


# ------------------------------------------------------------------------ people in the loop
async def _watch_people(handle: PromptHandle, address: str, embedded: bool) -> None:
    """Say what the run waits for and how to decide it; in a terminal, ask right here."""
    import asyncio

    seen: set[str] = set()
    while True:
        await asyncio.sleep(0.3)
        try:
            pending = await handle.pending()
        except Exception:  # noqa: BLE001 - the run may be between tasks or closing
            continue
        for item in pending:
            if item.id in seen:
                continue
            seen.add(item.id)
            _print_waiting(handle.id, item, address, embedded)
            if sys.stdin.isatty():
                await _decide_here(handle, item)


def _print_waiting(workflow_id: str, item: PendingRequest, address: str, embedded: bool) -> None:
    where = f" --address {address}"
    if item.kind == "approval":
        what = f"approval {item.id}: {item.message}" + (f" ({item.tool} {_shorten(_json(item.args))})" if item.tool else "")
        how = (f"lmthing approve {workflow_id} {item.id}{where}   (or --deny, or --modify '<args JSON>')")
    else:
        what = f"question {item.id}: {item.message}" + (f" (options: {', '.join(item.options)})" if item.options else "")
        how = f"lmthing answer {workflow_id} {item.id} '<your answer>'{where}"
    console.print(f"  [bold yellow]Waiting for a person[/bold yellow] — {escape(what)}")
    console.print(f"  [dim]decide from another shell: {escape(how)}[/dim]")
    if embedded:
        console.print("  [dim](the embedded server lives as long as this command)[/dim]")


async def _decide_here(handle: PromptHandle, item: PendingRequest) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    if item.kind == "approval":
        reply = (await loop.run_in_executor(None, input, "  Approve? [y/N] ")).strip().lower()
        await handle.decide(item.id, "approve" if reply in ("y", "yes") else "deny", by="lmthing run")
    else:
        reply = await loop.run_in_executor(None, input, "  Answer: ")
        await handle.answer(item.id, reply, by="lmthing run")


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
        self._texted: set[int] = set()  # steps whose text came as deltas

    def show(self, event: StreamEvent) -> None:
        if event.type == "step_start":
            self.end_text()
            console.print(f"[bold cyan]Step {event.step}[/bold cyan]")
        elif event.type == "text_delta" and event.text:
            self._text(event)
        elif event.type == "step_finish":
            self.end_text()
            if event.text and event.step not in self._texted:  # held back (an output moderation)
                console.print(f"  {escape(event.text)}", highlight=False)
        elif event.type in ("moderation", "budget") and event.text:
            self.end_text()
            console.print(f"  [magenta]{event.type}: {escape(event.text)}[/magenta]")
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
        self._texted.add(event.step)
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
