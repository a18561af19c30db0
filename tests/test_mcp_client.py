"""MCP servers' tools in real runs on the dev server (docs/mcp.md): a real server written
with the mcp SDK (tests/mcp_servers/calc.py), run over stdio by the worker and over
streamable HTTP as a process of its own. The model (scripted) calls its tools and reads the
results; the tool list is asked for once per worker; a server that dies mid-call is started
again and the call retried; a tool's error result reaches the model as a tool error; a
command that does not start and two servers with the same tool name fail clearly."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from lmthing import PromptError, mcp_server
from lmthing.activities.names import MCP_CALL_TOOL, MCP_LIST_TOOLS
from lmthing.workers import create_worker
from tests.apps import mcp_app as app
from tests.support import REPO_ROOT, activity_attempts, free_port, history, new_id, run, scheduled_activities, start


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_stdio_servers_tools_are_the_models_tools(client, worker, tmp_path):
    log = tmp_path / "calc.log"
    result, steps = await run(client, app.mcp_stdio_run, {"log": str(log)})
    assert result.text == "done"
    add, shout = steps[0].tool_results
    assert (add.name, add.result, add.is_error) == ("add", {"result": 5}, False)
    assert (shout.result, shout.is_error) == ({"result": "HI"}, False)
    # The server's isError result is a tool error the model reads; the run went on.
    [divide] = steps[1].tool_results
    assert divide.is_error and "cannot divide by zero" in str(divide.result)
    assert steps[2].response.text == "done"
    # The model was offered the server's tools, with their descriptions and schemas.
    offered = {t.name: t for t in steps[0].request.tools}
    assert {"add", "shout", "divide", "crash_once"} <= set(offered)
    assert offered["add"].description == "Add two whole numbers."
    assert offered["add"].parameters["required"] == ["a", "b"]
    assert lines(log).count("call add") == 1 and lines(log).count("call divide") == 1


async def test_the_tool_list_is_read_once_per_worker_not_once_per_step(client, worker, tmp_path):
    log = tmp_path / "calc.log"
    handles = []
    for _ in range(2):  # two runs of three steps each: the prompt function ran six times
        handle = await start(client, app.mcp_stdio_run, {"log": str(log)})
        await handle.result()
        handles.append(handle)
    assert lines(log).count("list") == 1  # the server was asked once, by the worker
    for handle in handles:  # each run asked its worker once (then kept the list)
        assert scheduled_activities(await history(handle)).count(MCP_LIST_TOOLS) == 1
    assert lines(log).count("call add") == 2


async def test_a_streamable_http_servers_tools_are_the_models_tools(client, worker, tmp_path, monkeypatch):
    port = free_port()
    log = tmp_path / "http.log"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "tests/mcp_servers/calc.py", "--http", str(port), cwd=REPO_ROOT,
        env={**os.environ, "MCP_CALC_LOG": str(log), "MCP_CALC_KEY": "k-7f3a"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    monkeypatch.setenv("MCP_TEST_CALC_KEY", "k-7f3a")  # the (in-process) worker's environment
    try:
        await wait_for_port(port)
        handle = await start(client, app.mcp_http_run, {"url": f"http://127.0.0.1:{port}/mcp"})
        assert (await handle.result()).text == "done"
        [add] = (await handle.steps())[0].tool_results
        assert (add.result, add.is_error) == ({"result": 42}, False)
        assert lines(log) == ["list", "call add"]  # the worker sent the key: nothing was refused
        assert "k-7f3a" not in str(await handle.handle.fetch_history())
    finally:
        server.kill()
        await server.wait()


async def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_server_that_dies_mid_call_is_started_again_and_the_call_retried(client, worker, tmp_path):
    log, marker = tmp_path / "calc.log", tmp_path / "crashed"
    handle = await start(client, app.mcp_crash_run, {"log": str(log), "marker": str(marker)})
    result = await handle.result()
    assert result.text == "done" and marker.exists()
    [echo] = (await handle.steps())[0].tool_results
    assert (echo.result, echo.is_error) == ({"result": "echo: hello"}, False)
    assert lines(log).count("call crash_once") == 2  # the first call killed its server
    events = await history(handle)
    assert scheduled_activities(events).count(MCP_CALL_TOOL) == 1  # one activity, two attempts
    assert max(activity_attempts(events)) == 2


async def test_a_command_that_does_not_exist_fails_the_run_naming_it(client, worker):
    handle = await start(client, app.mcp_missing_command_run)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "def_mcp_server('nothing')" in message and "'lmthing-no-such-mcp-server'" in message
    assert "was not found on this worker's PATH" in message
    assert activity_attempts(await history(handle)) == [1]  # not retried: it would not start either


async def test_a_server_that_exits_at_once_fails_the_run_with_its_stderr(client, worker):
    handle = await start(client, app.mcp_exits_run)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "MCP server 'quitter' exited before it answered" in message
    assert "config file not found" in message and "sys.exit(3)" in message
    assert activity_attempts(await history(handle)) == [1]


async def test_two_servers_with_one_tool_name_fail_clearly_and_a_prefix_fixes_it(client, worker, tmp_path):
    log = tmp_path / "calc.log"
    handle = await start(client, app.mcp_clash_run, {"log": str(log)})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "def_mcp_server('calc_b'): the tool 'add' is also a tool of MCP server 'calc_a'" in message
    assert "prefix='calc_b_'" in message

    result, steps = await run(client, app.mcp_prefix_run, {"log": str(log)})
    assert result.text == "done"
    assert [(r.name, r.result) for r in steps[0].tool_results] == [("add", {"result": 2}), ("b_add", {"result": 4})]


async def test_settings_written_as_variables_are_read_on_the_worker_and_stay_out_of_history(client, worker, tmp_path,
                                                                                          monkeypatch):
    log = tmp_path / "secret-place.log"
    monkeypatch.setenv("MCP_TEST_SECRET_LOG", str(log))
    handle = await start(client, app.mcp_env_run, {"var": "MCP_TEST_SECRET_LOG"})
    assert (await handle.result()).text == "done"
    assert lines(log) == ["list", "call add"]  # the server got the worker's value
    recorded = str(await handle.handle.fetch_history())
    assert "secret-place" not in recorded and "${MCP_TEST_SECRET_LOG}" in recorded

    handle = await start(client, app.mcp_env_run, {"var": "MCP_TEST_NOT_SET_ANYWHERE"})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "the environment variable MCP_TEST_NOT_SET_ANYWHERE is not set on this worker" in str(failure.value.cause)


async def test_the_servers_process_stops_when_the_worker_stops(client, tmp_path):
    log, queue = tmp_path / "calc.log", new_id("mcp-stop")
    async with create_worker(client, app="tests.apps.mcp_app", task_queue=queue):
        await run(client, app.mcp_stdio_run, {"log": str(log)}, task_queue=queue)
        assert "stopped" not in lines(log)  # the session outlives the run, for the next one
    assert lines(log)[-1] == "stopped"  # the worker's run() ended: its session was closed


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, "give command=[...] (a server run over stdio) or url='http://.../mcp'"),
    ({"command": ["python", "s.py"], "url": "http://x/mcp"}, "one of the two"),
    ({"command": ["python", "s.py"], "headers": {"A": "b"}}, "headers= are for url= servers"),
    ({"url": "localhost:8000/mcp"}, "url is the server's streamable HTTP endpoint"),
    ({"url": "http://x/mcp", "env": {"A": "b"}}, "args=, env= and cwd= are for command= servers"),
    ({"command": ["python", "s.py"], "env": {"TOKEN": 42}}, "env is a dict of strings (a secret as '${NAME}'"),
    ({"command": ["python", "s.py"], "timeout": 0}, "timeout is a number of seconds above 0"),
])
def test_wrong_server_settings_say_what_to_write(settings, expected):
    with pytest.raises(PromptError) as err:
        mcp_server("calc", **settings)
    assert expected in str(err.value) and "mcp_server('calc')" in str(err.value)
