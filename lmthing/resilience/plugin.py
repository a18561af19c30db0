"""Resilience on the prompt: ``p.def_retry``, ``p.def_fallback``, ``p.def_guard``,
``p.def_validator``, ``p.def_constraint`` and ``p.def_moderation`` (the seed's defRetry,
defFallback, defGuard, defValidator, defConstraint and ContentModerator; docs/resilience.md).

Every prompt has these (the engine adds this plugin to each run). A definition is checked
where it is written (a bad value names the fix) and kept in the run's resilience book
(``p.service("resilience")``), which the engine reads when it calls a model, a tool or a
sub-agent. Outside a run (a scan of a parent's function) the book is a scratch one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.prompt.tools import check_schema, format_validation_error

from .book import CascadeDef, GuardAction, GuardDef, ResilienceBook, ValidatorDef
from .budget import Action as OnExceeded, Constraint, ConstraintType
from .domains import DomainAllowlist, DomainError, pattern as domain_pattern
from .moderation import ModerationAction, ModerationDef, ModerationTarget
from .specs import ResilienceError, RetrySpec, ToolFallbackSpec, as_seconds

_NAME_HINT = "use letters, digits, '_', '-' or '.'"


def _book(p: StatefulPrompt) -> ResilienceBook:
    book = p.service("resilience")
    return book if isinstance(book, ResilienceBook) else ResilienceBook()


def _name(api: str, name: Any) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise PromptError(f"{api}: the name must be a non-empty string ({_NAME_HINT}); got {name!r}")
    return name


def _seconds(api: str, what: str, value: Any) -> float:
    try:
        return as_seconds(f"{api}: {what}", value)
    except ResilienceError as err:
        raise PromptError(str(err)) from None


def _names(api: str, what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise PromptError(f"{api}: {what} is a list of names; got {value!r}")
    return tuple(value)


def def_retry(
    p: StatefulPrompt,
    name: str,
    *,
    max_attempts: int = 3,
    backoff: str = "exponential",
    base_delay: Any = 1.0,
    max_delay: Any = 30.0,
    multiplier: float = 2.0,
    jitter: bool = False,
    retryable_errors: Iterable[str] | None = None,
    non_retryable_errors: Iterable[str] = (),
) -> RetrySpec:
    """A named retry policy: tools (``def_tool(..., retry=name)``), sub-agents' model calls
    (``def_agent(..., retry=name)``), the prompt's model calls (``@prompt(retry=name)``) and
    the models of a cascade use it. Delays are seconds (or timedeltas)."""
    api = f"def_retry({name!r})"
    book = _book(p)
    try:
        spec = RetrySpec(
            name=_name(api, name), max_attempts=max_attempts, backoff=backoff,  # type: ignore[arg-type]
            base_delay=_seconds(api, "base_delay", base_delay), max_delay=_seconds(api, "max_delay", max_delay),
            multiplier=multiplier, jitter=jitter,
            retryable_errors=None if retryable_errors is None else _names(api, "retryable_errors", retryable_errors),
            non_retryable_errors=_names(api, "non_retryable_errors", non_retryable_errors),
        )
    except ValidationError as err:
        raise PromptError(f"{api}: {format_validation_error(err)}") from None
    book.retries[name] = spec
    return spec


def def_fallback(
    p: StatefulPrompt,
    name: str,
    strategy: str,
    *,
    cascade: Iterable[Any] | None = None,
    retry_delay: Any = 0.0,
    max_attempts: int | None = None,
    alternatives: Mapping[str, Iterable[str]] | None = None,
    default_value: Any = None,
    log_error: bool = True,
) -> None:
    """A fallback. ``"cascade"``: models tried in order when one fails for good (``cascade=
    ["openai:gpt-4o", {"model": "anthropic:...", "retry": "net"}]``; ``max_attempts`` per
    model, ``retry_delay`` seconds between models); attach with ``@prompt(fallback=name)``
    or ``def_agent(..., fallback=name)``. ``"alternative"``: ``alternatives={"search":
    ["search_backup"]}``, tried in order with the same arguments when the tool fails.
    ``"default"``: a failed tool that names it (``def_tool(..., fallback=name)``) returns
    ``default_value`` instead of an error."""
    api = f"def_fallback({name!r})"
    book = _book(p)
    _name(api, name)
    if strategy == "cascade":
        if cascade is None or isinstance(cascade, (str, Mapping)) or not list(cascade):
            raise PromptError(f"{api}: a cascade needs cascade=[model, ...], e.g. cascade=['openai:gpt-4o', 'anthropic:claude-sonnet-4-5']")
        if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1):
            raise PromptError(f"{api}: max_attempts is the attempts of each model, an int >= 1; got {max_attempts!r}")
        delay = _seconds(api, "retry_delay", retry_delay)
        if delay < 0:
            raise PromptError(f"{api}: retry_delay must be >= 0 seconds; got {retry_delay!r}")
        book.cascades[name] = CascadeDef(name, tuple(_cascade_entry(api, e) for e in cascade), delay, max_attempts)
    elif strategy == "alternative":
        if not isinstance(alternatives, Mapping) or not alternatives:
            raise PromptError(f"{api}: an alternative fallback needs alternatives={{'tool': ['backup_tool', ...]}}")
        alts = {str(k): _names(api, f"alternatives[{k!r}]", v) for k, v in alternatives.items()}
        book.tool_fallbacks[name] = ToolFallbackSpec(name=name, strategy="alternative", alternatives=alts, log_error=log_error)
    elif strategy == "default":
        book.tool_fallbacks[name] = ToolFallbackSpec(name=name, strategy="default", default_value=default_value, log_error=log_error)
    else:
        raise PromptError(f"{api}: strategy is 'cascade' (models), 'alternative' (tools) or 'default' (a value); got {strategy!r}")


def _cascade_entry(api: str, entry: Any) -> tuple[str, str | None, str | None]:
    if isinstance(entry, str) and entry.strip():
        return entry, None, None
    if isinstance(entry, Mapping) and isinstance(entry.get("model"), str) and set(entry) <= {"model", "retry", "circuit_breaker"}:
        return entry["model"], entry.get("retry"), entry.get("circuit_breaker")
    raise PromptError(f"{api}: a cascade entry is a model name or {{'model': ..., 'retry': ..., 'circuit_breaker': ...}}; got {entry!r}")


def def_guard(
    p: StatefulPrompt,
    name: str,
    condition: Callable[[Any], Any],
    *,
    on_fail: str = "throw",
    message: str | None = None,
    tools: Iterable[str] = (),
    approval: str | None = None,
) -> None:
    """A condition checked before a tool or agent runs: ``condition(check)`` gets a
    :class:`~lmthing.resilience.guards.GuardCheck` (``.state``, ``.args``, ``.tool``) and
    returns whether the call may run. It applies to the ``tools`` it names and to those that
    name it (``def_tool(..., guards=[name])``). ``on_fail``: ``"throw"`` (the call fails
    with ``message``), ``"skip"`` (it does not run; the model is told why) or ``"ask"`` (a
    person decides, through ``approval=`` (a ``def_approval``) or a default approval)."""
    api = f"def_guard({name!r})"
    book = _book(p)
    _name(api, name)
    if not callable(condition):
        raise PromptError(f"{api}: condition is a function of the check, e.g. lambda c: c.state.get('authenticated'); got {condition!r}")
    if on_fail not in get_args(GuardAction):
        raise PromptError(f"{api}: on_fail is 'throw', 'skip' or 'ask'; got {on_fail!r}")
    if approval is not None and on_fail != "ask":
        raise PromptError(f"{api}: approval= is for on_fail='ask'; set on_fail='ask' or drop approval=")
    book.guards[name] = GuardDef(name, condition, on_fail, message, _names(api, "tools", tools), approval)  # type: ignore[arg-type]


def def_validator(
    p: StatefulPrompt,
    name: str,
    schema: Any = None,
    check: Callable[[Any], Any] | None = None,
    *,
    sanitize: Callable[[Any], Any] | None = None,
    answer: bool = False,
    max_retries: int = 2,
) -> None:
    """A named check of a tool's output (``def_tool(..., validator=name)``) or, with
    ``answer=True``, of this prompt's (or agent's) answer: a pydantic ``schema`` and/or a
    ``check(value)`` that returns True/None (valid), False, an error text, a list of them,
    or ``{"valid": bool, "errors": [...], "fix": "..."}``. ``sanitize(value)`` cleans the
    value first. A failing answer is sent back to the model with the errors, at most
    ``max_retries`` times; then it is accepted and the run's result says what failed."""
    api = f"def_validator({name!r})"
    book = _book(p)
    _name(api, name)
    if schema is None and check is None:
        raise PromptError(f"{api}: give a schema (a pydantic model class) and/or check=function")
    if schema is not None:
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            try:
                check_schema(api, schema)
            except TypeError as err:
                raise PromptError(str(err)) from None
            raise PromptError(f"{api}: schema is a pydantic model class (a JSON schema dict cannot validate here)")
    for what, fn in (("check", check), ("sanitize", sanitize)):
        if fn is not None and not callable(fn):
            raise PromptError(f"{api}: {what} is a function of the value; got {fn!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise PromptError(f"{api}: max_retries is an int >= 0; got {max_retries!r}")
    book.validators[name] = ValidatorDef(name, schema, check, sanitize, bool(answer), max_retries)


def def_constraint(
    p: StatefulPrompt,
    name: str,
    type: str,  # noqa: A002 - the seed's name
    *,
    max: float | None = None,  # noqa: A002
    warn: float | None = None,
    on_exceeded: str = "stop",
    requests: int | None = None,
    period: Any = None,
    allow: Iterable[str] | None = None,
) -> None:
    """A budget over the whole agent tree (``"tokens"``, ``"cost"`` in USD, ``"duration"``
    in seconds, with ``max`` and ``warn``; ``on_exceeded``: ``"stop"``, ``"warn"``,
    ``"graceful_stop"`` or ``"summarize"``), a rate limit of model calls (``"rate"``:
    ``requests`` per ``period`` seconds) that every run of the tree shares, or a domain
    allowlist for the tree's tool calls (``"domains"``: ``allow=["docs.python.org",
    "*.wikipedia.org"]``)."""
    api = f"def_constraint({name!r})"
    book = _book(p)
    _name(api, name)
    if type == "domains":
        if allow is None or isinstance(allow, str) or not (allow := list(allow)):
            raise PromptError(f"{api}: a domain allowlist needs allow=[host, ...], e.g. allow=['docs.python.org']")
        try:
            book.domains[name] = DomainAllowlist(name=name, allow=tuple(dict.fromkeys(domain_pattern(api, a) for a in allow)))
        except DomainError as err:
            raise PromptError(str(err)) from None
        return
    if allow is not None:
        raise PromptError(f"{api}: allow= is for type='domains'")
    if type not in get_args(ConstraintType):
        raise PromptError(f"{api}: type is 'tokens', 'cost', 'duration', 'rate' or 'domains'; got {type!r}")
    if on_exceeded not in get_args(OnExceeded):
        raise PromptError(f"{api}: on_exceeded is 'stop', 'warn', 'graceful_stop' or 'summarize'; got {on_exceeded!r}")
    if type == "rate":
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise PromptError(f"{api}: a rate limit needs requests= (an int >= 1) per period= seconds")
        seconds = _seconds(api, "period", period if period is not None else 1.0)
        if seconds <= 0:
            raise PromptError(f"{api}: period must be > 0 seconds; got {period!r}")
        book.constraints[name] = Constraint(name=name, type="rate", requests=requests, period=seconds)
        return
    if max is None and warn is None:
        raise PromptError(f"{api}: give max= (and/or warn=), e.g. def_constraint({name!r}, {type!r}, max=100000)")
    limits = {}
    for what, value in (("max", max), ("warn", warn)):
        if value is None:
            continue
        number = _seconds(api, what, value) if type == "duration" else value
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
            raise PromptError(f"{api}: {what} must be a positive number; got {value!r}")
        limits[what] = float(number)
    if "max" in limits and "warn" in limits and limits["warn"] > limits["max"]:
        raise PromptError(f"{api}: warn ({warn}) is above max ({max}); warn is the earlier mark")
    book.constraints[name] = Constraint(name=name, type=type, max=limits.get("max"), warn=limits.get("warn"),  # type: ignore[arg-type]
                                        on_exceeded=on_exceeded)


def def_moderation(
    p: StatefulPrompt,
    name: str,
    check: Callable[[str], Any] | None = None,
    *,
    model: str | None = None,
    on: str | Iterable[str] = ("input", "output"),
    action: str = "block",
    categories: Iterable[str] | None = None,
    threshold: float | None = None,
    message: str | None = None,
) -> None:
    """Moderate the run's inputs (user messages, each once, before a model sees it) and/or
    outputs (the model's text at every step): with ``check(text)``, a deterministic
    function that returns what it flagged (None/False: clean; True, a category, a list of
    them, or ``{"flagged": ..., "categories": [...], "text": cleaned}``), or with a
    moderation ``model`` (``"openai:omni-moderation-latest"``, through the OpenAI SDK in an
    activity). ``action``: ``"block"`` (the run ends, stop reason ``"moderation"``, its text
    ``message``), ``"flag"`` (recorded in the step and the result; the run goes on) or
    ``"filter"`` (a check's cleaned ``text`` replaces the flagged one). ``categories``: only
    these count; ``threshold``: with a model, a category counts from this score on."""
    api = f"def_moderation({name!r})"
    book = _book(p)
    _name(api, name)
    if (check is None) == (model is None):
        raise PromptError(f"{api}: give check=function or model='openai:omni-moderation-latest' (one of them)")
    if check is not None and not callable(check):
        raise PromptError(f"{api}: check is a function of the text; got {check!r}")
    if model is not None and (not isinstance(model, str) or ":" not in model):
        raise PromptError(f"{api}: model is 'provider:model', e.g. 'openai:omni-moderation-latest'; got {model!r}")
    targets = _names(api, "on", on)
    if not targets or any(t not in get_args(ModerationTarget) for t in targets):
        raise PromptError(f"{api}: on is 'input', 'output' or both; got {on!r}")
    if action not in get_args(ModerationAction):
        raise PromptError(f"{api}: action is 'block', 'flag' or 'filter'; got {action!r}")
    if action == "filter" and check is None:
        raise PromptError(f"{api}: a moderation model only flags; action='filter' needs check= returning the cleaned text")
    if action == "filter" and "input" in targets:
        raise PromptError(f"{api}: action='filter' cleans outputs only (an input stays as the user sent it); "
                          "use on='output', or action='block' for inputs")
    if threshold is not None:
        if model is None:
            raise PromptError(f"{api}: threshold= applies to a moderation model's scores; a check decides itself")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise PromptError(f"{api}: threshold is a score in (0, 1]; got {threshold!r}")
    if message is not None:
        try:
            message.format(name=name, categories="x")
        except (AttributeError, IndexError, KeyError, ValueError):
            raise PromptError(f"{api}: message is the text a blocked run ends with, where {{name}} and {{categories}} "
                              f"are filled in (write other braces doubled: {{{{ }}}}); got {message!r}") from None
    book.moderations[name] = ModerationDef(
        name, check, model, tuple(dict.fromkeys(targets)), action,  # type: ignore[arg-type]
        None if categories is None else _names(api, "categories", categories),
        None if threshold is None else float(threshold), message,
    )


resilience_plugin = {
    "def_retry": def_retry,
    "def_fallback": def_fallback,
    "def_guard": def_guard,
    "def_validator": def_validator,
    "def_constraint": def_constraint,
    "def_moderation": def_moderation,
}
