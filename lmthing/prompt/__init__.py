"""The engine-neutral prompt API: definitions, state, effects, rendering, data types.

Nothing in this package imports temporalio; it runs the same inside a workflow sandbox,
in a unit test, or in any other engine.
"""

from .agents import AgentDef, CompositeAgentDef, agent
from .definitions import Definition, Kind
from .effects import LastTool, NameCollection, PromptContext
from .stateful_prompt import PreparedStep, PromptError, StatefulPrompt
from .stop import has_tool_call, step_count_is
from .tools import ActivityOptions, ActivityTool, CompositeToolDef, RetryOptions, ToolCallInfo, ToolContext, ToolDef, tool
from .types import (
    Conversation,
    Message,
    ModelOptions,
    ModelRequest,
    ModelResponse,
    RunResult,
    RunStatus,
    StepRecord,
    ToolCall,
    ToolDefinition,
    ToolResult,
    Usage,
)

__all__ = [
    "ActivityOptions", "ActivityTool", "AgentDef", "CompositeAgentDef", "CompositeToolDef", "Conversation",
    "Definition", "Kind", "LastTool", "Message", "ModelOptions", "ModelRequest", "ModelResponse", "NameCollection",
    "PreparedStep", "PromptContext", "PromptError", "RetryOptions", "RunResult", "RunStatus", "StatefulPrompt",
    "StepRecord", "ToolCall", "ToolCallInfo", "ToolContext", "ToolDef", "ToolDefinition", "ToolResult", "Usage",
    "agent", "has_tool_call", "step_count_is", "tool",
]
