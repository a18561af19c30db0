"""The ``memory`` service of a prompt run (``p.service("memory")``), which the memory
plugin (:mod:`lmthing.memory.plugin`) is built on. Each read and write of the store is an
activity on the run's tool queue (``activities/memory.py``), so the history shows what was
remembered and recalled, a replay reads the same answers, and no I/O runs in the workflow.
It also knows the run's scopes: ``run:<workflow id>``, ``session:<id>`` (the run config's
``session``), ``agent:<prompt name>`` and ``global``."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from lmthing.activities.names import MEMORY_FORGET, MEMORY_GET, MEMORY_LIST, MEMORY_SEARCH, MEMORY_WRITE, MODEL_CALL
from lmthing.memory.types import MemoryForget, MemoryQuery, MemoryRecord, MemoryWrite, SearchHit
from lmthing.prompt.types import Conversation, Message, ModelRequest, ModelResponse

from . import routing
from .errors import cause_message

# A store that does not answer is asked again for about two minutes, then the run is told.
MEMORY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=15),
                           maximum_attempts=10)


# The memory activities heartbeat: one lost with its worker is made again within this.
MEMORY_HEARTBEAT = timedelta(seconds=10)


class MemoryFailed(Exception):
    """A memory call that failed for good: from the prompt function it fails the run with
    this message; from a memory tool the model reads it."""


class WorkflowMemory:
    def __init__(self, agent: str, session: str | None, model: str) -> None:
        self.agent = agent
        self.session = session
        self.model = model
        # def_cache definitions of the run's prompt function, by name (lmthing.memory.cache).
        self.caches: dict[str, Any] = {}

    def scope(self, kind: str) -> str | None:
        """The scope string of ``kind`` for this run (None: a session scope without a session)."""
        if kind == "run":
            return f"run:{workflow.info().workflow_id}"
        if kind == "session":
            return f"session:{self.session}" if self.session else None
        if kind == "agent":
            return f"agent:{self.agent}"
        return "global"

    def now(self) -> float:
        return workflow.now().timestamp()

    async def _call(self, name: str, arg: Any, result_type: Any, what: str) -> Any:
        try:
            return await workflow.execute_activity(
                name, arg, result_type=result_type, task_queue=routing.tool_task_queue(),
                start_to_close_timeout=timedelta(minutes=2), heartbeat_timeout=MEMORY_HEARTBEAT, retry_policy=MEMORY_RETRY,
                summary=what)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise MemoryFailed(f"{what} failed: {cause_message(err)}") from None

    async def write(self, call: MemoryWrite) -> MemoryRecord:
        r = call.record
        return await self._call(MEMORY_WRITE, call, MemoryRecord, f"remember {r.namespace}/{r.key}")

    async def get(self, query: MemoryQuery) -> MemoryRecord | None:
        return await self._call(MEMORY_GET, query, MemoryRecord, f"recall {query.namespace}/{query.key}")

    async def search(self, query: MemoryQuery) -> list[SearchHit]:
        return await self._call(MEMORY_SEARCH, query, list[SearchHit], f"search {query.namespace}")

    async def list(self, query: MemoryQuery) -> list[MemoryRecord]:
        return await self._call(MEMORY_LIST, query, list[MemoryRecord], f"list {query.namespace}")

    async def forget(self, call: MemoryForget) -> int:
        return await self._call(MEMORY_FORGET, call, int, f"forget {call.namespace}/{call.key or '*'}")

    async def summarize(self, texts: list[str], model: str | None, instruction: str) -> str:
        """One model call (the model-call activity, outside the run's conversation) that
        summarizes ``texts``; its text."""
        request = ModelRequest(
            model=model or self.model, system=instruction,
            conversation=Conversation(messages=[Message(role="user", content="\n\n".join(texts))]),
            workflow_id=workflow.info().workflow_id, agent="memory.summarize",
        )
        try:
            response = await workflow.execute_activity(
                MODEL_CALL, request, result_type=ModelResponse, task_queue=routing.model_task_queue(),
                start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5), summary="summarize memory")
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise MemoryFailed(f"summarizing the memory failed: {cause_message(err)}") from None
        return response.text or ""


STATE_NAMESPACE = "_state"
SAVED_STATE_KEY = "_lmthing_saved"  # key -> digest of the value last saved


class PersistedState:
    """``def_state(..., persist=True)`` on the run's side: values loaded from the store when
    a run first declares them, saved after a step in which they changed (compared by a
    digest kept in the run's own state, so continue-as-new does not save again)."""

    def __init__(self, memory: WorkflowMemory) -> None:
        self.memory = memory

    def _scope(self, key: str, kind: str) -> str:
        scope = self.memory.scope(kind)
        if scope is None:
            raise ApplicationError(
                f"def_state({key!r}, persist=True, scope='session'): this run has no session; start it with "
                "session='...' (RunConfig(session=...) or `lmthing run --session`), or use scope='agent'",
                type="PromptError", non_retryable=True)
        return scope

    async def load(self, prompt: Any) -> bool:
        """Load the keys first declared in the last run of the function (it stopped at the
        first: see PersistedStateNeeded); True if any had a saved value."""
        found: dict[str, Any] = {}
        options = prompt.persisted_state()
        for key in prompt.take_pending_loads():
            if key not in options:
                continue
            record = await self.memory.get(MemoryQuery(namespace=STATE_NAMESPACE, scope=self._scope(key, options[key][0]),
                                                       key=key))
            if record is not None:
                prompt.load_state(key, record.value)
                found[key] = record.value
        if found:
            self._mark_saved(prompt, found)
        return bool(found)

    async def save(self, prompt: Any) -> None:
        saved = dict(prompt.get_state(SAVED_STATE_KEY) or {})
        changed = {}
        for key, (scope, ttl) in prompt.persisted_state().items():
            value = prompt.get_state(key)
            if saved.get(key) == _digest(value):
                continue
            await self.memory.write(MemoryWrite(
                record=MemoryRecord(namespace=STATE_NAMESPACE, scope=self._scope(key, scope), key=key, kind="state",
                                    value=value), ttl_seconds=ttl))
            changed[key] = value
        if changed:
            self._mark_saved(prompt, changed)

    @staticmethod
    def _mark_saved(prompt: Any, values: dict[str, Any]) -> None:
        _, set_saved = prompt.def_state(SAVED_STATE_KEY, {})
        set_saved(lambda saved: {**(saved or {}), **{k: _digest(v) for k, v in values.items()}})


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
