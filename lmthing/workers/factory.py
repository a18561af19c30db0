"""The one place that builds a worker: prompts, tools, built-in activities, sandbox and
data converter, all set the same way for the CLI, the tests and user code."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import timedelta
from types import ModuleType
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from lmthing.activities import budget, messaging
from lmthing.activities.caches import ToolCaches
from lmthing.activities.mcp import McpActivities
from lmthing.activities.memory import MemoryActivities
from lmthing.activities.model import ModelActivities
from lmthing.activities.moderation import ModerationActivities
from lmthing.activities.providers.base import ProviderRegistry, default_registry
from lmthing.activities.tools import tool_activity, unregistered_activity
from lmthing.prompt.resources import AnyResourceDef, ResourceDef, ResourcePoolDef
from lmthing.prompt.tools import ActivityTool
from lmthing.workflows.board_workflow import BoardWorkflow
from lmthing.workflows.breaker_workflow import CircuitBreakerWorkflow
from lmthing.workflows.definition import check_importable, is_prompt
from lmthing.workflows.orchestration import OrchestrationWorkflow, bind_to_module, check_agents_known, is_orchestration
from lmthing.workflows.prompt_workflow import PromptWorkflow
from lmthing.workflows.routing import set_routes
from lmthing.workflows.topic_workflow import TopicWorkflow
from lmthing.workflows.unknown import UnknownWorkflow, set_known_types

from .resources import ResourceRegistry, ResourcesPlugin
from .roles import Role, WorkerRoleError, plan_pool

# Modules the workflow sandbox shares with the worker instead of re-importing them for every
# workflow run: lmthing itself (pure and deterministic in its workflow-side layers) and its
# pure dependencies. Re-importing them per run costs an order of magnitude in throughput.
PASSTHROUGH_MODULES = (
    "lmthing", "pydantic", "pydantic_core", "annotated_types", "yaml", "typing_inspection", "opentelemetry",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES))


def collect(apps: Iterable[ModuleType | str]) -> tuple[list[type[PromptWorkflow]], list[ActivityTool]]:
    """Prompts and ``@tool`` functions found at the top level of the given modules."""
    prompts, tools, _ = collect_all(apps)
    return prompts, tools


def collect_all(
    apps: Iterable[ModuleType | str],
) -> tuple[list[type[PromptWorkflow]], list[ActivityTool], list[type[OrchestrationWorkflow]]]:
    """Prompts, ``@tool`` functions and standalone orchestrations (``def_workflow``...) at the
    top level of the given modules; an orchestration is named after the attribute it is bound to."""
    prompts: list[type[PromptWorkflow]] = []
    tools: list[ActivityTool] = []
    orchestrations: list[type[OrchestrationWorkflow]] = []
    for app in apps:
        module = importlib.import_module(app) if isinstance(app, str) else app
        for attribute, value in vars(module).items():
            if is_prompt(value) and value not in prompts:
                prompts.append(value)
            elif isinstance(value, ActivityTool) and value not in tools:
                tools.append(value)
            elif is_orchestration(value) and value not in orchestrations:
                bind_to_module(value, value.__module__, attribute)
                orchestrations.append(value)
    return prompts, tools, orchestrations


def collect_resources(apps: Iterable[ModuleType | str]) -> list[AnyResourceDef]:
    """The ``def_resource`` / ``def_resource_pool`` declarations at the top level of the modules."""
    found: list[AnyResourceDef] = []
    for app in apps:
        module = importlib.import_module(app) if isinstance(app, str) else app
        found += [v for v in vars(module).values() if isinstance(v, (ResourceDef, ResourcePoolDef)) and v not in found]
    return found


def create_worker(
    client: Client,
    *,
    app: ModuleType | str | Iterable[ModuleType | str] = (),
    prompts: Iterable[type[PromptWorkflow]] = (),
    tools: Iterable[ActivityTool] = (),
    resources: Iterable[AnyResourceDef] = (),
    task_queue: str | None = None,
    role: Role = "all",
    model_task_queue: str | None = None,
    tool_task_queue: str | None = None,
    providers: ProviderRegistry | None = None,
    graceful_shutdown_timeout: timedelta = timedelta(seconds=30),
    unknown_workflows: str = "fail",
    memory_store: str | None = None,
    embedding_batch_size: int = 64,
    embedding_batch_wait: float = 0.01,
    **worker_options: Any,
) -> Worker:
    """A worker that runs the given prompts (as workflows) and tools (as activities).

    ``app`` modules are scanned for ``@prompt`` and ``@tool`` objects, so a worker started
    with ``lmthing worker --app myagents`` knows every prompt and tool defined there.

    ``role`` picks what it runs (:mod:`lmthing.workers.roles`): ``all`` (everything on
    ``task_queue``), ``workflows`` (the prompts, sending model calls to ``model_task_queue``
    and tool activities to ``tool_task_queue``, default ``<task_queue>-models`` / ``-tools``),
    ``models`` (model calls) or ``tools`` (``@tool`` activities). ``workflows=[...]`` adds
    workflow classes of your own (plain temporalio) to a worker that runs workflows; standalone
    orchestrations (``def_workflow``...) in ``app`` are found like prompts.
    ``unknown_workflows``: ``"fail"`` ends a run of a workflow type this worker lacks at once,
    naming the types it has (a misspelt ``--type``); ``"retry"`` keeps Temporal's default (the
    workflow task fails and is retried, maybe by another worker): for pools whose workers may
    differ, e.g. during a rolling deploy that adds a prompt. ``task_queue`` defaults to
    ``lmthing``, ``lmthing-models`` for ``models`` and ``lmthing-tools`` for ``tools``.
    ``memory_store``: the URL of the store that memory activities read and write
    (docs/memory.md; default ``LMTHING_MEMORY_URL`` or ``sqlite:///.lmthing/memory.db``);
    concurrent embedding requests coalesce into batches of ``embedding_batch_size`` texts,
    each waiting at most ``embedding_batch_wait`` seconds for company.
    ``resources``: ``def_resource`` / ``def_resource_pool`` declarations (those at the top of
    ``app`` modules are found too) that this worker's ``@tool`` activities get through
    ``ctx.resource(name)`` / ``ctx.acquire(name)``: made on first use, closed when the worker's
    ``run()`` ends (docs/resources.md).
    Raises :class:`~lmthing.workers.roles.WorkerRoleError` (a ValueError) for options that
    do not fit the role.
    """
    # Other workflow classes of the user's (plain temporalio ones) run on the same worker.
    extra_workflows = list(worker_options.pop("workflows", ()))
    plan = plan_pool(role, task_queue, model_task_queue, tool_task_queue, worker_options)
    apps = [app] if isinstance(app, (ModuleType, str)) else list(app)
    found_prompts, found_tools, orchestrations = collect_all(apps)
    all_prompts = _unique(found_prompts + list(prompts))
    all_tools = _unique(found_tools + list(tools))
    if plan.workflows and not all_prompts:
        raise ValueError("create_worker: no prompts given; pass prompts=[...] or app=<module with @prompt functions>")
    for p in all_prompts if plan.workflows else ():
        check_importable(p)
    for o in orchestrations if plan.workflows else ():
        check_agents_known(o, lambda: [p.spec.name for p in all_prompts])
    names: dict[str, ActivityTool] = {}
    for t in all_tools:
        if t.name in names and names[t.name].fn is not t.fn:
            raise ValueError(f"create_worker: two different @tool functions are named {t.name!r}")
        names[t.name] = t
    if plan.role == "tools" and not names:
        raise ValueError(
            "create_worker: role 'tools' but no @tool functions given; pass tools=[...] or app=<module with @tool "
            "functions> (tools defined inside a prompt run in the workflow and need no tools pool)"
        )
    resources = list(resources)
    if resources and not plan.tools:
        raise WorkerRoleError(
            f"create_worker: resources=[...] reach @tool activities, and a worker of role {plan.role!r} runs none: give "
            "them to the worker of role 'tools' (or 'all')"
        )
    registry = providers or default_registry()
    # One store per worker, for memory activities and cached tool and model calls.
    memory = MemoryActivities(registry, memory_store, embed_batch_size=embedding_batch_size,
                              embed_batch_wait=embedding_batch_wait)
    caches = ToolCaches(memory.store)
    activities: list[Any] = ([ModelActivities(registry, caches).model_call, ModerationActivities(registry).moderate]
                             if plan.model_calls else [])
    if plan.tools:
        # One registry per worker: its resources are made on first use and closed with it.
        held = ResourceRegistry([*collect_resources(apps), *resources])
        if held:
            worker_options["plugins"] = [*worker_options.get("plugins", ()), ResourcesPlugin(held)]
        # The worker's MCP sessions (docs/mcp.md): opened on first use, closed with the worker.
        mcp = McpActivities()
        worker_options["plugins"] = [*worker_options.get("plugins", ()), ResourcesPlugin(mcp, "lmthing.mcp")]
        activities += [*(tool_activity(t, held, caches) for t in names.values()), unregistered_activity,
                       *messaging.ACTIVITIES, budget.budget_call, *memory.activities, *mcp.activities]
    if plan.tools or plan.model_calls:  # the store is opened on first use, closed with the worker
        worker_options["plugins"] = [*worker_options.get("plugins", ()), ResourcesPlugin(memory, "lmthing.memory")]
    if unknown_workflows not in ("fail", "retry"):
        raise ValueError(f"create_worker: unknown_workflows is 'fail' or 'retry', not {unknown_workflows!r}")
    # Every workflows worker also runs the messaging entities (docs/messaging.md) and the
    # circuit breakers (docs/circuit-breakers.md).
    workflows = [*all_prompts, *orchestrations, TopicWorkflow, BoardWorkflow, CircuitBreakerWorkflow,
                 *extra_workflows] if plan.workflows else []
    if plan.workflows:
        set_routes(plan.task_queue, plan.routes)
        set_known_types(plan.task_queue, [n for n in (_type_name(w) for w in workflows) if n])
        if unknown_workflows == "fail":
            workflows.append(UnknownWorkflow)
    # Cancelling a run reaches a running model call only with a heartbeat reply, and the SDK
    # holds heartbeats back for up to 80% of the heartbeat timeout: cap that, so a cancelled
    # run closes its HTTP request within about a second.
    worker_options.setdefault("max_heartbeat_throttle_interval", timedelta(seconds=1))
    worker_options["plugins"] = [*worker_options.get("plugins", ()), *_tracing_plugins(client)]
    return Worker(
        client,
        task_queue=plan.task_queue,
        workflows=workflows,
        activities=activities,
        workflow_runner=sandbox_runner(),
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        **worker_options,
    )


def _type_name(cls: type) -> str | None:
    """The workflow type name of a workflow class (None for a dynamic one)."""
    from temporalio.workflow import _Definition

    defn = _Definition.from_class(cls)
    return defn.name if defn is not None else None


def _tracing_plugins(client: Client) -> list[Any]:
    """Temporal's OpenTelemetry plugin when tracing is on (:mod:`lmthing.observability.tracing`)
    and the client does not carry it already: it puts trace context in the headers of
    activities and child workflows, so one run is one trace."""
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin

    from lmthing.observability.tracing import tracing_enabled, tracing_plugin

    if not tracing_enabled() or any(isinstance(p, OpenTelemetryPlugin) for p in client.config().get("plugins", ())):
        return []
    return [tracing_plugin()]


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
