"""The resilience definitions of one run of a prompt function (``p.def_retry``,
``p.def_fallback``, ``p.def_guard``, ``p.def_validator``, ``p.def_constraint``,
``p.def_moderation``).

Like every definition, they are made again each time the function runs (before every
step), so the engine empties the book before the function runs and checks it after
(:meth:`ResilienceBook.check`): a name used but never defined, or a guard on a tool nobody
defined, stops the run there with the fix named, before a model is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .budget import Constraint
from .domains import DomainAllowlist
from .moderation import ModerationDef, ModerationTarget
from .specs import ModelChoice, ModelPolicy, ResilienceError, RetrySpec, ToolFallbackSpec

GuardAction = Literal["throw", "skip", "ask"]


@dataclass(frozen=True)
class CascadeDef:
    """A ``def_fallback(name, "cascade", ...)``: models by name, each with its retry name."""

    name: str
    entries: tuple[tuple[str, str | None, str | None], ...]  # (model, retry, circuit_breaker)
    retry_delay: float = 0.0
    max_attempts: int | None = None


@dataclass(frozen=True)
class GuardDef:
    """A ``def_guard``: ``condition(check)`` must hold before a tool or agent runs."""

    name: str
    condition: Callable[[Any], Any]
    on_fail: GuardAction = "throw"
    message: str | None = None
    tools: tuple[str, ...] = ()
    approval: str | None = None


@dataclass(frozen=True)
class ValidatorDef:
    """A ``def_validator``: a schema and/or a check on a tool's output or an answer."""

    name: str
    schema: Any = None
    check: Callable[[Any], Any] | None = None
    sanitize: Callable[[Any], Any] | None = None
    answer: bool = False
    max_retries: int = 2


@dataclass
class ResilienceBook:
    """One run's resilience definitions, by name."""

    retries: dict[str, RetrySpec] = field(default_factory=dict)
    cascades: dict[str, CascadeDef] = field(default_factory=dict)
    tool_fallbacks: dict[str, ToolFallbackSpec] = field(default_factory=dict)
    guards: dict[str, GuardDef] = field(default_factory=dict)
    validators: dict[str, ValidatorDef] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    moderations: dict[str, ModerationDef] = field(default_factory=dict)
    domains: dict[str, DomainAllowlist] = field(default_factory=dict)

    def _stores(self) -> tuple[dict[str, Any], ...]:
        return (self.retries, self.cascades, self.tool_fallbacks, self.guards, self.validators, self.constraints,
                self.moderations, self.domains)

    def clear(self) -> None:
        for store in self._stores():
            store.clear()

    def names(self) -> set[str]:
        return {name for store in self._stores() for name in store}

    # ------------------------------------------------------------------------- lookups
    def retry(self, name: str | None, where: str) -> RetrySpec | None:
        if name is None:
            return None
        spec = self.retries.get(name)
        if spec is None:
            raise ResilienceError(f"{where}: retry={name!r} names no policy; define it with p.def_retry({name!r}, ...) "
                                  f"(defined: {_known(self.retries)})")
        return spec

    def model_policy(self, retry: str | None, fallback: str | None, model: str, where: str) -> ModelPolicy | None:
        """The policy of the model calls of a prompt or agent that names ``retry`` and/or
        ``fallback`` (a cascade); None when it names neither."""
        if retry is None and fallback is None:
            return None
        default_retry = self.retry(retry, where)
        if fallback is None:
            return ModelPolicy(cascade=(ModelChoice(model=model, retry=default_retry),), retry=default_retry)
        cascade = self.cascades.get(fallback)
        if cascade is None:
            hint = " (it is a tool fallback; a model fallback has strategy 'cascade')" if fallback in self.tool_fallbacks else ""
            raise ResilienceError(f"{where}: fallback={fallback!r} names no model cascade{hint}; define it with "
                                  f"p.def_fallback({fallback!r}, 'cascade', cascade=[...]) (cascades: {_known(self.cascades)})")
        choices = []
        for entry_model, entry_retry, breaker in cascade.entries:
            spec = self.retry(entry_retry, f"def_fallback({fallback!r})") or default_retry
            if spec is not None and cascade.max_attempts is not None:
                spec = spec.model_copy(update={"max_attempts": cascade.max_attempts})
            elif spec is None and cascade.max_attempts is not None:
                spec = RetrySpec(name=f"{fallback}.attempts", max_attempts=cascade.max_attempts)
            choices.append(ModelChoice(model=entry_model, retry=spec, circuit_breaker=breaker))
        return ModelPolicy(cascade=tuple(choices), retry_delay=cascade.retry_delay, fallback=fallback, retry=default_retry)

    def tool_fallback(self, tool: str, named: str | None) -> tuple[ToolFallbackSpec | None, tuple[str, ...]]:
        """The fallback a failing ``tool`` gets: the one it names, else an ``alternative``
        fallback that lists it; and the alternative tools to try, in order."""
        if named is not None:
            spec = self.tool_fallbacks[named]
            return spec, spec.alternatives.get(tool, ())
        for spec in self.tool_fallbacks.values():
            if tool in spec.alternatives:
                return spec, spec.alternatives[tool]
        return None, ()

    def guards_of(self, tool: str, named: tuple[str, ...]) -> list[GuardDef]:
        """The guards a tool or agent is under: those it names, then those that name it."""
        out = [self.guards[n] for n in named]
        out += [g for g in self.guards.values() if tool in g.tools and g.name not in named]
        return out

    def answer_validators(self) -> list[ValidatorDef]:
        return [v for v in self.validators.values() if v.answer]

    def moderations_on(self, target: ModerationTarget) -> list[ModerationDef]:
        return [m for m in self.moderations.values() if target in m.on]

    # --------------------------------------------------------------------------- checks
    def check(self, tools: dict[str, Any], agents: dict[str, Any], approvals: set[str], breakers: set[str] | None = None) -> None:
        """Every name used is defined: the options of tools and agents, guard targets,
        fallback alternatives, approval policies of guards that ask. Raises
        :class:`ResilienceError` naming the first problem and its fix."""
        callables = {**tools, **agents}
        for name, target in callables.items():
            where = f"def_tool({name!r})" if name in tools else f"def_agent({name!r})"
            for member in getattr(target, "members", None) or [target]:
                self._check_options(member, where, name in tools)
        for guard in self.guards.values():
            for tool in guard.tools:
                if tool not in callables:
                    raise ResilienceError(f"def_guard({guard.name!r}): tools= names {tool!r}, which is not a tool or agent "
                                          f"of this prompt (defined: {_known(callables)}); define it or remove it from tools=")
            if guard.on_fail == "ask" and guard.approval is not None and guard.approval not in approvals:
                raise ResilienceError(f"def_guard({guard.name!r}): approval={guard.approval!r} names no approval policy; "
                                      f"define it with p.def_approval({guard.approval!r}, ...)")
        for spec in self.tool_fallbacks.values():
            for tool, alternatives in spec.alternatives.items():
                for alt in alternatives:
                    if alt not in tools:
                        raise ResilienceError(f"def_fallback({spec.name!r}): the alternative {alt!r} of {tool!r} is not a "
                                              f"tool of this prompt (tools: {_known(tools)}); define it with def_tool")
        for cascade in self.cascades.values():
            for _, retry, breaker in cascade.entries:
                self.retry(retry, f"def_fallback({cascade.name!r})")
                if breaker is not None and breakers is not None and breaker not in breakers:
                    raise ResilienceError(f"def_fallback({cascade.name!r}): circuit_breaker={breaker!r} is not defined; "
                                          f"define it with p.def_circuit_breaker({breaker!r}, ...)")

    def _check_options(self, target: Any, where: str, is_tool: bool) -> None:
        retry = getattr(target, "retry", None)
        if retry is not None:
            self.retry(retry, where)
            if is_tool and not getattr(target, "runs_as_activity", False):
                raise ResilienceError(f"{where}: retry={retry!r} is for @tool functions (activities); this tool runs "
                                      "inside the workflow, where a failure is not transient. Make it an @tool, or drop retry=")
        fallback = getattr(target, "fallback", None)
        if fallback is not None:
            if is_tool and fallback not in self.tool_fallbacks:
                raise ResilienceError(f"{where}: fallback={fallback!r} names no tool fallback; define it with "
                                      f"p.def_fallback({fallback!r}, 'default', default_value=...) or 'alternative' "
                                      f"(tool fallbacks: {_known(self.tool_fallbacks)})")
            if not is_tool:
                self.model_policy(None, fallback, "?", where)
        for guard in getattr(target, "guards", None) or ():
            if guard not in self.guards:
                raise ResilienceError(f"{where}: guards= names {guard!r}, which is not defined; define it with "
                                      f"p.def_guard({guard!r}, condition) (guards: {_known(self.guards)})")
        validator = getattr(target, "validator", None)
        if validator is not None and validator not in self.validators:
            raise ResilienceError(f"{where}: validator={validator!r} is not defined; define it with "
                                  f"p.def_validator({validator!r}, schema=..., check=...) (validators: {_known(self.validators)})")


def _known(names: Any) -> str:
    return ", ".join(names) or "none"
