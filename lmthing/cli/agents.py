"""``lmthing agents list``: the agent registry of an app (``000``'s AgentRuntime.list).

Lists the app's prompts and standalone orchestrations (``def_workflow``, ``def_pipeline``,
``def_parallel``, ``def_orchestration``), and the ``def_agent`` sub-agents each prompt
declares. Sub-agents exist only while a prompt function runs, so each prompt function is
run once here as the engine does to find a sub-agent's definition: a scan
(``StatefulPrompt(scan_only=True)``) that stops where the function would start a sub-agent,
a tool or an orchestration, keeping what it defined before.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .common import AppOption, CliError, _execute, app, console, import_app

if TYPE_CHECKING:
    from lmthing.prompt.agents import AgentDef
    from lmthing.workflows import PromptWorkflow
    from lmthing.workflows.orchestration import OrchestrationWorkflow

# A prompt function that neither returns nor starts anything in this long is not waited for.
SCAN_TIMEOUT_SECONDS = 10.0
NEEDS_INPUT = "sub-agents not listed: the prompt function needs its input"
SCAN_FAILED = "sub-agents not listed: running the prompt function to find them failed: "

agents_app = typer.Typer(
    help="The agent registry: an app's prompts, standalone orchestrations and their sub-agents.",
    no_args_is_help=True,
)
app.add_typer(agents_app, name="agents")


@dataclass
class ListedAgent:
    """One row of ``lmthing agents list`` (and one object of its ``--json`` array)."""

    name: str
    # prompt; workflow / pipeline / parallel / team / ... for a standalone orchestration;
    # agent for a def_agent (``owner``: the prompt that declares it).
    kind: str
    owner: str | None = None
    description: str = ""
    capabilities: list[str] = field(default_factory=list)
    # The argument JSON schema; None: no arguments (or, with ``untyped_input``, any JSON).
    input_schema: dict[str, Any] | None = None
    untyped_input: bool = False
    module: str = ""
    # For a prompt: why its sub-agents are not listed (needs its input, or the scan failed).
    note: str | None = None

    def kind_label(self) -> str:
        return f"agent of {self.owner}" if self.owner else self.kind


@agents_app.command("list")
def agents_list(
    app_target: AppOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array (machine-readable).")] = False,
    capability: Annotated[
        list[str] | None,
        typer.Option("--capability", help="Only agents that declare this capability (repeat it: all of them)."),
    ] = None,
) -> None:
    """List an app's prompts, orchestrations and sub-agents, with their capabilities and arguments.

    Every prompt and standalone orchestration of the module, and the def_agents each prompt
    declares (found by running the prompt function up to where it would start something):
    name, kind, description, capabilities and argument JSON schema."""

    async def go() -> None:
        # What the app prints while it is imported and scanned must not break the JSON.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            module = import_app(app_target)
            listed = await list_agents(module)
        wanted = list(capability or [])
        shown = [a for a in listed if set(wanted) <= set(a.capabilities)]
        if as_json:
            print(json.dumps([asdict(a) for a in shown], ensure_ascii=False, indent=2, default=str))
            return
        _print_listing(module, shown, wanted, len(listed))

    _execute(go)


async def list_agents(module: ModuleType) -> list[ListedAgent]:
    """Every prompt of ``module`` followed by its def_agents, then its standalone orchestrations."""
    from lmthing.workers.factory import collect_all

    try:
        prompts, _, orchestrations = collect_all([module])
    except TypeError as err:  # an orchestration that is not bound at module level
        raise CliError(str(err), code=2) from None
    if not prompts and not orchestrations:
        raise CliError(
            f"No prompts found in {module.__name__} ({getattr(module, '__file__', '?')}): define one at "
            "module level with @prompt (from lmthing import prompt), or an orchestration with def_workflow.",
            code=2,
        )
    listed: list[ListedAgent] = []
    for cls in prompts:
        entry = _prompt_entry(cls)
        agents, entry.note = await scan_agents(cls)
        listed += [entry, *agents]
    listed += [_orchestration_entry(cls) for cls in orchestrations]
    return listed


def _prompt_entry(cls: type[PromptWorkflow]) -> ListedAgent:
    spec = cls.spec
    return ListedAgent(
        name=spec.name,
        kind="prompt",
        description=spec.description or "",
        capabilities=list(spec.capabilities),
        input_schema=spec.args_model.model_json_schema() if spec.args_model is not None else None,
        untyped_input=spec.takes_args and spec.args_model is None,
        module=cls.__module__,
    )


def _orchestration_entry(cls: type[OrchestrationWorkflow]) -> ListedAgent:
    from lmthing.orchestration import registry

    name = cls.orchestration_name
    entry = registry.get(name)
    if entry is not None and entry.kind != "workflow":
        entry = None  # a prompt of the same name took the registry's slot
    kind = cls.node.kind
    return ListedAgent(
        name=name,
        # "agent" and "prompt" name other rows' kinds: an orchestration that is a single call says so.
        kind="orchestration" if kind in ("agent", "prompt") else kind,
        description=entry.description if entry is not None else "",
        capabilities=list(entry.capabilities) if entry is not None else [],
        input_schema=cls.input_model.model_json_schema() if cls.input_model is not None else None,
        untyped_input=cls.input_model is None,
        module=cls.__module__,
    )


async def scan_agents(cls: type[PromptWorkflow]) -> tuple[list[ListedAgent], str | None]:
    """The def_agents the prompt function declares, found by running it once as a scan; and
    why they are not listed, if they are not (its input is required, or the scan failed)."""
    import asyncio

    from pydantic import ValidationError

    from lmthing.orchestration.plugin import orchestration_plugin
    from lmthing.prompt.agents import AgentDef, CompositeAgentDef
    from lmthing.prompt.stateful_prompt import ScanStop, StatefulPrompt

    spec = cls.spec
    if spec.takes_args:
        if spec.args_model is None:
            return [], NEEDS_INPUT
        try:
            args = spec.args_model.model_validate({})
        except ValidationError:
            return [], NEEDS_INPUT
        body: Any = lambda p: spec.fn(p, args)  # noqa: E731
    else:
        body = spec.fn
    finder = StatefulPrompt(plugins=[*spec.plugins, orchestration_plugin], first_run=False, name=spec.name, scan_only=True)

    async def scan() -> None:
        try:
            await finder.run_body(body)
        except ScanStop:
            pass  # it would start something here: what it defined before is what there is

    try:
        await asyncio.wait_for(scan(), SCAN_TIMEOUT_SECONDS)
    except TimeoutError:
        return [], f"{SCAN_FAILED}TimeoutError: the prompt function did not finish in {SCAN_TIMEOUT_SECONDS:g} s"
    except Exception as err:  # the user's function raised: list the prompt anyway
        return [], f"{SCAN_FAILED}{type(err).__name__}: {err}"
    found: list[ListedAgent] = []
    for name in finder.defined_names()[1]:
        adef = finder.defined_agent(name)
        if isinstance(adef, CompositeAgentDef):
            found.append(ListedAgent(
                name=name, kind="agent", description=adef.description or "", input_schema=adef.parameters(),
                module=cls.__module__, owner=spec.name,
            ))
            found += [_agent_entry(f"{name}.{sub.name}", sub, cls, spec.name) for sub in adef.sub_agents]
        elif isinstance(adef, AgentDef) and not adef.hidden:  # hidden: a team's lead, run by the team only
            found.append(_agent_entry(name, adef, cls, spec.name))
    return found, None


def _agent_entry(name: str, adef: AgentDef, cls: type[PromptWorkflow], owner: str) -> ListedAgent:
    from pydantic import BaseModel

    schema = adef.schema
    return ListedAgent(
        name=name,
        kind="agent",
        description=adef.description or "",
        capabilities=list(adef.capabilities or []),
        input_schema=schema.model_json_schema() if isinstance(schema, type) and issubclass(schema, BaseModel) else schema,
        module=cls.__module__,
        owner=owner,
    )


def _schema_text(agent: ListedAgent) -> str:
    if agent.input_schema is not None:
        return json.dumps(agent.input_schema, ensure_ascii=False, separators=(",", ":"), default=str)
    return "(untyped: any JSON)" if agent.untyped_input else "(no arguments)"


def _print_listing(module: ModuleType, shown: list[ListedAgent], wanted: list[str], total: int) -> None:
    where = escape(module.__name__)
    if not shown:
        console.print(f"None of the {total} agent(s) in {where} declares all of the capabilities {escape(', '.join(wanted))}.")
        return
    having = f" with capabilities {escape(', '.join(wanted))}" if wanted else ""
    console.print(f"[bold]{len(shown)} agent(s) in {where}[/bold]{having}")
    parent: str | None = None  # the prompt just shown: its def_agents are indented below it
    for agent in shown:
        if agent.owner is None:
            parent = agent.name if agent.kind == "prompt" else None
        indent = "  " if agent.owner is not None and agent.owner == parent else ""
        caps = f"  [yellow]capabilities: {escape(', '.join(agent.capabilities))}[/yellow]" if agent.capabilities else ""
        console.print()
        console.print(f"{indent}[bold]{escape(agent.name)}[/bold]  [cyan]{escape(agent.kind_label())}[/cyan]{caps}")
        console.print(f"{indent}  {escape(agent.description) if agent.description else '[dim](no description)[/dim]'}")
        console.print(f"{indent}  arguments: {escape(_schema_text(agent))}")
        if agent.note:
            console.print(f"{indent}  [dim]({escape(agent.note)})[/dim]")
