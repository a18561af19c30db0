"""Evaluating guards and validators: what a condition or a check returned, in one shape.

A guard or validator is the user's own function and runs inside the workflow, so it must
be deterministic (it sees the run's state and the call's arguments, nothing else). One that
raises is a bug in the prompt, and fails the run with its name (:class:`CheckError`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from lmthing.prompt.tools import format_validation_error

from .book import GuardDef, ValidatorDef


class CheckError(Exception):
    """A guard's condition, a validator's check or a sanitizer raised."""


@dataclass(frozen=True)
class GuardCheck:
    """What a guard's condition sees: the run's state, the call's arguments (a model
    instance for a pydantic schema, else a dict), and the tool or agent being called."""

    state: dict[str, Any]
    args: Any
    tool: str
    step: int


@dataclass
class Verdict:
    """A validator's finding: ``value`` is what passed (sanitized, parsed by the schema)."""

    valid: bool
    value: Any = None
    errors: list[str] = field(default_factory=list)
    fix: str | None = None

    def message(self, name: str) -> str:
        text = f"Validation '{name}' failed: " + "; ".join(self.errors or ["invalid"])
        return text + (f". Fix: {self.fix}" if self.fix else "")


async def call_user_fn(fn: Any, what: str, *args: Any) -> Any:
    """Call the user's guard, check or sanitizer (sync or async); its error names it."""
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
    except Exception as err:  # noqa: BLE001 - the user's function; its error names it
        raise CheckError(f"{what} raised {type(err).__name__}: {err}") from err


async def guard_holds(guard: GuardDef, check: GuardCheck) -> bool:
    return bool(await call_user_fn(guard.condition, f"The condition of guard '{guard.name}'", check))


async def validate(validator: ValidatorDef, value: Any) -> Verdict:
    """Sanitize, then the schema, then the check; the first failure is the verdict."""
    if validator.sanitize is not None:
        value = await call_user_fn(validator.sanitize, f"The sanitizer of validator '{validator.name}'", value)
    if validator.schema is not None:
        try:
            raw = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            value = validator.schema.model_validate_json(raw) if isinstance(raw, str) else validator.schema.model_validate(raw)
        except ValidationError as err:
            return Verdict(False, value, [format_validation_error(err)])
    if validator.check is None:
        return Verdict(True, value)
    return _verdict(await call_user_fn(validator.check, f"The check of validator '{validator.name}'", value), value)


def _verdict(found: Any, value: Any) -> Verdict:
    if found is None or found is True:
        return Verdict(True, value)
    if found is False:
        return Verdict(False, value, ["the check returned False"])
    if isinstance(found, str):
        return Verdict(False, value, [found])
    if isinstance(found, (list, tuple)):
        return Verdict(not found, value, [str(e) for e in found])
    if isinstance(found, dict) and "valid" in found:
        errors = found.get("errors") or []
        errors = [errors] if isinstance(errors, str) else [str(e) for e in errors]
        return Verdict(bool(found["valid"]), value, errors, found.get("fix"))
    raise CheckError(f"a validator's check returned {found!r}; return True/None, False, an error text, a list of them, "
                     "or {'valid': bool, 'errors': [...], 'fix': '...'}")
