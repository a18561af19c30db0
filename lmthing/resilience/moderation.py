"""Moderation of a run's inputs and outputs (``p.def_moderation``; the seed's
ContentModerator with its rules, ``moderate`` and ``filter``).

A moderation is a user function (``check(text)``, run inside the workflow, so it must be
deterministic) or a moderation model (``model="openai:omni-moderation-latest"``, asked
through the official SDK in the ``lmthing.moderate`` activity). Either way its finding takes
one shape here (:class:`Finding`), and ``action`` decides what a flagged text does:
``"block"`` ends the run (stop reason ``"moderation"``) before the model sees the input, or
before the caller sees the output; ``"flag"`` records it and goes on; ``"filter"`` replaces
the text with the check's cleaned one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

ModerationTarget = Literal["input", "output"]
ModerationAction = Literal["block", "flag", "filter"]

BLOCKED_MESSAGE = "Blocked by moderation '{name}' ({categories})."


class ModerationDefError(Exception):
    """A check returned something that is not a finding."""


@dataclass(frozen=True)
class ModerationDef:
    """A ``def_moderation``: what checks the text, which texts, and what a hit does."""

    name: str
    check: Callable[[str], Any] | None = None
    model: str | None = None
    on: tuple[ModerationTarget, ...] = ("input", "output")
    action: ModerationAction = "block"
    # Only these categories count (None: any the check or the model flags).
    categories: tuple[str, ...] | None = None
    # With a model: a category counts when its score reaches this (None: the model's own flag).
    threshold: float | None = None
    message: str | None = None


class ModerationCall(BaseModel):
    """Input of the ``lmthing.moderate`` activity: texts for one moderation model."""

    model: str
    texts: list[str]


class ModerationScores(BaseModel):
    """A moderation model's answer for one text."""

    flagged: bool
    categories: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A flagged text: which moderation, where, which categories, what it does."""

    moderation: str
    target: ModerationTarget
    categories: tuple[str, ...]
    action: ModerationAction
    by: str  # "check" or the model
    excerpt: str
    filtered: str | None = None
    message: str | None = None

    def note(self, step: int) -> dict[str, Any]:
        """The finding as a step record keeps it (``StepRecord.moderation``)."""
        note: dict[str, Any] = {"moderation": self.moderation, "target": self.target, "step": step,
                                "categories": list(self.categories), "action": self.action, "by": self.by,
                                "excerpt": self.excerpt}
        if self.action == "block":
            note["message"] = self.blocked_message()
        return note

    def blocked_message(self) -> str:
        template = self.message or BLOCKED_MESSAGE
        return template.format(name=self.moderation, categories=", ".join(self.categories) or "flagged")


def excerpt(text: str, limit: int = 80) -> str:
    """The start of a flagged text, for the record (enough to find it, not the whole text)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def from_check(moderation: ModerationDef, target: ModerationTarget, text: str, found: Any) -> Finding | None:
    """A user check's return as a finding (None: the text is clean).

    Clean: ``None``, ``False``, ``""`` or an empty list. Flagged: ``True``, a category name,
    a list of them, or ``{"flagged": bool, "categories": [...], "text": "cleaned text"}``."""
    filtered = None
    if found is None or found is False:
        return None
    if found is True:
        categories: tuple[str, ...] = ()
    elif isinstance(found, str):
        if not found:
            return None
        categories = (found,)
    elif isinstance(found, (list, tuple)) and all(isinstance(c, str) for c in found):
        if not found:
            return None
        categories = tuple(found)
    elif isinstance(found, Mapping) and "flagged" in found:
        raw = found.get("categories") or ()
        categories = (raw,) if isinstance(raw, str) else tuple(str(c) for c in raw)
        filtered = found.get("text")
        if filtered is not None and not isinstance(filtered, str):
            raise ModerationDefError(f"the check of moderation '{moderation.name}' returned text={filtered!r}; "
                                     "the cleaned text is a string")
        if not found["flagged"]:
            return None
    else:
        raise ModerationDefError(
            f"the check of moderation '{moderation.name}' returned {found!r}; return None/False (clean), True, a "
            "category, a list of categories, or {'flagged': bool, 'categories': [...], 'text': 'cleaned text'}")
    return _counted(moderation, target, text, categories, "check", filtered)


def from_scores(moderation: ModerationDef, target: ModerationTarget, text: str, scores: ModerationScores) -> Finding | None:
    """A moderation model's answer as a finding, after ``categories`` and ``threshold``."""
    if moderation.threshold is not None:
        hits = tuple(c for c, s in scores.scores.items() if s >= moderation.threshold)
    elif scores.flagged:
        hits = tuple(scores.categories)
    else:
        return None
    if moderation.threshold is not None and not hits:
        return None
    return _counted(moderation, target, text, hits, moderation.model or "model", None)


def _counted(moderation: ModerationDef, target: ModerationTarget, text: str, categories: tuple[str, ...], by: str,
             filtered: str | None) -> Finding | None:
    if moderation.categories is not None:
        categories = tuple(c for c in categories if c in moderation.categories)
        if not categories:
            return None  # flagged, but for categories this moderation does not watch
    if moderation.action == "filter" and filtered is None:
        raise ModerationDefError(f"moderation '{moderation.name}' filters, but its check flagged a text without "
                                 "returning the cleaned one: return {'flagged': True, 'categories': [...], 'text': ...}")
    return Finding(moderation.name, target, categories, moderation.action, by, excerpt(text), filtered, moderation.message)
