"""A budget inside the tree's budget (def_constraint in a sub-agent, docs/resilience.md): the
sub-agent's subtree stops at its own limit while the tree goes on, and every token still
counts toward the tree's budget, once; the tree's limit stops the subtree too."""

from __future__ import annotations

from lmthing.client import get_handle
from tests.apps import sub_budget_app as app
from tests.support import start


def _tokens(usage) -> int:
    return usage["input_tokens"] + usage["output_tokens"]


async def _child_ids(handle) -> list[str]:
    return [e.workflow_id async for e in handle.full_stream() if e.type == "agent_start"]


async def test_a_sub_agents_own_budget_stops_its_subtree_and_the_tree_counts_it(client, worker):
    handle = await start(client, app.nested_budget, {"tree": 1_000_000, "team": 600})
    result = await handle.result()
    assert result.stop_reason == "answer" and result.text == "the root is done"  # the tree went on
    [lead_id] = await _child_ids(handle)
    lead = get_handle(client, lead_id)
    lead_result = await lead.result()
    assert lead_result.stop_reason == "budget" and lead_result.steps < 30  # stopped by its own budget
    [helper_id] = await _child_ids(lead)
    helper_result = await get_handle(client, helper_id).result()
    assert helper_result.stop_reason == "budget" and helper_result.steps < 30  # the lead's budget covers it
    team = await lead.handle.query("budget")
    assert team["exceeded"]["name"] == "team" and team["tokens"] >= 600
    lead_own = sum(s.response.usage.input_tokens + s.response.usage.output_tokens for s in await lead.steps())
    helper_tokens = _tokens(helper_result.usage.model_dump())
    assert team["tokens"] == lead_own + helper_tokens
    tree = await handle.handle.query("budget")
    root_own = sum(s.response.usage.input_tokens + s.response.usage.output_tokens for s in await handle.steps())
    assert tree["exceeded"] is None and tree["tokens"] == root_own + lead_own + helper_tokens  # counted once
    assert set(tree["by_run"]) == {handle.id, lead_id, helper_id}


async def test_the_trees_budget_stops_a_subtree_that_is_under_its_own(client, worker):
    handle = await start(client, app.nested_budget, {"tree": 700, "team": 1_000_000})
    result = await handle.result()
    assert result.stop_reason == "budget"
    [lead_id] = await _child_ids(handle)
    lead = get_handle(client, lead_id)
    lead_result = await lead.result()
    assert lead_result.stop_reason == "budget"
    team = await lead.handle.query("budget")
    assert team["exceeded"] is None  # its own budget was not the one used up
    tree = await handle.handle.query("budget")
    assert tree["exceeded"]["name"] == "tree"
