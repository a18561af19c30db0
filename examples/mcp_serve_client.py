"""An MCP client (the official `mcp` SDK) that runs the research agent through
`lmthing mcp serve`, offline: the agent's prompt is an MCP tool, and calling it starts a
durable run (a Temporal workflow) whose answer comes back as the tool's result.

    python examples/mcp_serve_client.py

It starts an embedded Temporal dev server, then spawns

    lmthing mcp serve --app examples/research_agent.py --with-worker --address <that server>

over stdio, as a desktop MCP client would (docs/mcp-server.md), lists its tools, calls
`research`, and prints the progress, the answer and the run's workflow id.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from lmthing.workers.dev_server import start_dev_server

ROOT = Path(__file__).resolve().parent.parent


async def main() -> None:
    env = await start_dev_server()
    try:
        address = env.client.service_client.config.target_host
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lmthing", "mcp", "serve", "--app", "examples/research_agent.py", "--with-worker",
                  "--address", address, "--task-queue", "mcp-demo"],
            cwd=str(ROOT),
        )
        async with Client(server) as mcp:
            tools = await mcp.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))

            async def progress(done: float, total: float | None, message: str | None) -> None:
                print("  progress:", message)

            result = await mcp.call_tool("research", {"question": "Why run an agent durably?"}, progress_callback=progress)
            if result.is_error:
                raise SystemExit(f"the run failed: {result.content[0].text}")
            print("answer:", result.content[0].text)
            print("workflow id:", result.structured_content["workflow_id"])
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import os

    asyncio.run(main())
    # Leave without interpreter teardown: the Temporal SDK's Rust threads can abort it at
    # exit ("PyGILState_Release ... finalizing", temporalio/sdk-python#300), as the CLI does.
    sys.stdout.flush()
    os._exit(0)
