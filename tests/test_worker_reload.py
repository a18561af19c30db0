"""`lmthing worker --reload` as a developer uses it: the worker answers with the app as it
is, and after the app's file is edited it is started again (the old one drains first) and
answers with the new code. Against the session's dev server, in a subprocess group."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from lmthing.client import start_prompt
from tests.support import REPO_ROOT, cli_env, new_id

APP = '''
from lmthing import prompt
from lmthing.testing import scripted_model, text


@prompt(model=scripted_model("reload-demo", [text("{answer}")]))
def reloaded(p):
    p.user("Which version are you?")
'''


async def _wait_for(stream: asyncio.StreamReader, needle: str, seen: list[str], timeout: float = 60.0) -> None:
    async def read() -> None:
        while not any(needle in line for line in seen):
            line = await stream.readline()
            if not line:
                raise AssertionError(f"the worker ended before {needle!r}: {''.join(seen)}")
            seen.append(line.decode(errors="replace"))

    await asyncio.wait_for(read(), timeout)


async def test_an_edited_app_is_served_after_the_worker_restarts(dev_env, client, tmp_path: Path) -> None:
    app = tmp_path / "reload_app.py"
    app.write_text(APP.format(answer="version one"))
    queue = new_id("reload-q")
    address = dev_env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "worker", "--app", str(app), "--reload", "--address", address,
        "--task-queue", queue, "--shutdown-timeout", "2",
        cwd=tmp_path, env={**cli_env(), "PYTHONPATH": str(REPO_ROOT)}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        await _wait_for(proc.stdout, "Ctrl-C", seen)
        first = await (await start_prompt(client, "reloaded", task_queue=queue, id=new_id("reloaded"))).result()
        assert first.text == "version one"
        app.write_text(APP.format(answer="version two"))
        await _wait_for(proc.stdout, "restarting the worker", seen)
        seen.clear()
        await _wait_for(proc.stdout, "Ctrl-C", seen)
        second = await (await start_prompt(client, "reloaded", task_queue=queue, id=new_id("reloaded"))).result()
        assert second.text == "version two"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
