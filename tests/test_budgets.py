"""Budgets over the whole agent tree (def_constraint, docs/resilience.md) in real runs: the
step that crosses a token budget is the last one, sub-agents and parallel branches spend
from the root's budget while they run, warn fires once, a duration budget is a durable
timer, and a rate limit holds under a parallel plan of 20 branches (the slots the root
grants, exactly, from its history; and where the model calls reach the provider)."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType

from tests.apps import budget_app as app, rate_clock
from tests.support import history, run, scheduled_activities, start


def _tokens(steps) -> list[int]:
    return [s.response.usage.input_tokens + s.response.usage.output_tokens for s in steps]


async def _children(client, handle) -> dict[str, object]:
    """The tree's child runs (workflow id -> handle), from the agent_start events."""
    ids = [e.workflow_id async for e in _events(handle) if e.type == "agent_start"]
    return {i: client.get_workflow_handle(i) for i in ids}


async def _events(handle):
    for e in [e async for e in handle.full_stream()]:
        yield e


async def test_the_step_that_crosses_a_token_budget_is_the_last(client, worker):
    unlimited, steps = await run(client, app.alone, {"task": "1000000"}, max_steps=8)
    per_step = _tokens(steps)
    limit = sum(per_step[:3]) + 1  # crossed by the fourth step
    result, steps = await run(client, app.alone, {"task": str(limit)})
    assert result.stop_reason == "budget" and result.steps == 4
    spent = _tokens(steps)
    assert sum(spent[:3]) < limit <= sum(spent)
    assert "Not run: the budget 'tokens' is used up" in str(steps[-1].tool_results[0].result)
    assert result.state["notes"] == 3  # the crossing step's tool call did not run


async def test_a_tree_spends_from_the_roots_budget_while_it_runs(client, worker):
    handle = await start(client, app.tree, {"task": "2500"})
    result = await handle.result()
    assert result.stop_reason == "budget"
    children = await _children(client, handle)
    assert len(children) == 5  # three sub-agents and a parallel group's two branches
    child_tokens = 0
    for child in children.values():
        child_result = await child.result()
        assert child_result["stop_reason"] == "budget", child_result  # each stopped early, not at max_steps=30
        assert child_result["steps"] < 30
        child_tokens += child_result["usage"]["input_tokens"] + child_result["usage"]["output_tokens"]
    ledger = await handle.handle.query("budget")
    own = sum(_tokens(await handle.steps()))
    assert ledger["tokens"] == own + child_tokens  # the children's spend is counted, once
    assert ledger["exceeded"]["name"] == "tokens" and ledger["warned"] == ["tokens"]
    budget_events = [e.text async for e in _events(handle) if e.type == "budget"]
    assert len([t for t in budget_events if "warn mark" in t]) == 1  # warn fires once
    assert len([t for t in budget_events if "is used up" in t]) == 1


async def test_graceful_stop_asks_the_model_for_a_final_answer_without_tools(client, worker):
    result, steps = await run(client, app.graceful)
    assert result.stop_reason == "budget"
    last = steps[-1]
    assert last.request.tools == [] and "Give your final answer now" in last.request.messages[-1].content


async def test_a_duration_budget_is_a_durable_timer_that_ends_the_run(client, worker):
    handle = await start(client, app.clock)
    result = await handle.result()
    assert result.stop_reason == "budget" and result.steps == 1  # the timer fired during step 0's tool
    events = await history(handle)
    timers = [json.loads(e.user_metadata.summary.data) for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
              and e.user_metadata.HasField("summary")]
    assert "budget time: 1 s" in timers


async def _granted_slots(client, handle) -> list[tuple[float, float, float | None]]:
    """The rate-limit slots the root granted, in the order it granted them: ``(asked, at,
    released)`` for each ``lmthing_budget`` slot update in the root's history (``asked``: the
    asker's clock in the update's input, ``released``: a slot it gave back there, ``at``: the
    slot in its result)."""
    asked: dict[str, tuple[float, float | None]] = {}
    granted: list[tuple[float, float, float | None]] = []
    for e in await history(handle):
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            request = e.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == "lmthing_budget":
                [call] = await client.data_converter.decode(request.input.args.payloads, [dict])
                if call["op"] == "slot":
                    asked[request.meta.update_id] = (call["now"], call.get("release"))
        elif e.HasField("workflow_execution_update_completed_event_attributes"):
            done = e.workflow_execution_update_completed_event_attributes
            if done.meta.update_id in asked:
                [answer] = await client.data_converter.decode(done.outcome.success.payloads, [dict])
                granted.append((*asked[done.meta.update_id][:1], answer["at"], asked[done.meta.update_id][1]))
    return granted


async def test_a_rate_limit_holds_under_a_parallel_plan_of_twenty_branches(client, worker):
    rate_clock.CALLS.clear()
    handle = await start(client, app.rate_limited)
    await handle.result()
    assert len(await _children(client, handle)) == 20
    requests, period = 5, 1.0  # app.rate_limited's def_constraint

    # The slots, exactly, from the root's history: one per model call of the tree (the root's
    # own and the 20 branches'), handed out in order, each the earliest the limit allows (the
    # asker's time, the slot before it, or a period after the slot `requests` places back),
    # so no period holds more than `requests` slots and 21 slots span 4 periods.
    granted = await _granted_slots(client, handle)
    # Each grant is the earliest the limit allows over the slots held then (the asker's time,
    # the last slot, or a period after the slot `requests` places back); a slot answered too
    # late to use is given back by its asker's next ask, and leaves the slots held.
    held: list[float] = []
    for i, (asked, at, released) in enumerate(granted):
        if released is not None:
            assert released in held, (i, granted)
            held.remove(released)
        earliest = max([asked, *held[-1:], *([held[-requests] + period] if len(held) >= requests else [])])
        assert at == earliest, (i, granted)
        held.append(at)
    slots = held  # the ones requests went out on
    assert len(slots) == 21, granted
    assert slots == sorted(slots)
    assert all(slots[i + requests] >= slots[i] + period for i in range(len(slots) - requests))
    assert slots[-1] - slots[0] >= 4 * period - 1e-6
    ledger = await handle.handle.query("budget")
    assert ledger["calls"] == slots[-requests:]  # the ledger's window holds the last slots it gave

    # Where the model calls reached the provider (wall clock): never before their slot, and
    # late by at most a loaded machine's wake-up lateness (LATE), so no 1-second window holds
    # more than 5 calls, less that lateness.
    starts = sorted(rate_clock.CALLS)
    assert len(starts) == 21
    assert all(start >= slot - 0.005 for start, slot in zip(starts, slots)), list(zip(starts, slots))
    late = 0.25
    assert all(starts[i + 5] - starts[i] >= 1.0 - late for i in range(len(starts) - 5)), str([round(t - starts[0], 3) for t in starts])
    assert starts[-1] - starts[0] >= 4.0 - late
    events = await history(handle)
    assert "lmthing.model_call" in scheduled_activities(events)


def test_a_rate_slot_given_back_is_handed_out_again_and_the_limit_still_holds():
    """A model activity whose slot answer came back after the slot had passed gives it back
    with its next ask (lmthing/activities/budget.py): the slot is free for the next asker,
    and the slots left never hold more than the limit in a period."""
    from lmthing.resilience.budget import BudgetLedger, Constraint

    def ledger() -> BudgetLedger:
        book = BudgetLedger([Constraint(name="rps", type="rate", requests=3, period=1.0)])
        assert [book.slot(10.0) for _ in range(4)] == [10.0, 10.0, 10.0, 11.0]  # the 4th waits
        return book

    # The asker of 11.0 got its answer at 11.3, too late: it gives 11.0 back and asks again
    # 1 s ahead. Three requests may then go out at 11.8 (with 10.0 s a period back), the next
    # a period after the first of them.
    kept = ledger()
    assert kept.slot(11.8, release=11.0) == 11.8
    assert [kept.slot(11.8) for _ in range(3)] == [11.8, 11.8, 12.8]
    assert kept.state.calls == [11.8, 11.8, 12.8]
    # Not given back, the unused 11.0 would have held a place in (11.0, 12.0].
    unused = ledger()
    assert [unused.slot(11.8) for _ in range(3)] == [11.8, 11.8, 12.0]
    # A slot it was never given, or that has left the window, is not taken back.
    assert unused.slot(12.0, release=99.0) == 12.8
