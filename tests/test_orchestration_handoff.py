"""Handoff (003, as in the OpenAI Agents SDK): transfer_to_<agent> hands the run over."""

from __future__ import annotations

from temporalio.client import Client

from tests.apps import orchestration_app as app
from tests.support import run


async def test_a_handoff_goes_on_as_the_other_agent_with_the_same_conversation(client: Client, worker) -> None:
    result, steps = await run(client, app.orch_triage)
    assert result.text == "Order 7 is refunded."
    assert result.handoffs == ["billing"]
    first, second, third = steps
    assert {"transfer_to_billing", "transfer_to_support"} <= {t.name for t in first.request.tools}
    assert [r.result for r in first.tool_results] == [{"assistant": "billing"}, {"error": "Multiple handoffs detected, ignoring this one."}]
    assert first.orchestration == [{"kind": "handoff", "from": "orch_triage", "to": "billing", "args": {"task": "refund order 7"}}]
    # From the next step on, the run is the billing agent: its system prompt, its tools.
    assert "You are the billing agent." in second.request.system and "triage" not in second.request.system
    assert [t.name for t in second.request.tools] == ["refund"]
    assert second.request.agent == "billing"
    # The conversation went on: the user's message and the transfer are still there, and the
    # billing agent's own user message was not added.
    contents = [m.content for m in second.request.messages]
    assert contents[0] == "I want my money back for order 7."
    assert not any("not added" in (c or "") for c in contents)
    assert third.request.messages[-1].content == '{"refunded": 7}'
