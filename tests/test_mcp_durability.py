"""A worker SIGKILLed during an MCP tool call (docs/mcp.md): the call is made again by the
next worker, on a server process of its own, and the call that finished before the kill is
not. The workers are subprocesses; the server is tests/mcp_servers/calc.py over stdio."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lmthing.activities.names import MCP_CALL_TOOL
from lmthing.client import start_prompt
from tests.apps import mcp_durable as app
from tests.support import new_id, scheduled_activities, worker_process

APP = "tests.apps.mcp_durable"


async def test_an_mcp_call_lost_with_its_worker_is_made_again_and_finished_ones_are_not(dev_env, client, tmp_path: Path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("mcp-q")
    log, marker = tmp_path / "calc.log", tmp_path / "hung"

    def calls() -> list[str]:
        return [line for line in (log.read_text().splitlines() if log.exists() else []) if line.startswith("call")]

    async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
        handle = await start_prompt(client, app.mcp_durable_run, {"log": str(log), "marker": str(marker)},
                                    id=new_id("mcp-durable"), task_queue=queue)
        for _ in range(400):
            if "call hang_once again" in calls():
                break
            await asyncio.sleep(0.05)
        assert calls() == ["call add", "call hang_once again"], "the second call never started"
        first.kill()
        await first.proc.wait()
    async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
        result = await asyncio.wait_for(handle.result(), 60)
        steps = await handle.steps()  # a query: a worker answers it
    events = (await handle.handle.fetch_history()).events
    assert result.text == "done"
    assert calls() == ["call add", "call hang_once again", "call hang_once again"]  # add was not made again
    assert steps[1].tool_results[0].result == {"result": "echo: again"}
    assert scheduled_activities(events).count(MCP_CALL_TOOL) == 2
