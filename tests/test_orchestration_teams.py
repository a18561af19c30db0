"""Agent teams on the real dev server, with scripted members: vote tallies and tie-breaks,
consensus rounds, debates whose round k shows round k-1, sequential relays and a lead that
delegates to members as tools. Every member call is a child workflow."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from lmthing.prompt.types import StepRecord
from tests.apps import orchestration_app as app
from tests.support import run
from tests.test_orchestration import children_started, data_of, events_of


async def team_run(client: Client, task: str) -> tuple[dict[str, Any], list[StepRecord]]:
    """Run the team prompt with one pattern: the TeamResult the model was shown, and the steps."""
    result, steps = await run(client, app.orch_team, {"task": task})
    assert result.text == "Team done."
    return data_of(steps, "TEAM"), steps


async def test_vote_tallies_ballots_and_names_the_winner(client: Client, worker) -> None:
    team, steps = await team_run(client, "vote")
    assert team["tally"] == {"yes": 2, "no": 1}
    assert team["winner"] == "yes" and team["answer"] == "yes"
    ballots = {b["member"]: (b["choice"], b.get("reason")) for b in team["ballots"]}
    assert ballots == {"alice": ("yes", None), "bob": ("no", None), "carol": ("yes", None),
                       "dave": (None, "abstained: named none of the options")}
    # The ballots are on the step record as well.
    note = steps[0].orchestration[0]
    assert note["kind"] == "team" and note["winner"] == "yes" and len(note["ballots"]) == 4


async def test_tie_breaks(client: Client, worker) -> None:
    first, _ = await team_run(client, "tie-first")
    assert first["tied"] == ["yes", "no"] and first["winner"] == "yes"
    none, _ = await team_run(client, "tie-none")
    assert none["tied"] == ["yes", "no"] and none["winner"] is None
    agent, _ = await team_run(client, "tie-agent")
    assert agent["tied"] == ["yes", "no"] and agent["winner"] == "no"  # the splitter agent picked


async def test_consensus_runs_rounds_until_the_members_agree(client: Client, worker) -> None:
    team, _ = await team_run(client, "consensus")
    rounds = [[(c["member"], c["response"]) for c in r] for r in team["rounds"]]
    assert rounds == [[("ann", "42"), ("ben", "41")], [("ann", "42"), ("ben", "42")]]
    assert team["agreed"] is True and team["answer"] == "42"


async def test_debate_shows_each_round_the_previous_arguments_and_a_judge_decides(client: Client, worker) -> None:
    result, steps = await run(client, app.orch_team, {"task": "debate"})
    team = data_of(steps, "TEAM")
    first, second = team["rounds"]
    assert [(c["member"], c["response"]) for c in first] == [("pro", "pro round 1 answering []"), ("con", "con round 1 answering []")]
    assert [(c["member"], c["response"]) for c in second] == [
        ("pro", "pro round 2 answering [con: con round 1 answering []]"),
        ("con", "con round 2 answering [pro: pro round 1 answering []]"),
    ]
    assert team["winner"] == "pro" and team["verdict"] == "The winner is pro."
    assert team["answer"] == "pro round 2 answering [con: con round 1 answering []]"


async def test_debate_round_two_requests_contain_round_one_arguments(client: Client, worker) -> None:
    from lmthing.client import get_handle
    from tests.support import start

    handle = await start(client, app.orch_team, {"task": "debate"})
    await handle.result()
    children = children_started(await events_of(client, handle.id))
    round_two_pro = next(c for c in children if "/pro/" in c and "round1" in c)
    steps = await get_handle(client, round_two_pro).steps()
    sent = steps[0].request.messages[-1].content
    assert "What the others said before (round 0):\n- con: con round 1 answering []" in sent
    assert sum("/judge/" in c for c in children) == 1


async def test_sequential_members_see_the_earlier_answers(client: Client, worker) -> None:
    team, _ = await team_run(client, "sequential")
    assert [c["member"] for c in team["responses"]] == ["alice", "bob", "carol", "dave"]
    assert team["answer"] == "maybe later"


async def test_hierarchical_lead_delegates_to_members_as_tools(client: Client, worker) -> None:
    from lmthing.client import get_handle
    from tests.support import start

    handle = await start(client, app.orch_team, {"task": "hierarchical"})
    await handle.result()
    team = data_of(await handle.steps(), "TEAM")
    assert team["winner"] == "chair" and team["answer"] == "The chair decides: ship, as alice said yes."
    lead_id = next(c for c in children_started(await events_of(client, handle.id)) if "/board__lead/" in c)
    lead_steps = await get_handle(client, lead_id).steps()
    assert {"alice", "bob", "carol", "dave"} <= {t.name for t in lead_steps[0].request.tools}
    assert lead_steps[0].tool_results[0].result == {"response": "yes"}
    # The lead is hidden from the parent's model.
    _, steps = await run(client, app.orch_team, {"task": "vote"})
    assert "board__lead" not in {t.name for t in steps[0].request.tools}
