"""Approvals and questions: signals, validating updates, timeouts, audit, search attribute,
and the `temporal` CLI sending the decision."""

import asyncio
import subprocess

import pytest
from temporalio.client import WorkflowUpdateFailedError

from lmthing.workers.dev_server import temporal_cli_path
from tests.apps import humans_app
from tests.support import REPO_ROOT, pending_of, start




async def rejected(handle, name: str, payload: dict) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.handle.execute_update(name, payload)
    return info.value.cause.message


async def test_an_approved_call_runs_and_the_decision_is_audited(client, worker):
    handle = await start(client, humans_app.pay)
    [item] = await pending_of(handle)
    assert item.kind == "approval" and item.tool == "send_money"
    assert item.args == {"to": "bob", "amount": 50} and item.message == "Send this payment?"
    assert item.options == ["approve", "deny", "modify"] and item.deadline is None
    assert (await handle.status()).waiting_on == [item.id]

    # The search attribute lets operators find runs waiting on a person.
    query = f"LmthingWaiting = true AND WorkflowId = '{handle.id}'"
    for _ in range(100):
        if [w async for w in client.list_workflows(query)]:
            break
        await asyncio.sleep(0.1)
    assert [w.id async for w in client.list_workflows(query)] == [handle.id]

    reply = await handle.decide(item.id, "approve", by="alice", reason="known payee")
    assert reply == f"approve recorded for {item.id}"
    result = await handle.result()
    assert result.state["sent"] == [{"to": "bob", "amount": 50}]
    [decision] = result.decisions
    assert decision.action == "approve" and decision.by == "alice" and decision.reason == "known payee"
    assert decision.tool == "send_money" and decision.at
    assert (await handle.steps())[0].decisions == result.decisions
    for _ in range(100):
        if not [w async for w in client.list_workflows(query)]:
            break
        await asyncio.sleep(0.1)
    assert [w async for w in client.list_workflows(query)] == []


async def test_a_denied_call_returns_the_denial_to_the_model_and_the_run_goes_on(client, worker):
    handle = await start(client, humans_app.pay)
    [item] = await pending_of(handle)
    await handle.handle.signal("decide", {"id": item.id, "action": "deny", "by": "bob", "reason": "not today"})
    result = await handle.result()
    assert result.text == "done" and result.state["sent"] == []
    denial = (await handle.steps())[0].tool_results[0]
    assert denial.is_error and denial.result == {"denied": True, "by": "bob", "reason": "not today"}


async def test_modify_runs_the_tool_with_validated_replacement_arguments(client, worker):
    handle = await start(client, humans_app.pay)
    [item] = await pending_of(handle)
    problem = await rejected(handle, "decide", {"id": item.id, "action": "modify", "args": {"to": "bob", "amount": "lots"}})
    assert problem.startswith("Invalid arguments for tool 'send_money': amount:")
    assert "No pending approval 'a99' (pending approvals: a1)" in await rejected(handle, "decide", {"id": "a99", "action": "approve"})
    assert (await handle.pending())[0].id == item.id  # nothing changed
    await handle.handle.execute_update("decide", {"id": item.id, "action": "modify", "args": {"to": "bob", "amount": 20}, "by": "carol"})
    result = await handle.result()
    assert result.state["sent"] == [{"to": "bob", "amount": 20}]
    assert result.decisions[0].action == "modify" and result.decisions[0].args == {"to": "bob", "amount": 20}


async def test_without_a_decision_in_time_the_default_applies(client, worker):
    handle = await start(client, humans_app.pay_or_timeout)
    [item] = await pending_of(handle)
    assert item.deadline and item.default == "deny"
    result = await handle.result()
    assert result.state["sent"] == []
    [decision] = result.decisions
    assert decision.timed_out and decision.by == "timeout" and decision.action == "deny"


async def test_a_question_answered_with_the_temporal_cli_flows_back_to_the_model(client, worker):
    handle = await start(client, humans_app.asks_the_model_way)
    [item] = await pending_of(handle)
    assert item.kind == "question" and item.message == "Which city?" and item.options == ["Paris", "Oslo"]
    assert "takes one of: Paris, Oslo" in await rejected(handle, "answer", {"id": item.id, "answer": "Rome"})
    target = client.service_client.config.target_host
    proc = subprocess.run(
        [
            temporal_cli_path(), "workflow", "signal", "--address", target, "--workflow-id", handle.id,
            "--name", "answer", "--input", f'{{"id": "{item.id}", "answer": "Oslo", "by": "cli-user"}}',
        ],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    result = await handle.result()
    assert (await handle.steps())[0].tool_results[0].result == {"answer": "Oslo"}
    assert result.decisions[0].answer == "Oslo" and result.decisions[0].by == "cli-user"


async def test_a_question_in_the_prompt_function_is_asked_once_across_re_runs(client, worker):
    handle = await start(client, humans_app.asks_in_the_prompt)
    [item] = await pending_of(handle)
    await handle.handle.execute_update("answer", {"id": item.id, "answer": "Lyon", "by": "dana"})
    result = await handle.result()
    steps = await handle.steps()
    assert len(steps) == 2 and steps[1].request.messages[0].content == "Plan a trip from Lyon."
    assert [d.id for d in result.decisions] == [item.id]  # the re-run did not ask again


async def test_workflow_code_can_request_an_approval(client, worker):
    handle = await start(client, humans_app.requests_in_code)
    [item] = await pending_of(handle)
    assert item.message == "Really delete everything?" and item.options == ["approve", "deny"]
    assert "allows approve, deny; 'modify' is not one of them" in await rejected(
        handle, "decide", {"id": item.id, "action": "modify", "args": {}}
    )
    await handle.handle.execute_update("decide", {"id": item.id, "action": "approve", "by": "erin"})
    result = await handle.result()
    assert result.state["deleted"] is True


async def test_a_second_decision_on_the_same_approval_is_refused(client, worker):
    handle = await start(client, humans_app.pay_twice)
    [first] = await pending_of(handle)
    await handle.decide(first.id, "approve", by="alice")
    for _ in range(200):
        waiting = await handle.pending()
        if waiting and waiting[0].id != first.id:
            break
        await asyncio.sleep(0.05)
    [second] = waiting
    assert second.args == {"to": "carol", "amount": 10}
    assert "was already decided (approve by alice); a decision cannot be changed" in await rejected(
        handle, "decide", {"id": first.id, "action": "deny"}
    )
    await handle.decide(second.id, "deny", by="alice")
    result = await handle.result()
    assert [(d.id, d.action) for d in result.decisions] == [(first.id, "approve"), (second.id, "deny")]
    assert result.state["sent"] == [{"to": "bob", "amount": 50}]


def lmthing_cli(*args: str, address: str) -> subprocess.CompletedProcess:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE")}
    return subprocess.run(
        [sys.executable, "-m", "lmthing", *args, "--address", address],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(REPO_ROOT),
    )


async def test_the_lmthing_cli_lists_approves_and_answers(client, worker):
    address = client.service_client.config.target_host
    paying = await start(client, humans_app.pay)
    asking = await start(client, humans_app.asks_the_model_way)
    [approval] = await pending_of(paying)
    [question] = await pending_of(asking)
    for _ in range(100):  # the listing reads the search attribute (eventually consistent)
        listed = await asyncio.to_thread(lmthing_cli, "approvals", address=address)
        if paying.id in listed.stdout and asking.id in listed.stdout:
            break
        await asyncio.sleep(0.1)
    assert listed.returncode == 0, listed.stderr
    assert f"{approval.id} approval (step 0): Send this payment?" in " ".join(listed.stdout.split())

    refused = await asyncio.to_thread(
        lmthing_cli, "approve", paying.id, approval.id, "--modify", '{"to": "bob", "amount": "x"}', address=address
    )
    assert refused.returncode == 1 and "Refused: Invalid arguments for tool 'send_money': amount:" in refused.stderr
    done = await asyncio.to_thread(lmthing_cli, "approve", paying.id, approval.id, "--reason", "ok", "--by", "ops", address=address)
    assert done.returncode == 0 and f"approve recorded for {approval.id}" in done.stdout
    answered = await asyncio.to_thread(lmthing_cli, "answer", asking.id, question.id, "Paris", address=address)
    assert answered.returncode == 0, answered.stderr

    paid, asked = await paying.result(), await asking.result()
    assert paid.decisions[0].by == "ops" and paid.decisions[0].reason == "ok"
    assert asked.decisions[0].answer == "Paris"
