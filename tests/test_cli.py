"""The `lmthing` command, run for real as a subprocess (``python -m lmthing ...``)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from examples import research_agent as demo
from lmthing.client import get_handle, start_prompt
from tests.support import cli_env, free_port, new_id

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/research_agent.py"
TIMEOUT = 60.0


@dataclass
class Done:
    code: int
    out: str
    err: str


async def lmthing(*args: str, **env: str) -> Done:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", *args,
        cwd=ROOT, env=cli_env(**env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Done(proc.returncode or 0, out.decode(), err.decode())


def workflow_id(out: str) -> str:
    found = re.search(r"Workflow id: (research-[0-9a-f]+)", out)
    assert found, out
    return found.group(1)


def assert_full_demo_transcript(out: str) -> None:
    """Every step of the scripted demo, its tool calls and results, and the final answer."""
    for n in range(4):  # steps count from 0 everywhere
        assert f"Step {n}\n" in out
    assert "Step 4" not in out
    for item in demo.SCRIPT:
        if hasattr(item, "text"):
            assert item.text in out
        else:
            assert f"→ {item.name} " in out
            assert f"← {item.name} " in out
    assert '"notes": "Temporal runs code as durable workflows' in out  # lookup's result (an activity)
    assert demo.SUMMARIZER_SCRIPT[0].text in out  # the sub-agent's answer, as the summarizer's result
    assert '← save_finding {"saved": 1}' in out
    answer = demo.SCRIPT[-1].text
    assert f"Answer\n{answer}\n" in out
    assert "4 step(s), stop reason: answer" in out
    assert "A durable workflow resumes an agent after a crash" in out.split("State:")[1]


async def test_run_example_on_the_embedded_server():
    done = await lmthing("run", EXAMPLE)
    assert done.code == 0, done.err
    assert_full_demo_transcript(done.out)
    workflow_id(done.out)
    assert "lmthing dev" in done.out  # where to go for a persistent server with a UI
    assert "Traceback" not in done.err


async def test_run_against_a_running_server(dev_env, client):
    address = dev_env.client.service_client.config.target_host
    done = await lmthing("run", EXAMPLE, "--address", address, "--task-queue", new_id("cli-run"))
    assert done.code == 0, done.err
    assert_full_demo_transcript(done.out)
    wid = workflow_id(done.out)
    assert f"/namespaces/default/workflows/{wid}" in done.out
    # The run lives on in the server after the command exits.
    handle = get_handle(client, wid)
    assert (await handle.handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    result = await handle.result()
    assert result.text == demo.SCRIPT[-1].text
    assert result.state["findings"] == ["A durable workflow resumes an agent after a crash instead of restarting it."]


async def test_invalid_input_json_is_a_usage_error():
    done = await lmthing("run", EXAMPLE, "--input", "{not json")
    assert done.code == 2
    assert "--input is not valid JSON" in done.err
    assert "Traceback" not in done.err + done.out


async def test_a_file_without_prompts_gives_a_clear_error(tmp_path):
    empty = tmp_path / "no_prompts_here.py"
    empty.write_text("GREETING = 'hello'\n")
    done = await lmthing("run", str(empty))
    assert done.code == 2
    assert "No prompts found in no_prompts_here" in done.err
    assert "@prompt" in done.err
    assert "Traceback" not in done.err + done.out


async def test_a_failed_run_prints_the_cause_and_exits_1():
    # LMTHING_MODEL overrides the prompt's default model; this one is not registered.
    done = await lmthing("run", EXAMPLE, LMTHING_MODEL="scripted:no-such-script")
    assert done.code == 1
    assert "No scripted model named 'no-such-script'" in done.err
    assert "Traceback" not in done.err + done.out
    workflow_id(done.out)  # still says which run failed


async def test_worker_serves_runs_and_stops_cleanly_on_sigterm(dev_env, client):
    address = dev_env.client.service_client.config.target_host
    task_queue = new_id("cli-worker")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "worker", "--app", "examples.research_agent",
        "--address", address, "--task-queue", task_queue,
        cwd=ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        banner = await asyncio.wait_for(read_until(proc, "Ctrl-C"), TIMEOUT)
        assert f"task queue {task_queue}" in banner
        assert "prompts: research" in banner and "tools:   lookup" in banner

        handle = await start_prompt(client, "research", task_queue=task_queue, id=new_id("research"))
        result = await asyncio.wait_for(handle.result(), TIMEOUT)
        assert result.text == demo.SCRIPT[-1].text
        assert result.stop_reason == "answer" and result.steps == 4

        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, err.decode()
        assert "Worker stopped." in out.decode()
        assert "Traceback" not in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_until(proc: asyncio.subprocess.Process, marker: str) -> str:
    assert proc.stdout is not None
    seen = ""
    while marker not in seen:
        line = await proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker exited before printing {marker!r}: {seen}{(await proc.stderr.read()).decode()}")
        seen += line.decode()
    return seen




async def start_dev(data_dir: Path, port: int, ui_port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "dev", "--app", "examples.research_agent", "--data-dir", str(data_dir),
        "--port", str(port), "--ui-port", str(ui_port),
        cwd=ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(read_until(proc, "Ctrl-C"), TIMEOUT)
    return proc


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0


async def test_dev_serves_the_ui_and_keeps_runs_across_a_restart(tmp_path):
    import urllib.request

    from temporalio.client import Client

    from lmthing.client import data_converter

    port, ui_port = free_port(), free_port()
    proc = await start_dev(tmp_path, port, ui_port)
    try:
        client = await Client.connect(f"localhost:{port}", data_converter=data_converter())
        handle = await start_prompt(client, "research", id=new_id("dev"))  # default task queue: dev's worker
        result = await asyncio.wait_for(handle.result(), TIMEOUT)
        assert result.steps == 4
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://localhost:{ui_port}/", timeout=10))
        assert page.status == 200
    finally:
        assert await stop(proc) == 0
    assert (tmp_path / "temporal.db").exists()

    proc = await start_dev(tmp_path, port, ui_port)
    try:
        client = await Client.connect(f"localhost:{port}", data_converter=data_converter())
        again = get_handle(client, handle.id)
        assert (await again.handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert (await again.result()).text == result.text
    finally:
        assert await stop(proc) == 0


async def test_run_prints_the_answer_as_it_streams(tmp_path):
    """The first words are on screen while the model is still talking."""
    # stderr goes to a file: an undrained pipe could fill up and stall the command.
    with (tmp_path / "stderr").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", "run", "tests/apps/streaming_app.py", "--prompt", "crawl",
            cwd=ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    try:
        seen = await asyncio.wait_for(read_chunks_until(proc, "The tide"), TIMEOUT)
        assert proc.returncode is None  # still running ...
        assert "spins." not in seen  # ... and the last word has not come yet
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0
        assert "as the earth spins." in seen + out.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_chunks_until(proc: asyncio.subprocess.Process, marker: str) -> str:
    """Read stdout as it comes (not by line: streamed text has no newline until the step ends)."""
    assert proc.stdout is not None
    seen = ""
    while marker not in seen:
        chunk = await proc.stdout.read(64)
        if not chunk:
            raise AssertionError(f"the command ended before printing {marker!r}: {seen}")
        seen += chunk.decode(errors="replace")
    return seen
