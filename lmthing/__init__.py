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
from lmthing.workflows import RunConfig, prompt
from lmthing.workflows.orchestration import def_orchestration, def_parallel, def_pipeline, def_workflow

__all__ = [
    "END", "call_agent", "call_tool", "choose", "def_orchestration", "def_parallel", "def_pipeline", "def_workflow",
    "loop_while", "parallel", "sequence", "step", "task", "team",
    "ActivityOptions", "Definition", "Message", "ModelOptions", "PromptContext", "PromptError", "RetryOptions",
    "RunConfig", "RunResult", "RunStatus", "StatefulPrompt", "StepRecord", "ToolCallInfo", "ToolContext", "Usage",
    "agent", "has_tool_call", "prompt", "step_count_is", "tool",
]
