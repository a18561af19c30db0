"""Helpers for tests: start prompts on the session worker's task queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from lmthing.client import PromptHandle, start_prompt
from lmthing.prompt.types import Message, RunResult, StepRecord

TEST_TASK_QUEUE = "lmthing-tests"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def start(client: Client, prompt: Any, args: Any = None, **kwargs: Any) -> PromptHandle:
    kwargs.setdefault("task_queue", TEST_TASK_QUEUE)
    kwargs.setdefault("id", new_id(prompt if isinstance(prompt, str) else prompt.spec.name))
    return await start_prompt(client, prompt, args, **kwargs)


async def run(client: Client, prompt: Any, args: Any = None, **kwargs: Any) -> tuple[RunResult, list[StepRecord]]:
    """Run to completion; return the result and the step records (what the model saw)."""
    handle = await start(client, prompt, args, **kwargs)
    result = await handle.result()
    return result, await handle.steps()


def roles(messages: list[Message]) -> list[str]:
    return [m.role for m in messages]


async def history(handle: PromptHandle) -> list[Any]:
    """The run's history events (the real ones, fetched from the server)."""
    return list((await handle.handle.fetch_history()).events)


def scheduled_activities(events: list[Any]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


def event_kinds(events: list[Any]) -> list[str]:
    """Event type names without the EVENT_TYPE_ prefix, e.g. 'ACTIVITY_TASK_SCHEDULED'."""
    from temporalio.api.enums.v1 import EventType

    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


def activity_attempts(events: list[Any]) -> list[int]:
    """The attempt number of every activity start, in history order."""
    return [e.activity_task_started_event_attributes.attempt for e in events if e.HasField("activity_task_started_event_attributes")]


REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 30.0


@dataclass
class WorkerProcess:
    proc: asyncio.subprocess.Process
    identity: str
    log: Path

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()  # SIGKILL: no graceful shutdown, nothing reported to the server

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@contextlib.asynccontextmanager
async def worker_process(
    address: str, task_queue: str, identity: str, log_dir: Path, app: str = "tests.apps.durable"
) -> AsyncIterator[WorkerProcess]:
    """A worker for ``app`` in a subprocess (tests/worker_process.py); always killed on exit."""
    log = log_dir / f"{identity}.stderr"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.worker_process",
            "--address", address, "--task-queue", task_queue, "--identity", identity,
            "--app", app,
            # A dead worker's sticky queue holds a workflow task this long before Temporal
            # gives it to another worker (SDK default 10 s).
            "--sticky-timeout", "2",
            cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    wp = WorkerProcess(proc, identity, log)
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise AssertionError(f"worker {identity} did not start (exit code {proc.returncode}):\n{wp.stderr()}")
        yield wp
    finally:
        wp.kill()
        await proc.wait()



@dataclass
class CliWorker:
    """An ``lmthing worker`` subprocess and what it printed up to its banner."""

    proc: asyncio.subprocess.Process
    banner: str
    log: Path

    @property
    def identity(self) -> str:
        """The SDK's default worker identity, as history records it (``pid@host``)."""
        return f"{self.proc.pid}@{socket.gethostname()}"

    @property
    def ops_port(self) -> int:
        found = re.search(r"Metrics and probes: http://[^:]+:(\d+)/", self.banner)
        assert found, self.banner
        return int(found.group(1))

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for an ``lmthing`` subprocess: no Temporal settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_") and k != "LMTHING_MODEL"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@contextlib.asynccontextmanager
async def cli_worker(address: str, *args: str, log_dir: Path) -> AsyncIterator[CliWorker]:
    """``lmthing worker --address ADDRESS ARGS...`` in a subprocess, once it has printed its
    banner (it polls right after); SIGKILLed on exit if still running."""
    log = log_dir / f"worker-{uuid.uuid4().hex[:8]}.stderr"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", "worker", "--address", address, *args,
            cwd=REPO_ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    try:
        assert proc.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
            except TimeoutError:
                line = b""
            if not line:
                await asyncio.sleep(0.2)
                raise AssertionError(f"lmthing worker {' '.join(args)} did not start: {banner}{log.read_text(errors='replace')}")
            banner += line.decode()
        yield CliWorker(proc, banner, log)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def pending_of(handle: PromptHandle, timeout: float = 20.0) -> list[Any]:
    """The run's pending approvals/questions, once there are any."""
    for _ in range(int(timeout / 0.05)):
        items = await handle.pending()
        if items:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError("nothing became pending")


async def temporal_cli(client: Client, *args: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run the real `temporal` CLI against ``client``'s server: (exit code, what it printed
    on stdout and stderr, whitespace collapsed). Asynchronous, so a worker in this process
    keeps serving while the CLI waits on it (an update, a query)."""
    from lmthing.workers.dev_server import temporal_cli_path

    address = client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        temporal_cli_path(), *args, "--address", address, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, " ".join((out + err).decode().split())



def completed_activities(events: list[Any], activity_type: str) -> int:
    """How many activities of ``activity_type`` completed in a history (durability tests:
    a finished call is never made again)."""
    from temporalio.api.enums.v1 import EventType

    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    return sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
               and scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] == activity_type)
