"""The worker-side settings of the built-in tools, and the errors they refuse with.

What a built-in tool may touch (the files root, private addresses, writes to a database,
shell commands) is decided by whoever runs the worker, never by the model or the prompt:
the model writes the arguments, and a prompt is code anyone may deploy to the worker. So
the settings come from the worker's environment (``LMTHING_*`` variables, read at each
call) or, when the worker's modules declare one, from a resource named
``lmthing.tools.settings`` (:func:`def_tool_settings`), which wins over the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lmthing.prompt.resources import ResourceDef, def_resource
from lmthing.prompt.tools import RetryOptions, ToolContext

SETTINGS_RESOURCE = "lmthing.tools.settings"


class ToolRefused(PermissionError):
    """A built-in tool refused a call its worker's settings do not allow (a path outside the
    files root, a private address, a write to a read-only database, a disabled shell)."""


class ToolInputError(ValueError):
    """The arguments cannot work (bad JSON, an unknown timezone, a bad expression): asking
    again with the same arguments gives the same answer, so the call is not retried."""


class ToolLimitExceeded(ToolRefused):
    """A response, a file or an output went over its size or time limit: it was cut off."""


# Refusals and bad input are final: the model gets the message at once, with no retries.
FINAL_ERRORS = ("ToolRefused", "ToolInputError", "ToolLimitExceeded", "DomainNotAllowed")
# A pure tool (no I/O) that fails fails the same way again.
PURE_RETRY = RetryOptions(initial_interval=timedelta(milliseconds=200), maximum_attempts=1, non_retryable_error_types=FINAL_ERRORS)
# An I/O tool may meet a transient failure (a reset connection, a locked database).
IO_RETRY = RetryOptions(initial_interval=timedelta(milliseconds=500), maximum_attempts=3, non_retryable_error_types=FINAL_ERRORS)


@dataclass(frozen=True)
class ToolSettings:
    """What the built-in tools of one worker may do. The environment variable of each field
    is in ``ENV`` (docs/tools.md lists them)."""

    files_root: str | None = None  # no root: the file and SQL tools refuse every path
    files_read_only: bool = False
    files_max_bytes: int = 1_000_000
    http_allow_private: bool = False  # private, loopback, link-local and metadata addresses
    http_max_bytes: int = 1_000_000
    http_timeout: float = 20.0
    sql_allow_write: bool = False
    sql_max_rows: int = 1_000
    shell_enabled: bool = False
    shell_timeout: float = 30.0
    shell_max_output: int = 100_000
    regex_timeout: float = 1.0
    text_max_chars: int = 1_000_000

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"ToolSettings.{f.name} ({ENV[f.name]}) must be a number > 0, got {value!r}")
            if f.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"ToolSettings.{f.name} ({ENV[f.name]}) must be true or false, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ToolSettings:
        """The settings the ``LMTHING_*`` variables give (unset ones keep their defaults)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV[f.name])
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values)


ENV = {f.name: "LMTHING_" + f.name.upper() for f in dataclasses.fields(ToolSettings)}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse(name: str, kind: Any, raw: str) -> Any:
    if kind == "bool":
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"{ENV[name]}={raw!r}: give true or false (1/0, yes/no, on/off)")
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"{ENV[name]}={raw!r}: give a number") from None
    return raw


def def_tool_settings(**settings: Any) -> ResourceDef:
    """The built-in tools' settings for the workers that load this module (a resource, so
    bind it to a module-level name): ``tool_settings = def_tool_settings(files_root="/srv/data",
    shell_enabled=True)``. Checked here, at import, rather than at the first tool call."""
    checked = ToolSettings(**settings)
    return def_resource(SETTINGS_RESOURCE, init=lambda: checked)


async def settings_of(ctx: ToolContext | None) -> ToolSettings:
    """The settings a tool call runs under: the worker's ``lmthing.tools.settings`` resource
    when it declares one, else the environment. ``ctx`` None (a direct call): the environment."""
    handle = getattr(ctx, "_resources", None) if ctx is not None else None
    registry = getattr(handle, "registry", None)
    if registry is not None and SETTINGS_RESOURCE in registry.names:
        return await registry.get(SETTINGS_RESOURCE)
    return ToolSettings.from_env()
