"""`/healthz`, `/readyz` and `/metrics` of `lmthing worker --metrics-port`, and graceful
shutdown: a real worker subprocess, SIGTERM while a tool activity runs."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
from temporalio.api.enums.v1 import EventType, PendingActivityState

from lmthing.client import PromptHandle, start_prompt
from lmthing.workers import create_worker
from tests.apps.pools_app import SLOW_SECONDS
from tests.support import cli_worker, new_id, scheduled_activities

SLOW_TOOL = "lmthing.tool.drain_step"


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status, await response.text()


async def wait_for_status(port: int, path: str, status: int, timeout: float) -> str:
    last: tuple[int, str] | None = None
    for _ in range(int(timeout / 0.1)):
        last = await get(port, path)
        if last[0] == status:
            return last[1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {status} (last: {last})")


async def wait_until_running(handle: PromptHandle, activity: str, timeout: float = 20.0) -> int:
    """Once a worker has started ``activity``: its attempt number."""
    for _ in range(int(timeout / 0.1)):
        for p in (await handle.handle.describe()).raw_description.pending_activities:
            if p.activity_type.name == activity and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                return p.attempt
        await asyncio.sleep(0.1)
    raise AssertionError(f"{activity} never started")


async def test_probes_turn_not_ready_on_sigterm_while_the_running_activity_drains(dev_env, client, tmp_path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("probes")
    args = ["--app", "tests.apps.pools_app", "--task-queue", queue, "--metrics-port", "0", "--shutdown-timeout", "30"]
    loop = asyncio.get_running_loop()
    async with cli_worker(address, *args, log_dir=tmp_path) as worker:
        port = worker.ops_port
        assert await wait_for_status(port, "/readyz", 200, 20) == "ok\n"
        assert await get(port, "/healthz") == (200, "ok\n")
        status, metrics = await get(port, "/metrics")
        assert status == 200 and "# TYPE lmthing_model_calls_total counter" in metrics

        handle = await start_prompt(client, "pool_slow", task_queue=queue, id=new_id("slow"))
        await wait_until_running(handle, SLOW_TOOL)
        worker.proc.send_signal(signal.SIGTERM)
        stopped_at = loop.time()
        body = await wait_for_status(port, "/readyz", 503, 5)
        assert "shutting down" in body
        assert (await get(port, "/healthz"))[0] == 200  # still live: draining, not broken
        assert worker.proc.returncode is None
        assert await asyncio.wait_for(worker.proc.wait(), 30) == 0, worker.stderr()
        drained_for = loop.time() - stopped_at
    assert drained_for < SLOW_SECONDS + 5

    # The activity was let finish by the stopping worker, and its result is kept: the run
    # ends on another worker without running the tool again.
    events = list((await handle.handle.fetch_history()).events)
    slow_ids = {e.event_id for e in events if scheduled_activities([e]) == [SLOW_TOOL]}
    (completed,) = [e.activity_task_completed_event_attributes for e in events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    and e.activity_task_completed_event_attributes.scheduled_event_id in slow_ids]
    assert completed.identity == worker.identity
    async with create_worker(client, app="tests.apps.pools_app", task_queue=queue):
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.text == "Slept."
    assert scheduled_activities(list((await handle.handle.fetch_history()).events)).count(SLOW_TOOL) == 1


async def test_an_activity_still_running_at_the_shutdown_timeout_is_cancelled_and_retried(dev_env, client, tmp_path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("cutoff")
    args = ["--app", "tests.apps.pools_app", "--task-queue", queue, "--shutdown-timeout", "1"]
    loop = asyncio.get_running_loop()
    async with cli_worker(address, *args, log_dir=tmp_path) as worker:
        handle = await start_prompt(client, "pool_slower", task_queue=queue, id=new_id("slower"))
        await wait_until_running(handle, SLOW_TOOL)
        worker.proc.send_signal(signal.SIGTERM)
        stopped_at = loop.time()
        assert await asyncio.wait_for(worker.proc.wait(), 30) == 0, worker.stderr()
        waited = loop.time() - stopped_at
    assert waited < 15  # the 60 s tool did not hold the shutdown up

    # The attempt failed at the cutoff; Temporal retries it on the next worker.
    async with create_worker(client, app="tests.apps.pools_app", task_queue=queue):
        assert await wait_until_running(handle, SLOW_TOOL) == 2
    await handle.handle.terminate("test done")
