"""Memory on the prompt: ``p.def_memory(name, kind=..., scope=..., ttl=...)`` (the seeds'
defMemory, Memory store/retrieve/search/clear, PromptWithMemory remember/recall/forget/
summarize, and 004's beliefs; docs/memory.md).

Every prompt has it (the engine adds this plugin to each run). The handle's methods are
awaited from the prompt function or from tools; each reaches the store through the run's
``memory`` service (workflows/memory_host.py), whose calls are activities. The prompt
function runs again before every step, so what it remembers is written once: the key
(given, or a digest of the text) and a digest of what was written under it are kept in
``def_state["_lmthing_remembered"]`` (a new value under the key is written again), and a
write replaces the record at its address, so a retried activity never stores twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pydantic import BaseModel, Field

from lmthing.prompt.stateful_prompt import PromptError, ScanStop, StatefulPrompt

from .cache import def_cache
from .types import SCOPE_KINDS, EmbeddingSpec, MemoryForget, MemoryQuery, MemoryRecord, MemoryWrite, RecordKind

REMEMBERED_STATE_KEY = "_lmthing_remembered"
MEMORY_KINDS = ("kv", "vector", "episodic", "belief")
DEFAULT_EMBEDDING = "openai:text-embedding-3-small"
SUMMARY_INSTRUCTION = ("Summarize these events of an agent's memory in a few sentences, keeping names, numbers and "
                       "decisions. Answer with the summary only.")


def _seconds(api: str, what: str, value: Any) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise PromptError(f"{api}: {what} is a number of seconds (or a timedelta) above 0; got {value!r}")
    return float(seconds)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Memory:
    """A named memory of one kind and scope; get it from ``p.def_memory``."""

    def __init__(self, p: StatefulPrompt, name: str, kind: str, scope: str, ttl: float | None,
                 embedding: EmbeddingSpec | None, half_life: float | None) -> None:
        self._p = p
        self.name = name
        self.kind = kind
        self.scope_kind = scope
        self.ttl = ttl
        self.embedding = embedding
        self.half_life = half_life

    # ----------------------------------------------------------------- plumbing
    def _host(self, api: str) -> Any:
        host = self._p.service("memory")
        if host is None:
            if self._p.scan_only:
                raise ScanStop(api)
            raise PromptError(f"{api} needs a running workflow: call it from a prompt run, not outside one")
        return host

    def _scope(self, api: str) -> tuple[Any, str]:
        host = self._host(api)
        scope = host.scope(self.scope_kind)
        if scope is None:
            raise PromptError(f"{api}: memory {self.name!r} has scope='session', but this run has no session: start it "
                              "with session='...' (RunConfig(session=...) or `lmthing run --session`), or use "
                              "scope='agent'")
        return host, scope

    async def _write(self, api: str, key: str, text: str, value: Any, metadata: dict[str, Any] | None,
                     kind: RecordKind | None = None) -> MemoryRecord:
        host, scope = self._scope(api)
        record = MemoryRecord(namespace=self.name, scope=scope, key=key, kind=kind or self.kind,  # type: ignore[arg-type]
                              text=text, value=value, metadata=dict(metadata or {}))
        return await host.write(MemoryWrite(record=record, embedding=self.embedding if self.kind == "vector" else None,
                                            ttl_seconds=self.ttl))

    # ------------------------------------------------------------------ the API
    async def remember(self, content: Any, *, key: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        """Store ``content``: a kv memory keeps any JSON value under ``key`` (required); a
        vector or episodic memory keeps text, under ``key`` or a digest of the text (the same
        text is one memory). From the prompt function a key is written once per run; call
        it again with another key (or text) to store more. The key is returned."""
        api = f"memory {self.name!r}.remember"
        if self.kind == "belief":
            raise PromptError(f"{api}: a belief memory is changed with .update(proposition, evidence)")
        if self.kind == "kv":
            if not isinstance(key, str) or not key:
                raise PromptError(f"{api}: a kv memory needs key='...' for the value")
            _jsonable(api, content)
            text, value = (content if isinstance(content, str) else json.dumps(content, default=str)), content
        else:
            if not isinstance(content, str) or not content.strip():
                raise PromptError(f"{api}: a {self.kind} memory keeps text; got {content!r}")
            text, value = content, None
            key = key or _digest(content)
        if metadata is not None and not isinstance(metadata, dict):
            raise PromptError(f"{api}: metadata is a dict; got {metadata!r}")
        stamp = {**(metadata or {}), **({"at": self._host(api).now()} if self.kind == "episodic" else {})}
        return await self._once(key, text, lambda: self._write(api, key, text, value, stamp))  # type: ignore[arg-type]

    async def _once(self, key: str, text: str, write: Any) -> str:
        """From the prompt function: write unless this run already wrote this text under
        this key (a new value under the same key is written)."""
        if not self._p.in_body:  # a tool or handler: its own key makes it idempotent
            await write()
            return key
        done, set_done = self._p.def_state(REMEMBERED_STATE_KEY, {})
        mark, digest = f"{self.name}/{key}", _digest(text)
        if done.get(mark) != digest:
            await write()
            set_done(lambda seen: {**(seen or {}), mark: digest})
        return key

    async def recall(self, query: str | None = None, *, limit: int = 5) -> Any:
        """kv: the value under the key ``query`` (None when there is none). vector: the texts
        most similar to ``query``. episodic: the latest summary and the ``limit`` newest
        events after it, oldest first. belief: see ``belief``."""
        api = f"memory {self.name!r}.recall"
        host, scope = self._scope(api)
        if self.kind == "kv":
            if not isinstance(query, str) or not query:
                raise PromptError(f"{api}: a kv memory is recalled by key: recall('key')")
            record = await host.get(MemoryQuery(namespace=self.name, scope=scope, key=query))
            return None if record is None else record.value
        if self.kind == "vector":
            if not isinstance(query, str) or not query:
                raise PromptError(f"{api}: a vector memory is recalled by what it is about: recall('text')")
            return [h["text"] for h in await self.search(query, limit=limit)]
        if self.kind == "episodic":
            return [r.text for r in await self._episodes(host, scope, limit)]
        return await self.belief(query or "")

    async def _episodes(self, host: Any, scope: str, limit: int) -> list[MemoryRecord]:
        records = await host.list(MemoryQuery(namespace=self.name, scope=scope, limit=max(limit, 1) * 4 + 1))
        summary = next((r for r in records if r.metadata.get("summary")), None)
        newer = [r for r in records if not r.metadata.get("summary")
                 and (summary is None or r.metadata.get("at", 0) > summary.metadata.get("through", 0))]
        newer = sorted(newer, key=lambda r: (r.metadata.get("at", 0), r.key))[-limit:]
        return ([summary] if summary else []) + newer

    async def search(self, query: str, *, limit: int = 5) -> list[dict[str, Any]]:
        """The memories most related to ``query``: by meaning for a vector memory, by
        keywords otherwise. Each: key, text, value, score, metadata."""
        api = f"memory {self.name!r}.search"
        if not isinstance(query, str):
            raise PromptError(f"{api}: the query is text; got {query!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise PromptError(f"{api}: limit is a whole number above 0; got {limit!r}")
        host, scope = self._scope(api)
        hits = await host.search(MemoryQuery(namespace=self.name, scope=scope, text=query, limit=limit,
                                             embedding=self.embedding if self.kind == "vector" else None))
        return [{"key": h.record.key, "text": h.record.text, "value": h.record.value, "score": round(h.score, 6),
                 "metadata": h.record.metadata} for h in hits]

    async def forget(self, key: str | None = None) -> int:
        """Delete the memory under ``key``, or all of this memory in its scope; how many."""
        host, scope = self._scope(f"memory {self.name!r}.forget")
        return await host.forget(MemoryForget(namespace=self.name, scope=scope, key=key))

    async def summarize(self, *, model: str | None = None, summarizer: Any = None, keep_last: int = 0) -> str | None:
        """Episodic: replace what is older than the ``keep_last`` newest events with a summary,
        written by ``model`` (default the run's model, a model-call activity) or by
        ``summarizer(texts) -> str`` (deterministic, in the workflow). Recall then returns the
        summary first. Returns the summary (None: nothing to summarize)."""
        api = f"memory {self.name!r}.summarize"
        if self.kind != "episodic":
            raise PromptError(f"{api}: only an episodic memory has summaries")
        host, scope = self._scope(api)
        records = await self._episodes(host, scope, 1000)
        events = [r for r in records if not r.metadata.get("summary")]
        older = events[:len(events) - keep_last] if keep_last else events
        if not older:
            return None
        texts = [r.text for r in records if r.metadata.get("summary")] + [r.text for r in older]
        summary = summarizer(texts) if summarizer is not None else await host.summarize(texts, model, SUMMARY_INSTRUCTION)
        if not isinstance(summary, str):
            raise PromptError(f"{api}: the summarizer returns text; got {summary!r}")
        through = older[-1].metadata.get("at", 0)
        await self._write(api, "_summary", summary, None, {"summary": True, "through": through, "covers": len(older)})
        return summary

    # The seed's Memory interface (000): store / retrieve / clear.
    async def store(self, content: Any, *, key: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        return await self.remember(content, key=key, metadata=metadata)

    async def retrieve(self, query: str | None = None, *, limit: int = 5) -> Any:
        return await self.recall(query, limit=limit)

    async def clear(self) -> int:
        return await self.forget()

    # ------------------------------------------------------------------ beliefs
    async def update(self, proposition: str, evidence: float, *, weight: float = 1.0, key: str | None = None) -> float:
        """A belief memory: add ``weight * log(evidence)`` to the proposition's log-odds
        (``evidence`` is a likelihood ratio: > 1 for, < 1 against), after decaying what was
        there by the memory's half life. The new probability. From the prompt function, which
        runs before every step, ``key`` names this piece of evidence so it counts once."""
        api = f"memory {self.name!r}.update"
        if self._p.in_body:
            if not isinstance(key, str) or not key:
                raise PromptError(f"{api} in the prompt function needs key='...': the function runs before every "
                                  "step, and the key makes the evidence count once")
            done, set_done = self._p.def_state(REMEMBERED_STATE_KEY, {})
            mark = f"{self.name}/update/{key}"
            if mark in done:
                return await self.belief(proposition)
            probability = await self._update(api, proposition, evidence, weight)
            set_done(lambda seen: {**(seen or {}), mark: True})
            return probability
        return await self._update(api, proposition, evidence, weight)

    async def _update(self, api: str, proposition: str, evidence: float, weight: float) -> float:
        if self.kind != "belief":
            raise PromptError(f"{api}: only a belief memory (kind='belief') is updated with evidence")
        if isinstance(evidence, bool) or not isinstance(evidence, (int, float)) or evidence <= 0:
            raise PromptError(f"{api}: evidence is a likelihood ratio above 0 (2.0: twice as likely if true); got {evidence!r}")
        host, scope = self._scope(api)
        now = host.now()
        log_odds, count = await self._log_odds(host, scope, proposition, now)
        log_odds += float(weight) * math.log(float(evidence))
        value = {"log_odds": log_odds, "updated_at": now, "evidence": count + 1}
        await self._write(api, _digest(proposition), proposition, value, None, "belief")
        return _probability(log_odds)

    async def belief(self, proposition: str) -> float:
        """The probability (0.5 when nothing is known) that ``proposition`` holds, decayed."""
        host, scope = self._scope(f"memory {self.name!r}.belief")
        log_odds, _ = await self._log_odds(host, scope, proposition, host.now())
        return _probability(log_odds)

    async def _log_odds(self, host: Any, scope: str, proposition: str, now: float) -> tuple[float, int]:
        record = await host.get(MemoryQuery(namespace=self.name, scope=scope, key=_digest(proposition)))
        if record is None or not isinstance(record.value, dict):
            return 0.0, 0
        log_odds = float(record.value.get("log_odds", 0.0))
        if self.half_life:
            log_odds *= 0.5 ** (max(0.0, now - float(record.value.get("updated_at", now))) / self.half_life)
        return log_odds, int(record.value.get("evidence", 0))


def _probability(log_odds: float) -> float:
    return 1.0 / (1.0 + math.exp(-log_odds))


def _jsonable(api: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise PromptError(f"{api}: the value must be JSON (dicts, lists, text, numbers, bools, None); got {value!r}") from None


class _RememberArgs(BaseModel):
    text: str = Field(description="What to remember, in a sentence or two")


class _RememberValueArgs(BaseModel):
    key: str = Field(description="The name to remember it under")
    value: Any = Field(description="The value (text or JSON)")


class _RecallArgs(BaseModel):
    query: str = Field(description="What to look for (a key for a key-value memory)")


def def_memory(
    p: StatefulPrompt,
    name: str,
    kind: str = "kv",
    *,
    scope: str = "agent",
    ttl: Any = None,
    embedding: str | None = None,
    dimensions: int | None = None,
    half_life: Any = None,
    tools: bool = False,
) -> Memory:
    """A memory that outlives the run. ``kind``: ``"kv"`` (values under keys), ``"vector"``
    (texts found by meaning, embedded by ``embedding``, default
    ``openai:text-embedding-3-small``, with ``dimensions`` if given), ``"episodic"``
    (events in time order, with summaries) or ``"belief"`` (propositions with log-odds,
    decaying by ``half_life`` seconds). ``scope``: ``"run"``, ``"session"``, ``"agent"``
    (every run of this prompt; the default) or ``"global"``. ``ttl``: seconds a record lives.
    ``tools=True`` also gives the model ``<name>_remember`` and ``<name>_recall``."""
    api = f"def_memory({name!r})"
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name) or name.startswith("_"):
        raise PromptError(f"{api}: the name is letters, digits, '_', '-' or '.', not starting with '_'; got {name!r}")
    if kind not in MEMORY_KINDS:
        raise PromptError(f"{api}: kind is one of {', '.join(MEMORY_KINDS)}; got {kind!r}")
    if scope not in SCOPE_KINDS:
        raise PromptError(f"{api}: scope is one of {', '.join(SCOPE_KINDS)}; got {scope!r}")
    if (embedding is not None or dimensions is not None) and kind != "vector":
        raise PromptError(f"{api}: embedding= and dimensions= are for kind='vector'; a {kind} memory is not embedded")
    if embedding is not None and (not isinstance(embedding, str) or ":" not in embedding):
        raise PromptError(f"{api}: embedding is 'provider:model', e.g. {DEFAULT_EMBEDDING!r}; got {embedding!r}")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise PromptError(f"{api}: dimensions is a whole number above 0; got {dimensions!r}")
    if half_life is not None and kind != "belief":
        raise PromptError(f"{api}: half_life= is for kind='belief'")
    spec = EmbeddingSpec(model=embedding or DEFAULT_EMBEDDING, dimensions=dimensions) if kind == "vector" else None
    memory = Memory(p, name, kind, scope, _seconds(api, "ttl", ttl), spec, _seconds(api, "half_life", half_life))
    if tools:
        _memory_tools(p, memory)
    return memory


def _memory_tools(p: StatefulPrompt, memory: Memory) -> None:
    name = memory.name
    if memory.kind == "belief":
        raise PromptError(f"def_memory({name!r}): tools=True is for kv, vector and episodic memories")

    async def remember(args: Any, info: Any) -> dict[str, Any]:
        if memory.kind == "kv":
            await memory.remember(args.value, key=args.key)
            return {"remembered": args.key}
        # The call's own key: a retried or replayed call writes the same record.
        key = f"{info.workflow_id}:{info.tool_call_id}"
        await memory.remember(args.text, key=key)
        return {"remembered": args.text}

    async def recall(args: _RecallArgs) -> Any:
        if memory.kind == "kv":
            value = await memory.recall(args.query)
            return {"key": args.query, "value": value} if value is not None else {"key": args.query, "found": False}
        if memory.kind == "episodic":
            return {"memories": await memory.recall(limit=10)}
        return {"memories": await memory.search(args.query)}

    what = {"kv": "a value under a key", "vector": "a fact or note", "episodic": "an event"}[memory.kind]
    p.def_tool(f"{name}_remember", f"Remember {what} in the '{name}' memory, for later runs too.",
               _RememberValueArgs if memory.kind == "kv" else _RememberArgs, remember)
    p.def_tool(f"{name}_recall", f"Recall from the '{name}' memory what was remembered earlier.", _RecallArgs, recall)


memory_plugin = {"def_memory": def_memory, "def_cache": def_cache}

__all__ = ["Memory", "def_memory", "memory_plugin"]
