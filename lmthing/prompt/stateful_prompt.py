"""``StatefulPrompt``: the object a prompt function receives, and the step preparation that
turns its definitions into one model request.

It is engine-neutral: it knows nothing of Temporal. The workflow drives it through
:meth:`StatefulPrompt.run_body`, :meth:`prepare_step` and the ``record_*`` methods; the
step loop order is lmthing's (LMTHING_SEMANTICS.md, "The step loop").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from lmthing.resilience.breaker import BreakerConfig, check_breaker_name

from .agents import AgentDef, CompositeAgentDef
from .definitions import Definition, Kind
from .humans import ApprovalPolicy, HumanHost
from .instruments import (
    LocalTelemetry,
    MetricDef,
    PromptLogger,
    TelemetryHost,
)
from .lifecycle import EventHandlers
from .effects import (
    Effect,
    LastTool,
)
from .tools import ActivityTool, CompositeToolDef, ToolDef, activity_tool_def
from .types import Message


# PromptError, ScanStop, PreparedStep and PersistedStateNeeded are imported from here by the
# rest of lmthing (and by users' plugins): they stay importable from this module.
from .prompt_base import (
    PERSIST_SCOPES,
    AgentRunner,
    PersistedStateNeeded,
    PreparedStep,
    PromptError,
    PromptRunner,
    ScanStop,
    ToolRunnerHook,
    _TOOL_NAME,
    _check_definition,
    _check_name,
    _jsonable,
    _not_awaited,
    _short,
    _Variable,
)
from .prompt_events import EventsAndMetrics
from .prompt_people import PeopleAndCalls
from .prompt_steps import StepDriver

class StatefulPrompt(EventsAndMetrics, PeopleAndCalls, StepDriver):
    """The lmthing prompt API (``def_*``) over a durable state store."""

    def __init__(
        self,
        *,
        state: dict[str, Any] | None = None,
        messages: list[Message] | None = None,
        plugins: Iterable[Any] = (),
        base_system: str | None = None,
        response_schema: Any = None,
        first_run: bool = True,
        agent_system: str | None = None,
        response_instruction: str | None = None,
        host: HumanHost | None = None,
        agent_runner: AgentRunner | None = None,
        tool_runner: ToolRunnerHook | None = None,
        telemetry: TelemetryHost | None = None,
        name: str = "prompt",
        step: Callable[[], int] | None = None,
        prompt_runner: PromptRunner | None = None,
        scan_only: bool = False,
        services: dict[str, Any] | None = None,
    ) -> None:
        self._host = host
        # What the engine offers plugins beyond the def_* API (e.g. "messaging": a run's
        # mailbox, topics and boards), by name; see service().
        self._services = dict(services or {})
        self._prompt_runner = prompt_runner
        # True while the function runs only so that its definitions can be found (ScanStop).
        self.scan_only = scan_only
        # What workflow-side code ran during the step (orchestrations): the engine moves
        # these onto the step's record.
        self.notes: list[dict[str, Any]] = []
        self._handoff: tuple[str, Any] | None = None
        self._name = name
        self._current_step = step or (lambda: 0)
        self._telemetry: TelemetryHost = telemetry or LocalTelemetry()
        self._event_handlers = EventHandlers()
        self._metrics: dict[str, MetricDef] = {}
        self._logger: PromptLogger | None = None
        self._agent_runner = agent_runner
        self._tool_runner = tool_runner
        self._approval_policies: dict[str, ApprovalPolicy] = {}
        self._breakers: dict[str, BreakerConfig] = {}
        self._state: dict[str, Any] = dict(state or {})
        # def_state(..., persist=True): key -> (scope, ttl); keys the engine has yet to load.
        self._persisted: dict[str, tuple[str, float | None]] = {}
        self._pending_loads: set[str] = set()
        # def_plugin: plugins this run of the function installed (name -> (version, plugin)).
        self._run_plugins: dict[str, tuple[str, Any]] = {}
        self._messages: list[Message] = list(messages or [])
        self._plugins = list(plugins)
        self._base_system = base_system
        # A sub-agent's own system= option: lmthing put it in an <agentSystem> part (or, with a
        # response schema, in the <responseFormat> part before the instruction).
        self._agent_system = agent_system
        self._response_schema = response_schema
        self._response_instruction = response_instruction
        self._first_run = first_run
        self._systems: dict[str, str] = {}
        self._variables: dict[str, _Variable] = {}
        self._tools: dict[str, ToolDef | CompositeToolDef] = {}
        self._agents: dict[str, AgentDef | CompositeAgentDef] = {}
        # Tools and agents in definition order, as lmthing kept them in one object (a name
        # redefined keeps its place; one dropped by reconciliation and defined again goes last).
        self._order: dict[str, None] = {}
        self._seen: set[tuple[Kind, str]] = set()
        self._state_declared: dict[str, Any] = {}  # key -> initial value, this run of the function
        self._in_body = False
        self._effects: list[Effect] = []
        self._effect_memory: list[Any] = []
        self._reminded: list[tuple[Kind, str]] = []
        self._disabled: set[tuple[Kind, str]] = set()
        self._last_tool: LastTool | None = None
        self._defs_by_key: dict[tuple[Kind, str], Definition] = {}

    # ----------------------------------------------------------------- variables & system
    def def_var(self, name: str, value: Any) -> Definition:
        """lmthing ``def``: a variable rendered in the ``<variables>`` block."""
        _check_name("def_var", name)
        _not_awaited(f"def_var({name!r})", value)
        self._variables[name] = _Variable(str(value), is_data=False)
        return self._mark(Kind.VARIABLE, name)

    def def_data(self, name: str, data: Any) -> Definition:
        """lmthing ``defData``: a data variable rendered as YAML."""
        _check_name("def_data", name)
        _not_awaited(f"def_data({name!r})", data)
        try:
            to_jsonable_python(data)
        except PydanticSerializationError:
            raise PromptError(
                f"def_data({name!r}): the value {_short(data)} cannot be shown to the model: data is rendered as YAML "
                "from JSON-compatible values (dicts, lists, str, numbers, bools, None, pydantic models); convert it first"
            ) from None
        self._variables[name] = _Variable(data, is_data=True)
        return self._mark(Kind.DATA, name)

    def def_system(self, name: str, value: str) -> Definition:
        """lmthing ``defSystem``: a named system part, ``<name>\\nvalue\\n</name>``."""
        _check_name("def_system", name)
        _not_awaited(f"def_system({name!r})", value)
        if not isinstance(value, str):
            raise PromptError(
                f"def_system({name!r}): a system part is text, got {type(value).__name__} {_short(value)}; format it "
                "first, or use def_data for structured values (shown as YAML)"
            )
        self._systems[name] = value
        return self._mark(Kind.SYSTEM, name)

    # ------------------------------------------------------------------------- messages
    def def_message(self, role: str, content: str) -> None:
        """Add a user or assistant message; only on the first run (re-runs add nothing)."""
        if role not in ("user", "assistant"):
            raise PromptError(f"def_message: role must be 'user' or 'assistant', got {role!r}; use def_system for system text")
        _not_awaited(f"def_message({role!r})", content)
        if not isinstance(content, str):
            raise PromptError(
                f"def_message({role!r}) / user(): a message is text, got {type(content).__name__} {content!r}; "
                "format it first, e.g. p.user(f\"...{value}...\")"
            )
        if self._first_run:
            self._messages.append(Message(role=role, content=str(content)))  # type: ignore[arg-type]

    def user(self, text: str) -> None:
        """lmthing's ``$`` template: add a user message (first run only)."""
        self.def_message("user", text)

    # ---------------------------------------------------------------------------- state
    def def_state(
        self, key: str, initial: Any, *, persist: bool = False, scope: str = "agent", ttl: Any = None,
    ) -> tuple[Any, Callable[[Any], None]]:
        """``(value, setter)``; ``initial`` applies only when ``key`` is new.

        ``persist=True`` keeps the value in the worker's memory store (docs/memory.md), so
        separate runs share it: loaded when a run first declares it (the prompt function stops
        there and runs again with the loaded value, before the first model call) and saved
        after each step in which it changed. ``scope``: ``"agent"`` (every run of this prompt), ``"session"``,
        ``"run"`` or ``"global"``; ``ttl``: seconds the saved value lives."""
        _check_name("def_state", key)
        self._declared_once(key, initial)
        if persist:
            self._persist_option(key, scope, ttl)
        if key not in self._state:
            _jsonable(key, initial)
            self._state[key] = initial
            if persist and self._in_body and not self.scan_only and "memory" in self._services:
                # Stop this run of the function here: the engine loads the saved value and runs
                # it again, so nothing below this line ever sees the initial value instead.
                self._pending_loads.add(key)
                raise PersistedStateNeeded(key)

        def setter(value: Any) -> None:
            new = value(self._state.get(key)) if callable(value) else value
            _jsonable(key, new)
            self._state[key] = new

        return self._state[key], setter

    def _persist_option(self, key: str, scope: Any, ttl: Any) -> None:
        api = f"def_state({key!r}, persist=True)"
        if scope not in PERSIST_SCOPES:
            raise PromptError(f"{api}: scope is one of {', '.join(PERSIST_SCOPES)}; got {scope!r}")
        seconds = ttl.total_seconds() if hasattr(ttl, "total_seconds") else ttl
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
            raise PromptError(f"{api}: ttl is a number of seconds (or a timedelta) above 0; got {ttl!r}")
        self._persisted[key] = (scope, None if seconds is None else float(seconds))

    def persisted_state(self) -> dict[str, tuple[str, float | None]]:
        """The keys declared with ``persist=True``: their scope and ttl (for the engine)."""
        return dict(self._persisted)

    def take_pending_loads(self) -> list[str]:
        """Persisted keys first declared since the last call: the engine loads them."""
        keys, self._pending_loads = sorted(self._pending_loads), set()
        return keys

    def load_state(self, key: str, value: Any) -> None:
        """The engine sets a persisted key to the value the store held."""
        self._state[key] = value

    def _declared_once(self, key: str, initial: Any) -> None:
        """Two ``def_state`` calls with one key share one value, so two parts of a prompt that
        picked the same key by accident would overwrite each other's state without a word.
        Within one run of the prompt function a key may be declared again (a helper called
        twice) only with the same initial value; a different one is the accident."""
        if not self._in_body:
            return  # a tool or handler reading state mid-step is not a declaration
        try:
            seen = to_jsonable_python(initial)
        except PydanticSerializationError:
            return  # _jsonable names this one
        if key not in self._state_declared:
            self._state_declared[key] = seen
        elif self._state_declared[key] != seen:
            raise PromptError(
                f"def_state({key!r}) is declared twice in one run of the prompt function, with different "
                f"initial values ({_short(self._state_declared[key])}, then {_short(seen)}): both would share one "
                f"value. Give the second a key of its own, or declare it once and pass (value, setter) around."
            )

    def get_state(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    # -------------------------------------------------------------------------- effects
    def def_effect(self, callback: Callable[..., Any], deps: list[Any] | None = None) -> None:
        """Run ``callback(ctx, step_modifier)`` before a model call when ``deps`` change."""
        if not callable(callback):
            raise PromptError("def_effect: the callback must be callable(ctx, step_modifier)")
        if deps is not None and not isinstance(deps, (list, tuple)):
            raise PromptError(
                f"def_effect: deps is a list of the values the effect depends on (deps=[count]), got "
                f"{type(deps).__name__} {_short(deps)}; leave it out to run the effect before every step"
            )
        self._effects.append(Effect(callback, None if deps is None else list(deps)))

    # ---------------------------------------------------------------------------- tools
    def def_tool(self, name: Any, description: str | None = None, schema: Any = None, fn: Any = None, **options: Any) -> Definition:
        """Define a tool: ``(name, description, schema, fn, **options)``, a composite
        ``(name, description, [tool(...), ...])``, or an ``@tool`` function."""
        if isinstance(name, ActivityTool):
            tdef: ToolDef | CompositeToolDef = activity_tool_def(name, **options)
        elif isinstance(schema, list):
            if fn is not None or options:
                raise PromptError(f"def_tool({name!r}): a composite tool takes (name, description, [tool(...), ...]) only")
            subs = [s if isinstance(s, ToolDef) else None for s in schema]
            if any(s is None for s in subs):
                raise PromptError(f"def_tool({name!r}): composite items must come from tool(name, description, schema, fn)")
            tdef = CompositeToolDef(name, description or "", subs)  # type: ignore[arg-type]
        else:
            if fn is None or not callable(fn):
                raise PromptError(f"def_tool({name!r}): give a function to run: def_tool(name, description, schema, fn)")
            _check_definition(f"def_tool({name!r})", description, schema)
            tdef = ToolDef(name, description or "", schema, fn, **options)
        self._check_tool_name(tdef.name, "def_tool")
        for t in tdef.sub_tools if isinstance(tdef, CompositeToolDef) else [tdef]:
            self._check_breaker_attachment(t)
        self._tools[tdef.name] = tdef
        self._agents.pop(tdef.name, None)
        self._order.setdefault(tdef.name, None)
        return self._mark(Kind.TOOL, tdef.name)

    def def_tools(self, tools: Any, **options: Any) -> list[Definition]:
        """``def_tool`` for each ``@tool`` function of ``tools`` (a list, or a registry's
        ``all()`` / ``category(...)`` / ``search(...)``), each with the same ``options``."""
        if isinstance(tools, ActivityTool) or not hasattr(tools, "__iter__"):
            raise PromptError(f"def_tools: give a list of @tool functions, got {tools!r} (one tool: def_tool)")
        return [self.def_tool(t, **options) for t in tools]

    def def_agent(self, name: str, description: str, schema: Any, fn: Any = None, **options: Any) -> Definition:
        """Define a sub-agent ``fn(args, child_prompt)`` (or a composite of ``agent(...)``)."""
        self._check_tool_name(name, "def_agent")
        adef: AgentDef | CompositeAgentDef
        if isinstance(schema, list):
            if not all(isinstance(a, AgentDef) for a in schema):
                raise PromptError(f"def_agent({name!r}): composite items must come from agent(name, description, schema, fn)")
            adef = CompositeAgentDef(name, description, list(schema), hidden=bool(options.get("hidden", False)))
        else:
            if fn is None or not callable(fn):
                raise PromptError(f"def_agent({name!r}): give a function fn(args, child_prompt)")
            _check_definition(f"def_agent({name!r})", description, schema)
            adef = AgentDef(name, description, schema, fn, **options)
        self._agents[name] = adef
        self._tools.pop(name, None)
        self._order.setdefault(name, None)
        return self._mark(Kind.AGENT, name)

    def defined_agent(self, name: str) -> AgentDef | CompositeAgentDef | None:
        """The agent the last run of the prompt function defined under ``name``."""
        return self._agents.get(name)

    def defined_tool(self, name: str) -> ToolDef | CompositeToolDef | None:
        """The tool the prompt function defined under ``name`` (so far in this run)."""
        return self._tools.get(name)

    def defined_in_this_run(self, name: str) -> bool:
        """True if this run of the prompt function has defined a tool or agent ``name`` so
        far (a plugin that defines many tools checks its names for clashes with it)."""
        return (Kind.TOOL, name) in self._seen or (Kind.AGENT, name) in self._seen

    def defined_callables(self) -> tuple[dict[str, ToolDef | CompositeToolDef], dict[str, AgentDef | CompositeAgentDef]]:
        """The tools and the agents the last run of the function defined, by name."""
        return dict(self._tools), dict(self._agents)

    def approval_names(self) -> set[str]:
        """Names of the approval policies the last run of the function defined."""
        return set(self._approval_policies)

    def defined_names(self) -> tuple[list[str], list[str]]:
        """Names of the tools and of the agents defined so far, for error messages."""
        return list(self._tools), list(self._agents)

    @property
    def current_step(self) -> int:
        """The run's model step (0-based) that is being prepared or whose tools are running."""
        return self._current_step()
    # ------------------------------------------------------------------- resilience
    def def_circuit_breaker(
        self, name: str, failure_threshold: int = 5, reset_timeout: Any = 60.0, half_open_requests: int = 1
    ) -> BreakerConfig:
        """A circuit breaker shared by every run and worker (docs/circuit-breakers.md);
        ``@tool`` tools opt in with ``def_tool(t, circuit_breaker="<name>")``. After
        ``failure_threshold`` consecutive failed attempts it opens: calls fail fast (error
        type ``CircuitOpen``) until ``reset_timeout`` (seconds or timedelta) has passed; then
        ``half_open_requests`` probe calls go through, and it closes when they all succeed."""
        try:
            check_breaker_name(name)
            config = BreakerConfig.of(name, failure_threshold, reset_timeout, half_open_requests)
        except ValueError as err:
            raise PromptError(str(err)) from None
        self._breakers[name] = config
        return config

    def circuit_breaker(self, name: str) -> BreakerConfig:
        config = self._breakers.get(name)
        if config is None:
            known = ", ".join(self._breakers) or "(none)"
            raise PromptError(
                f"circuit breaker {name!r} is not defined; declare it with p.def_circuit_breaker({name!r}, ...) in the "
                f"prompt function (defined: {known})"
            )
        return config

    def _check_breaker_attachment(self, tdef: ToolDef) -> None:
        name = tdef.circuit_breaker
        if name is None:
            return
        if not isinstance(name, str):
            raise PromptError(f"def_tool({tdef.name!r}): circuit_breaker is the name of a def_circuit_breaker, got {name!r}")
        if not tdef.runs_as_activity:
            raise PromptError(
                f"def_tool({tdef.name!r}): circuit_breaker={name!r} needs an @tool function (an activity): a tool that "
                "runs inside the workflow has no dependency to protect and cannot fail over I/O; make it a module-level "
                "@tool function, or drop circuit_breaker="
            )
        # An unknown name is refused by prepare_step, before the first model call: the
        # breaker may be defined later in the prompt function.

    def _check_tool_name(self, name: str, api: str) -> None:
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise PromptError(f"{api}: tool name {name!r} is invalid; use 1-64 letters, digits, '_' or '-'")

    @property
    def in_body(self) -> bool:
        """True while the prompt function itself runs (not a tool or handler mid-step)."""
        return self._in_body

    def service(self, name: str) -> Any:
        """The engine's service ``name`` for plugins (None outside a run that offers it)."""
        if self.scan_only:
            return None
        return self._services.get(name)

    def record_note(self, note: dict[str, Any]) -> None:
        """Keep ``note`` on the current step's record (``handle.steps()``)."""
        self.notes.append(note)

    def take_notes(self) -> list[dict[str, Any]]:
        notes, self.notes = self.notes, []
        return notes

    def _check_running(self, api: str, hook: Any) -> None:
        if self.scan_only:
            raise ScanStop(api)
        if hook is None:
            raise PromptError(f"{api} needs a running workflow: call it from a prompt run, not outside one")

    def _require_host(self, api: str) -> HumanHost:
        self._check_running(api, self._host)
        return self._host  # type: ignore[return-value]

    # ------------------------------------------------------------------ remind / disable
    def get_reminded_items(self) -> list[dict[str, str]]:
        return [{"type": kind.value, "name": name} for kind, name in self._reminded]

    def _remind(self, kind: Kind, name: str) -> None:
        # Every call counts, as in lmthing (reminding twice lists the item twice).
        self._reminded.append((kind, name))

    def _disable(self, kind: Kind, name: str) -> None:
        self._disabled.add((kind, name))

    def _mark(self, kind: Kind, name: str) -> Definition:
        key = (kind, name)
        self._seen.add(key)
        if key not in self._defs_by_key:
            self._defs_by_key[key] = Definition(self, kind, name)
        return self._defs_by_key[key]

    def _definition_content(self, kind: Kind, name: str) -> Any:
        if kind in (Kind.VARIABLE, Kind.DATA):
            var = self._variables.get(name)
            return None if var is None else var.value
        if kind is Kind.SYSTEM:
            return self._systems.get(name)
        return name

    # -------------------------------------------------------------------------- plugins
    def def_plugin(self, name: str, plugin: Any, version: str = "0.0.0") -> None:
        """Install ``plugin`` (a dict of ``def_*`` functions, or an object with them) for
        this run of the prompt function: its methods are the prompt's until a run of the
        function no longer declares it (like every definition), or ``uninstall_plugin``."""
        _check_name("def_plugin", name)
        if not isinstance(version, str) or not version:
            raise PromptError(f"def_plugin({name!r}): version is text like '1.2.0'; got {version!r}")
        functions = plugin.items() if isinstance(plugin, dict) else (
            (n, getattr(plugin, n)) for n in dir(plugin) if not n.startswith("_"))
        if not any(callable(fn) for _, fn in functions):
            raise PromptError(f"def_plugin({name!r}): a plugin is a dict of functions (name -> fn(p, ...)) or an object "
                              f"with such methods; got {plugin!r}")
        self._run_plugins[name] = (version, plugin)

    def uninstall_plugin(self, name: str) -> bool:
        """Remove plugin ``name`` for the rest of this run of the function; whether it was installed."""
        return self._run_plugins.pop(name, None) is not None

    def installed_plugins(self) -> list[dict[str, str]]:
        """The plugins ``def_plugin`` installed in this run of the function: name and version."""
        return [{"name": n, "version": v} for n, (v, _) in self._run_plugins.items()]

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        installed = [plugin for _, plugin in self.__dict__.get("_run_plugins", {}).values()]
        for plugin in (*installed, *self.__dict__.get("_plugins", ())):
            fn = plugin.get(attr) if isinstance(plugin, dict) else getattr(plugin, attr, None)
            if callable(fn):
                return lambda *a, **kw: fn(self, *a, **kw)
        if attr in ("def_resource", "def_resource_pool"):
            raise AttributeError(
                f"p.{attr}: resources live on the worker, not in the prompt function (which runs in the workflow): "
                f"declare it at module level, `db = lmthing.{attr}(...)`, beside the @tool functions that use it "
                "(docs/resources.md)"
            )
        raise AttributeError(
            f"StatefulPrompt has no attribute {attr!r}"
            + (" (is the plugin that provides it in plugins=[...]?)" if attr.startswith("def_") else "")
        )



__all__ = ["PersistedStateNeeded", "PreparedStep", "PromptError", "ScanStop", "StatefulPrompt"]
