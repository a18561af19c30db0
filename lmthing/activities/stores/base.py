"""The interface every memory store driver implements, and the URL that picks one.

URLs: ``sqlite:///relative/or/absolute/path.db`` (``sqlite:///.lmthing/memory.db`` is the
default, beside the dev server's data), ``postgresql://user:pass@host:port/db`` (or
``postgres://``). The URL is a worker setting (``create_worker(memory_store=...)``, env
``LMTHING_MEMORY_URL``), never part of a workflow's input: it may hold a password.

Every method is safe to repeat: ``put`` replaces the record at its address, ``delete`` of
what is gone deletes nothing. Expired records (``expires_at`` passed) are never returned.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

from lmthing.memory.types import MemoryRecord, MemoryStoreError, SearchHit

DEFAULT_STORE_URL = "sqlite:///.lmthing/memory.db"
STORE_URL_VAR = "LMTHING_MEMORY_URL"


def default_store_url() -> str:
    return os.environ.get(STORE_URL_VAR) or DEFAULT_STORE_URL


_USERINFO_PASSWORD = re.compile(r"(://[^/@:?#]*):[^/@?#]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` fit to show in an error or a log line: its password, if any, as ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url))


class Store(ABC):
    """A memory store. ``embedding`` arguments are the record's vector (computed on the
    worker); a store keeps one vector length per namespace and refuses another with a
    :class:`MemoryStoreError` naming the embedding model."""

    url: str

    @abstractmethod
    async def put(self, record: MemoryRecord, embedding: Sequence[float] | None = None) -> MemoryRecord:
        """Write (or replace) the record at its address; the stored record (times set)."""

    @abstractmethod
    async def get(self, namespace: str, scope: str, key: str) -> MemoryRecord | None: ...

    @abstractmethod
    async def list(
        self, *, namespace: str | None = None, scope: str | None = None, kind: str | None = None,
        limit: int = 100, offset: int = 0, newest_first: bool = True,
    ) -> list[MemoryRecord]:
        """Records in ``updated_at`` order (newest first unless asked otherwise)."""

    @abstractmethod
    async def search(
        self, namespace: str, scope: str | None, *, text: str | None = None,
        embedding: Sequence[float] | None = None, limit: int = 5, kind: str | None = None,
    ) -> list[SearchHit]:
        """By meaning when ``embedding`` is given (cosine similarity, highest first), else by
        keywords in ``text`` (full-text rank). ``scope`` None: every scope of the namespace."""

    @abstractmethod
    async def delete(self, namespace: str | None, scope: str | None = None, key: str | None = None) -> int:
        """Delete what matches (None matches all, but ``namespace`` None needs ``scope``);
        the number of records deleted."""

    @abstractmethod
    async def namespaces(self) -> list[dict[str, object]]:
        """Each namespace with its record count, kinds and embedding model (for the CLI)."""

    @abstractmethod
    async def close(self) -> None: ...


def open_store(url: str) -> Store:
    """The store for ``url`` (not yet connected: the first call connects). A URL of no
    known kind is a :class:`MemoryStoreError` naming the setting and the kinds there are."""
    if not isinstance(url, str) or "://" not in url:
        raise MemoryStoreError(
            f"memory store URL {redact_url(str(url))!r} is not a URL: use sqlite:///path/to/memory.db or "
            f"postgresql://user:password@host:5432/dbname ({STORE_URL_VAR} or create_worker(memory_store=...))",
            setting=STORE_URL_VAR)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise MemoryStoreError(
        f"memory store URL {redact_url(url)!r}: unknown kind {scheme!r}; use sqlite:///path/to/memory.db or "
        f"postgresql://user:password@host:5432/dbname ({STORE_URL_VAR} or create_worker(memory_store=...))",
        setting=STORE_URL_VAR)
