"""A worker SIGKILLed in the middle of an orchestration: the run goes on on another worker
and ends as an undisturbed one, and no finished step runs again (each child workflow is
started exactly once, counted from the history)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from lmthing import RunConfig
from lmthing.client import start_orchestration, start_prompt
from tests.apps import orchestration_durable as app
from tests.support import TEST_TASK_QUEUE, new_id, worker_process
from tests.test_orchestration import children_started, events_of

APP = "tests.apps.orchestration_durable"
CONFIG = RunConfig(model_timeout_seconds=5)


async def start_standalone(client: Client, queue: str) -> Any:
    return await start_orchestration(client, app.durable_flow, None, config=CONFIG, id=new_id("durable-flow"), task_queue=queue)


async def start_in_prompt(client: Client, queue: str) -> Any:
    return await start_prompt(client, app.durable_flow_prompt, config=CONFIG, id=new_id("durable-flow-p"), task_queue=queue)


async def slow_orchestration_step_running(handle: Any) -> bool:
    status = await handle.status()
    running = getattr(status, "running", None) or getattr(status, "running_tools", [])
    return "slow_orchestration_step" in running


async def wait_for_the_slow_orchestration_step(handle: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await slow_orchestration_step_running(handle):
                return
        except Exception:  # queried before the first workflow task completed
            pass
        await asyncio.sleep(0.02)
    raise AssertionError("the slow step never started")


async def outcome(handle: Any) -> Any:
    result = await handle.result()
    if hasattr(result, "results"):
        return result.results
    return result.text, result.state["_lmthing_runs"]


@pytest.mark.parametrize("starter", [start_standalone, start_in_prompt], ids=["standalone", "in-prompt"])
async def test_an_orchestration_survives_a_worker_sigkill(dev_env, client: Client, worker, tmp_path: Path, starter) -> None:
    address = dev_env.client.service_client.config.target_host
    queue = new_id("orch-durable-q")
    reference = await starter(client, TEST_TASK_QUEUE)  # undisturbed, on the session worker

    async with worker_process(address, queue, "first-worker", tmp_path, app=APP) as first:
        handle = await starter(client, queue)
        await wait_for_the_slow_orchestration_step(handle)
        first.kill()
        await first.proc.wait()
    before = children_started(await events_of(client, handle.id))
    assert len(before) == 4  # first + three branches, all finished before the kill

    async with worker_process(address, queue, "second-worker", tmp_path, app=APP):
        got = await asyncio.wait_for(outcome(handle), 45)
    assert got == await outcome(reference)

    started = children_started(await events_of(client, handle.id))
    assert len(started) == 5 and started[:4] == before
    assert max(Counter(started).values()) == 1  # no child workflow started twice
