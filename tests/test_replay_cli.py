"""`lmthing replay`, `lmthing history export` and `lmthing reset`, run for real as
subprocesses (``python -m lmthing ...``) against the session's dev server and worker.

The prompt (tests/apps/reset_app.py) looks a city up at step 0, publishes through a
critical ``@tool`` at step 1 and answers at step 2 (steps count from 0). With the publisher
"broken" (a flag the tool reads on the worker side) the run fails at step 1; the tests then "deploy the fix"
(flip the flag) and reset the failed run, which must finish without calling the model
again for the steps before the reset point.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from lmthing.client import get_handle
from lmthing.client.history import load_history_file, model_steps
from lmthing.client.replay import replay_history
from lmthing.client.reset import model_calls_after
from lmthing.prompt.types import RunResult
from lmthing.workers import collect, create_worker
from lmthing.workers.dev_server import start_dev_server
from tests import replay_variants
from tests.apps import replay_examples, reset_app, runs_app
from tests.support import new_id, scheduled_activities, start

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
PUBLISH = reset_app.reset_publish.activity_name
APP = "tests.apps.reset_app"
VARIANT = "tests.reset_variants"
_calls = itertools.count()


@dataclass
class Done:
    code: int
    out: str
    err: str


async def lmthing(tmp_path: Path, *args: str) -> Done:
    """``python -m lmthing *args``: stdout drained by communicate(), stderr into a file."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "LMTHING_APP")}
    err_path = tmp_path / f"lmthing-{next(_calls)}.stderr"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", *args,
            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Done(proc.returncode or 0, out.decode(), err_path.read_text())


def address_of(client: Client) -> str:
    return client.service_client.config.target_host


@contextmanager
def publisher_broken() -> Iterator[None]:
    reset_app.PUBLISHER["broken"] = True
    try:
        yield
    finally:
        reset_app.PUBLISHER["broken"] = False


async def finished_run(client: Client) -> str:
    handle = await start(client, reset_app.reset_report)
    result = await asyncio.wait_for(handle.result(), TIMEOUT)
    assert result.steps == 3
    return handle.id


async def failed_run(client: Client) -> str:
    """A run that fails at step 2 because the (critical) publisher is broken."""
    with publisher_broken():
        handle = await start(client, reset_app.reset_report)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), TIMEOUT)
    cause = failed.value.cause
    assert cause.type == "CriticalToolFailed", cause
    assert "publisher bug" in cause.message
    return handle.id


def new_run_id(out: str) -> str:
    found = re.search(r"New run id: (\S+)", out)
    assert found, out
    return found.group(1)


def reset_event_id(history: WorkflowHistory) -> int:
    """Where the new run's own history starts: the workflow task the reset failed."""
    (event,) = [
        e for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    ]
    return event.event_id


def assert_published(result: RunResult) -> None:
    assert result.steps == 3 and result.stop_reason == "answer"
    assert result.text.startswith("Published: ")
    assert json.loads(result.text.removeprefix("Published: ")) == {
        "published": "Paris is 18 C",
        "url": "https://reports.example/paris-is-18-c",
    }


# ------------------------------------------------------------------------------- replay
async def test_replay_of_a_finished_run_is_deterministic(client, worker, tmp_path):
    workflow_id = await finished_run(client)
    done = await lmthing(tmp_path, "replay", workflow_id, "--address", address_of(client), "--app", APP)
    assert done.code == 0, done.out + done.err
    assert re.fullmatch(rf"{workflow_id} \(run \S+, \d+ events\) against {APP}: deterministic\n", done.out), done.out


async def test_replay_names_the_step_and_command_of_an_incompatible_change(client, worker, tmp_path):
    workflow_id = await finished_run(client)
    done = await lmthing(tmp_path, "replay", workflow_id, "--address", address_of(client), "--app", VARIANT)
    assert done.code == 1, done.out + done.err
    lines = done.out.splitlines()
    assert lines[0].endswith(f"against {VARIANT}: NOT deterministic"), done.out
    # Step 1's reply asked for reset_publish: history ran it as an activity, the changed
    # code runs it in the workflow and goes on to the next model call.
    assert re.fullmatch(r"  Diverged at step 1 \(tool calls, after its model reply, workflow task completed at event \d+\)", lines[1])
    assert re.fullmatch(rf"  History recorded: ActivityTaskScheduled {PUBLISH} \(tool 'reset_publish'\) \(event \d+\)", lines[2])
    assert lines[3] == (
        "  The code now:     [TMPRL1100] Nondeterminism error: Activity type of scheduled event "
        f"'{PUBLISH}' does not match activity type of activity command 'lmthing.model_call'"
    )
    assert f"lmthing reset {workflow_id} --to-step 1" in done.out
    assert "Traceback" not in done.err


async def test_replay_with_children_replays_the_sub_agents_too(client, worker, tmp_path):
    handle = await start(client, replay_examples.replay_subagent)
    await asyncio.wait_for(handle.result(), TIMEOUT)
    app = "tests.apps.replay_examples"
    done = await lmthing(tmp_path, "replay", handle.id, "--children", "--address", address_of(client), "--app", app)
    assert done.code == 0, done.out + done.err
    lines = done.out.splitlines()
    assert len(lines) == 3 and all(line.endswith(": deterministic") for line in lines), done.out
    assert lines[0].startswith(f"{handle.id} (run ")
    assert sorted(line.split(" ")[0] for line in lines[1:]) == [
        f"{handle.id}/researcher/call_0_0", f"{handle.id}/researcher/call_0_1"
    ]


async def test_a_divergence_is_located_in_a_recorded_history():
    """Without a server: tests/histories/replay-tools-state.json against a variant whose
    lookup tool no longer runs as an activity."""
    history = WorkflowHistory.from_json("replay-tools-state", (ROOT / "tests/histories/replay-tools-state.json").read_text())
    report = await replay_history(history, [replay_variants.lookup_in_workflow])
    assert not report.deterministic and report.error is None
    d = report.divergence
    assert (d.step, d.phase, d.workflow_task_event_id) == (0, "tool calls, after its model reply", 10)
    assert d.recorded == ["ActivityTaskScheduled lmthing.tool.replay_lookup (tool 'replay_lookup') (event 11)"]
    assert "does not match activity type of activity command 'lmthing.model_call'" in d.message
    assert (await replay_history(history, [replay_variants.reworded])).deterministic


async def test_replay_of_an_unknown_workflow_is_a_clear_error(client, tmp_path):
    done = await lmthing(tmp_path, "replay", "no-such-run", "--address", address_of(client), "--app", APP)
    assert done.code == 1
    assert "Error: No workflow with id 'no-such-run' in namespace 'default'" in done.err
    assert "Traceback" not in done.err


async def test_replay_needs_an_app(tmp_path):
    done = await lmthing(tmp_path, "replay", "some-id")
    assert done.code == 2 and "Give --app MODULE (or set LMTHING_APP)" in done.err


# ----------------------------------------------------------------------- history export
async def test_exported_history_replays(client, worker, tmp_path):
    workflow_id = await finished_run(client)
    path = tmp_path / "exported.json"
    done = await lmthing(tmp_path, "history", "export", workflow_id, "-o", str(path), "--address", address_of(client))
    assert done.code == 0, done.err
    assert f"Wrote {path}: " in done.err

    # Temporal's own Replayer accepts it, as tests/test_replay.py would use it.
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    assert history.events == (await client.get_workflow_handle(workflow_id).fetch_history()).events
    prompts, _ = collect([reset_app])
    assert (await replay_history(history, prompts)).deterministic
    # The workflow id comes back from the file (the first event records it).
    assert load_history_file(path).workflow_id == workflow_id

    done = await lmthing(tmp_path, "replay", "--history-file", str(path), "--app", APP)
    assert done.code == 0 and done.out.endswith(": deterministic\n"), done.out + done.err
    done = await lmthing(tmp_path, "replay", "--history-file", str(path), "--app", VARIANT)
    assert done.code == 1 and "Diverged at step 1" in done.out, done.out + done.err

    # Without -o: the same JSON on stdout; into a folder: named after the workflow id.
    done = await lmthing(tmp_path, "history", "export", workflow_id, "--address", address_of(client))
    assert done.code == 0 and json.loads(done.out) == json.loads(path.read_text())
    folder = tmp_path / "histories"
    folder.mkdir()
    done = await lmthing(tmp_path, "history", "export", workflow_id, "-o", str(folder), "--address", address_of(client))
    assert done.code == 0 and (folder / f"{workflow_id}.json").exists(), done.err


# --------------------------------------------------------------------------------- reset
async def test_reset_to_a_step_redoes_it_with_the_fixed_tool_and_keeps_earlier_steps(client, worker, tmp_path):
    workflow_id = await failed_run(client)
    # The fix is deployed (the tool reads the flag on the worker side).
    done = await lmthing(tmp_path, "reset", workflow_id, "--to-step", "1", "--address", address_of(client))
    assert done.code == 0, done.out + done.err
    assert re.search(r"to event \d+: the workflow task that scheduled step 1's model call\.", done.out), done.out
    assert "Model steps kept from history, not called again: 1" in done.out
    run_id = new_run_id(done.out)

    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=RunResult)
    assert_published(await asyncio.wait_for(handle.result(), TIMEOUT))
    history = await handle.fetch_history()
    reset_at = reset_event_id(history)
    # Step 0's model call comes from the old run's history; steps 1 and 2 ran again.
    assert [s.step for s in model_steps(history)] == [0, 1, 2]
    assert model_calls_after(history, reset_at) == [1, 2]
    assert reset_app.MODEL_CALLS[(workflow_id, 0)] == 1  # the model was called once for step 0, ever
    assert reset_app.MODEL_CALLS[(workflow_id, 1)] == 2  # failed run + reset run
    assert reset_app.MODEL_CALLS[(workflow_id, 2)] == 1
    # The latest run (the reset one) is what `get_handle` follows now, and it replays.
    assert (await get_handle(client, workflow_id).result()).text.startswith("Published: ")
    done = await lmthing(tmp_path, "replay", workflow_id, "--address", address_of(client), "--app", APP)
    assert done.code == 0 and f"(run {run_id}," in done.out and done.out.endswith(": deterministic\n"), done.out


async def test_reset_to_the_last_failure_redoes_only_the_failed_tool(client, worker, tmp_path):
    workflow_id = await failed_run(client)
    done = await lmthing(tmp_path, "reset", workflow_id, "--last-failure", "--reason", "publisher fixed", "--address", address_of(client))
    assert done.code == 0, done.out + done.err
    assert re.search(
        rf"to event \d+: the workflow task that scheduled what failed: ActivityTaskScheduled {PUBLISH} "
        r"\(tool 'reset_publish'\) \(event \d+\), then ActivityTaskFailed \(event \d+\): publisher bug: cannot encode the title\.",
        done.out,
    ), done.out
    assert "Model steps kept from history, not called again: 2" in done.out
    run_id = new_run_id(done.out)

    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=RunResult)
    assert_published(await asyncio.wait_for(handle.result(), TIMEOUT))
    history = await handle.fetch_history()
    reset_at = reset_event_id(history)
    assert model_calls_after(history, reset_at) == [2]
    after = [e for e in history.events if e.event_id > reset_at]
    assert scheduled_activities(after) == [PUBLISH, "lmthing.model_call"]
    assert [reset_app.MODEL_CALLS[(workflow_id, s)] for s in (0, 1, 2)] == [1, 1, 1]
    reason = next(e for e in history.events if e.event_id == reset_at).workflow_task_failed_event_attributes.cause
    assert reason == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW


async def test_reset_errors_are_clear(client, worker, tmp_path):
    address = address_of(client)
    workflow_id = await finished_run(client)
    done = await lmthing(tmp_path, "reset", workflow_id, "--to-step", "7", "--address", address)
    assert done.code == 1
    assert f"Error: Step 7 is out of range: workflow '{workflow_id}' has run steps 0 to 2" in done.err
    done = await lmthing(tmp_path, "reset", workflow_id, "--last-failure", "--address", address)
    assert done.code == 1 and "Found no failure to reset to" in done.err and "completed" in done.err
    done = await lmthing(tmp_path, "reset", "no-such-run", "--to-step", "1", "--address", address)
    assert done.code == 1 and "Error: No workflow with id 'no-such-run'" in done.err
    done = await lmthing(tmp_path, "reset", workflow_id, "--address", address)
    assert done.code == 2 and "Give exactly one of --to-step N and --last-failure" in done.err
    done = await lmthing(tmp_path, "reset", workflow_id, "--to-step", "-1", "--address", address)
    assert done.code == 2
    done = await lmthing(tmp_path, "history", "export", "no-such-run", "--address", address)
    assert done.code == 1 and "Error: No workflow with id 'no-such-run'" in done.err
    for d in (done,):
        assert "Traceback" not in d.err


# ---------------------------------------------------------------------- continue-as-new
async def test_replay_and_reset_follow_a_continue_as_new_chain(tmp_path):
    """A dev server that suggests continue-as-new after a few events: `lmthing replay`
    replays every run of the chain, and a step of an earlier run can be reset to."""
    env: WorkflowEnvironment = await start_dev_server(dynamic_config={"limit.historyCount.suggestContinueAsNew": 20})
    try:
        queue = new_id("can-replay")
        async with create_worker(env.client, app="tests.apps.runs_app", task_queue=queue):
            handle = await start(env.client, runs_app.counter, task_queue=queue)
            await asyncio.wait_for(handle.result(), TIMEOUT)
            runs = (await handle.status()).continued_runs + 1
            assert runs >= 3
            done = await lmthing(tmp_path, "replay", handle.id, "--address", address_of(env.client), "--app", "tests.apps.runs_app")
            assert done.code == 0, done.out + done.err
            assert done.out.count(": deterministic\n") == runs, done.out

            # Step 1 was made by the first run of the chain, not the latest.
            first_run = handle.handle.result_run_id
            done = await lmthing(tmp_path, "reset", handle.id, "--to-step", "1", "--address", address_of(env.client))
            assert done.code == 0, done.out + done.err
            assert f"(run {first_run})" in done.out
            new = env.client.get_workflow_handle(handle.id, run_id=new_run_id(done.out), result_type=RunResult)
            result = await asyncio.wait_for(new.result(), TIMEOUT)  # follows the new chain
            assert result.text == "counted" and result.steps == runs_app.COUNT_STEPS
            assert result.state["total"] == sum(range(1, runs_app.COUNT_STEPS))
    finally:
        await env.shutdown()
