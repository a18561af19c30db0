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
    assert [t.name for t in second.request.tools] == ["refund", "ledger"]
    assert second.request.agent == "billing"
    # The conversation went on: the user's message and the transfer are still there, and the
    # billing agent's own user message was not added.
    contents = [m.content for m in second.request.messages]
    assert contents[0] == "I want my money back for order 7."
    assert not any("not added" in (c or "") for c in contents)
    # The billing agent's own sub-agent ran as a child workflow.
    assert [r.result for r in second.tool_results] == [{"refunded": 7}, {"response": "logged"}]


async def test_a_handoff_is_carried_across_continue_as_new(client: Client, worker) -> None:
    """A run continued-as-new after a handoff starts with the carry that records it (here
    given directly): it goes on as the billing agent, found again from the triage prompt."""
    from lmthing import RunConfig
    from lmthing.prompt.types import Message, RunResult
    from lmthing.workflows.config import AgentFrame, Carry
    from tests.support import TEST_TASK_QUEUE, new_id

    carry = Carry(
        messages=[Message(role="user", content="I want my money back for order 7."),
                  Message(role="assistant", content=None, tool_calls=[{"id": "t1", "name": "transfer_to_billing", "args": {"task": "refund"}}]),
                  Message(role="tool", tool_call_id="t1", name="transfer_to_billing", content='{"assistant": "billing"}')],
        step=1, handoffs=[AgentFrame(agent="billing")], handoff_args={"task": "refund order 7"},
    )
    handle = await client.start_workflow("orch_triage", args=[None, RunConfig(), carry], id=new_id("handoff-can"),
                                         task_queue=TEST_TASK_QUEUE, result_type=RunResult)
    result = await handle.result()
    assert result.text == "Order 7 is refunded." and result.handoffs == ["billing"]
