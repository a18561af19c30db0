"""Effects (``def_effect``): what they see, how they change one step, when they re-run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .definitions import Definition
from .types import Message

ModifierKind = Literal["messages", "tools", "systems", "variables"]
_MODIFIER_KINDS = ("messages", "tools", "systems", "variables")


class NameCollection:
    """The names of a kind of definition active at this step (``ctx.tools`` etc.)."""

    def __init__(self, names: list[str]) -> None:
        self._names = list(names)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def has(self, name: str) -> bool:
        return name in self._names

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"NameCollection({self._names})"


@dataclass(frozen=True)
class LastTool:
    tool_name: str
    args: Any
    result: Any
    is_error: bool = False


@dataclass(frozen=True)
class PromptContext:
    """What an effect callback receives as its first argument."""

    messages: list[Message]
    step_number: int
    tools: NameCollection
    systems: NameCollection
    variables: NameCollection
    last_tool: LastTool | None


@dataclass
class StepModifications:
    """What effects asked to change for the current model call only."""

    messages: list[Message] = field(default_factory=list)
    tool_allow: list[str] | None = None
    system_allow: list[str] | None = None
    extra_systems: list[tuple[str, str]] = field(default_factory=list)
    extra_variables: list[tuple[str, Any, bool]] = field(default_factory=list)  # name, value, is_data

    def modifier(self) -> Callable[[ModifierKind, list[Any]], None]:
        def step_modifier(kind: ModifierKind, items: list[Any]) -> None:
            if kind not in _MODIFIER_KINDS:
                raise ValueError(f"step_modifier: unknown kind {kind!r}; use one of {', '.join(_MODIFIER_KINDS)}")
            if not isinstance(items, (list, tuple)):
                raise TypeError(f"step_modifier({kind!r}, items): items must be a list")
            getattr(self, f"_add_{kind}")(list(items))

        return step_modifier

    def _add_messages(self, items: list[Any]) -> None:
        for item in items:
            self.messages.append(item if isinstance(item, Message) else Message.model_validate(item))

    def _add_tools(self, items: list[Any]) -> None:
        self.tool_allow = (self.tool_allow or []) + [_name_of(i) for i in items]

    def _add_systems(self, items: list[Any]) -> None:
        # Names filter the system parts (lmthing's allow-list); {name, value} items add a
        # part for this call. lmthing treated the latter as an allow-list too, which wiped
        # every other part; we add instead.
        names = [i for i in items if isinstance(i, (str, Definition))]
        if names:
            self.system_allow = (self.system_allow or []) + [_name_of(i) for i in names]
        for item in items:
            if isinstance(item, dict):
                self.extra_systems.append((str(item["name"]), str(item["value"])))

    def _add_variables(self, items: list[Any]) -> None:
        for item in items:
            if not isinstance(item, dict) or "name" not in item or "value" not in item:
                raise TypeError("step_modifier('variables', items): each item is {'name': ..., 'value': ...}")
            self.extra_variables.append((str(item["name"]), item["value"], bool(item.get("data", False))))


def _name_of(item: Any) -> str:
    if isinstance(item, Definition):
        return item.name
    if isinstance(item, dict):
        return str(item["name"])
    return str(item)


_UNSET = object()


@dataclass
class Effect:
    callback: Callable[..., Any]
    deps: list[Any] | None


def unwrap_dep(value: Any) -> Any:
    return value.content() if isinstance(value, Definition) else value


def deps_changed(previous: Any, current: list[Any] | None) -> bool:
    """Whether an effect should run, given the deps it last ran with.

    No deps: every step. ``[]``: once. Otherwise when a dependency differs. Dependencies are
    compared by value (``==``) rather than JavaScript identity: Python state is rebuilt from
    history on replay and across continue-as-new, so identity would re-run effects spuriously.
    """
    if current is None:
        return True
    if previous is _UNSET or previous is None:
        return True
    if len(previous) != len(current):
        return True
    for old, new in zip(previous, current):
        try:
            if old != new:
                return True
        except Exception:  # objects whose == raises: fall back to identity
            if old is not new:
                return True
    return False


NEVER_RAN = _UNSET
