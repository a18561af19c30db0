"""Caller edge: connect, start, follow and query prompt runs.

The handle and orchestration names load on first use (PEP 562): ``lmthing approve`` needs
``connect`` and ``get_handle`` only, not the orchestration side or the workflow engine.
:mod:`.connect` is imported at once: every caller needs it, and its function ``connect``
must win over the submodule of the same name that importing it binds on this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connect import ConnectionConfigError, TemporalUnreachable, connect, connect_options, data_converter

if TYPE_CHECKING:
    from .handle import PromptHandle, TextDelta, get_handle, run_prompt, start_prompt
    from .orchestrations import OrchestrationHandle, run_orchestration, start_orchestration

_SOURCES: dict[str, str] = {
    **dict.fromkeys(("PromptHandle", "TextDelta", "get_handle", "run_prompt", "start_prompt"), "handle"),
    **dict.fromkeys(("OrchestrationHandle", "run_orchestration", "start_orchestration"), "orchestrations"),
}

__all__ = [
    "ConnectionConfigError", "OrchestrationHandle", "PromptHandle", "TextDelta", "connect", "connect_options", "data_converter", "get_handle",
    "run_orchestration", "run_prompt", "start_orchestration", "start_prompt", "TemporalUnreachable",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{source}", None, None, (name,)), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
