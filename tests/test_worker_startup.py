"""`lmthing worker` started before Temporal answers (issue 16): it waits, retrying with
backoff and logging each try, reports not ready meanwhile, and serves once the server is up."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request

from lmthing.client import connect, run_prompt
from lmthing.workers.dev_server import start_dev_server

from tests.support import REPO_ROOT, cli_env, free_port




def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_worker_waits_for_temporal_and_serves_once_it_answers(tmp_path) -> None:
    port, ops = free_port(), free_port()
    log = tmp_path / "worker.stderr"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", "worker", "--app", "examples/research_agent.py", "--address",
            f"127.0.0.1:{port}", "--metrics-port", str(ops), cwd=REPO_ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    env = None
    try:
        await until(lambda: log.read_text().count("Trying again in") >= 2, 30, "two logged retries")
        assert proc.returncode is None  # still waiting, not exited
        status, body = probe(ops, "/readyz")
        assert status == 503 and "waiting for Temporal" in body and "connection was refused" in body
        assert probe(ops, "/healthz")[0] == 200  # alive: a pod that waits is not restarted
        text = log.read_text()
        assert "Trying again in 1 s (attempt 2)" in text and "Trying again in 2 s (attempt 3)" in text

        env = await start_dev_server(port=port, extra_args=["--log-level", "never"])
        await until(lambda: probe(ops, "/readyz")[0] == 200, 60, "ready once the server answers")
        client = await connect(f"127.0.0.1:{port}")
        result = await asyncio.wait_for(run_prompt(client, "research"), 60)
        assert result.stop_reason == "answer"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        if env is not None:
            await env.shutdown()


async def test_a_connect_timeout_gives_up_with_the_reason() -> None:
    port = free_port()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "worker", "--app", "examples/research_agent.py", "--address",
        f"127.0.0.1:{port}", "--connect-timeout", "2", cwd=REPO_ROOT, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 1, text
    assert "Cannot connect to Temporal at" in text and "Traceback" not in text
    assert time.monotonic() - started < 30
