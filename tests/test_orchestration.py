"""Orchestration against the real dev server: parallel policies, workflows, pipelines as
tools and standalone workflow types. Every agent is a child workflow and every
cancellation a real one, so the assertions read the histories the server recorded."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from lmthing.client import start_orchestration
from lmthing.orchestration import WorkflowResult
from tests.apps import orchestration_app as app
from tests.support import TEST_TASK_QUEUE, new_id, run, start


def children_started(events: list[Any]) -> list[str]:
    return [e.start_child_workflow_execution_initiated_event_attributes.workflow_id
            for e in events if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]


def kinds(events: list[Any]) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


async def events_of(client: Client, workflow_id: str) -> list[Any]:
    return list((await client.get_workflow_handle(workflow_id).fetch_history()).events)


def data_of(steps, name: str) -> dict:
    """The def_data block ``name`` the model was shown (YAML) at step 0, as a dict."""
    import yaml

    system = steps[0].request.system
    block = system.split(f"<{name}>\n", 1)[1].split(f"\n  </{name}>", 1)[0]
    return yaml.safe_load(block)


# --------------------------------------------------------------------------- parallel
async def test_first_wins_and_the_losing_branch_is_cancelled(client: Client, worker) -> None:
    handle = await start(client, app.orch_race, {"task": "first"})
    await handle.result()
    steps = await handle.steps()
    race = data_of(steps, "RACE")
    assert race["winner"] == "fast" and race["value"] == "fast wins"
    assert race["cancelled"] == ["slow"]
    parent = await events_of(client, handle.id)
    started = children_started(parent)
    slow_id = next(c for c in started if "/slow/" in c)
    assert "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in kinds(parent) or "CHILD_WORKFLOW_EXECUTION_CANCELED" in kinds(parent)
    assert "CHILD_WORKFLOW_EXECUTION_CANCELED" in kinds(parent)
    slow = kinds(await events_of(client, slow_id))
    assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in slow and slow[-1] == "WORKFLOW_EXECUTION_CANCELED"
    # The trace is on the step record too.
    note = steps[0].orchestration[0]
    assert note["kind"] == "parallel" and note["winner"] == "fast" and note["cancelled"] == ["slow"]


async def test_all_with_a_failing_branch_under_min_success(client: Client, worker) -> None:
    _, steps = await run(client, app.orch_race, {"task": "all"})
    race = data_of(steps, "RACE")
    assert race["value"] == {"fast": "fast wins", "fast2": "fast wins"}
    assert list(race["errors"]) == ["broken"] and "has 0 step(s)" in race["errors"]["broken"]


async def test_group_timeout_cancels_stragglers(client: Client, worker) -> None:
    handle = await start(client, app.orch_race, {"task": "timeout"})
    await handle.result()
    race = data_of(await handle.steps(), "RACE")
    assert race["timed_out"] == ["slow"] and race["cancelled"] == ["slow"]
    assert race["value"] == {"fast": "fast wins"}
    assert "TIMER_STARTED" in kinds(await events_of(client, handle.id))


async def test_n_best_returns_the_evaluators_top_choices(client: Client, worker) -> None:
    _, steps = await run(client, app.orch_nbest)
    best = data_of(steps, "BEST")
    assert best["best"] == ["b", "c"] and best["winner"] == "b"
    assert best["value"] == ["a much longer answer", "medium one"]
    assert best["scores"] == {"a": 1.0, "b": 5.0, "c": 3.0}


# --------------------------------------------------------------------------- workflows
async def test_workflow_routes_skips_loops_retries_and_recovers(client: Client, worker) -> None:
    handle = await start(client, app.orch_workflow)
    await handle.result()
    steps = await handle.steps()
    review = data_of(steps, "REVIEW")
    runs = [(r["step"], r["status"]) for r in review["runs"]]
    assert runs == [
        ("analyze", "ok"), ("polish", "skipped"),
        ("loop", "ok"), ("loop", "ok"), ("loop", "ok"), ("loop", "skipped"),
        ("flaky", "ok"), ("shout", "ok"), ("risky", "failed"), ("recover", "ok"),
    ]
    assert review["results"]["analyze"] == {"score": 4, "summary": "needs work"}
    assert review["results"]["loop"] == 3 and review["state"]["n"] == 3
    flaky = next(r for r in review["runs"] if r["step"] == "flaky")
    assert flaky["attempts"] == 3
    assert review["results"]["shout"] == {"text": "THIRD TIME LUCKY"}
    assert review["output"] == "recovered from: RuntimeError: the risky step broke"
    started = children_started(await events_of(client, handle.id))
    assert [c.split(handle.id + "/", 1)[1].split("/", 1)[0] for c in started] == ["analyzer", "flaky", "flaky", "flaky"]
    assert not any("/never/" in c for c in started)


async def test_max_duration_fails_the_run_and_cancels_the_step(client: Client, worker) -> None:
    handle = await start(client, app.orch_max_duration)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    message = str(failed.value.cause)
    assert "exceeded max_duration of 1.5 s during step 'crawl'" in message and "steps finished: quick" in message
    slow_id = next(c for c in children_started(await events_of(client, handle.id)) if "/slow/" in c)
    assert kinds(await events_of(client, slow_id))[-1] == "WORKFLOW_EXECUTION_CANCELED"


async def test_a_pipeline_is_a_tool_for_the_model(client: Client, worker) -> None:
    _, steps = await run(client, app.orch_as_tool)
    assert "pipeline_tool" in [t.name for t in steps[0].request.tools]
    result = steps[0].tool_results[0]
    assert result.is_error is False
    assert result.result["output"] == "WRITTEN: HELLO WORLD"
    assert list(result.result["stages"]) == ["wrap", "write", "shout", "pick"]
    assert [e["stage"] for e in steps[0].orchestration[0]["trace"]] == ["wrap", "write", "shout", "pick"]


# --------------------------------------------------------------------------- standalone
async def test_standalone_workflow_from_python(client: Client, worker) -> None:
    handle = await start_orchestration(client, app.standalone_review, {"files": ["a.py", "b.py"]},
                                       id=new_id("review"), task_queue=TEST_TASK_QUEUE)
    result = await handle.result()
    assert isinstance(result, WorkflowResult)
    assert result.results["analyze"] == {"score": 5, "summary": "fine"} or "5" in str(result.results["analyze"])
    assert result.output == {"text": "FIXED IT"}
    assert [e["step"] for e in await handle.steps()] == ["analyze", "fix", "shout"]


async def test_standalone_workflow_from_the_temporal_cli(dev_env, client: Client, worker) -> None:
    from lmthing.workers.dev_server import temporal_cli_path

    wf_id = new_id("cli-review")
    address = client.service_client.config.target_host
    done = subprocess.run(
        [temporal_cli_path(), "workflow", "start", "--address", address, "--task-queue", TEST_TASK_QUEUE,
         "--type", "standalone_review", "--workflow-id", wf_id, "--input", json.dumps({"files": ["x.py"]})],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = await client.get_workflow_handle(wf_id, result_type=WorkflowResult).result()
    assert result.output == {"text": "FIXED IT"}


async def test_standalone_workflow_rejects_bad_input(client: Client, worker) -> None:
    handle = await start_orchestration(client, app.standalone_review, {"files": "not a list"},
                                       id=new_id("review-bad"), task_queue=TEST_TASK_QUEUE)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "Invalid input for workflow 'standalone_review'" in str(failed.value.cause)
    assert "files" in str(failed.value.cause)


# --------------------------------------------------------------------------- plans
async def test_a_plan_of_sequence_loop_choose_and_a_majority_vote(client: Client, worker) -> None:
    handle = await start(client, app.orch_plan, {"task": "majority"})
    await handle.result()
    steps = await handle.steps()
    assert "<PLAN>\n Paris\n  </PLAN>" in steps[0].request.system
    trace = steps[0].orchestration[0]["trace"]
    assert [e["kind"] for e in trace] == ["loop_while", "choose", "choose", "parallel"]
    assert trace[0]["iterations"] == 3 and trace[1]["chose"] == "then" and trace[2]["chose"] == "summarize"
    assert trace[3]["groups"] == [["x", "y"], ["z"]] and trace[3]["winner"] == "x"
    started = children_started(await events_of(client, handle.id))
    assert [c.split(handle.id + "/", 1)[1].split("/", 1)[0] for c in started[:2]] == ["router", "summarizer"]
    # The router was asked with the branch names as its options.
    from lmthing.client import get_handle

    router_steps = await get_handle(client, started[0]).steps()
    assert "big 5" in router_steps[0].request.messages[-1].content


async def test_consensus_aggregation_fails_when_the_answers_differ(client: Client, worker) -> None:
    handle = await start(client, app.orch_plan, {"task": "consensus"})
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "no consensus: x, y answered 'Paris'; z answered 'Lyon'" in str(failed.value.cause)


async def test_n_best_with_a_judge_agent_and_agents_selected_by_capability(client: Client, worker) -> None:
    _, steps = await run(client, app.orch_judged)
    best = data_of(steps, "BEST")
    assert best["best"] == ["b"] and best["value"] == "a much longer answer"
    assert best["writers"] == ["a", "b"]
    assert best["voters"] == ["ballot_no", "ballot_yes"]  # prompts of the worker that declare "voting"


async def test_a_standalone_team_vote_of_prompts(client: Client, worker) -> None:
    from lmthing.orchestration import TeamResult

    handle = await start_orchestration(client, app.board_vote, "Ship it?", id=new_id("vote"), task_queue=TEST_TASK_QUEUE)
    result = await handle.result()
    assert isinstance(result, TeamResult)
    assert result.tally == {"yes": 2, "no": 1} and result.winner == "yes"
    assert [b.member for b in result.ballots] == ["ballot_yes", "ballot_no", "ballot_yes2"]
    assert (await handle.steps())[0]["tally"] == {"yes": 2, "no": 1}


async def test_every_agent_child_says_in_the_ui_which_agent_and_step_it_is(client: Client, worker) -> None:
    handle = await start(client, app.orch_workflow)
    await handle.result()
    started = children_started(await events_of(client, handle.id))
    summaries = [await (await client.get_workflow_handle(c).describe()).static_summary() for c in started]
    assert summaries[0] == "agent analyzer · analyzer/workflow.review.default/analyze.0/1/analyzer"
    assert summaries[1].startswith("agent flaky · flaky/workflow.review.default/flaky.0/1/")
