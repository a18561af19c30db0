"""Re-record the workflow histories that tests/test_replay.py replays.

    python -m tests.histories.record [WORKFLOW_ID ... | messaging | breaker]    (from the repository root)

With workflow ids (``replay-tools-state-followed``...), only those examples are recorded:
add a new example's history without rewriting the older ones, which are worth keeping as
they are (they show that runs recorded by older code still replay).

Starts its own in-memory Temporal dev server and a worker for tests/apps/replay_examples.py,
runs every prompt in ``EXAMPLES`` under a fixed workflow id, and writes the history of each
run, and of every child workflow (sub-agent) it started, to ``tests/histories/<id>.json``
(``/`` in a workflow id becomes ``__`` in the file name; test_replay.py maps it back, as
a child workflow's id must be the same on replay).

When to run it: only for a deliberate, versioned change that alters what a run records
(a new activity, a changed order of commands, a renamed workflow or activity, a changed
example prompt). The replay test failing after an *accidental* change is the point of the
test: histories like these belong to runs that are still in flight in production, and the
change would break them. Say in the change why the histories changed (and how running
workflows are handled: ``workflow.patched``, a new prompt name, or draining them first).

Histories are kept machine-neutral: the client and worker identity is a fixed string (the
SDK default is ``pid@hostname``), the stack traces of failures are left out (a failed
activity's holds this machine's paths; replay does not read them), and the script refuses
to write a history that contains this machine's host name, user name, home directory or
repository path. An example that asks a person (``DECISIONS`` in replay_examples.py) gets
its decision from the script, by the ``decide`` update, as ``lmthing approve`` gives it.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from lmthing.client import data_converter, start_orchestration, start_prompt
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server
from lmthing.workflows.orchestration import is_orchestration

HISTORY_DIR = Path(__file__).resolve().parent
REPO_ROOT = HISTORY_DIR.parent.parent
APP = "tests.apps.replay_examples"
TASK_QUEUE = "replay-examples"
IDENTITY = "lmthing-history-recorder"


def file_for(workflow_id: str) -> Path:
    return HISTORY_DIR / f"{workflow_id.replace('/', '__')}.json"


def workflow_id_for(path: Path) -> str:
    """The workflow id a history file holds (``@N``: the N-th run of a continue-as-new chain)."""
    return path.stem.split("@", 1)[0].replace("__", "/")


def machine_specific_strings() -> list[str]:
    """Strings that would tie a history to this machine (and may leak who recorded it)."""
    found = {socket.gethostname(), str(REPO_ROOT), str(Path.home()), sys.prefix}
    try:
        found.add(getpass.getuser())
    except Exception:
        pass
    return sorted(s for s in found if s and len(s) >= 3 and s not in ("root", "/root"))


def readable_text(history_json: dict[str, Any]) -> str:
    """The history as text with every payload decoded (payload data is base64 in JSON)."""
    parts = [json.dumps(history_json)]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                try:
                    parts.append(base64.b64decode(node["data"]).decode("utf-8", errors="replace"))
                except ValueError:
                    pass
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(history_json)
    return "\n".join(parts)


def child_ids(history: WorkflowHistory) -> list[str]:
    return [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    ]


async def record(client: Client, prompt: type, workflow_id: str, *, follow: bool = False,
                 decision: str | None = None) -> list[Path]:
    if is_orchestration(prompt):
        handle: Any = await start_orchestration(client, prompt, None, id=workflow_id, task_queue=TASK_QUEUE)
    else:
        handle = await start_prompt(client, prompt, id=workflow_id, task_queue=TASK_QUEUE)
    if decision is not None:  # a person decides what the run asks (the `decide` update)
        await handle.decide((await _first_pending(handle)).id, decision, by="recorder")
    if follow:  # a caller reads the run's stream to its end, as `lmthing run` does
        await asyncio.wait_for(_drain(handle), 60)
    await asyncio.wait_for(handle.result(), 60)
    written: list[Path] = []
    pending = [workflow_id]
    while pending:
        wid = pending.pop(0)
        history = await client.get_workflow_handle(wid).fetch_history()
        written.append(_write(file_for(wid), history))
        pending += child_ids(history)
    return written


async def _first_pending(handle: Any) -> Any:
    for _ in range(200):
        items = await handle.pending()
        if items:
            return items[0]
        await asyncio.sleep(0.05)
    raise SystemExit(f"{handle.id} never asked for a decision")


async def record_messaging(client: Client) -> list[Path]:
    """The long-lived agent ``replay_live`` (every run of its chain), its topic and its board."""
    from lmthing.client.messaging import publish, start_agent
    from tests.apps.replay_examples import LIVE_ASKS, LIVE_PUBLISHED, MESSAGING, replay_live

    agent = await start_agent(client, replay_live, id=MESSAGING["agent"], task_queue=TASK_QUEUE, config={"turns_per_run": 2})
    for text in LIVE_ASKS[:2]:
        await agent.ask(text, id=f"ask-{text}")
    for i, text in enumerate(LIVE_PUBLISHED):
        await publish(client, MESSAGING["topic"], text, id=f"news-{i}", task_queue=TASK_QUEUE)
    for _ in range(100):
        if (await agent.status()).turns >= 2 + len(LIVE_PUBLISHED):
            break
        await asyncio.sleep(0.1)
    for text in LIVE_ASKS[2:]:
        await agent.ask(text, id=f"ask-{text}")
    await agent.stop()
    written: list[Path] = []
    chain = [*(await agent.status()).earlier_runs, (await agent.handle.describe()).run_id]
    for n, run_id in enumerate(chain, start=1):
        history = await client.get_workflow_handle(agent.id, run_id=run_id).fetch_history()
        written.append(_write(HISTORY_DIR / f"{agent.id}@{n}.json", history))
    for prefix, name in (("lmthing-topic:", MESSAGING["topic"]), ("lmthing-board:", MESSAGING["board"])):
        handle = client.get_workflow_handle(prefix + name)
        await handle.terminate("recorded")  # an entity workflow runs for ever; its history so far is the record
        written.append(_write(file_for(prefix + name), await handle.fetch_history()))
    return written


async def record_breaker(client: Client) -> list[Path]:
    """The circuit breaker ``replay-breaker`` through a whole cycle, driven by the same calls
    the activities make: two failures open it, a refused call (no event), a probe after the
    reset timeout closes it, and a reset."""
    from lmthing.activities.breakers import acquire, record
    from lmthing.resilience import BreakerConfig, CircuitBreakerRef

    ref = CircuitBreakerRef(name="replay-breaker", config=BreakerConfig(failure_threshold=2, reset_timeout_seconds=0.5))
    for key in ("run-1/1", "run-2/1"):
        assert (await acquire(client, ref, key, 30, TASK_QUEUE)).allowed
        await record(client, ref, key, False, TASK_QUEUE, "RuntimeError: service answered 500")
    assert not (await acquire(client, ref, "run-3/1", 30, TASK_QUEUE)).allowed
    await asyncio.sleep(0.6)
    assert (await acquire(client, ref, "run-4/1", 30, TASK_QUEUE)).probe
    await record(client, ref, "run-4/1", True, TASK_QUEUE)
    handle = client.get_workflow_handle("lmthing-breaker:replay-breaker")
    await handle.execute_update("reset", None)
    await handle.terminate("recorded")  # a breaker runs for ever; its history so far is the record
    return [_write(file_for(handle.id), await handle.fetch_history())]


def _write(path: Path, history: WorkflowHistory) -> Path:
    as_json = _without_stack_traces(history.to_json_dict())
    leaks = [s for s in machine_specific_strings() if s in readable_text(as_json)]
    if leaks:
        raise SystemExit(f"history of {history.workflow_id} contains machine-specific text {leaks}; not writing it")
    path.write_text(json.dumps(as_json, indent=2, sort_keys=True) + "\n")
    return path


def _without_stack_traces(node: Any) -> Any:
    """The history without the stack traces of failures (a failed activity's holds this
    machine's paths; replay does not read them)."""
    if isinstance(node, dict):
        return {k: _without_stack_traces(v) for k, v in node.items() if k != "stackTrace"}
    if isinstance(node, list):
        return [_without_stack_traces(v) for v in node]
    return node


async def _drain(handle: Any) -> None:
    async for _ in handle.full_stream():
        pass


async def main(only: list[str]) -> None:
    os.chdir(REPO_ROOT)
    from tests.apps.replay_examples import DECISIONS, EXAMPLES, FOLLOWED, STANDALONE

    runs = [(prompt.spec.name.replace("_", "-"), prompt, False) for prompt in EXAMPLES]
    runs += [(workflow_id, prompt, True) for workflow_id, prompt in FOLLOWED.items()]
    runs += [(workflow_id, flow, False) for workflow_id, flow in STANDALONE.items()]
    unknown = sorted(set(only) - {workflow_id for workflow_id, _, _ in runs} - {"messaging", "breaker"})
    if unknown:
        raise SystemExit(f"no example recorded as {unknown}; known: {', '.join(w for w, _, _ in runs)}")
    # Memory examples write to a store of this recording's own (nothing of an earlier one).
    os.environ["LMTHING_MEMORY_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='lmthing-record-')}/memory.db"
    env = await start_dev_server()
    try:
        target = env.client.service_client.config.target_host
        client = await Client.connect(target, data_converter=data_converter(), identity=IDENTITY)
        async with create_worker(client, app=APP, task_queue=TASK_QUEUE):
            for workflow_id, prompt, follow in runs:
                if only and workflow_id not in only:
                    continue
                for path in await record(client, prompt, workflow_id, follow=follow, decision=DECISIONS.get(workflow_id)):
                    print(f"wrote {path.relative_to(REPO_ROOT)}")
            if not only or "messaging" in only:
                for path in await record_messaging(client):
                    print(f"wrote {path.relative_to(REPO_ROOT)}")
            if not only or "breaker" in only:
                for path in await record_breaker(client):
                    print(f"wrote {path.relative_to(REPO_ROOT)}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    asyncio.run(main(sys.argv[1:]))
    # Skip interpreter teardown: the SDK's Rust threads can abort it at exit
    # ("PyGILState_Release ... finalizing", temporalio/sdk-python#300).
    sys.stdout.flush()
    os._exit(0)
