"""Worker pools (`lmthing worker --role ...`), the task-queue rate limit, and bad flag
combinations: real `lmthing worker` subprocesses against the session's dev server."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio.api.enums.v1 import EventType

from examples import research_agent as demo
from lmthing.client import start_prompt
from lmthing.client.replay import replay_workflow
from lmthing.workers import collect
from tests.support import cli_worker, new_id

from .test_cli import lmthing

RESULT_TIMEOUT = 60.0


def activity_queues(events: list) -> list[tuple[str, str]]:
    """(activity type, task queue) of every scheduled activity."""
    return [
        (e.activity_task_scheduled_event_attributes.activity_type.name,
         e.activity_task_scheduled_event_attributes.task_queue.name)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def identities(events: list, kind: int) -> set[str]:
    """Identities of the workers that started the given kind of task (workflow or activity)."""
    field = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "workflow_task_started_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity_task_started_event_attributes",
    }[kind]
    return {getattr(e, field).identity for e in events if e.event_type == kind}


def started_by_type(events: list) -> dict[str, set[str]]:
    """Activity type -> identities of the workers that ran it."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    out: dict[str, set[str]] = {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = e.activity_task_started_event_attributes
            out.setdefault(scheduled[attrs.scheduled_event_id], set()).add(attrs.identity)
    return out


async def test_a_run_completes_on_three_pools_each_on_its_own_queue(dev_env, client, tmp_path):
    address = dev_env.client.service_client.config.target_host
    queue = new_id("pools")
    app = ["--app", "examples.research_agent"]
    async with (
        cli_worker(address, *app, "--role", "workflows", "--task-queue", queue, log_dir=tmp_path) as workflows,
        cli_worker(address, *app, "--role", "models", "--task-queue", f"{queue}-models", log_dir=tmp_path) as models,
        cli_worker(address, *app, "--role", "tools", "--task-queue", f"{queue}-tools", log_dir=tmp_path) as tools,
    ):
        assert f"model calls go to {queue}-models, tool activities to {queue}-tools" in workflows.banner
        assert "(models pool)" in models.banner and "tools:   lookup" in tools.banner
        handle = await start_prompt(client, "research", task_queue=queue, id=new_id("research"))
        result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
    assert result.text == demo.SCRIPT[-1].text and result.steps == 4

    events = list((await handle.handle.fetch_history()).events)
    queues = activity_queues(events)
    assert ("lmthing.model_call", f"{queue}-models") in queues
    assert ("lmthing.tool.lookup", f"{queue}-tools") in queues
    assert {q for name, q in queues if name == "lmthing.model_call"} == {f"{queue}-models"}
    assert {q for name, q in queues if name.startswith("lmthing.tool.")} == {f"{queue}-tools"}
    # Each kind of task ran in its own process.
    assert identities(events, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) == {workflows.identity}
    ran = started_by_type(events)
    assert ran["lmthing.model_call"] == {models.identity}
    assert ran["lmthing.tool.lookup"] == {tools.identity}

    # The sub-agent (a child workflow) ran on the parent's queue and routed the same way.
    (child,) = [e.start_child_workflow_execution_initiated_event_attributes for e in events
                if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    assert child.task_queue.name == queue
    child_events = list((await client.get_workflow_handle(child.workflow_id).fetch_history()).events)
    assert activity_queues(child_events) == [("lmthing.model_call", f"{queue}-models")]
    assert started_by_type(child_events)["lmthing.model_call"] == {models.identity}

    # Routing is not part of the replay check: this process has no routing for the queue,
    # and the runs still replay (so changing the routing is safe for runs in flight).
    prompts, _ = collect([demo])
    reports = await replay_workflow(client, handle.id, prompts, children=True)
    assert len(reports) == 2 and all(r.deterministic for r in reports), reports


async def test_the_rate_limit_of_a_models_pool_spreads_model_calls_over_time(dev_env, client, tmp_path):
    """Six runs schedule a model call each at the same moment; at 2 per second the models
    pool cannot start them all at once. The control, the same pools without the limit,
    starts them within a fraction of a second (measured: 0.1 s against 7 s)."""
    address = dev_env.client.service_client.config.target_host
    app = ["--app", "tests.apps.pools_app"]

    async def start_times(rate: list[str]) -> list[datetime]:
        queue = new_id("rate")
        async with (
            cli_worker(address, *app, "--role", "workflows", "--task-queue", queue, log_dir=tmp_path),
            cli_worker(address, *app, "--role", "models", "--task-queue", f"{queue}-models", *rate, log_dir=tmp_path),
        ):
            handles = [await start_prompt(client, "pool_one_step", task_queue=queue, id=new_id("one")) for _ in range(6)]
            await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RESULT_TIMEOUT)
        times = []
        for h in handles:
            for e in (await h.handle.fetch_history()).events:
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    times.append(e.event_time.ToDatetime())
        assert len(times) == 6
        return sorted(times)

    limited = await start_times(["--rate-limit", "2"])
    spread = (limited[-1] - limited[0]).total_seconds()
    # The server may split the limit over the queue's partitions, so the spread can be
    # longer than 6 / 2 s; it cannot be much shorter.
    assert spread >= 1.5, f"6 model calls at 2/s started within {spread:.2f}s"
    unlimited = await start_times([])
    assert (unlimited[-1] - unlimited[0]).total_seconds() < spread


async def test_bad_worker_flags_are_usage_errors_that_name_the_fix():
    cases = [
        (["--role", "workflows", "--rate-limit", "2"], "set it on the pool that runs them"),
        (["--role", "workflows", "--max-concurrent", "4"], "role 'workflows' runs none"),
        (["--role", "models", "--model-queue", "x"], "Use role 'workflows' for it"),
        (["--role", "tools", "--tool-queue", "x"], "Use role 'workflows' for it"),
        (["--role", "models", "--rate-limit", "0"], "--rate-limit must be above 0"),
        (["--role", "tools", "--app", "tests.apps.basics"], "No @tool functions in tests.apps.basics"),
    ]
    for args, message in cases:
        app = [] if "--app" in args else ["--app", "tests.apps.pools_app"]
        # An unreachable address: each case must fail before connecting.
        done = await lmthing("worker", *app, *args, "--address", "127.0.0.1:9")
        assert done.code == 2, (args, done)
        assert message in done.err, (args, done.err)
        assert "Traceback" not in done.err
