"""MCP (the Model Context Protocol), engine-neutral (docs/mcp.md): the settings of an MCP
server (:func:`mcp_server`), ``p.def_mcp_server`` that gives a prompt its tools, and the
records that cross to the MCP activities (activities/mcp.py)."""

from .plugin import McpServer, McpToolError, McpUnavailable, def_mcp_server, mcp_plugin, mcp_server
from .types import McpCall, McpCallResult, McpServerSpec, McpToolInfo, McpToolList

__all__ = [
    "McpCall", "McpCallResult", "McpServer", "McpServerSpec", "McpToolError", "McpToolInfo", "McpToolList",
    "McpUnavailable", "def_mcp_server", "mcp_plugin", "mcp_server",
]
