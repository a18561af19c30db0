"""Worker-side resources (def_resource, def_resource_pool; docs/resources.md) in real runs on
the dev server: made once per worker however many tool calls and runs use them, remade
after a failed health check (the old one cleaned up), closed when the worker shuts down;
a pool never lends more than its max; and the errors a tool call gets when a pool stays
full, an init fails or a name is wrong."""

from __future__ import annotations

import pytest

from lmthing import def_resource, def_resource_pool
from lmthing.workers import WorkerRoleError, create_worker
from tests.apps import resource_log as log, resources_app as app
from tests.support import activity_attempts, history, new_id, run, start


async def test_a_resource_is_made_once_per_worker_across_calls_and_runs(client, worker):
    ids = []
    for _ in range(2):  # two runs, five tool calls each, async and sync tools, three at once
        _, steps = await run(client, app.res_counted_run)
        ids += [r.result["id"] for s in steps for r in s.tool_results]
    assert len(ids) == 10 and set(ids) == {"res_counted#1"}
    assert log.INITS["res_counted"] == 1


async def test_an_unhealthy_resource_is_cleaned_up_and_made_again(client, worker):
    _, steps = await run(client, app.res_health_run)
    ids = [s.tool_results[0].result["id"] for s in steps[:3]]
    # The second call broke the connection; the third got a new one after the check failed.
    assert ids == ["res_health#1", "res_health#1", "res_health#2"]
    assert "res_health#1" in log.CLEANED and "res_health#2" not in log.CLEANED
    assert log.INITS["res_health"] == 2


async def test_an_init_slower_than_the_tools_timeout_is_kept_for_the_next_attempt(client, worker):
    _, steps = await run(client, app.res_slow_run)
    result = steps[0].tool_results[0].result
    # The first attempt timed out while the init ran; the init went on, and a later attempt
    # got its object instead of starting another one (that would time out again, forever).
    assert result["id"] == "res_slow#1" and result["attempt"] >= 2
    assert log.INITS["res_slow"] == 1


async def test_a_pool_never_lends_more_than_its_max(client, worker):
    _, steps = await run(client, app.res_pool_run)
    results = steps[0].tool_results
    assert len(results) == 5 and not any(r.is_error for r in results)
    assert log.PEAK["res_pool"] == 2  # five calls at once, measured inside the tools
    assert log.INITS["res_pool"] == 2  # min=1 on first use, one more under load, then reused
    assert {r.result["id"] for r in results} == {"res_pool#1", "res_pool#2"}
    assert log.OUT["res_pool"] == 0


async def test_a_full_pool_fails_the_waiting_call_retryably_naming_the_pool(client, worker):
    handle = await start(client, app.res_tight_run)
    await handle.result()
    held, waited = (await handle.steps())[0].tool_results
    assert held.result == {"held": True}
    assert waited.is_error
    message = waited.result["error"]
    assert message.startswith("Resource pool 'res_tight' had no free object within 0.2 s (acquire_timeout)")
    assert "max=1" in message and "Traceback" not in message
    assert max(activity_attempts(await history(handle))) == 2  # retried, per the tool's policy


async def test_init_errors_and_wrong_names_reach_the_model_clearly(client, worker):
    handle = await start(client, app.res_errors_run)
    await handle.result()
    broken, unknown, wrong_kind = (await handle.steps())[0].tool_results
    assert broken.is_error and broken.result["error"] == (
        "Resource 'res_broken' could not be created: ConnectionRefusedError: db.internal:5432 refused the connection "
        "(raised by its _connect_refused()); the tool call is retried per its retry policy"
    )
    assert log.INITS["res_broken"] == 2  # a failed init is not kept: each attempt tries again
    assert unknown.is_error and unknown.result["error"].startswith("No resource named 'res_nope' on this worker (known: ")
    assert "'res_counted'" in unknown.result["error"] and "'res_pool'" in unknown.result["error"]
    assert wrong_kind.is_error and "'res_pool' is a pool (def_resource_pool)" in wrong_kind.result["error"]
    # Unknown names and kinds are mistakes in code: not retried. The broken init was (twice).
    # (The history records each activity's last attempt: two model calls and three tools.)
    attempts = activity_attempts(await history(handle))
    assert sorted(attempts) == [1, 1, 1, 1, 2]


async def test_resources_are_closed_when_the_worker_shuts_down(client):
    queue = new_id("resources-closing")
    w = create_worker(client, prompts=[app.res_closing_run], tools=[app.res_closing_use],
                      resources=[app.closing, app.closing_pool], task_queue=queue)
    async with w:
        result, steps = await run(client, app.res_closing_run, task_queue=queue)
        assert steps[0].tool_results[0].result == {"id": "res_closing#1", "pooled": "res_closing_pool#2"}
        assert log.INITS["res_closing_pool"] == 2  # min=2, made on first use
        assert not [c for c in log.CLEANED if c.startswith("res_closing")]  # open while the worker runs
    closed = [c for c in log.CLEANED if c.startswith("res_closing")]
    # Everything made is cleaned up once, the last used first (the pool, idle objects newest first).
    assert closed == ["res_closing_pool#2", "res_closing_pool#1", "res_closing#1"]


def test_bad_declarations_fail_where_they_are_written():
    with pytest.raises(ValueError, match=r"def_resource_pool\('p'\): min=3 is more than max=2"):
        def_resource_pool("p", dict, min=3, max=2)
    with pytest.raises(ValueError, match=r"acquire_timeout= is a number of seconds > 0"):
        def_resource_pool("p", dict, acquire_timeout=0)
    with pytest.raises(TypeError, match=r"def_resource\('db'\): init= is a function"):
        def_resource("db", "postgres://")
    with pytest.raises(TypeError, match=r"the name is a non-empty str"):
        def_resource("", dict)


async def test_worker_options_that_do_not_fit_are_refused(client):
    with pytest.raises(WorkerRoleError, match=r"resources=\[\.\.\.\] reach @tool activities, and a worker of role 'workflows'"):
        create_worker(client, prompts=[app.res_closing_run], resources=[app.closing], role="workflows")
    twin = def_resource("res_closing", init=dict)
    with pytest.raises(ValueError, match=r"two different resources are named 'res_closing'"):
        create_worker(client, app="tests.apps.resources_app", resources=[twin], task_queue=new_id("q"))


def test_a_prompt_function_is_told_where_resources_go():
    from lmthing.prompt.stateful_prompt import StatefulPrompt

    with pytest.raises(AttributeError, match=r"declare it at module level, `db = lmthing.def_resource\(\.\.\.\)`"):
        StatefulPrompt().def_resource("db", dict)
