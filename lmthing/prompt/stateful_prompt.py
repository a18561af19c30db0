"""``StatefulPrompt``: the object a prompt function receives, and the step preparation that
turns its definitions into one model request.

It is engine-neutral: it knows nothing of Temporal. The workflow drives it through
:meth:`StatefulPrompt.run_body`, :meth:`prepare_step` and the ``record_*`` methods; the
step loop order is lmthing's (LMTHING_SEMANTICS.md, "The step loop").
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from lmthing.resilience.breaker import BreakerConfig, check_breaker_name

from .agents import AGENT_SYSTEM_PART, RESPONSE_FORMAT_PART, AgentDef, CompositeAgentDef, response_schema_instruction
from .definitions import Definition, Kind
from .humans import ApprovalPolicy, DecisionRecord, HumanHost, as_timedelta
from .instruments import (
    InstrumentError,
    LocalTelemetry,
    MetricDef,
    PromptLogger,
    TelemetryHost,
    level_number,
    redact_set,
)
from .lifecycle import LIFECYCLE_NAMES, CustomEvent, EventHandlers, Handler, LifecycleEvent
from .effects import (
    NEVER_RAN,
    Effect,
    LastTool,
    NameCollection,
    PromptContext,
    StepModifications,
    deps_changed,
    unwrap_dep,
)
from .render import (
    render_data_variable,
    render_reminder,
    render_system_prompt,
    render_variable,
)
from .tools import ActivityTool, CompositeToolDef, ToolDef, activity_tool_def, check_schema
from .types import Message, ToolCall, ToolDefinition, ToolResult

Body = Callable[["StatefulPrompt"], Any | Awaitable[Any]]
# Runs a sub-agent as a child workflow: (agent, validated args, key, composite name) -> outcome.
AgentRunner = Callable[[AgentDef, Any, str, "str | None"], Awaitable[dict[str, Any]]]
# Runs one tool as the engine does for the model: (tool, raw args, call id, step, key) -> (result, is_error).
ToolRunnerHook = Callable[[ToolDef, Any, str, int, str], Awaitable[tuple[Any, bool]]]
# Runs another prompt (a workflow type, by name) as a child workflow: (name, args, key) -> outcome.
PromptRunner = Callable[[str, Any, str], Awaitable[dict[str, Any]]]
Callable_ = ToolDef | CompositeToolDef | AgentDef | CompositeAgentDef

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PromptError(Exception):
    """A prompt function used the API wrongly; the message says how to fix it."""


class ScanStop(BaseException):  # noqa: N818 - a signal, not an error
    """Ends a *scan* of a prompt function: a sub-agent's child workflow re-runs its parent's
    function only to find the agent's definition, and must not start what the parent's run
    starts (sub-agents, tools, orchestrations). Definitions made before the call are kept;
    a BaseException, so that a prompt's ``except Exception`` does not swallow it."""


@dataclass
class PreparedStep:
    """One model call, ready to send, plus what is needed to run the tools it may request."""

    system: str | None
    messages: list[Message]
    tools: list[ToolDefinition]
    callables: dict[str, Callable_]
    state_snapshot: dict[str, Any] = field(default_factory=dict)
    approvals: dict[str, ApprovalPolicy] = field(default_factory=dict)
    # Every tool and agent the prompt defines at this step, in definition order, whether or
    # not it is offered at this call (disabled, filtered): lmthing's "Available tools" list.
    defined: list[str] = field(default_factory=list)
    # The def_circuit_breaker configs, by name (docs/circuit-breakers.md).
    breakers: dict[str, BreakerConfig] = field(default_factory=dict)


@dataclass
class _Variable:
    value: Any
    is_data: bool


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise PromptError(f"{kind}: the name must be a non-empty string, got {name!r}")


def _not_awaited(api: str, value: Any) -> None:
    """A coroutine where a value belongs is an ``await`` left out (``p.ask_human(...)``)."""
    if inspect.iscoroutine(value):
        name = getattr(value, "__qualname__", "a coroutine")
        value.close()  # it will never run: no "never awaited" warning on top of this error
        call = f"p.{name.split('.', 1)[1]}" if name.startswith("StatefulPrompt.") else name
        raise PromptError(f"{api} got the coroutine {call}(...), not its result: add `await` (`await {call}(...)`)")


def _non_json(value: Any) -> str | None:
    """The first value in ``value`` that JSON would silently turn into something else (a set
    or a tuple becomes a list, bytes become text), by its type name."""
    if isinstance(value, (set, frozenset, tuple, bytes, bytearray)):
        return type(value).__name__
    if isinstance(value, dict):
        return next((found for v in value.values() if (found := _non_json(v))), None)
    if isinstance(value, list):
        return next((found for v in value if (found := _non_json(v))), None)
    return None


def _jsonable(key: str, value: Any) -> None:
    _not_awaited(f"def_state({key!r})", value)
    kind = _non_json(value)
    if kind is not None:
        fix = "a list (e.g. sorted(...))" if kind in ("set", "frozenset") else "a list" if kind == "tuple" else "a str"
        raise PromptError(
            f"def_state({key!r}): the value holds a {kind}, which JSON (how state lives in workflow history) would "
            f"store as something else; use {fix} instead"
        )
    try:
        to_jsonable_python(value)
    except PydanticSerializationError as err:
        raise PromptError(
            f"def_state({key!r}): the value {value!r} cannot be stored: state lives in workflow "
            f"history and must be JSON-compatible (dicts, lists, str, numbers, bools, None, "
            f"pydantic models). {err}"
        ) from None


def _check_definition(api: str, description: Any, schema: Any) -> None:
    if description is not None and not isinstance(description, str):
        raise PromptError(f"{api}: the description is text the model reads, got {type(description).__name__} {_short(description)}")
    try:
        check_schema(api, schema)
    except TypeError as err:
        raise PromptError(str(err)) from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PersistedStateNeeded(Exception):
    """Raised by ``def_state(..., persist=True)`` the first time a run declares the key: the
    engine loads the saved value and runs the prompt function again (docs/memory.md)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"def_state({key!r}, persist=True) is loaded before the function goes on; a prompt "
                         "function must let this exception through (do not catch every Exception around def_state)")
        self.key = key


# Where a persisted def_state value is shared (the scopes of docs/memory.md).
PERSIST_SCOPES = ("run", "session", "agent", "global")


class StatefulPrompt:
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

    # ----------------------------------------------------------- events, metrics, logs
    def def_event(self, name: str, handler: Handler) -> None:
        """Run ``handler(event)`` at a lifecycle point (``before_model_call``,
        ``after_model_call``, ``before_tool``, ``after_tool``, ``on_step``, ``on_error``,
        ``on_finish``; lmthing's ``onToolStart``... too) or when ``emit(name)`` fires a custom
        event. Declared on every run of the prompt function, like effects."""
        try:
            self._event_handlers.add(name, handler)
        except (TypeError, ValueError) as err:
            raise PromptError(str(err)) from None

    async def emit(self, name: str, data: Any = None) -> None:
        """Fire a custom event: its handlers run now, in declaration order."""
        if name in LIFECYCLE_NAMES:
            raise PromptError(f"emit({name!r}): lifecycle events are fired by the run itself; emit custom events only")
        await self.fire(CustomEvent(name=name, step=self._current_step(), data=data))

    async def fire(self, event: LifecycleEvent) -> None:
        """Run the handlers of ``event`` (the engine calls this at each lifecycle point)."""
        if self._event_handlers.has(event.name):
            await self._event_handlers.fire(event)

    def has_handlers(self, name: str) -> bool:
        return self._event_handlers.has(name)

    def def_metric(
        self,
        name: str,
        kind: str,
        description: str = "",
        *,
        labels: Iterable[str] = (),
        buckets: Iterable[float] | None = None,
        unit: str = "",
    ) -> MetricDef:
        """Declare a metric (``counter``, ``gauge`` or ``histogram``) that ``record_metric``
        updates. On a worker with ``--metrics-port`` it is served on ``/metrics`` (a counter
        as ``<name>_total``), with the Temporal SDK's ``namespace``, ``task_queue`` and
        ``workflow_type`` labels added."""
        try:
            metric = MetricDef(name, kind, description, tuple(labels), None if buckets is None else tuple(buckets), unit)  # type: ignore[arg-type]
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        known = self._metrics.get(name)
        if known is not None and known != metric:
            raise PromptError(f"def_metric({name!r}) was already declared differently in this run: {known}")
        self._metrics[name] = metric
        return metric

    def record_metric(self, name: str, value: float | int = 1, labels: dict[str, Any] | None = None) -> None:
        """Add to a counter, set a gauge or observe a histogram value (once per run: not
        repeated when the run's history is replayed)."""
        metric = self._metrics.get(name)
        if metric is None:
            known = ", ".join(self._metrics) or "(none)"
            raise PromptError(f"record_metric({name!r}): no such metric (declared: {known}); declare it with def_metric first")
        try:
            number, clean = metric.check(value, labels or {})
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        self._telemetry.record_metric(metric, number, clean)

    def def_logger(
        self,
        name: str,
        level: int | str = "info",
        *,
        fields: dict[str, Any] | None = None,
        redact: Iterable[str] = (),
    ) -> PromptLogger:
        """A structured logger (``logger.info("text", key=value)``); it also becomes
        ``p.logger``. Lines carry the run's identity and step, ``fields`` on every line, the
        ``redact`` field names hidden; nothing is logged again when history replays."""
        _check_name("def_logger", name)
        try:
            number = level_number(level, f"def_logger({name!r})")
        except InstrumentError as err:
            raise PromptError(str(err)) from None
        logger = PromptLogger(name, self._telemetry, number, dict(fields or {}), redact_set(redact))
        self._logger = logger
        return logger

    @property
    def logger(self) -> PromptLogger:
        """The last logger declared with ``def_logger``, else one named after the prompt."""
        if self._logger is None:
            self._logger = PromptLogger(self._name, self._telemetry)
        return self._logger

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

    # ------------------------------------------------------------------ people in the loop
    def def_approval(
        self,
        name: str,
        message: str | None = None,
        options: tuple[str, ...] | list[str] = ("approve", "deny", "modify"),
        timeout: Any = None,
        default: str = "deny",
    ) -> ApprovalPolicy:
        """An approval policy; tools opt in with ``approval="<name>"``. When ``timeout``
        (seconds or timedelta) passes without a decision, ``default`` applies."""
        _check_name("def_approval", name)
        try:
            policy = ApprovalPolicy(name, message, tuple(options), as_timedelta(timeout), default)  # type: ignore[arg-type]
        except ValueError as err:
            raise PromptError(str(err)) from None
        self._approval_policies[name] = policy
        return policy

    def approval_policy(self, name: str) -> ApprovalPolicy:
        policy = self._approval_policies.get(name)
        if policy is None:
            known = ", ".join(self._approval_policies) or "(none)"
            raise PromptError(f"approval {name!r} is not defined; declare it with def_approval({name!r}, ...) (defined: {known})")
        return policy

    async def request_approval(
        self, approval: str, *, message: str | None = None, args: dict[str, Any] | None = None
    ) -> DecisionRecord:
        """Wait for a person to approve or deny, under policy ``approval``; returns the
        decision (``.action`` is "approve" or "deny"; a timeout applies the default)."""
        return await self._require_host("request_approval").request_approval(
            self.approval_policy(approval), tool=None, args=args, message=message
        )

    async def ask_human(
        self,
        question: str,
        options: list[str] | None = None,
        timeout: Any = None,
        default: str | None = None,
        key: str | None = None,
    ) -> str:
        """Ask a person and wait for the answer (``default`` after ``timeout``). Asking the
        same question again (same ``key``, default the question) returns the first answer,
        so a prompt function that re-runs every step asks only once."""
        return await self._require_host("ask_human").ask(
            question, options=options, timeout=as_timedelta(timeout), default=default, key=key or question
        )

    def def_interaction(
        self,
        name: str = "ask_human",
        description: str = "Ask the person you are working for a question and wait for their answer.",
        timeout: Any = None,
        default: str | None = None,
    ) -> Definition:
        """A tool through which the model asks a person and gets the answer back."""
        from .humans import AskArgs

        async def ask(args: AskArgs, info: Any) -> dict[str, str]:
            answer = await self.ask_human(
                args.question, options=args.options, timeout=timeout, default=default, key=f"tool:{info.tool_call_id}"
            )
            return {"answer": answer}

        return self.def_tool(name, description, AskArgs, ask)

    async def call_agent(self, name: str, args: Any, *, key: str) -> dict[str, Any]:
        """Run sub-agent ``name`` (declared with def_agent; "team.member" for a composite's
        member) from workflow-side code, as a child workflow; ``key`` makes its id unique in
        the run. Returns what the model would get: ``{"response", "validationError"?}`` or
        ``{"error"}``."""
        self._check_running("call_agent", self._agent_runner)
        owner, _, member = name.partition(".")
        found = self._agents.get(owner)
        composite = None
        if isinstance(found, CompositeAgentDef):
            composite, found = owner, found.member(member) if member else None
        if not isinstance(found, AgentDef):
            known = ", ".join(self._agents) or "(none)"
            raise PromptError(f"call_agent: no agent {name!r} is defined (defined: {known}); declare it with def_agent")
        parsed, problem = found.validate_args(args)
        if problem is not None:
            return {"error": problem}
        return await self._agent_runner(found, parsed, key, composite)  # type: ignore[misc]

    async def call_prompt(self, name: str, args: Any = None, *, key: str) -> dict[str, Any]:
        """Run another prompt of the worker (by its workflow type name) as a child workflow
        with its own model and definition; ``key`` makes its id unique in the run. Returns
        ``{"response", "structured"?, "validationError"?}`` or ``{"error"}``."""
        self._check_running("call_prompt", self._prompt_runner)
        return await self._prompt_runner(name, args, key)  # type: ignore[misc]

    async def call_tool(self, tool: ToolDef, args: Any, *, call_id: str, step: int, key: str) -> tuple[Any, bool]:
        """Run ``tool`` from workflow-side code exactly as a model's call would run (validation,
        approval, callbacks, response schema; an ``@tool`` function as an activity whose
        idempotency key ends in ``key``). Returns ``(result, is_error)``."""
        self._check_running("call_tool", self._tool_runner)
        return await self._tool_runner(tool, args, call_id, step, key)  # type: ignore[misc]

    def request_handoff(self, agent: str, args: Any) -> bool:
        """Hand the conversation to def_agent ``agent`` after this step's tool calls (the
        ``transfer_to_<agent>`` tools of ``def_handoff`` call this). The first request of a
        step wins; returns False for a later one."""
        if self._handoff is not None:
            return False
        if not isinstance(self._agents.get(agent), AgentDef):
            raise PromptError(f"handoff to {agent!r}: no such def_agent is defined; declare it with def_agent")
        self._handoff = (agent, args)
        return True

    def take_handoff(self) -> tuple[str, Any] | None:
        handoff, self._handoff = self._handoff, None
        return handoff

    def switch_definition(
        self, *, base_system: str | None, response_schema: Any, plugins: Iterable[Any], agent_system: str | None = None,
        response_instruction: str | None = None,
    ) -> None:
        """Go on with another agent's definition (a handoff): the conversation and state stay;
        definitions, effects and their memory come from the new function from its next run."""
        self._base_system = base_system
        self._agent_system = agent_system
        self._response_schema = response_schema
        self._response_instruction = response_instruction
        self._plugins = list(plugins)
        self._effect_memory = []

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

    # ------------------------------------------------------------------- driving a run
    async def run_body(self, body: Body) -> None:
        """Run (or re-run) the prompt function, then drop what it did not re-declare."""
        self._seen.clear()
        self._state_declared = {}
        self._effects = []
        self._event_handlers.clear()
        self._approval_policies = {}
        self._breakers = {}
        self._persisted = {}
        self._run_plugins = {}
        self._in_body = True
        messages_before = len(self._messages)
        try:
            result = body(self)
            if inspect.isawaitable(result):
                await result
        except PersistedStateNeeded:
            # The function runs again once the value is loaded: what it added is added then.
            del self._messages[messages_before:]
            raise
        finally:
            self._in_body = False
        self._reconcile()
        self._first_run = False

    def _reconcile(self) -> None:
        for store, kinds in (
            (self._variables, (Kind.VARIABLE, Kind.DATA)),
            (self._systems, (Kind.SYSTEM,)),
            (self._tools, (Kind.TOOL,)),
            (self._agents, (Kind.AGENT,)),
        ):
            for name in list(store):
                if not any((k, name) in self._seen for k in kinds):
                    del store[name]
        for name in list(self._order):
            if name not in self._tools and name not in self._agents:
                del self._order[name]

    async def prepare_step(self, step: int) -> PreparedStep:
        """Effects, disables, step modifications, system prompt and reminder for one call."""
        state_snapshot = to_jsonable_python(self._state)
        mods = StepModifications()
        ctx = PromptContext(
            messages=list(self._messages),
            step_number=step,
            tools=NameCollection(self._defined_names()),
            systems=NameCollection(list(self._systems)),
            variables=NameCollection(list(self._variables)),
            last_tool=self._last_tool,
        )
        modifier = mods.modifier()
        memory = self._effect_memory
        for index, effect in enumerate(self._effects):
            deps = None if effect.deps is None else [unwrap_dep(d) for d in effect.deps]
            previous = memory[index] if index < len(memory) else NEVER_RAN
            if not deps_changed(previous, deps):
                continue
            result = effect.callback(ctx, modifier)
            if inspect.isawaitable(result):
                await result
            while len(memory) <= index:
                memory.append(NEVER_RAN)
            memory[index] = [] if deps is None else deps

        disabled = set(self._disabled)
        self._disabled.clear()

        system = self._render_system(disabled, mods)
        callables = self._active_callables(disabled, mods)
        messages = list(self._messages) + mods.messages
        if self._reminded:
            items = [(name, kind.label) for kind, name in self._reminded]
            messages.append(Message(role="assistant", content=render_reminder(items)))
            self._reminded = []
        for c in callables.values():
            for t in c.members if isinstance(c, CompositeToolDef) else [c]:
                if isinstance(t, ToolDef) and t.approval:
                    self.approval_policy(t.approval)  # a tool names an approval nobody defined
                if isinstance(t, ToolDef) and t.circuit_breaker:
                    self.circuit_breaker(t.circuit_breaker)  # ... or a breaker nobody defined
        return PreparedStep(
            system=system,
            messages=messages,
            tools=[_tool_definition(c) for c in callables.values()],
            callables=callables,
            state_snapshot=state_snapshot,
            approvals=dict(self._approval_policies),
            defined=self._defined_names(),
            breakers=dict(self._breakers),
        )

    def _defined_names(self) -> list[str]:
        """Tools and agents in definition order (hidden agents are no tools of the model's)."""
        return [n for n in self._order if n in self._tools or not getattr(self._agents.get(n), "hidden", False)]

    def _render_system(self, disabled: set[tuple[Kind, str]], mods: StepModifications) -> str | None:
        parts = [(n, v) for n, v in self._systems.items() if (Kind.SYSTEM, n) not in disabled]
        if mods.system_allow is not None:
            parts = [(n, v) for n, v in parts if n in mods.system_allow]
        parts += mods.extra_systems
        rendered: list[str] = []
        for name, var in self._variables.items():
            if (Kind.DATA if var.is_data else Kind.VARIABLE, name) in disabled:
                continue
            rendered.append(render_data_variable(name, var.value) if var.is_data else render_variable(name, var.value))
        for name, value, is_data in mods.extra_variables:
            rendered.append(render_data_variable(name, value) if is_data else render_variable(name, str(value)))
        # lmthing gave a sub-agent its system= and response-schema instruction as the child's
        # first system part: <responseFormat> (system, blank line, instruction) or <agentSystem>.
        if self._response_schema is not None:
            instruction = response_schema_instruction(self._response_schema, self._response_instruction)
            value = f"{self._agent_system}\n\n{instruction}" if self._agent_system else instruction
            parts = [(RESPONSE_FORMAT_PART, value), *parts]
        elif self._agent_system:
            parts = [(AGENT_SYSTEM_PART, self._agent_system), *parts]
        return render_system_prompt(self._base_system, parts, rendered)

    def _active_callables(self, disabled: set[tuple[Kind, str]], mods: StepModifications) -> dict[str, Callable_]:
        out: dict[str, Callable_] = {}
        for name in self._order:
            t = self._tools.get(name)
            if t is not None:
                if (Kind.TOOL, name) not in disabled:
                    out[name] = t
                continue
            a = self._agents[name]
            if (Kind.AGENT, name) not in disabled and not getattr(a, "hidden", False):
                out[name] = a
        if mods.tool_allow is not None:
            out = {n: c for n, c in out.items() if n in mods.tool_allow}
        return out

    # ------------------------------------------------------------ recording the exchange
    def record_assistant(self, text: str, tool_calls: list[ToolCall]) -> None:
        self._messages.append(Message(role="assistant", content=text or None, tool_calls=tool_calls or None))

    def record_user(self, text: str) -> None:
        self._messages.append(Message(role="user", content=text))

    def record_tool_results(self, results: list[ToolResult], args_by_id: dict[str, Any]) -> None:
        for r in results:
            content = r.content if r.content is not None else _as_text(r.result)
            self._messages.append(Message(role="tool", tool_call_id=r.tool_call_id, name=r.name, content=content))
        if results:
            last = results[-1]
            self._last_tool = LastTool(last.name, args_by_id.get(last.tool_call_id), last.result, last.is_error)

    def replace_messages(self, messages: list[Message]) -> None:
        """The run's conversation from now on (def_context replaced older turns with a
        summary, docs/context.md)."""
        self._messages = list(messages)

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)

    # ----------------------------------------------------- carrying across continue-as-new
    def export_memory(self) -> list[Any]:
        """Effect dependency memory in a JSON-compatible form (``None`` = never ran)."""
        out: list[Any] = []
        for m in self._effect_memory:
            if m is NEVER_RAN:
                out.append(None)
                continue
            try:
                out.append(to_jsonable_python(m))
            except PydanticSerializationError:
                out.append(None)  # not storable: the effect re-runs once after continue-as-new
        return out

    def import_memory(self, memory: list[Any]) -> None:
        self._effect_memory = [NEVER_RAN if m is None else m for m in memory]


def _tool_definition(c: Callable_) -> ToolDefinition:
    if isinstance(c, (CompositeToolDef, CompositeAgentDef)):
        return ToolDefinition(name=c.name, description=c.full_description(), parameters=c.parameters())
    return ToolDefinition(name=c.name, description=c.description, parameters=c.parameters())


def _as_text(value: Any) -> str:
    """A tool result as the model reads it: text as is, anything else as compact JSON (what
    JSON.stringify gives lmthing's providers)."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False, separators=(",", ":"))
