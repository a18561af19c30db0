"""Stable activity names. Renaming one breaks running workflows: add, never rename."""

from lmthing.prompt.tools import TOOL_ACTIVITY_PREFIX

MODEL_CALL = "lmthing.model_call"


# Messaging (docs/messaging.md): deliveries and calls that reach other workflows.
DELIVER = "lmthing.deliver"
PUBLISH = "lmthing.publish"
SUBSCRIBE = "lmthing.subscribe"
BOARD = "lmthing.board_call"
SEND = "lmthing.send"

# Workflow types and ids of the messaging entities.
TOPIC_WORKFLOW = "lmthing.topic"
BOARD_WORKFLOW = "lmthing.board"
TOPIC_ID_PREFIX = "lmthing-topic:"
BOARD_ID_PREFIX = "lmthing-board:"

# Budgets (docs/resilience.md): a sub-agent's run reports its spend to the root run, and
# asks it for rate-limit slots; the root's update handler of that name answers.
BUDGET = "lmthing.budget"
BUDGET_UPDATE = "lmthing_budget"

# Moderation (def_moderation with a model, docs/resilience.md): texts to a moderation model,
# on the model-call task queue.
MODERATE = "lmthing.moderate"

# Circuit breakers (docs/circuit-breakers.md): one workflow per breaker name, shared by
# every run and worker; its updates are "acquire", "record" and "reset", its query "state".
BREAKER_WORKFLOW = "lmthing.circuit_breaker"
BREAKER_ID_PREFIX = "lmthing-breaker:"

# Memory (docs/memory.md): every read and write of a memory store, on the tool task queue.
MEMORY_WRITE = "lmthing.memory.write"
MEMORY_GET = "lmthing.memory.get"
MEMORY_SEARCH = "lmthing.memory.search"
MEMORY_LIST = "lmthing.memory.list"
MEMORY_FORGET = "lmthing.memory.forget"

# MCP (docs/mcp.md): a server's tool list and one tool call, on the tool task queue.
MCP_LIST_TOOLS = "lmthing.mcp.list_tools"
MCP_CALL_TOOL = "lmthing.mcp.call_tool"

__all__ = [
    "BOARD", "BOARD_ID_PREFIX", "BOARD_WORKFLOW", "BREAKER_ID_PREFIX", "BREAKER_WORKFLOW", "BUDGET", "BUDGET_UPDATE",
    "DELIVER", "MCP_CALL_TOOL", "MCP_LIST_TOOLS", "MEMORY_FORGET", "MEMORY_GET", "MEMORY_LIST", "MEMORY_SEARCH", "MEMORY_WRITE", "MODEL_CALL", "MODERATE", "PUBLISH", "SEND", "SUBSCRIBE", "TOOL_ACTIVITY_PREFIX",
    "TOPIC_ID_PREFIX", "TOPIC_WORKFLOW",
]
