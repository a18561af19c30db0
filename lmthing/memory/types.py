"""The data of memory that crosses the workflow/activity boundary (pydantic, versioned by
adding optional fields): a stored record, a search hit, and the errors a store raises.

A record is addressed by ``(namespace, scope, key)``; writing the same address again
replaces the record, which is what makes every write idempotent: a retried activity writes
the same key (made from the run, the step and the tool call) and so never stores twice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# kv: a value under a key; vector: text found by meaning (an embedding); episodic: events in
# time order, with summaries; belief: a weighted proposition (log-odds); state: a persisted
# def_state value; cache: a cached tool or model result.
RecordKind = Literal["kv", "vector", "episodic", "belief", "state", "cache"]
RECORD_KINDS: tuple[str, ...] = ("kv", "vector", "episodic", "belief", "state", "cache")

# Where a record is visible: one run ("run:<workflow id>"), a session ("session:<id>"), one
# agent across its runs ("agent:<prompt name>"), or everyone ("global").
ScopeKind = Literal["run", "session", "agent", "global"]
SCOPE_KINDS: tuple[str, ...] = ("run", "session", "agent", "global")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryRecord(_Model):
    """One stored memory. ``text`` is what keyword and vector search look at; ``value`` is
    any JSON (a kv value, a state value, a cached result, a belief's numbers)."""

    namespace: str  # the def_memory / def_cache name ("_state" for persisted def_state)
    scope: str  # "run:<id>", "session:<id>", "agent:<name>" or "global"
    key: str
    kind: RecordKind = "kv"
    text: str = ""
    value: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0  # epoch seconds; 0: the store sets it
    updated_at: float = 0.0
    expires_at: float | None = None  # epoch seconds; None: never
    # The embedding model's name and the vector's length, for kind "vector" (the vector
    # itself stays in the store: it never enters workflow history).
    embedding_model: str | None = None
    dimensions: int | None = None


class SearchHit(_Model):
    record: MemoryRecord
    score: float  # higher is closer: cosine similarity for vectors, a keyword rank otherwise


class MemoryStoreError(Exception):
    """A store that cannot be used as configured (a bad URL, a missing extension, a wrong
    embedding dimension): the activity fails it as non-retryable, naming the setting."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class MemoryStoreUnavailable(Exception):
    """A store that does not answer now (a database down or unreachable): retried."""


class EmbeddingSpec(_Model):
    """Which model embeds a memory's texts (on the worker): ``provider:model``, and the
    vector length to ask for (text-embedding-3 models can shorten theirs)."""

    model: str
    dimensions: int | None = None


class MemoryWrite(_Model):
    """``lmthing.memory.write``: store ``record`` (replacing what is at its address); embed
    its text first when ``embedding`` is set; expire it ``ttl_seconds`` after the write."""

    record: MemoryRecord
    embedding: EmbeddingSpec | None = None
    ttl_seconds: float | None = None


class MemoryQuery(_Model):
    """``lmthing.memory.get`` / ``.search`` / ``.list``: what to read. ``scope`` None: every
    scope of the namespace. ``text`` with ``embedding``: search by meaning."""

    namespace: str
    scope: str | None = None
    key: str | None = None
    text: str | None = None
    embedding: EmbeddingSpec | None = None
    kind: RecordKind | None = None
    limit: int = 5
    newest_first: bool = True


class MemoryForget(_Model):
    """``lmthing.memory.forget``: delete by namespace, and scope and key when given."""

    namespace: str
    scope: str | None = None
    key: str | None = None


class CacheRef(_Model):
    """A cached call's place in a ``def_cache`` (what a tool activity receives, as JSON in
    ``ToolActivityInput.cache``): the cache, the call's key, its scope and lifetime."""

    name: str
    key: str
    scope: str = "global"
    ttl_seconds: float | None = None
    max_size: int = 1000
