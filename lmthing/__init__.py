"""lmthing for Python, durable on Temporal.

Write agents as prompt functions with lmthing's ``def_*`` API; each runs as a Temporal
workflow. See docs/ for the TypeScript-to-Python name map.
"""

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
from lmthing.workflows import RunConfig, prompt

__all__ = [
    "ActivityOptions", "Definition", "Message", "ModelOptions", "PromptContext", "PromptError", "RetryOptions",
    "RunConfig", "RunResult", "RunStatus", "StatefulPrompt", "StepRecord", "ToolCallInfo", "ToolContext", "Usage",
    "agent", "has_tool_call", "prompt", "step_count_is", "tool",
]
