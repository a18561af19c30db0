"""lmthing for Python, durable on Temporal.

Write agents as prompt functions with lmthing's ``def_*`` API; each runs as a Temporal
workflow. See docs/ for the TypeScript-to-Python name map.

The public names (``from lmthing import prompt, tool, step, ...``) are loaded on first use
(PEP 562): ``import lmthing`` alone imports neither Temporal nor lmthing's engine, so a
command such as ``lmthing approve`` pays only for what it uses.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmthing.orchestration import (
        END,
        call_agent,
        call_tool,
        choose,
        loop_while,
        parallel,
        sequence,
        step,
        task,
        team,
    )
    from lmthing.prompt import (
        ActivityOptions,
        Definition,
        Message,
        ModelOptions,
        PromptContext,
        PromptError,
        RetryOptions,
        RunResult,
        RunStatus,
        StatefulPrompt,
        StepRecord,
        ToolCallInfo,
        ToolContext,
        Usage,
        agent,
        has_tool_call,
        step_count_is,
        tool,
    )
    from lmthing.mcp import mcp_server
    from lmthing.prompt.resources import def_resource, def_resource_pool
    from lmthing.workflows import RunConfig, prompt
    from lmthing.workflows.orchestration import def_orchestration, def_parallel, def_pipeline, def_workflow

# Each public name and the module it comes from.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(
        (
            "ActivityOptions", "Definition", "Message", "ModelOptions", "PromptContext", "PromptError", "RetryOptions",
            "RunResult", "RunStatus", "StatefulPrompt", "StepRecord", "ToolCallInfo", "ToolContext", "Usage", "agent",
            "has_tool_call", "step_count_is", "tool",
        ),
        "lmthing.prompt",
    ),
    **dict.fromkeys(
        ("END", "call_agent", "call_tool", "choose", "loop_while", "parallel", "sequence", "step", "task", "team"),
        "lmthing.orchestration",
    ),
    "RunConfig": "lmthing.workflows",
    "prompt": "lmthing.workflows",
    **dict.fromkeys(("def_resource", "def_resource_pool"), "lmthing.prompt.resources"),
    "mcp_server": "lmthing.mcp",
    **dict.fromkeys(("def_orchestration", "def_parallel", "def_pipeline", "def_workflow"), "lmthing.workflows.orchestration"),
}

__all__ = [
    "END", "call_agent", "call_tool", "choose", "def_orchestration", "def_parallel", "def_pipeline", "def_resource",
    "def_resource_pool", "def_workflow", "loop_while", "mcp_server", "parallel", "sequence", "step", "task", "team",
    "ActivityOptions", "Definition", "Message", "ModelOptions", "PromptContext", "PromptError", "RetryOptions",
    "RunConfig", "RunResult", "RunStatus", "StatefulPrompt", "StepRecord", "ToolCallInfo", "ToolContext", "Usage",
    "agent", "has_tool_call", "prompt", "step_count_is", "tool",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The import statement (builtins.__import__), not importlib: inside the workflow sandbox
    # it is the sandbox's importer, which passes lmthing's modules through from the worker.
    value = getattr(__import__(source, None, None, (name,)), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    """Keeps ``lmthing.prompt`` the decorator: importing the subpackage ``lmthing.prompt``
    (``from lmthing.prompt.types import ...``) makes the import system bind the submodule
    under the same name on this package, which would hide the decorator from
    ``from lmthing import prompt``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "prompt" and isinstance(value, ModuleType):
            return  # the subpackage stays reachable as sys.modules["lmthing.prompt"]
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
