"""`lmthing agents list` (the agent registry), run for real as a subprocess. It only
imports and scans the app: no Temporal server is involved."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.support import REPO_ROOT, cli_env

ORCHESTRATION_APP = "tests.apps.orchestration_app"
AGENTS_APP = "tests.apps.agents_list_app"
TIMEOUT = 60.0


def agents_list(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmthing", "agents", "list", *args],
        cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )


def listed(*args: str) -> list[dict[str, Any]]:
    done = agents_list(*args, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = json.loads(done.stdout)
    assert isinstance(rows, list)
    return rows


def by_name(rows: list[dict[str, Any]], name: str, owner: str | None = None) -> dict[str, Any]:
    (row,) = [r for r in rows if r["name"] == name and r["owner"] == owner]
    return row


def block(out: str, header: str) -> str:
    """The lines of one entry of the human listing: its header line up to the next entry."""
    start = out.index(header)
    end = out.find("\n\n", start)
    return out[start:] if end == -1 else out[start:end]


def test_lists_prompts_orchestrations_and_sub_agents_for_people():
    done = agents_list("--app", ORCHESTRATION_APP)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout

    analyzer = block(out, "code_analyzer  prompt")
    assert "capabilities: code-review" in analyzer
    assert "Scores a piece of code from 1 to 10." in analyzer
    assert 'arguments: {"properties":{"task":{' in analyzer  # the schema, as compact JSON
    fixer = block(out, "code_fixer  prompt")
    assert "capabilities: code-review, editing" in fixer and "Suggests fixes for code." in fixer

    review = block(out, "standalone_review  workflow")
    assert "Analyze files, fix them if needed, and shout the result." in review
    assert '"files":{' in review

    # orch_team's function needs its input (a task without a default): not scanned.
    assert "(sub-agents not listed: the prompt function needs its input)" in block(out, "orch_team  prompt")
    assert "arguments: (no arguments)" in block(out, "orch_triage  prompt")
    billing = block(out, "billing  agent of orch_triage")
    assert "Handles payments and refunds" in billing and '"task"' in billing
    assert "Handles everything else" in block(out, "support  agent of orch_triage")
    # A prompt whose function raises while it is scanned is listed, with the error in one line.
    bad = block(out, "orch_bad_route  prompt")
    assert "running the prompt function to find them failed: DefinitionError: workflow 'broken'" in bad
    assert "Traceback" not in out


def test_json_has_the_schemas_and_the_def_agents():
    rows = listed("--app", ORCHESTRATION_APP)
    analyzer = by_name(rows, "code_analyzer")
    assert analyzer["kind"] == "prompt"
    assert analyzer["description"] == "Scores a piece of code from 1 to 10."
    assert analyzer["capabilities"] == ["code-review"]
    assert analyzer["module"] == ORCHESTRATION_APP
    schema = analyzer["input_schema"]
    assert schema["properties"]["task"]["type"] == "string" and schema["required"] == ["task"]

    triage_agents = {r["name"]: r for r in rows if r["owner"] == "orch_triage"}
    assert set(triage_agents) == {"billing", "support"}
    assert {r["kind"] for r in triage_agents.values()} == {"agent"}
    assert triage_agents["billing"]["description"] == "Handles payments and refunds"
    assert triage_agents["billing"]["input_schema"]["properties"]["task"]["type"] == "string"
    assert by_name(rows, "orch_triage")["input_schema"] is None

    review = by_name(rows, "standalone_review")
    assert review["kind"] == "workflow"
    assert review["input_schema"]["properties"]["files"]["type"] == "array"
    assert by_name(rows, "orch_team")["note"] == "sub-agents not listed: the prompt function needs its input"
    assert not [r for r in rows if r["owner"] == "orch_team"]
    # Entries are the prompts (each followed by its def_agents), then the orchestrations.
    assert rows.index(by_name(rows, "billing", "orch_triage")) == rows.index(by_name(rows, "orch_triage")) + 1


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        (["editing"], ["code_fixer"]),
        (["code-review"], ["code_analyzer", "code_fixer"]),
        (["code-review", "editing"], ["code_fixer"]),
        (["no-such-capability"], []),
    ],
)
def test_capability_filter_keeps_entries_with_all_of_them(capabilities, expected):
    flags = [arg for c in capabilities for arg in ("--capability", c)]
    assert [r["name"] for r in listed("--app", ORCHESTRATION_APP, *flags)] == expected


def test_capability_filter_for_people():
    done = agents_list("--app", ORCHESTRATION_APP, "--capability", "editing")
    assert done.returncode == 0, done.stderr
    assert "1 agent(s) in tests.apps.orchestration_app with capabilities editing" in done.stdout
    assert "code_fixer  prompt" in done.stdout
    assert "code_analyzer" not in done.stdout and "orch_triage" not in done.stdout

    none = agents_list("--app", ORCHESTRATION_APP, "--capability", "flying")
    assert none.returncode == 0, none.stderr
    assert "declares all of the capabilities flying" in none.stdout


def test_scans_a_prompt_whose_args_have_defaults():
    rows = listed("--app", AGENTS_APP)
    names = [(r["name"], r["owner"]) for r in rows]
    owner = "agents_list_researcher"
    researcher = by_name(rows, owner)
    assert researcher["note"] is None and researcher["capabilities"] == ["research"]
    assert researcher["input_schema"]["properties"]["question"]["default"] == "What is new?"
    searcher = by_name(rows, "searcher", owner)
    assert searcher["kind"] == "agent" and searcher["capabilities"] == ["search", "research"]
    assert searcher["input_schema"]["properties"]["depth"]["type"] == "integer"
    # A composite agent, then its members by their call names.
    assert names[names.index(("writers", owner)):][:3] == [("writers", owner), ("writers.poet", owner), ("writers.critic", owner)]
    assert by_name(rows, "writers.critic", owner)["capabilities"] == ["review"]
    # Not listed: a team's hidden lead, and what the function declares after it starts a sub-agent.
    assert ("panel__lead", owner) not in names and ("after_start", owner) not in names

    broken = by_name(rows, "agents_list_broken")
    assert broken["note"] == (
        "sub-agents not listed: running the prompt function to find them failed: RuntimeError: no database in this process"
    )
    assert not [r for r in rows if r["owner"] == "agents_list_broken"]
    untyped = by_name(rows, "agents_list_untyped")
    assert untyped["input_schema"] is None and untyped["untyped_input"] is True
    relay = by_name(rows, "agents_list_relay")
    assert relay["kind"] == "pipeline" and relay["description"] == "Asks the researcher."

    assert [r["name"] for r in listed("--app", AGENTS_APP, "--capability", "review")] == ["writers.critic"]


def test_json_stays_parseable_when_the_app_prints():
    done = agents_list("--app", "tests/apps/agents_list_app.py", "--json")  # a .py file works too
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    assert "researcher scanned" in done.stderr  # the prompt function's print()

    people = agents_list("--app", AGENTS_APP)
    assert "arguments: (untyped: any JSON)" in block(people.stdout, "agents_list_untyped  prompt")
    assert "writers.poet  agent of agents_list_researcher" in people.stdout
    assert "RuntimeError: no database in this process" in block(people.stdout, "agents_list_broken  prompt")


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("tests.apps.no_such_module", "Error: Cannot find module 'tests.apps.no_such_module'"),
        ("tests/apps/no_such_file.py", "Error: No such file: tests/apps/no_such_file.py"),
        ("tests.support", "Error: No prompts found in tests.support"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_errors_are_one_line_and_exit_code_2(app, message, as_json):
    done = agents_list("--app", app, *(["--json"] if as_json else []))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
