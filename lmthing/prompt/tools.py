"""Tool definitions: schemas, validation and callbacks, with no engine attached.

Two kinds of tool exist, and the difference is where they run:

* :func:`tool` used as a decorator on a module-level function makes an :class:`ActivityTool`.
  It may do I/O; the engine runs it as a retryable activity and hands it a
  :class:`ToolContext` carrying an idempotency key.
* Any other callable given to ``def_tool`` (typically a closure that calls a state setter)
  is an in-workflow tool: it runs inside the workflow and must be deterministic.
"""

from __future__ import annotations

import inspect
import json
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model

from lmthing.resilience.domains import DomainAllowlist, refusal, refused_message

Callback = Callable[..., Any | Awaitable[Any]]

EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

# Activity type of an ``@tool`` function is this prefix + the tool name (stable: see activities/names.py).
TOOL_ACTIVITY_PREFIX = "lmthing.tool."


@dataclass(frozen=True)
class RetryOptions:
    """Retry policy of an activity tool (mapped onto Temporal's RetryPolicy)."""

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta = timedelta(seconds=30)
    maximum_attempts: int = 3
    non_retryable_error_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Temporal rejects an invalid policy when the workflow schedules the activity, which
        # would fail that workflow task over and over; say so where the tool is defined.
        if self.maximum_interval < self.initial_interval:
            raise ValueError(
                f"RetryOptions: maximum_interval ({self.maximum_interval}) is shorter than "
                f"initial_interval ({self.initial_interval}); raise maximum_interval."
            )
        if self.backoff_coefficient < 1:
            raise ValueError(f"RetryOptions: backoff_coefficient must be >= 1, got {self.backoff_coefficient}")
        if self.maximum_attempts < 0:
            raise ValueError(f"RetryOptions: maximum_attempts must be >= 0 (0 = unlimited), got {self.maximum_attempts}")


# A worker that dies while a tool runs is noticed when the tool's heartbeats stop (lmthing's
# activity heartbeats while the tool runs), in seconds rather than after the whole timeout.
DEFAULT_TOOL_HEARTBEAT = timedelta(seconds=5)
# Attempts a tool call may lose to dead workers on top of its maximum_attempts: with
# heartbeats on, the activity counts the tool's own failures (and timeouts) against
# maximum_attempts itself (activities/tools.py), so a crashing worker does not use them up.
LOST_ATTEMPTS_ALLOWANCE = 10
# The detail of the non-retryable error a tool activity raises when the tool's own attempts
# are used up: the error itself was retryable, so a workflow-run retry policy may go on.
ATTEMPTS_USED_MARK = "lmthing:attempts-used"


@dataclass(frozen=True)
class ActivityOptions:
    """Timeouts and retries of an activity tool. Defaults suit a call to a web API.

    ``heartbeat_timeout`` (default 5 s): lmthing heartbeats while the tool runs, so a dead
    worker is noticed that fast; when it is shorter than ``start_to_close_timeout``, attempts
    lost to dead workers do not count against ``retry.maximum_attempts`` (the tool's own
    failures and timeouts do). ``None``: no heartbeats, and every attempt counts (Temporal's
    plain retry policy)."""

    start_to_close_timeout: timedelta = timedelta(seconds=60)
    schedule_to_close_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = DEFAULT_TOOL_HEARTBEAT
    retry: RetryOptions = field(default_factory=RetryOptions)
    task_queue: str | None = None


def counted_attempts(options: ActivityOptions) -> int | None:
    """The attempts the activity counts itself (None: it does not, and Temporal counts all).
    It does when heartbeats notice a dead worker sooner than the start-to-close timeout."""
    attempts, beat = options.retry.maximum_attempts, options.heartbeat_timeout
    return attempts if attempts > 0 and beat is not None and beat < options.start_to_close_timeout else None


def temporal_attempts(options: ActivityOptions) -> int:
    """Temporal's maximum_attempts for a tool with these options (0: unlimited): the tool's
    own attempts, plus LOST_ATTEMPTS_ALLOWANCE when the activity counts them."""
    attempts = options.retry.maximum_attempts
    return attempts + LOST_ATTEMPTS_ALLOWANCE if counted_attempts(options) is not None else attempts


class ToolContext(BaseModel):
    """Passed to an activity tool that declares a parameter of this type.

    Activities run at least once, so a tool with side effects should use
    ``idempotency_key`` (workflow id + tool call id) to make repeats harmless.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    run_id: str
    tool_call_id: str
    idempotency_key: str
    attempt: int = 1
    # The domain allowlists the run's tool calls must pass (def_constraint "domains"); an
    # HTTP client from lmthing.activities.http.allowed_http_client(ctx) enforces them.
    allowed_domains: list[DomainAllowlist] = Field(default_factory=list)
    # The worker's resources (lmthing.workers.resources), set by the tool activity.
    _resources: Any = PrivateAttr(default=None)

    def resource(self, name: str) -> Any:
        """The worker's resource ``name`` (``def_resource``), made on first use and checked
        before it is handed out: ``await ctx.resource(name)`` in an ``async def`` tool,
        ``ctx.resource(name)`` in a plain ``def`` tool (which runs in a thread)."""
        return self._access("resource", name).resource(name)

    def acquire(self, name: str) -> Any:
        """One object of the worker's pool ``name`` (``def_resource_pool``), given back when
        the block ends: ``async with ctx.acquire(name) as obj:`` in an ``async def`` tool,
        ``with ctx.acquire(name) as obj:`` in a plain ``def`` tool."""
        return self._access("acquire", name).acquire(name)

    def _access(self, method: str, name: str) -> Any:
        if self._resources is None:
            raise RuntimeError(
                f"ToolContext.{method}({name!r}): this context was not made by a worker, so it has no resources; "
                "resources reach @tool functions that a worker runs (declare them with lmthing.def_resource(...))"
            )
        return self._resources

    def check_url(self, url: str) -> None:
        """Raise :class:`DomainNotAllowed` unless every allowlist of the run allows ``url``'s host."""
        refused = refusal({"url": url}, self.allowed_domains)
        if refused is not None:
            raise DomainNotAllowed(refused_message(*refused, prefix="Refused"))


class DomainNotAllowed(PermissionError):
    """A tool asked for a host its run's domain allowlists do not allow."""


class ToolCallInfo(BaseModel):
    """Second argument of an in-workflow tool function that accepts two parameters."""

    tool_call_id: str
    step: int
    workflow_id: str = ""


def _model_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Args"


# Models made from @tool signatures, by what they are made of. The workflow sandbox
# re-imports an app module for every workflow run, so each @tool would build its model (and
# its JSON schema) again per run: ~1 ms each. lmthing itself passes through the sandbox, so
# this cache lives across runs. Annotations are keyed by identity: a tool whose parameters
# use the app's own classes (re-created per run) gets a model of those classes, as before.
_ARGS_MODELS: OrderedDict[tuple[Any, ...], type[BaseModel]] = OrderedDict()
_ARGS_MODELS_MAX = 512


def args_model_from_signature(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of ``fn``'s parameters (``ToolContext`` parameters excluded)."""
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as err:  # unresolvable forward reference, usually
        raise TypeError(f"Tool {name!r}: cannot read the type hints of {fn.__qualname__}: {err}") from err
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"Tool {name!r}: *args/**kwargs are not supported; declare each parameter.")
        annotation = hints.get(pname, Any)
        if annotation is ToolContext:
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    key = (name, fn.__module__, fn.__qualname__, tuple((p, id(a), id(d)) for p, (a, d) in fields.items()))
    model = _ARGS_MODELS.get(key)
    if model is None:
        model = create_model(_model_name(name), **fields)  # type: ignore[call-overload]
        _ARGS_MODELS[key] = model
        while len(_ARGS_MODELS) > _ARGS_MODELS_MAX:
            _ARGS_MODELS.popitem(last=False)
    return model


def context_param(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s ``ToolContext`` parameter, if it has one."""
    try:
        hints = get_type_hints(fn)
    except Exception:
        return None
    for pname, annotation in hints.items():
        if annotation is ToolContext:
            return pname
    return None


# Weak keys: the workflow sandbox re-imports user modules for each run, so their schema
# classes are new objects every time; a plain dict would keep all of them alive.
_SCHEMAS: weakref.WeakKeyDictionary[type[BaseModel], dict[str, Any]] = weakref.WeakKeyDictionary()


def check_schema(what: str, schema: Any) -> None:
    """An arguments schema the model can be shown: a pydantic model class, a JSON schema of
    an object (a dict with ``"type": "object"`` or ``"properties"``), or None for no
    arguments. Anything else would fail at the first model call, far from the mistake."""
    if schema is None or (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return
    if isinstance(schema, BaseModel):
        raise TypeError(f"{what}: the schema is the model class, not an instance: give {type(schema).__name__}, not {type(schema).__name__}(...)")
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if (schema.get("type") == "object" or "properties" in schema) and (properties is None or (
            isinstance(properties, dict) and all(isinstance(p, dict) for p in properties.values())
        )):
            return
        raise TypeError(
            f"{what}: the dict {schema!r} is not a JSON schema of an object; give a pydantic model class, or a schema "
            'such as {"type": "object", "properties": {"city": {"type": "string"}}}'
        )
    hint = " (a tool's arguments are an object: wrap the value in a pydantic model with one field)" if isinstance(schema, type) else ""
    raise TypeError(f"{what}: the schema must be a pydantic model class, a JSON schema dict or None, got {schema!r}{hint}")


def schema_of(schema: type[BaseModel] | dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema the model is shown. Cached per class: building it costs ~0.7 ms, and
    every tool's schema is needed at every step. Treat the result as read-only."""
    if schema is None:
        return EMPTY_SCHEMA
    if isinstance(schema, dict):
        return schema
    cached = _SCHEMAS.get(schema)
    if cached is None:
        cached = _SCHEMAS[schema] = schema.model_json_schema()
    return cached


def validate_args(schema: type[BaseModel] | dict[str, Any] | None, raw: dict[str, Any] | str, name: str) -> tuple[Any, str | None]:
    """Parse a model's tool arguments: ``(args, None)`` or ``(None, error for the model)``.

    With a pydantic schema the args are a model instance; otherwise the parsed dict.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as err:
            return None, f"Invalid arguments for tool '{name}': not valid JSON ({err.msg} at position {err.pos})"
    if not isinstance(raw, dict):
        return None, f"Invalid arguments for tool '{name}': expected a JSON object, got {type(raw).__name__}"
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            return schema.model_validate(raw), None
        except ValidationError as err:
            return None, f"Invalid arguments for tool '{name}': {format_validation_error(err)}"
    return raw, None


def parse_tool_input(schema: type[BaseModel] | dict[str, Any] | None, raw: dict[str, Any] | str, name: str) -> tuple[Any, str | None]:
    """:func:`validate_args` for a call the model made, with the error the model is shown in
    lmthing's words (the AI SDK's ``InvalidToolInputError``): ``Invalid input for tool <name>:
    JSON parsing failed: Text: <text>.`` / ``Type validation failed: Value: <JSON>.``, then
    ``\nError message: <what is wrong>`` (pydantic's account of it here, zod's there)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as err:
            return None, f"Invalid input for tool {name}: JSON parsing failed: Text: {raw}.\nError message: {err}"
    value = json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)
    if not isinstance(raw, dict):
        problem = f"expected a JSON object, got {type(raw).__name__}"
        return None, f"Invalid input for tool {name}: Type validation failed: Value: {value}.\nError message: {problem}"
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            return schema.model_validate(raw), None
        except ValidationError as err:
            problem = format_validation_error(err)
            return None, f"Invalid input for tool {name}: Type validation failed: Value: {value}.\nError message: {problem}"
    return raw, None


def unavailable_tool_message(name: str, defined: list[str]) -> str:
    """What the model is told when it calls a tool it does not have at this step (the AI
    SDK's ``NoSuchToolError``, which lmthing passed on): every tool the prompt defines."""
    if not defined:
        return f"Model tried to call unavailable tool '{name}'. No tools are available."
    return f"Model tried to call unavailable tool '{name}'. Available tools: {', '.join(defined)}."


def error_message(err: BaseException) -> str:
    """An exception's message as lmthing took it (``error.message || String(error)``)."""
    return str(err) or type(err).__name__


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref``s to ``$defs`` replaced by the definitions themselves (a
    reference back into a definition being expanded, a recursive model, becomes ``{}``)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, expanding: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref[len("#/$defs/"):]
                siblings = {k: walk(v, expanding) for k, v in node.items() if k != "$ref"}
                if key in expanding or key not in defs:
                    return siblings
                return {**walk(defs[key], (*expanding, key)), **siblings}
            return {k: walk(v, expanding) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, expanding) for v in node]
        return node

    return walk(schema, ())


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "(input)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


@dataclass
class ActivityTool:
    """A module-level tool that runs as a Temporal activity (made by ``@tool``)."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    options: ActivityOptions = field(default_factory=ActivityOptions)
    response_schema: type[BaseModel] | None = None
    critical: bool = False
    approval: str | None = None
    # The tool never runs without its approval: def_tool(t, approval=None) is refused (the
    # shell tool of lmthing.tools).
    approval_required: bool = False

    @property
    def activity_name(self) -> str:
        return TOOL_ACTIVITY_PREFIX + self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ").strip()


def _make_activity_tool(fn: Callable[..., Any], **kw: Any) -> ActivityTool:
    name = kw.pop("name", None) or fn.__name__
    description = kw.pop("description", None) or _first_paragraph(fn.__doc__)
    if not description:
        raise TypeError(f"Tool {name!r} needs a description: give it a docstring or description=...")
    retry = kw.pop("retry", None)
    options = kw.pop("options", None) or ActivityOptions()
    timeout = kw.pop("timeout", None)
    if timeout is not None:
        options = ActivityOptions(**{**options.__dict__, "start_to_close_timeout": timeout})
    if retry is not None:
        options = ActivityOptions(**{**options.__dict__, "retry": retry})
    if kw.get("task_queue"):
        options = ActivityOptions(**{**options.__dict__, "task_queue": kw.pop("task_queue")})
    kw.pop("task_queue", None)
    unknown = set(kw) - {"response_schema", "critical", "approval", "approval_required"}
    if kw.get("approval_required") and not kw.get("approval"):
        raise TypeError(f"@tool {name!r}: approval_required=True needs approval=<a def_approval name>")
    if unknown:
        raise TypeError(f"@tool got unknown options {sorted(unknown)}")
    return ActivityTool(
        name=name,
        description=description,
        fn=fn,
        args_model=args_model_from_signature(fn, name),
        options=options,
        response_schema=kw.get("response_schema"),
        critical=kw.get("critical", False),
        approval=kw.get("approval"),
        approval_required=bool(kw.get("approval_required", False)),
    )


@dataclass
class ToolDef:
    """One tool as defined on a prompt (``def_tool``), or a sub-tool of a composite."""

    name: str
    description: str
    schema: type[BaseModel] | dict[str, Any] | None
    fn: Callable[..., Any] | ActivityTool
    before_call: Callback | None = None
    on_success: Callback | None = None
    on_error: Callback | None = None
    response_schema: type[BaseModel] | None = None
    critical: bool = False
    activity_options: ActivityOptions | None = None
    # Name of a def_approval policy: a person decides before each call runs.
    approval: str | None = None
    # Name of a def_circuit_breaker: the tool's activity asks it before each attempt.
    circuit_breaker: str | None = None
    # Name of a def_cache (docs/memory.md): a call with the same key is answered from it,
    # without running the tool (an @tool activity's only).
    cache: str | None = None

    # Functions of the function plugin: on_error gets the exception, as lmthing's defFunction
    # passed its Error (defTool's onError got ``{"error": message}``).
    on_error_gets_exception: bool = False
    # Resilience (docs/resilience.md), by the names of the prompt's def_retry, def_fallback,
    # def_guard and def_validator; the engine checks the names after the function runs.
    retry: str | None = None
    fallback: str | None = None
    guards: tuple[str, ...] = ()
    validator: str | None = None
    # A failed validation goes back to the model as an error asking it to call again, at
    # most max_retries times in the run; after that the failure is final.
    retry_on_failure: bool = False
    max_retries: int = 3

    def __post_init__(self) -> None:
        check_resilience_options(f"def_tool({self.name!r})", self)
        if self.cache is not None:
            if not isinstance(self.cache, str) or not self.cache:
                raise TypeError(f"def_tool({self.name!r}): cache is the name of a def_cache; got {self.cache!r}")
            if not self.runs_as_activity:
                raise TypeError(f"def_tool({self.name!r}, cache=...): only an @tool activity is cached; a tool defined "
                                "in the prompt runs in the workflow and is replayed from history, so it needs no cache")
        if (self.retry_on_failure or self.max_retries != 3) and self.validator is None:
            raise TypeError(f"def_tool({self.name!r}): retry_on_failure/max_retries need validator=<a def_validator name>")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise TypeError(f"def_tool({self.name!r}): max_retries is an int >= 0; got {self.max_retries!r}")

    @property
    def runs_as_activity(self) -> bool:
        return isinstance(self.fn, ActivityTool)

    @property
    def has_callbacks(self) -> bool:
        """Whether lmthing would have wrapped this tool (``defTool`` with options): then a
        failure reaches the model as ``{"error": message}``, else as the bare message."""
        return any(x is not None for x in (self.before_call, self.on_success, self.on_error, self.response_schema))

    def parameters(self) -> dict[str, Any]:
        return schema_of(self.schema)

    def validate_args(self, raw: dict[str, Any] | str) -> tuple[Any, str | None]:
        return validate_args(self.schema, raw, self.name)

    def parse_input(self, raw: dict[str, Any] | str) -> tuple[Any, str | None]:
        return parse_tool_input(self.schema, raw, self.name)

    def check_response(self, output: Any) -> str | None:
        """Validate a result against ``response_schema``; an error message or ``None``."""
        if self.response_schema is None:
            return None
        try:
            self.response_schema.model_validate(output)
        except ValidationError as err:
            return f"Tool '{self.name}' returned a result that does not match its response schema: {format_validation_error(err)}"
        return None


def check_resilience_options(where: str, target: Any) -> None:
    """The types of a tool's or agent's resilience options (their names are checked by the
    engine once the prompt function has defined everything)."""
    for attr in ("retry", "fallback", "validator"):
        value = getattr(target, attr, None)
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"{where}: {attr}= is the name of a def_{'retry' if attr == 'retry' else attr}(...) definition; got {value!r}")
    guards = getattr(target, "guards", ())
    if isinstance(guards, str):
        target.guards = guards = (guards,)
    if not isinstance(guards, (list, tuple)) or not all(isinstance(g, str) and g for g in guards):
        raise TypeError(f"{where}: guards= is a list of def_guard names; got {guards!r}")
    target.guards = tuple(guards)


@dataclass
class CompositeDef:
    """One tool through which the model calls several members (sub-tools or sub-agents)."""

    name: str
    description: str
    members: list[Any] = field(default_factory=list)

    label: ClassVar[str] = "members"
    member_label: ClassVar[str] = "member"

    def full_description(self) -> str:
        lines = "\n".join(f"  - {m.name}: {m.description}" for m in self.members)
        return f"{self.description}\n\nAvailable {self.label}:\n{lines}"

    def parameters(self) -> dict[str, Any]:
        return composite_schema([(m.name, m.description, m.parameters()) for m in self.members], self.member_label)

    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> Any:
        return next((m for m in self.members if m.name == name), None)


@dataclass
class CompositeToolDef(CompositeDef):
    """A composite tool (``def_tool(name, description, [tool(...), ...])``)."""

    label: ClassVar[str] = "sub-tools"
    member_label: ClassVar[str] = "sub-tool"

    @property
    def sub_tools(self) -> list[ToolDef]:
        return self.members


def composite_schema(members: list[tuple[str, str, dict[str, Any]]], label: str = "sub-tool") -> dict[str, Any]:
    """The input schema of a composite tool or agent, shaped like lmthing's: ``calls`` is an
    array of one variant per member, ``{name: <const>, args: <the member's schema>}``, with
    lmthing's descriptions (``Call the "<name>" sub-tool``, the member's description on
    ``args``, ``Array of sub-tool calls to execute``; ``agent`` for composite agents)."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "const": name, "description": f'Call the "{name}" {label}'},
                "args": {**inline_refs(schema), "description": description},
            },
            "required": ["name", "args"],
        }
        for name, description, schema in members
    ]
    return {
        "type": "object",
        "properties": {
            "calls": {
                "type": "array",
                "items": {"anyOf": variants},
                "description": f"Array of {label} calls to execute",
            }
        },
        "required": ["calls"],
    }


def parse_composite_calls(raw: dict[str, Any] | str, owner: str) -> tuple[list[dict[str, Any]], str | None]:
    """The ``calls`` list of a composite tool/agent call, or an error for the model (in the
    words of :func:`parse_tool_input`). Each call's ``args`` are checked by its member."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as err:
            return [], f"Invalid input for tool {owner}: JSON parsing failed: Text: {raw}.\nError message: {err}"
    calls = raw.get("calls") if isinstance(raw, dict) else None
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        value = json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)
        problem = 'expected {"calls": [{"name": ..., "args": {...}}, ...]}'
        return [], f"Invalid input for tool {owner}: Type validation failed: Value: {value}.\nError message: {problem}"
    return calls, None


def activity_tool_def(at: ActivityTool, **options: Any) -> ToolDef:
    """The definition an ``@tool`` function gets on a prompt (its own settings unless overridden)."""
    options.setdefault("response_schema", at.response_schema)
    options.setdefault("critical", at.critical)
    options.setdefault("approval", at.approval)
    if at.approval_required and not options["approval"]:
        raise TypeError(f"def_tool({at.name!r}): this tool always runs behind an approval; give "
                        f"approval=<a def_approval name> (its own is {at.approval!r}), not None")
    return ToolDef(at.name, at.description, at.args_model, at, **options)


def tool(*args: Any, **kwargs: Any) -> Any:
    """``@tool`` / ``@tool(...)``: a module-level activity tool; ``tool(name, description,
    schema, fn, **options)``: a sub-tool definition for a composite ``def_tool`` (lmthing's
    ``tool()``)."""
    if len(args) >= 3:
        name, description, schema, *rest = args
        fn = rest[0] if rest else kwargs.pop("fn", None)
        if not callable(fn):
            raise TypeError(f"tool({name!r}): give a function to run: tool(name, description, schema, fn)")
        check_schema(f"tool({name!r})", schema)
        return ToolDef(name=name, description=description, schema=schema, fn=fn, **kwargs)
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return _make_activity_tool(args[0])
    if args:
        raise TypeError("tool(): use @tool, @tool(name=..., ...), or tool(name, description, schema, fn)")
    return lambda fn: _make_activity_tool(fn, **kwargs)
