"""The agent registry (``000`` AgentRuntime / AgentPool): every prompt and standalone
orchestration a process has defined, by name, with its description, capabilities and input
schema, so that agents can be listed, looked up, selected by capability and run by name.

``@prompt`` and ``def_workflow`` register themselves when their module is imported, so a
worker's registry holds what the worker can run. It is plain data, the same in and out of
the workflow sandbox (the sandbox re-imports user modules, which registers the same entries
again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class AgentEntry:
    name: str
    kind: Literal["prompt", "workflow", "agent"]
    description: str = ""
    capabilities: tuple[str, ...] = ()
    input_schema: dict[str, Any] | None = None
    module: str = ""
    # For a def_agent found inside a prompt: the prompt that declares it.
    owner: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


_ENTRIES: dict[str, AgentEntry] = {}


def register(entry: AgentEntry) -> None:
    _ENTRIES[entry.name] = entry


def get(name: str) -> AgentEntry | None:
    """The prompt or standalone orchestration named ``name``."""
    return _ENTRIES.get(name)


def names(kind: str | None = None) -> list[str]:
    return sorted(n for n, e in _ENTRIES.items() if kind is None or e.kind == kind)


def entries(kind: str | None = None) -> list[AgentEntry]:
    return [_ENTRIES[n] for n in names(kind)]


def select(capabilities: Iterable[str], candidates: Iterable[AgentEntry] | None = None) -> list[AgentEntry]:
    """Entries that declare every one of ``capabilities`` (``000`` AgentPool.select)."""
    wanted = set(capabilities)
    pool = list(candidates) if candidates is not None else entries()
    return [e for e in pool if wanted <= set(e.capabilities)]


def check_capabilities(where: str, capabilities: Any) -> tuple[str, ...]:
    if capabilities is None:
        return ()
    if isinstance(capabilities, str) or not all(isinstance(c, str) and c for c in capabilities):
        raise TypeError(f"{where}: capabilities must be a list of non-empty strings, got {capabilities!r}")
    return tuple(capabilities)
