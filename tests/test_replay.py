"""Replay: recorded histories (tests/histories/*.json) replay against the current code.

A change that alters the commands a prompt workflow issues for the same history (a tool
that no longer runs as an activity, another activity type, a missing sub-agent, a new
timer...) would break every run in flight when the change is deployed. These tests catch
it before: each history is replayed through Temporal's Replayer with the same workflow
sandbox and data converter as the worker. When such a change is deliberate, re-record the
histories with ``python -m tests.histories.record`` and say why in the change.
"""

from __future__ import annotations

import base64
import json
import pkgutil
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import tests.apps as apps
from lmthing.client import data_converter
from lmthing.workers import sandbox_runner
from lmthing.workers.factory import collect_all
from tests import replay_variants
from tests.apps import replay_examples
from tests.histories.record import machine_specific_strings, readable_text, workflow_id_for

HISTORY_DIR = Path(__file__).resolve().parent / "histories"
HISTORY_FILES = sorted(HISTORY_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    # A child workflow's id is part of its parent's commands, so replay needs the real id.
    return WorkflowHistory.from_json(workflow_id_for(path), path.read_text())


def all_prompts() -> list[type]:
    """Every workflow type of the test apps: prompts and standalone orchestrations."""
    from lmthing.workflows.board_workflow import BoardWorkflow
    from lmthing.workflows.breaker_workflow import CircuitBreakerWorkflow
    from lmthing.workflows.topic_workflow import TopicWorkflow

    prompts, _, orchestrations = collect_all(f"tests.apps.{m.name}" for m in pkgutil.iter_modules(apps.__path__))
    return [*prompts, *orchestrations, TopicWorkflow, BoardWorkflow, CircuitBreakerWorkflow]


def replayer(workflows: list[type]) -> Replayer:
    return Replayer(workflows=workflows, workflow_runner=sandbox_runner(), data_converter=data_converter())


def test_every_example_has_a_history() -> None:
    names = {p.name for p in HISTORY_FILES}
    for prompt in replay_examples.EXAMPLES:
        assert f"{prompt.spec.name.replace('_', '-')}.json" in names, "run python -m tests.histories.record"
    for workflow_id in replay_examples.STANDALONE:
        assert f"{workflow_id}.json" in names, f"run python -m tests.histories.record {workflow_id}"
    # The sub-agent example recorded its two concurrent child workflows too.
    assert sum(n.startswith("replay-subagent__researcher__") for n in names) == 2
    # The followed example holds the end-of-stream hand-over: its patch marker, then the
    # caller's poll that took the last events, before the run completed.
    for workflow_id in replay_examples.FOLLOWED:
        assert f"{workflow_id}.json" in names, f"run python -m tests.histories.record {workflow_id}"
        kinds = [e["eventType"] for e in json.loads((HISTORY_DIR / f"{workflow_id}.json").read_text())["events"]]
        marker = kinds.index("EVENT_TYPE_MARKER_RECORDED")
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED" in kinds[marker:]
        assert kinds[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    # Runs recorded since 2026-12-02 start with the agent's search attribute, children too
    # (set in the start command: no event of its own).
    events = json.loads((HISTORY_DIR / "replay-subagent-followed.json").read_text())["events"]
    starts = [e.get("workflowExecutionStartedEventAttributes") or e.get("startChildWorkflowExecutionInitiatedEventAttributes")
              for e in events if e["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
                                                    "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED")]
    agents = [base64.b64decode(a["searchAttributes"]["indexedFields"]["LmthingAgent"]["data"]) for a in starts]
    assert agents == [b'"replay_subagent"', b'"researcher"', b'"researcher"']


def test_the_messaging_histories_hold_a_long_lived_agent_a_topic_and_a_board() -> None:
    def kinds(name: str) -> list[str]:
        return [e["eventType"].removeprefix("EVENT_TYPE_") for e in json.loads((HISTORY_DIR / name).read_text())["events"]]

    runs = sorted(HISTORY_DIR.glob("replay-live@*.json"))
    assert len(runs) >= 3, "run python -m tests.histories.record messaging"
    # Every run of the chain but the last continued as new; each answered asks (updates).
    for path in runs[:-1]:
        assert kinds(path.name)[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    assert kinds(runs[-1].name)[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert all("WORKFLOW_EXECUTION_UPDATE_COMPLETED" in kinds(p.name) for p in runs[:-1])
    topic = json.dumps(json.loads((HISTORY_DIR / "lmthing-topic:replay-news.json").read_text()))
    assert '"name": "lmthing.deliver"' in topic and kinds("lmthing-topic:replay-news.json").count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") >= 3
    assert "WORKFLOW_EXECUTION_UPDATE_COMPLETED" in kinds("lmthing-board:replay-board.json")


def test_the_breaker_history_holds_a_whole_cycle() -> None:
    """Recorded by ``python -m tests.histories.record breaker``: acquire/record updates that
    open the breaker, the probe that closes it, and a reset."""
    events = json.loads((HISTORY_DIR / "lmthing-breaker:replay-breaker.json").read_text())["events"]
    names = [e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"]
             for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    assert names == ["acquire", "record", "acquire", "record", "acquire", "record", "reset"]
    assert events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] == "lmthing.circuit_breaker"


def _recorded(name: str) -> tuple[list[str], list[str], list[dict], Any]:
    """A history file's event kinds, timer and activity summaries, failures and result."""
    events = json.loads((HISTORY_DIR / f"{name}.json").read_text())["events"]
    kinds = [e["eventType"].removeprefix("EVENT_TYPE_") for e in events]
    summaries = [json.loads(base64.b64decode(e["userMetadata"]["summary"]["data"]))
                 for e in events if "summary" in e.get("userMetadata", {})]
    failures = [e["activityTaskFailedEventAttributes"]["failure"] for e in events if "activityTaskFailedEventAttributes" in e]
    done = events[-1].get("workflowExecutionCompletedEventAttributes")
    result = json.loads(base64.b64decode(done["result"]["payloads"][0]["data"])) if done else None
    return kinds, summaries, failures, result


def test_the_resilience_histories_hold_what_they_were_recorded_for() -> None:
    """Recorded by ``python -m tests.histories.record replay-cascade replay-retries ...``."""
    kinds, summaries, failures, result = _recorded("replay-cascade")
    # Per step: the first model's two attempts fail (one activity), a timer, the next model.
    assert summaries.count("fallback models: next model scripted:replay-backup") == 2
    assert [f["applicationFailureInfo"]["type"] for f in failures] == ["ServerError"] * 2
    assert result["text"] == "Oslo is 4 C."
    kinds, summaries, failures, result = _recorded("replay-retries")
    assert [s for s in summaries if s.startswith("retry")] == ["retry net: attempt 2 of 4", "retry net: attempt 3 of 4"]
    assert summaries.count("replay_flaky (retry net)") == 3 and len(failures) == 2
    assert '"calls":3' in result["text"]
    kinds, summaries, _, result = _recorded("replay-guard-skip")
    assert kinds.count("ACTIVITY_TASK_SCHEDULED") == 2 and result["text"] == "I may not look."  # two model calls, no lookup
    kinds, _, _, result = _recorded("replay-guard-ask")
    assert kinds.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 1 and result["decisions"][0]["by"] == "recorder"
    assert kinds.count("ACTIVITY_TASK_SCHEDULED") == 3 and '"celsius":18' in result["text"]  # approved: it ran
    kinds, _, _, result = _recorded("replay-validator")
    assert result["steps"] == 4 and kinds.count("ACTIVITY_TASK_SCHEDULED") == 6  # 4 model calls, 2 lookups
    kinds, _, _, result = _recorded("replay-budget-tree")
    assert result["stop_reason"] == "budget" and kinds.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") >= 4
    _, summaries, _, scout = _recorded("replay-budget-tree__scout__call_1_0")
    assert scout["stop_reason"] == "budget" and summaries.count("budget spend") == scout["steps"]
    kinds, _, _, result = _recorded("replay-moderation")
    assert result["text"] == "[city] is cold." and [m["action"] for m in result["moderation"]] == ["flag", "filter", "filter"]
    kinds, summaries, _, result = _recorded("replay-domains")
    assert kinds.count("ACTIVITY_TASK_SCHEDULED") == 3 and result["text"] == "Fetched one."  # 2 model calls, 1 fetch
    kinds, summaries, _, lead = _recorded("replay-sub-budget__lead__call_0_0")
    # The scout's reports reach the lead's update handler, which passes each on to the root.
    assert lead["stop_reason"] == "budget" and kinds.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") >= 2
    assert summaries.count("budget spend") >= 3
    _, _, _, root = _recorded("replay-sub-budget")
    assert root["stop_reason"] == "answer"
    kinds, _, _, result = _recorded("replay-budget-reported")
    assert result["stop_reason"] == "budget" and kinds.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") >= 4
    kinds, summaries, _, scout = _recorded("replay-budget-reported__scout__call_1_0")
    # The patch marker, and the spend reported by the model activities: no budget activity.
    assert kinds.count("MARKER_RECORDED") == 1 and "budget spend" not in summaries and scout["stop_reason"] == "budget"


def test_the_memory_history_holds_its_reads_writes_and_cache_hit() -> None:
    """Recorded by ``python -m tests.histories.record replay-memory``: a kv memory written
    once and read before each step, persisted state saved when it changed, and a cached
    tool that missed and then hit (docs/memory.md)."""
    kinds, summaries, _, result = _recorded("replay-memory")
    assert summaries.count("remember replay-notes/city") == 1
    assert summaries.count("recall replay-notes/city") == 3  # the prompt function runs before each step
    assert summaries.count("recall _state/replay-lookups") == 1 and summaries.count("remember _state/replay-lookups") == 3
    events = json.loads((HISTORY_DIR / "replay-memory.json").read_text())["events"]
    results = [e["activityTaskCompletedEventAttributes"].get("result", {}).get("payloads", [{}])[0].get("data")
               for e in events if "activityTaskCompletedEventAttributes" in e]
    cached = [json.loads(base64.b64decode(r)) for r in results if r]
    assert [c["lmthing_cache"] for c in cached if isinstance(c, dict) and "lmthing_cache" in c] == ["miss", "hit"]
    assert result["text"] == "Remembered Oslo." and result["state"]["replay-lookups"] == 2


def test_the_role_history_holds_the_allowed_tools_only() -> None:
    """Recorded by ``python -m tests.histories.record replay-role``: built-in tools run as
    activities; the tool the role does not allow was never scheduled."""
    events = json.loads((HISTORY_DIR / "replay-role.json").read_text())["events"]
    scheduled = [e["activityTaskScheduledEventAttributes"]["activityType"]["name"] for e in events
                 if "activityTaskScheduledEventAttributes" in e]
    assert "lmthing.tool.calculate" in scheduled and "lmthing.tool.text_stats" in scheduled
    assert "lmthing.tool.replay_fetch" not in scheduled
    _, _, _, result = _recorded("replay-role")
    assert result["text"] == "It is 42."


def test_the_mcp_history_holds_one_listing_and_its_calls() -> None:
    """Recorded by ``python -m tests.histories.record replay-mcp`` (docs/mcp.md): the
    server's tools listed once for three steps, and three tool calls, one an error."""
    events = json.loads((HISTORY_DIR / "replay-mcp.json").read_text())["events"]
    types = [e["activityTaskScheduledEventAttributes"]["activityType"]["name"] for e in events
             if "activityTaskScheduledEventAttributes" in e]
    assert types.count("lmthing.mcp.list_tools") == 1 and types.count("lmthing.mcp.call_tool") == 3
    assert types.count("lmthing.model_call") == 3
    _, _, _, result = _recorded("replay-mcp")
    assert result["text"] == "2 + 3 = 5."


async def test_recorded_histories_replay_without_nondeterminism() -> None:
    assert HISTORY_FILES, "no histories under tests/histories"
    histories = {path.name: load(path) for path in HISTORY_FILES}
    file_of_run = {h.run_id: name for name, h in histories.items()}
    assert len(file_of_run) == len(histories), "two history files hold the same run"

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories.values():
            yield history

    results = await replayer(all_prompts()).replay_workflows(each(), raise_on_replay_failure=False)

    failures = {file_of_run[run_id]: f"{type(err).__name__}: {err}" for run_id, err in results.replay_failures.items()}
    assert failures == {}, "histories that no longer replay (see tests/histories/record.py):\n" + "\n".join(
        f"  {name}: {err}" for name, err in failures.items()
    )


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        # The model's reply (from history) asks for replay_lookup; the variant no longer
        # schedules its activity and goes straight to the next model call.
        (replay_variants.lookup_in_workflow, "'lmthing.tool.replay_lookup' does not match activity type of activity command 'lmthing.model_call'"),
        (replay_variants.lookup_other_activity, "'lmthing.tool.replay_lookup' does not match activity type of activity command 'lmthing.tool.replay_lookup_v2'"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
async def test_an_incompatible_change_fails_replay(variant: type, expected: str) -> None:
    assert variant.spec.name == replay_examples.replay_tools_state.spec.name
    history = load(HISTORY_DIR / "replay-tools-state.json")
    result = await replayer([variant]).replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure
    assert expected in str(result.replay_failure)


async def test_a_reordered_standalone_workflow_fails_replay() -> None:
    from lmthing.workers.factory import bind_to_module

    bind_to_module(replay_variants.flow_reordered, replay_variants.__name__, "flow_reordered")
    history = load(HISTORY_DIR / "replay-flow.json")
    result = await replayer([replay_variants.flow_reordered, replay_variants.replay_analyst]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure


async def test_replay_under_another_workflow_id_fails_for_a_parent() -> None:
    """Why history files are named after their workflow id: sub-agent ids derive from it."""
    history = WorkflowHistory.from_json("another-id", (HISTORY_DIR / "replay-subagent.json").read_text())
    result = await replayer(all_prompts()).replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError)
    assert "Child workflow id" in str(result.replay_failure)


async def test_a_change_of_wording_only_still_replays() -> None:
    """What the check does not see: activity inputs (prompt text) are not compared."""
    history = load(HISTORY_DIR / "replay-tools-state.json")
    result = await replayer([replay_variants.reworded]).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_replay_of_an_unknown_prompt_is_reported() -> None:
    """A prompt that was renamed or removed cannot replay its runs: the Replayer says so."""
    history = load(HISTORY_DIR / "replay-parallel.json")
    result = await replayer([replay_examples.replay_tools_state]).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "replay_parallel" in str(result.replay_failure)


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.name)
def test_history_is_machine_neutral(path: Path) -> None:
    data = json.loads(path.read_text())
    text = readable_text(data)  # payloads decoded
    leaks = [s for s in machine_specific_strings() if s in text]
    assert not leaks, f"{path.name} contains {leaks}"
    assert not re.search(r'"(/home|/Users|/root|/tmp|/work|[A-Z]:\\\\)', text), f"{path.name} contains an absolute path"
    identities = set(re.findall(r'"identity": "([^"]*)"', json.dumps(data)))
    assert all(not re.fullmatch(r"\d+@.*", i) for i in identities), f"{path.name}: default pid@host identity {identities}"
    assert not re.search(r"(api[_-]?key|authorization|bearer|secret)", text, re.IGNORECASE), f"{path.name} mentions a secret"
