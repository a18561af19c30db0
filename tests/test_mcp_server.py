"""``lmthing mcp serve``: an app's prompts as MCP tools, seen by a real MCP client (the
official SDK's), over stdio (the client spawns the command) and streamable HTTP. The runs
are real workflows on the session's dev server, run by the session worker."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support import REPO_ROOT, TEST_TASK_QUEUE, cli_env, free_port, new_id

APP = "tests.apps.mcp_server_app"
TOKEN = "s3cret-token-for-tests"


def serve_args(address: str, *extra: str, task_queue: str = TEST_TASK_QUEUE) -> list[str]:
    return [
        "-m", "lmthing", "mcp", "serve", "--app", APP, "--address", address, "--task-queue", task_queue,
        "--allow", "mcp_oracle", "--allow", "mcp_broken", *extra,
    ]


def address_of(client: Any) -> str:
    return client.service_client.config.target_host


async def completed_run(client: Any, workflow_id: str) -> tuple[str, list[str]]:
    """The run's workflow type and its history's event kinds, fetched from Temporal."""
    handle = client.get_workflow_handle(workflow_id)
    events = list((await handle.fetch_history()).events)
    started = events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name, [e.WhichOneof("attributes") for e in events]


async def check_tools_and_answer(mcp: Client, client: Any) -> None:
    """What both transports must do: list the allowed prompts, run one, answer with its text."""
    listed = (await mcp.list_tools()).tools
    assert sorted(t.name for t in listed) == ["mcp_broken", "mcp_oracle"]  # mcp_hidden is not allowed
    oracle = next(t for t in listed if t.name == "mcp_oracle")
    assert oracle.description == "Answers a question, as an oracle would."
    assert oracle.input_schema["required"] == ["question"]
    assert oracle.input_schema["properties"]["times"]["maximum"] == 3

    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    result = await mcp.call_tool("mcp_oracle", {"question": "Will it rain?", "times": 2}, progress_callback=on_progress)
    assert not result.is_error, result.content
    assert result.content[0].text == "The oracle says: Will it rain? Will it rain?"
    workflow_id = result.structured_content["workflow_id"]
    assert result.structured_content["stop_reason"] == "answer"
    assert progress[0] == f"run {workflow_id} started"
    assert "step 0 started" in progress and "step 0 finished" in progress
    # The run is an ordinary workflow: in Temporal's history, under the id the client got.
    kind, events = await completed_run(client, workflow_id)
    assert kind == "mcp_oracle"
    assert events[-1] == "workflow_execution_completed_event_attributes"
    assert "activity_task_completed_event_attributes" in events  # the model call


async def test_stdio_client_lists_the_prompts_and_gets_a_runs_answer(client, worker) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=serve_args(address_of(client)), cwd=str(REPO_ROOT), env=cli_env(),
    )
    async with Client(params) as mcp:
        await check_tools_and_answer(mcp, client)

        hidden = await mcp.call_tool("mcp_hidden", {})
        assert hidden.is_error
        assert "unknown tool 'mcp_hidden'" in hidden.content[0].text

        bad = await mcp.call_tool("mcp_oracle", {"times": 9})
        assert bad.is_error
        said = bad.content[0].text
        assert "question: Field required" in said and "times: Input should be less than or equal to 3" in said

        unknown = await mcp.call_tool("mcp_oracle", {"question": "q", "colour": "red"})
        assert unknown.is_error and "unknown argument(s) colour" in unknown.content[0].text

        failed = await mcp.call_tool("mcp_broken", {})
        assert failed.is_error
        assert "the ledger is closed" in failed.content[0].text
        kind, events = await completed_run(client, failed.structured_content["workflow_id"])
        assert kind == "mcp_broken" and events[-1] == "workflow_execution_failed_event_attributes"


@contextlib.asynccontextmanager
async def http_server(address: str, port: int, tmp_path: Any, *extra: str, task_queue: str = TEST_TASK_QUEUE,
                      **env: str) -> AsyncIterator[None]:
    """``lmthing mcp serve --transport http`` in a subprocess, once its port accepts connections."""
    log = tmp_path / f"mcp-{port}.stderr"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *serve_args(address, "--transport", "http", "--port", str(port), *extra, task_queue=task_queue),
            cwd=REPO_ROOT, env=cli_env(**env), stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )
    try:
        for _ in range(300):
            if proc.returncode is not None:
                raise AssertionError(f"lmthing mcp serve exited {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"lmthing mcp serve did not listen on {port}: {log.read_text()}")
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def test_http_needs_the_bearer_token_and_then_serves_the_prompts(client, worker, tmp_path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    async with http_server(address_of(client), port, tmp_path, LMTHING_MCP_TOKEN=TOKEN):
        hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
                async with http.post(url, json=hello, headers=headers) as response:
                    assert response.status == 401, headers
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")

        authorized = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        async with Client(streamable_http_client(url, http_client=authorized)) as mcp:
            await check_tools_and_answer(mcp, client)


async def test_no_auth_with_worker_serves_without_a_token_and_runs_in_its_own_worker(client, tmp_path) -> None:
    """No session worker polls this queue: only the one --with-worker starts can answer."""
    port = free_port()
    queue = new_id("mcp-own-worker")
    async with http_server(address_of(client), port, tmp_path, "--no-auth", "--with-worker", task_queue=queue):
        async with Client(f"http://127.0.0.1:{port}/mcp") as mcp:
            result = await mcp.call_tool("mcp_oracle", {"question": "Who runs me?"})
    assert not result.is_error, result.content
    assert result.content[0].text == "The oracle says: Who runs me?"
    described = await client.get_workflow_handle(result.structured_content["workflow_id"]).describe()
    assert described.task_queue == queue


@pytest.mark.parametrize("env", [{}, {"LMTHING_MCP_TOKEN": "  "}], ids=["unset", "blank"])
async def test_http_without_a_token_refuses_to_start(env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "mcp", "serve", "--app", APP, "--transport", "http",
        cwd=REPO_ROOT, env={k: v for k, v in cli_env(**env).items() if env or k != "LMTHING_MCP_TOKEN"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    said = " ".join(err.decode().split())
    assert proc.returncode == 2, said
    assert "--transport http needs a bearer token: set $LMTHING_MCP_TOKEN" in said and "--no-auth" in said


async def test_allowing_a_prompt_the_app_does_not_have_is_an_error(client) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "mcp", "serve", "--app", APP, "--address", address_of(client), "--allow", "mcp_nope",
        cwd=REPO_ROOT, env=cli_env(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    said = " ".join(err.decode().split())
    assert proc.returncode == 2, said
    assert "--allow mcp_nope: no such prompt in the app" in said and "mcp_oracle" in said
