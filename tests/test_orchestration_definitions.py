"""Bad orchestrations fail where they are declared, with the fix in the message, before any
model call; a run that declares one ends at once (no workflow task retried)."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError

from lmthing import call_agent, choose, loop_while, parallel, sequence, step, team
from lmthing.orchestration import DefinitionError, pipeline, workflow
from lmthing.workers import create_worker
from tests.apps import orchestration_app as app
from tests.support import TEST_TASK_QUEUE, history, scheduled_activities, start, event_kinds


def noop(ctx):
    return None


@pytest.mark.parametrize(("build", "message"), [
    (lambda: workflow("w", [step("a", noop, on_success="b")]),
     "step 'a' routes on_success to unknown step 'b' (steps: a; END ends the workflow)"),
    (lambda: workflow("w", [step("a", noop, on_error="zz")]), "routes on_error to unknown step 'zz'"),
    (lambda: workflow("w", [step("a", noop), step("b", noop, on_success="a")]),
     "steps a -> b -> a form a loop with no exit bound; set max_iterations on one of them"),
    (lambda: workflow("w", [step("a", noop, on_success="a")]), "steps a -> a form a loop with no exit bound"),
    (lambda: workflow("w", [step("a", noop), step("a", noop)]), "two steps have the id 'a'"),
    (lambda: workflow("w", []), "give a list of step(...) items"),
    (lambda: workflow("w", [step("a", noop)], max_duration=0), "max_duration is in seconds and must be > 0"),
    (lambda: step("a"), "give exactly one of action=fn(ctx), agent='<name>' or tool=<tool>"),
    (lambda: step("a", noop, retries=-1), "retries must be an int >= 0"),
    (lambda: step("a", noop, timeout="soon"), "timeout is in seconds"),
    (lambda: parallel({"a": noop, "b": noop}, min_success=3), "min_success must be an int from 1 to the number of branches (2)"),
    (lambda: parallel({"a": noop}, aggregation="best"),
     "unknown aggregation 'best'; use one of all, first, majority, consensus, n_best"),
    (lambda: parallel({"a": noop}, aggregation="n_best"), "n_best needs evaluator=fn(result) -> score or judge='<agent name>'"),
    (lambda: parallel({"a": noop}, evaluator=len), "evaluator and judge only apply to aggregation='n_best'"),
    (lambda: parallel({"a": noop}, timeout=-1), "timeout is in seconds and must be > 0"),
    (lambda: parallel({}), "give at least one branch"),
    (lambda: loop_while(lambda ctx: True, noop, max_iterations=0), "max_iterations must be a positive int (a loop needs an exit bound)"),
    (lambda: choose(branches={"a": noop}), "give either a predicate or decide='<agent name>'"),
    (lambda: sequence(), "sequence: give at least one node"),
    (lambda: sequence(42), "42 is not something that can run"),
    (lambda: pipeline("p", [("a", noop), ("a", noop)]), "two stages are named 'a'"),
    (lambda: team("t", []), "members must be a non-empty list of agent names"),
    (lambda: team("t", ["a", "b"]).vote(options=["yes"]), "vote needs options=[...] with at least two"),
    (lambda: team("t", ["a", "b"]).debate(), "debate needs a judge agent"),
    (lambda: team("t", ["a"]).hierarchical(), "hierarchical needs a lead agent"),
    (lambda: team("t", ["a", "b"]).consensus(max_rounds=0), "max_rounds must be an int from 1 to 20"),
    (lambda: call_agent(""), "call_agent: give the agent's name"),
])
def test_a_bad_declaration_names_the_fix(build, message) -> None:
    with pytest.raises(DefinitionError) as err:
        build()
    assert message in str(err.value)


def test_a_loop_bounded_on_the_workflow_or_a_step_is_accepted() -> None:
    workflow("w", [step("a", noop), step("b", noop, on_success="a")], max_iterations=3)
    workflow("w", [step("a", noop, max_iterations=2), step("b", noop, on_success="a")])
    # A conditional step that routes to itself loops too, and a bound makes it fine.
    workflow("w", [step("a", noop, condition=lambda c: True, on_success="a", max_iterations=3)])


@pytest.mark.parametrize(("prompt", "message"), [
    (app.orch_bad_route, "workflow 'broken': step 'a' routes on_success to unknown step 'nowhere'"),
    (app.orch_unknown_agent, "parallel 'broken': no agent 'nobody' is defined"),
])
async def test_a_run_that_declares_a_bad_orchestration_fails_before_any_model_call(client: Client, worker, prompt, message) -> None:
    handle = await start(client, prompt)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert message in str(failed.value.cause) and failed.value.cause.type == "PromptError"
    events = await history(handle)
    assert scheduled_activities(events) == []
    assert event_kinds(events).count("WORKFLOW_TASK_FAILED") == 0


async def test_a_worker_refuses_a_standalone_workflow_whose_agent_it_does_not_have(client: Client) -> None:
    with pytest.raises(ValueError) as err:
        create_worker(client, app=["tests.orphan_flows", "tests.apps.orchestration_app"], task_queue=TEST_TASK_QUEUE + "-orphan")
    assert "workflow 'orphan_flow' calls agent 'no_such_prompt', but no prompt of this worker has that name" in str(err.value)


async def test_a_condition_that_raises_fails_the_run_once_naming_the_step(client: Client, worker) -> None:
    from lmthing.client import start_orchestration
    from tests.support import new_id

    handle = await start(client, app.orch_bad_condition)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "workflow 'broken': the condition of step 'check' raised KeyError: 'missing'" in str(failed.value.cause)
    assert event_kinds(await history(handle)).count("WORKFLOW_TASK_FAILED") == 0

    standalone = await start_orchestration(client, app.broken_condition_flow, None, id=new_id("broken-cond"),
                                           task_queue=TEST_TASK_QUEUE)
    with pytest.raises(WorkflowFailureError) as failed:
        await standalone.result()
    assert failed.value.cause.type == "OrchestrationCodeError"
    assert "the condition of step 'check' raised KeyError: 'missing'" in str(failed.value.cause)
    events = list((await standalone.handle.fetch_history()).events)
    assert event_kinds(events).count("WORKFLOW_TASK_FAILED") == 0
