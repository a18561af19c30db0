"""The embedded memory store: one SQLite file, FTS5 for keywords, sqlite-vec for vectors.

Layout (``PRAGMA user_version`` 1):

* ``memory_records``: one row per ``(namespace, scope, key)``; value and metadata as JSON text.
* ``memory_fts``: an FTS5 table over the records' text (Porter stemming), rowid = record id.
* ``memory_vec_<D>``: one sqlite-vec ``vec0`` table per vector length D (cosine distance),
  rowid = record id, with the namespace as partition key and scope, kind and expiry as
  metadata columns, so a k-nearest query filters *inside* the scan and stays exact (a
  filter after a top-k could leave fewer than k hits, or none).
* ``memory_namespaces``: each namespace's embedding model and vector length (one per namespace).

Every call runs on one thread of the store's own (one connection, opened there on first
use): SQLite connections are not for concurrent use, and a store-owned thread keeps the
event loop free without taking the default executor's threads while calls wait their turn.
WAL mode and a busy timeout let several worker processes share the file.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lmthing.memory.types import MemoryRecord, MemoryStoreError, MemoryStoreUnavailable, SearchHit

from .base import STORE_URL_VAR, Store
from .common import (
    COLUMNS, check_delete, check_embedding, dimension_error, prepare, query_words, record_of, to_json, url_error, where_clause,
)

T = TypeVar("T")
SCHEMA_VERSION = 1
NEVER = 253402300799.0  # 9999-12-31: the expiry vec0 rows get for "never" (metadata columns are not nullable)
PURGE_EVERY = 1000  # puts between two sweeps of expired records (one also runs on connect)
MMAP_BYTES = 1 << 30  # address space, not memory: pages are the OS's file cache
_CHUNK = 500  # ids per IN (...) list

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: vec0 and FTS rows are keyed by it
    namespace TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    value TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL,
    embedding_model TEXT,
    dimensions INTEGER,
    UNIQUE (namespace, scope, key)
);
CREATE INDEX IF NOT EXISTS memory_records_by_time ON memory_records (namespace, updated_at);
CREATE INDEX IF NOT EXISTS memory_records_by_expiry ON memory_records (expires_at) WHERE expires_at IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(text, tokenize = 'porter unicode61');
CREATE TABLE IF NOT EXISTS memory_namespaces (
    namespace TEXT PRIMARY KEY,
    embedding_model TEXT,
    dimensions INTEGER NOT NULL
);
"""
_COLUMNS = COLUMNS


def _driver() -> Any:
    """The sqlite3 module to use: pysqlite3 (a current SQLite that can load extensions),
    else the standard one if it can."""
    try:
        from pysqlite3 import dbapi2  # type: ignore[import-not-found]

        return dbapi2
    except ImportError:
        import sqlite3

        if hasattr(sqlite3.Connection, "enable_load_extension"):
            return sqlite3
    raise MemoryStoreError(
        "the SQLite memory store needs a sqlite3 module that can load extensions (for sqlite-vec), and this "
        "Python's cannot: pip install pysqlite3-binary (Linux), or use a Python built with loadable SQLite "
        f"extensions, or a PostgreSQL store ({STORE_URL_VAR}=postgresql://...)", setting=STORE_URL_VAR)


def path_of(url: str) -> str:
    """``sqlite:///rel/path.db`` -> ``rel/path.db`` (from the current folder),
    ``sqlite:////abs/path.db`` -> ``/abs/path.db``, ``sqlite:///:memory:`` -> ``:memory:``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise url_error(url, "a SQLite URL has three slashes before a relative path, four before an absolute one: "
                             "sqlite:///.lmthing/memory.db or sqlite:////var/lib/lmthing/memory.db")
    path = rest[1:].split("?", 1)[0]
    if not path or path.endswith("/"):
        raise url_error(url, "no file name; use e.g. sqlite:///.lmthing/memory.db")
    return path


class SQLiteStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_of(url)
        self._db = _driver()
        self._conn: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._vec_tables: set[int] = set()
        self._puts = 0

    # -------------------------------------------------------------- the store's thread
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmthing-memory-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn, args)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            if self._conn is None:
                self._conn = self._connect()
            return fn(self._conn, *args)
        except self._db.OperationalError as err:
            text = str(err)
            if any(word in text for word in ("locked", "busy", "full")):
                raise MemoryStoreUnavailable(f"SQLite memory store {self.path}: {text}") from None
            raise

    def _connect(self) -> Any:
        import importlib

        try:
            sqlite_vec = importlib.import_module("sqlite_vec")
        except ImportError:
            raise MemoryStoreError(
                "the SQLite memory store needs sqlite-vec for vector search: pip install sqlite-vec",
                setting=STORE_URL_VAR) from None
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise url_error(self.url, f"cannot create the folder of {self.path}: {err}") from None
        try:
            conn = self._db.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except self._db.Error as err:
            raise url_error(self.url, f"cannot open {self.path}: {err}") from None
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
        except (self._db.Error, AttributeError) as err:
            conn.close()
            raise MemoryStoreError(f"the SQLite memory store cannot load sqlite-vec ({err}): pip install -U sqlite-vec "
                                   "pysqlite3-binary", setting=STORE_URL_VAR) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Vector search reads every vector of a namespace: through mmap, not SQLite's
            # page cache (bench/memory.py: 60 -> 37 ms at 100k vectors).
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            try:
                conn.executescript(_SCHEMA)
            except self._db.OperationalError as err:
                if "fts5" not in str(err):
                    raise
                conn.close()
                raise MemoryStoreError(
                    "the SQLite memory store needs FTS5 for keyword search, which this SQLite lacks: "
                    "pip install pysqlite3-binary (a SQLite with FTS5)", setting=STORE_URL_VAR) from None
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._vec_tables = {
                int(name.removeprefix("memory_vec_")) for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name GLOB 'memory_vec_[0-9]*' "
                    "AND sql LIKE 'CREATE VIRTUAL TABLE%'")}
            self._purge(conn)
        except self._db.DatabaseError as err:
            conn.close()
            if isinstance(err, self._db.OperationalError) and any(w in str(err) for w in ("locked", "busy")):
                raise
            raise url_error(self.url, f"{self.path} is not a usable memory store: {err}") from None
        return conn

    def _close(self, conn: Any) -> None:
        conn.close()
        self._conn = None

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            await self._call(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    # -------------------------------------------------------------------------- writes
    async def put(self, record: MemoryRecord, embedding: Sequence[float] | None = None) -> MemoryRecord:
        stored, vector = prepare(record, embedding)
        value = to_json(stored.value, what=f"the value of memory record {record.namespace}/{record.scope}/{record.key}")
        metadata = to_json(stored.metadata, what="a memory record's metadata")
        return (await self._call(self._put_many, [(stored, vector, value, metadata)]))[0]

    async def _put_batch(self, items: Sequence[tuple[MemoryRecord, Sequence[float] | None]]) -> int:
        """Many puts in one transaction (bench/memory.py's loading path; not part of Store)."""
        rows = []
        for record, embedding in items:
            stored, vector = prepare(record, embedding)
            rows.append((stored, vector, to_json(stored.value, what="a value"), to_json(stored.metadata, what="metadata")))
        return len(await self._call(self._put_many, rows))

    def _put_many(self, conn: Any, rows: list[tuple[MemoryRecord, list[float] | None, str, str]]) -> list[MemoryRecord]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = [self._write(conn, *row) for row in rows]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._puts += len(rows)
        if self._puts >= PURGE_EVERY:
            self._purge(conn)
        return done

    def _write(self, conn: Any, r: MemoryRecord, vector: list[float] | None, value: str, metadata: str) -> MemoryRecord:
        if vector is not None:
            self._claim_dimensions(conn, r.namespace, len(vector), r.embedding_model)
        old = conn.execute("SELECT id, created_at, dimensions FROM memory_records WHERE namespace=? AND scope=? AND key=?",
                           (r.namespace, r.scope, r.key)).fetchone()
        fields = (r.kind, r.text, value, metadata, r.updated_at, r.expires_at, r.embedding_model, r.dimensions)
        if old is not None:
            rowid, created_at, old_dimensions = old
            conn.execute("UPDATE memory_records SET kind=?, text=?, value=?, metadata=?, updated_at=?, expires_at=?, "
                         "embedding_model=?, dimensions=? WHERE id=?", (*fields, rowid))
            conn.execute("DELETE FROM memory_fts WHERE rowid=?", (rowid,))
            if old_dimensions is not None and self._has_vec_table(conn, old_dimensions):
                conn.execute(f"DELETE FROM memory_vec_{int(old_dimensions)} WHERE rowid=?", (rowid,))
        else:
            created_at = r.created_at or r.updated_at
            rowid = conn.execute(
                f"INSERT INTO memory_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.namespace, r.scope, r.key, r.kind, r.text, value, metadata, created_at, *fields[4:])).lastrowid
        if r.text:
            conn.execute("INSERT INTO memory_fts (rowid, text) VALUES (?, ?)", (rowid, r.text))
        if vector is not None:
            table = self._vec_table(conn, len(vector))
            conn.execute(f"INSERT INTO {table} (rowid, namespace, embedding, scope, kind, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (rowid, r.namespace, _blob(vector), r.scope, r.kind, r.expires_at or NEVER))
        return r.model_copy(update={"created_at": created_at})

    def _claim_dimensions(self, conn: Any, namespace: str, dimensions: int, model: str | None) -> None:
        held = conn.execute("SELECT dimensions, embedding_model FROM memory_namespaces WHERE namespace=?",
                            (namespace,)).fetchone()
        if held is None:
            conn.execute("INSERT INTO memory_namespaces (namespace, embedding_model, dimensions) VALUES (?, ?, ?)",
                         (namespace, model, dimensions))
        elif held[0] != dimensions:
            raise dimension_error(namespace, held[0], held[1], dimensions, model)

    def _has_vec_table(self, conn: Any, dimensions: int) -> bool:
        """Whether the vec0 table of that length exists (another process may have made it
        since this connection looked)."""
        if dimensions not in self._vec_tables and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (f"memory_vec_{int(dimensions)}",)).fetchone():
            self._vec_tables.add(dimensions)
        return dimensions in self._vec_tables

    def _vec_table(self, conn: Any, dimensions: int) -> str:
        table = f"memory_vec_{int(dimensions)}"
        if dimensions not in self._vec_tables:
            conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0(namespace text partition key, "
                         f"embedding float[{int(dimensions)}] distance_metric=cosine, scope text, kind text, expires_at float)")
            self._vec_tables.add(dimensions)
        return table

    async def delete(self, namespace: str | None, scope: str | None = None, key: str | None = None) -> int:
        check_delete(namespace, scope)
        where, args = _where(namespace=namespace, scope=scope, key=key)
        return await self._call(self._delete, where, args)

    def _delete(self, conn: Any, where: str, args: list[Any]) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            found = conn.execute(f"SELECT id, dimensions, expires_at FROM memory_records WHERE {where}", args).fetchall()
            self._remove(conn, found)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return sum(1 for _, _, expires in found if expires is None or expires > now)

    def _remove(self, conn: Any, found: list[tuple[Any, ...]]) -> None:
        """Delete the records ``found`` ((id, dimensions, ...) rows) from every table, and
        forget the embedding length of a namespace left empty."""
        by_table: dict[str, list[int]] = {"memory_records": [], "memory_fts": []}
        for rowid, dimensions, *_ in found:
            by_table["memory_records"].append(rowid)
            by_table["memory_fts"].append(rowid)
            if dimensions is not None and self._has_vec_table(conn, dimensions):
                by_table.setdefault(f"memory_vec_{int(dimensions)}", []).append(rowid)
        for table, ids in by_table.items():
            column = "id" if table == "memory_records" else "rowid"
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                conn.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
        if found:
            conn.execute("DELETE FROM memory_namespaces WHERE namespace NOT IN (SELECT namespace FROM memory_records)")

    def _purge(self, conn: Any) -> None:
        """Delete the records whose time has passed (they are invisible already)."""
        self._puts = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._remove(conn, conn.execute("SELECT id, dimensions FROM memory_records WHERE expires_at <= ?",
                                            (time.time(),)).fetchall())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --------------------------------------------------------------------------- reads
    async def get(self, namespace: str, scope: str, key: str) -> MemoryRecord | None:
        where, args = _where(namespace=namespace, scope=scope, key=key, live=True)
        rows = await self._call(_select, f"SELECT {_COLUMNS} FROM memory_records WHERE {where}", args)
        return rows[0] if rows else None

    async def list(
        self, *, namespace: str | None = None, scope: str | None = None, kind: str | None = None,
        limit: int = 100, offset: int = 0, newest_first: bool = True,
    ) -> list[MemoryRecord]:
        where, args = _where(namespace=namespace, scope=scope, kind=kind, live=True)
        order = "DESC" if newest_first else "ASC"
        return await self._call(_select, f"SELECT {_COLUMNS} FROM memory_records WHERE {where} "
                                         f"ORDER BY updated_at {order}, id {order} LIMIT ? OFFSET ?",
                                [*args, max(0, limit), max(0, offset)])

    async def search(
        self, namespace: str, scope: str | None, *, text: str | None = None,
        embedding: Sequence[float] | None = None, limit: int = 5, kind: str | None = None,
    ) -> list[SearchHit]:
        if limit <= 0:
            return []
        if embedding is not None:
            vector = check_embedding(embedding, what=f"a search of memory namespace {namespace!r}")
            return await self._call(self._by_vector, namespace, scope, kind, vector, limit)
        words = query_words(text)
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        where, args = _where(namespace=namespace, scope=scope, kind=kind, live=True, table="r")
        # CROSS JOIN keeps the full-text match the outer loop: left to itself, SQLite walks the
        # namespace's records and runs the match once per record (100x slower at 5k records).
        sql = (f"SELECT {_prefixed('r')}, -bm25(memory_fts) FROM memory_fts CROSS JOIN memory_records r "
               "ON r.id = memory_fts.rowid "
               f"WHERE memory_fts MATCH ? AND {where} ORDER BY bm25(memory_fts), r.updated_at DESC LIMIT ?")
        return await self._call(_hits, sql, [match, *args, limit])

    def _by_vector(self, conn: Any, namespace: str, scope: str | None, kind: str | None,
                   vector: list[float], limit: int) -> list[SearchHit]:
        held = conn.execute("SELECT dimensions, embedding_model FROM memory_namespaces WHERE namespace=?",
                            (namespace,)).fetchone()
        if held is None or not self._has_vec_table(conn, held[0]):
            return []
        if held[0] != len(vector):
            raise dimension_error(namespace, held[0], held[1], len(vector), None)
        now = time.time()
        # The expiry filter adds ~25% to the scan, and expired rows are rare (swept every
        # PURGE_EVERY puts): first without it; only if an expired row took a place, again with it.
        for with_expiry in (False, True):
            near = self._nearest(conn, int(held[0]), vector, limit, namespace, scope, kind, now if with_expiry else None)
            if not near:
                return []
            where, args = _where(live=True)
            rows = conn.execute(f"SELECT id, {_COLUMNS} FROM memory_records WHERE id IN ({','.join('?' * len(near))}) "
                                f"AND {where}", [rowid for rowid, _ in near] + args).fetchall()
            if len(rows) == len(near) or with_expiry:
                break
        records = {row[0]: _record(row[1:]) for row in rows}
        return [SearchHit(record=records[rowid], score=1.0 - distance) for rowid, distance in near if rowid in records]

    def _nearest(self, conn: Any, dimensions: int, vector: list[float], limit: int, namespace: str,
                 scope: str | None, kind: str | None, now: float | None) -> list[tuple[int, float]]:
        """The (rowid, cosine distance) of the ``limit`` nearest vectors that pass the filters:
        exact, the filters applied inside vec0's scan."""
        filters, args = ["embedding MATCH ?", "k = ?", "namespace = ?"], [_blob(vector), limit, namespace]
        for column, value in (("scope", scope), ("kind", kind), ("expires_at", now)):
            if value is not None:
                filters.append(f"{column} {'>' if column == 'expires_at' else '='} ?")
                args.append(value)
        return conn.execute(f"SELECT rowid, distance FROM memory_vec_{dimensions} WHERE {' AND '.join(filters)} "
                            "ORDER BY distance", args).fetchall()

    async def namespaces(self) -> list[dict[str, object]]:
        sql = ("SELECT r.namespace, count(*), count(DISTINCT r.scope), group_concat(DISTINCT r.kind), max(r.updated_at), "
               "n.embedding_model, n.dimensions FROM memory_records r LEFT JOIN memory_namespaces n ON n.namespace = r.namespace "
               "WHERE r.expires_at IS NULL OR r.expires_at > ? GROUP BY r.namespace ORDER BY r.namespace")
        rows = await self._call(lambda conn: conn.execute(sql, (time.time(),)).fetchall())
        return [{"namespace": ns, "records": count, "scopes": scopes, "kinds": sorted(kinds.split(",")),
                 "updated_at": updated, "embedding_model": model, "dimensions": dims}
                for ns, count, scopes, kinds, updated, model, dims in rows]


def _blob(vector: list[float]) -> bytes:
    import struct

    return struct.pack(f"{len(vector)}f", *vector)


def _prefixed(table: str) -> str:
    return ", ".join(f"{table}.{c.strip()}" for c in _COLUMNS.split(","))


def _select(conn: Any, sql: str, args: Sequence[Any]) -> list[MemoryRecord]:
    return [_record(row) for row in conn.execute(sql, args).fetchall()]


def _hits(conn: Any, sql: str, args: Sequence[Any]) -> list[SearchHit]:
    return [SearchHit(record=_record(row[:-1]), score=float(row[-1])) for row in conn.execute(sql, args).fetchall()]


def _where(**parts: Any) -> tuple[str, list[Any]]:
    return where_clause("?", **parts)


def _record(row: Sequence[Any]) -> MemoryRecord:
    return record_of(row, parse=json.loads)
