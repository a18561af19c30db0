"""The ``mcp`` service of a prompt run (``p.service("mcp")``), which ``def_mcp_server``
(lmthing/mcp/plugin.py) is built on. Both of its calls are activities on the run's tool
queue (activities/mcp.py): the server's process or HTTP session lives on a worker, never
here. A server's tool list is asked for once per run and kept in this object, so the
prompt function, which runs again before every step, does not list the tools again (the
history holds one ``lmthing.mcp.list_tools`` per server and run; a continue-as-new run
asks again, and the worker answers from its cache).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from lmthing.activities.names import MCP_CALL_TOOL, MCP_LIST_TOOLS
from lmthing.mcp.plugin import McpUnavailable
from lmthing.mcp.types import McpCall, McpCallResult, McpServerSpec, McpToolInfo, McpToolList

from . import routing
from .errors import cause_message

# A server that died or does not answer is asked again for about a minute; a command that
# does not start or a setting that cannot work is not (the activity says so).
MCP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                        maximum_attempts=6, non_retryable_error_types=["McpServerDidNotStart", "McpSettingError"])
# The MCP activities heartbeat: a call lost with its worker is made again within this.
MCP_HEARTBEAT = timedelta(seconds=10)


class WorkflowMcp:
    def __init__(self) -> None:
        self._lists: dict[str, list[McpToolInfo]] = {}

    async def tools(self, spec: McpServerSpec) -> list[McpToolInfo]:
        key = spec.key()
        if key not in self._lists:
            listed: McpToolList = await self._run(MCP_LIST_TOOLS, spec, McpToolList, f"list the tools of MCP server "
                                                  f"{spec.name!r}", timedelta(seconds=60))
            self._lists[key] = listed.tools
        return self._lists[key]

    async def call(self, call: McpCall) -> McpCallResult:
        return await self._run(MCP_CALL_TOOL, call, McpCallResult, f"{call.tool} (MCP server {call.server.name!r})",
                               timedelta(seconds=call.server.timeout + 30))

    async def _run(self, name: str, arg: object, result_type: type, what: str, timeout: timedelta) -> object:
        try:
            return await workflow.execute_activity(
                name, arg, result_type=result_type, task_queue=routing.tool_task_queue(),
                start_to_close_timeout=timeout, heartbeat_timeout=MCP_HEARTBEAT, retry_policy=MCP_RETRY, summary=what)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise McpUnavailable(cause_message(err)) from None


__all__ = ["WorkflowMcp"]
