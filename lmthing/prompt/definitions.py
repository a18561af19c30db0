"""Definition proxies: what ``def_var``, ``def_data``, ``def_system``, ``def_tool`` and
``def_agent`` return.

A proxy renders as ``<NAME>`` wherever it is formatted (f-strings, ``str()``, ``.value``)
so prompts can refer to a definition by tag, and it carries ``.remind()`` / ``.disable()``
which act on the prompt that created it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stateful_prompt import StatefulPrompt


class Kind(str, Enum):
    """Definition kinds. The value is lmthing's type name, used by ``get_reminded_items``."""

    VARIABLE = "def"
    DATA = "defData"
    SYSTEM = "defSystem"
    TOOL = "defTool"
    AGENT = "defAgent"

    @property
    def label(self) -> str:
        """How the reminder message names this kind."""
        return _LABELS[self]


_LABELS = {
    Kind.VARIABLE: "variable",
    Kind.DATA: "data variable",
    Kind.SYSTEM: "system part",
    Kind.TOOL: "tool",
    Kind.AGENT: "agent",
}


class Definition:
    """A handle on one definition; formats as ``<NAME>``."""

    __slots__ = ("_prompt", "kind", "name")

    def __init__(self, prompt: StatefulPrompt, kind: Kind, name: str) -> None:
        self._prompt = prompt
        self.kind = kind
        self.name = name

    @property
    def value(self) -> str:
        return f"<{self.name}>"

    def remind(self) -> Definition:
        """Ask the model, at the next call only, to use this definition."""
        self._prompt._remind(self.kind, self.name)
        return self

    def disable(self) -> Definition:
        """Leave this definition out of the next model call only."""
        self._prompt._disable(self.kind, self.name)
        return self

    def content(self) -> Any:
        """The definition's current content (used to compare effect dependencies)."""
        return self._prompt._definition_content(self.kind, self.name)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return f"Definition({self.kind.value}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Definition):
            return (self.kind, self.name) == (other.kind, other.name)
        if isinstance(other, str):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.kind, self.name))
