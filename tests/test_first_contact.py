"""First contact (issue 14, the items done so far): a wrong address or namespace gets one
line that names it and what to do, never a transport dump or a traceback."""

from __future__ import annotations

import pytest

from tests.test_cli import lmthing


@pytest.mark.parametrize(("address", "said", "code"), [
    ("127.0.0.1:1", "Cannot connect to Temporal at 127.0.0.1:1: the connection was refused (no server listens there). "
     "For a local server run `lmthing dev`; otherwise pass --address host:port or set TEMPORAL_ADDRESS.", 1),
    ("garbage:::x", "'garbage:::x' is not a Temporal address (invalid target URL: invalid port number); give host:port, "
     "e.g. localhost:7233", 2),
    ("no-such-host.invalid:7233", "Cannot connect to Temporal at no-such-host.invalid:7233: the host name does not resolve.", 1),
])
# A worker waits for Temporal by default (tests/test_worker_startup.py); --connect-timeout 0
# gives up at the first failure, with the same line.
@pytest.mark.parametrize("command", [["approvals"], ["history", "export", "some-id"],
                                     ["worker", "--app", "examples.consensus", "--connect-timeout", "0"]])
async def test_a_bad_address_gets_one_line(address: str, said: str, code: int, command: list[str]) -> None:
    done = await lmthing(*command, "--address", address)
    assert done.code == code, done.err
    text = " ".join(done.err.split())
    assert said in text
    assert "Traceback" not in done.err and "tonic" not in done.err


async def test_a_missing_namespace_gets_one_line(dev_env) -> None:
    address = dev_env.client.service_client.config.target_host
    for command in (["approvals"], ["run", "examples/consensus.py"]):
        done = await lmthing(*command, "--address", address, "--namespace", "nope")
        assert done.code == 2, done.err
        assert "Namespace 'nope' does not exist on this Temporal server. Pass --namespace" in " ".join(done.err.split())
        assert "Traceback" not in done.err


async def test_lmthing_run_says_how_to_decide_an_approval_and_finishes_once_decided() -> None:
    """On the embedded server nobody could approve without its address: `lmthing run` prints
    the exact command (address included), and the run finishes once it is used."""
    import asyncio
    import re
    import shlex
    import sys

    from tests.support import REPO_ROOT, cli_env

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "run", "tests.apps.humans_app", "--prompt", "pay",
        cwd=REPO_ROOT, env=cli_env(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    out = ""
    try:
        command = None
        while command is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, f"lmthing run ended before saying how to decide:\n{out}"
            out += line
            found = re.search(r"decide from another shell: (lmthing approve \S+ a\d+ --address \S+)", line)
            command = found.group(1) if found else None
        assert "Waiting for a person" in out and "approval a1: Send this payment?" in out
        done = await lmthing(*shlex.split(command)[1:])
        assert done.code == 0, done.err
        rest = (await asyncio.wait_for(proc.stdout.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Answer\ndone" in rest


async def test_lmthing_run_in_a_terminal_asks_for_the_decision_itself() -> None:
    import asyncio
    import os
    import pty
    import sys

    from tests.support import REPO_ROOT, cli_env

    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "run", "tests.apps.humans_app", "--prompt", "pay",
        cwd=REPO_ROOT, env=cli_env(), stdin=slave, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    os.close(slave)
    assert proc.stdout is not None
    out = ""
    try:
        while "Approve? [y/N]" not in out:
            chunk = (await asyncio.wait_for(proc.stdout.read(200), 60)).decode()
            assert chunk, f"lmthing run ended without asking:\n{out}"
            out += chunk
        os.write(master, b"y\n")
        out += (await asyncio.wait_for(proc.stdout.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "← send_money" in out and '"sent": 50' in out and "Answer\ndone" in out


async def test_a_tool_result_that_cannot_be_sent_fails_once_with_the_reason(client, worker) -> None:
    from tests.apps import first_contact_app as app
    from tests.support import activity_attempts, history, start

    handle = await start(client, app.bad_tool_results)
    result = await handle.result()
    assert result.text == "done"  # the errors went back to the model, the run went on
    opaque, huge = (await handle.steps())[0].tool_results
    assert opaque.is_error and huge.is_error
    assert "Tool 'returns_an_object' returned a dict that cannot be sent as JSON" in opaque.result["error"]
    assert "Return JSON-compatible data" in opaque.result["error"]
    assert "Tool 'returns_three_megabytes' returned 3,000,002 bytes; results over 1,500,000 bytes do not fit" in huge.result["error"]
    events = await history(handle)
    assert activity_attempts(events).count(1) == len(activity_attempts(events))  # nothing retried


async def test_answering_an_approval_or_deciding_a_question_names_the_right_command(client, worker) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    from tests.apps import humans_app
    from tests.support import pending_of, start

    handle = await start(client, humans_app.pay)
    [approval] = await pending_of(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.answer(approval.id, "yes")
    assert f"'{approval.id}' is a pending approval, not a question: decide it with lmthing approve" in str(refused.value.cause)
    await handle.decide(approval.id, "approve")
    await handle.result()


async def test_lmthing_run_against_a_server_keeps_its_run_off_another_apps_worker(client, dev_env) -> None:
    """`lmthing dev` serves one app on the default queue; `lmthing run --address` of another
    app runs on a queue of its own, so the dev worker never takes (and fails) its run."""
    from lmthing.workers import create_worker

    address = dev_env.client.service_client.config.target_host
    async with create_worker(client, app="tests.apps.basics", task_queue="lmthing"):  # as `lmthing dev --app ...`
        done = await lmthing("run", "examples/consensus.py", "--address", address)
    assert done.code == 0, done.err
    assert "(task queue lmthing-run-consensus)" in done.out
    assert "All three models agree" in done.out


async def test_an_agent_that_calls_itself_stops_at_the_depth_limit(client, worker) -> None:
    from lmthing.client import get_handle
    from lmthing.workflows.child_runs import MAX_AGENT_DEPTH
    from tests.apps import first_contact_app as app
    from tests.support import start
    from tests.test_orchestration import children_started, events_of

    handle = await start(client, app.self_calling_agent)
    assert (await handle.result()).text == "root done"
    chain = [handle.id]
    while children := children_started(await events_of(client, chain[-1])):
        chain.append(children[0])
    assert len(chain) == MAX_AGENT_DEPTH + 1  # the root and ten nested agents
    refused = (await get_handle(client, chain[-1]).steps())[0].tool_results[0]
    assert refused.is_error
    assert f"Agent 'recur' was not started: it would run {MAX_AGENT_DEPTH + 1} levels below the root prompt" in refused.result["error"]
    assert "An agent that calls itself needs a condition that stops it." in refused.result["error"]


def test_prompt_values_json_would_change_or_a_missing_await_are_refused_with_the_fix() -> None:
    from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

    async def lookup() -> str:
        return "x"

    p = StatefulPrompt()
    cases = [
        (lambda: p.user(123), "user(): a message is text, got int 123; format it first"),
        (lambda: p.def_state("tags", {"a", "b"}), "def_state('tags'): the value holds a set, which JSON"),
        (lambda: p.def_state("pair", {"xy": (1, 2)}), "def_state('pair'): the value holds a tuple"),
        (lambda: p.def_var("v", lookup()), "def_var('v') got the coroutine test_prompt_values"),
        (lambda: p.user(p.ask_human("Which city?")), "got the coroutine p.ask_human(...), not its result: add `await` (`await p.ask_human(...)`)"),
    ]
    for make, message in cases:
        with pytest.raises(PromptError) as err:
            make()
        assert message in str(err.value)


async def test_a_prompt_that_forgets_await_fails_once_with_the_fix(client, worker) -> None:
    from temporalio.client import WorkflowFailureError

    from tests.apps import first_contact_app as app
    from tests.support import event_kinds, history, scheduled_activities, start

    handle = await start(client, app.forgets_await)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "got the coroutine p.ask_human(...), not its result: add `await`" in str(failed.value.cause)
    events = await history(handle)
    assert scheduled_activities(events) == [] and "WORKFLOW_TASK_FAILED" not in event_kinds(events)


@pytest.mark.parametrize(("args", "said"), [
    (["run", "examples/consensus.py", "--input", '{"questoin": "x"}'],
     "--input has field(s) questoin that prompt 'consensus' does not take (its fields: question)"),
    (["run", "tests/apps/first_contact_app.py", "--prompt", "forgets_await", "--input", "{}"],
     "Prompt 'forgets_await' takes no arguments; leave --input out"),
    (["run", "examples/consensus.py", "--model", ""], "--model is empty; give a value or leave the option out"),
    (["run", "examples/consensus.py", "--task-queue", " "], "--task-queue is empty"),
    (["worker", "--app", "examples.consensus", "--task-queue", ""], "--task-queue is empty"),
])
async def test_cli_input_that_would_be_ignored_is_refused(args: list[str], said: str) -> None:
    done = await lmthing(*args)
    assert done.code == 2, done.err
    assert said in " ".join(done.err.split())
    assert "Traceback" not in done.err


async def test_an_app_that_is_a_folder_another_file_or_a_dashed_name_gets_the_fix(tmp_path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    text = tmp_path / "notes.txt"
    text.write_text("x = 1\n")
    dashed = tmp_path / "my-agent.py"
    dashed.write_text("x = 1\n")
    for target, said in (
        (folder, f"{folder} is a folder; give a .py file in it or a dotted module name (it is a package: run from its parent folder with --app agents)"),
        (text, f"{text} is not a .py file: an app is a Python module"),
        (dashed, "my-agent.py: the workflow sandbox re-imports the app by its module name, and 'my-agent' is not a valid one; rename the file to my_agent.py"),
    ):
        done = await lmthing("run", str(target))
        assert done.code == 2, done.err
        assert said in " ".join(done.err.split())
        assert "Traceback" not in done.err


async def test_lmthing_approve_says_what_is_wrong_with_the_decision(client, worker, dev_env) -> None:
    from tests.apps import humans_app
    from tests.support import TEST_TASK_QUEUE, pending_of, start

    address = dev_env.client.service_client.config.target_host
    handle = await start(client, humans_app.pay, task_queue=TEST_TASK_QUEUE)
    [approval] = await pending_of(handle)
    bad_json = await lmthing("approve", handle.id, approval.id, "--modify", "{to: bob}", "--address", address)
    assert bad_json.code == 2 and "--modify is not valid JSON" in bad_json.err
    done = await lmthing("approve", handle.id, approval.id, "--address", address)
    assert done.code == 0, done.err
    await handle.result()
    again = await lmthing("approve", handle.id, approval.id, "--address", address)
    assert again.code == 2
    assert f"Run {handle.id} has finished: nothing in it waits for a person any more" in " ".join(again.err.split())
    missing = await lmthing("approve", "no-such-run", "a1", "--address", address)
    assert missing.code == 2 and "No run 'no-such-run' on this server" in missing.err


async def test_every_run_names_its_agent_in_a_summary_and_a_search_attribute(client, worker) -> None:
    """In the Temporal UI a sub-agent is listed under the root prompt's workflow type; its
    summary names the agent and where it was started, and `LmthingAgent = "recur"` finds
    every run of that agent."""
    import asyncio

    from lmthing.workflows.search_attributes import AGENT
    from tests.apps import first_contact_app as app
    from tests.support import start
    from tests.test_orchestration import children_started, events_of

    handle = await start(client, app.self_calling_agent)
    await handle.result()
    root = await handle.handle.describe()
    assert await root.static_summary() == "prompt self_calling_agent"
    assert root.typed_search_attributes.get(AGENT) == "self_calling_agent"
    [child_id] = children_started(await events_of(client, handle.id))
    child = await client.get_workflow_handle(child_id).describe()
    assert child.workflow_type == "self_calling_agent"  # a def_agent runs as its root prompt's type...
    assert await child.static_summary() == "agent recur · recur/call_0_0"  # ...so the summary says which
    assert child.typed_search_attributes.get(AGENT) == "recur"

    found: list[str] = []
    for _ in range(50):  # visibility is eventually consistent
        found = [w.id async for w in client.list_workflows('LmthingAgent = "recur"') if w.id.startswith(handle.id)]
        if len(found) == 10:
            break
        await asyncio.sleep(0.1)
    assert len(found) == 10  # the ten nested agents, not the root


async def test_a_namespace_without_lmthings_search_attributes_gets_them_on_the_first_start() -> None:
    """A plain dev server (`temporal server start-dev`: no lmthing attributes): the first
    start_prompt registers them, as `lmthing worker` does, and the run and its sub-agents
    carry LmthingAgent. A run started without the attribute (`temporal workflow start`)
    starts its sub-agents without it too, so its namespace is never sent an attribute it
    might not know."""
    from temporalio.testing import WorkflowEnvironment

    from lmthing.client import data_converter
    from lmthing.workers import create_worker
    from lmthing.workers.dev_server import temporal_cli_path
    from lmthing.workflows.search_attributes import AGENT
    from tests.apps import first_contact_app as app
    from tests.support import start
    from tests.test_orchestration import children_started, events_of

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_path(), data_converter=data_converter())
    try:
        async with create_worker(env.client, app="tests.apps.first_contact_app", task_queue="bare"):
            handle = await start(env.client, app.self_calling_agent, task_queue="bare")
            assert (await handle.result()).text == "root done"
            [child] = children_started(await events_of(env.client, handle.id))
            described = await env.client.get_workflow_handle(child).describe()
            assert described.typed_search_attributes.get(AGENT) == "recur"

            unlabelled = await env.client.start_workflow(
                "self_calling_agent", id="from-the-cli", task_queue="bare", result_type=None,
            )
            await unlabelled.result()
            [child] = children_started(await events_of(env.client, unlabelled.id))
            assert (await env.client.get_workflow_handle(child).describe()).typed_search_attributes.get(AGENT) is None
    finally:
        await env.shutdown()
