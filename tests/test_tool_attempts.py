"""A tool's attempts are its own (issue 16, crash-proof defaults): workers SIGKILLed while
a tool runs do not use them up, while the tool's own failures do."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from lmthing.prompt.tools import DEFAULT_TOOL_HEARTBEAT, ActivityOptions, counted_attempts, temporal_attempts

from tests.support import activity_attempts, history, new_id, start, worker_process

SLOW = "lmthing.tool.slow_fetch"


async def running_attempt(client: Client, workflow_id: str) -> int:
    """The attempt of the tool activity running now (0: none is running)."""
    from temporalio.api.enums.v1 import PendingActivityState

    described = await client.get_workflow_handle(workflow_id).describe()
    return max((a.attempt for a in described.raw_description.pending_activities
                if a.activity_type.name == SLOW and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED),
               default=0)


async def test_three_dead_workers_do_not_use_up_a_tool_with_two_attempts(dev_env, client: Client, tmp_path) -> None:
    address = client.service_client.config.target_host
    queue = new_id("crash-q")
    handle = await start(client, "fetches_slowly", task_queue=queue)
    for n in range(3):  # kill the worker while the tool runs, three times
        async with worker_process(address, queue, f"worker-{n}", tmp_path, app="tests.apps.crash_app") as w:
            for _ in range(400):
                await asyncio.sleep(0.05)
                if await running_attempt(client, handle.id) == n + 1:
                    break
            else:
                raise AssertionError(f"attempt {n + 1} of the tool never started:\n{w.stderr()}")
            await asyncio.sleep(0.5)  # mid-call
            w.kill()
            await w.proc.wait()
    async with worker_process(address, queue, "worker-last", tmp_path, app="tests.apps.crash_app"):
        result = await asyncio.wait_for(handle.result(), 60)
        steps = await handle.steps()
    assert result.text == "done"
    assert steps[0].tool_results[0].result == {"fetched": "q"}  # the tool's answer, not a timeout error
    # Four attempts of a tool that has two: the three that died did not count.
    assert max(activity_attempts(await history(handle))) == 4


async def test_a_failing_tool_still_gets_exactly_its_attempts(client: Client, worker) -> None:
    handle = await start(client, "calls_a_broken_tool")
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "gave up"
    assert "upstream broken for q" in steps[0].tool_results[0].result["error"]
    assert max(activity_attempts(await history(handle))) == 3  # RetryOptions(maximum_attempts=3), no more


def test_the_defaults_count_attempts_where_heartbeats_see_dead_workers_first() -> None:
    default = ActivityOptions()
    assert default.heartbeat_timeout == DEFAULT_TOOL_HEARTBEAT
    assert counted_attempts(default) == 3 and temporal_attempts(default) == 13
    from datetime import timedelta

    short = ActivityOptions(start_to_close_timeout=timedelta(seconds=5))  # heartbeats would not notice sooner
    assert counted_attempts(short) is None and temporal_attempts(short) == 3
    plain = ActivityOptions(heartbeat_timeout=None)
    assert counted_attempts(plain) is None and temporal_attempts(plain) == 3
