"""The shared memory store: PostgreSQL, with pgvector for vectors and tsvector for keywords.

Layout (created on first use, under an advisory lock so that workers starting together do
not race): ``lmthing_memory_records``, one row per ``(namespace, scope, key)``, with the
value and metadata as ``json`` (kept as written), a generated ``tsvector`` of the text
(English stemming, GIN-indexed) and the vector as an untyped pgvector ``vector`` column
with its length in ``dimensions`` (one table for every length; a search compares only
vectors of the query's length); ``lmthing_memory_namespaces``, each namespace's embedding
model and vector length. Vector search is exact: cosine distance ``<=>`` over the
namespace's rows (score = 1 - distance), no approximate index.

Connections come from a small ``psycopg_pool`` pool (one connection with a lock when
``psycopg-pool`` is missing). The first call connects once on its own to tell a server that
does not answer (:class:`MemoryStoreUnavailable`, retried) from a configuration it will
never accept (:class:`MemoryStoreError`: authentication, a missing database, no pgvector).
Messages name the host and database, never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from lmthing.memory.types import MemoryRecord, MemoryStoreError, MemoryStoreUnavailable, SearchHit

from .base import STORE_URL_VAR, Store
from .common import (
    COLUMNS, check_delete, check_embedding, dimension_error, prepare, query_words, record_of, to_json, url_error, where_clause,
)

POOL_MAX = 4
PURGE_EVERY = 1000  # puts between two sweeps of expired records (one also runs on connect)
CONNECT_TIMEOUT = 10  # seconds
_LOCK_ID = 0x6C6D_7468  # pg_advisory_xact_lock key of the schema set-up ("lmth")
_TEXT_CONFIG = "english"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lmthing_memory_records (
    id BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    value JSON NOT NULL,
    metadata JSON NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    embedding_model TEXT,
    dimensions INTEGER,
    embedding vector,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('{_TEXT_CONFIG}', text)) STORED,
    UNIQUE (namespace, scope, key)
);
CREATE INDEX IF NOT EXISTS lmthing_memory_records_by_time ON lmthing_memory_records (namespace, updated_at);
CREATE INDEX IF NOT EXISTS lmthing_memory_records_by_expiry ON lmthing_memory_records (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS lmthing_memory_records_tsv ON lmthing_memory_records USING GIN (tsv);
CREATE TABLE IF NOT EXISTS lmthing_memory_namespaces (
    namespace TEXT PRIMARY KEY,
    embedding_model TEXT,
    dimensions INTEGER NOT NULL
);
"""
_COLUMNS = COLUMNS
_UPSERT = (
    f"INSERT INTO lmthing_memory_records ({_COLUMNS}, embedding) "
    "VALUES (%s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s, %s, %s, %s::vector) "
    "ON CONFLICT (namespace, scope, key) DO UPDATE SET kind = EXCLUDED.kind, text = EXCLUDED.text, "
    "value = EXCLUDED.value, metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at, "
    "expires_at = EXCLUDED.expires_at, embedding_model = EXCLUDED.embedding_model, "
    "dimensions = EXCLUDED.dimensions, embedding = EXCLUDED.embedding")
# A namespace's first vector length wins, atomically (the row lock orders concurrent puts).
_CLAIM = (
    "INSERT INTO lmthing_memory_namespaces AS n (namespace, embedding_model, dimensions) VALUES (%s, %s, %s) "
    "ON CONFLICT (namespace) DO UPDATE SET namespace = n.namespace RETURNING n.dimensions, n.embedding_model")
_LIVE = "(expires_at IS NULL OR expires_at > %s)"
# Words of a FATAL connection error that mean "not now" rather than "never like this".
_TRANSIENT = ("starting up", "shutting down", "too many", "recovery", "terminating", "remaining connection slots")


try:
    from psycopg_pool import PoolTimeout as _PoolTimeout
except ImportError:  # without psycopg-pool: one connection, never a pool timeout
    class _PoolTimeout(Exception):  # type: ignore[no-redef]
        pass


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MemoryStoreError(
            "the PostgreSQL memory store needs psycopg 3: pip install 'lmthing[postgres]' (psycopg[binary], psycopg-pool)",
            setting=STORE_URL_VAR) from None
    return psycopg


def conninfo_of(url: str) -> dict[str, Any]:
    """The URL's connection settings; a URL libpq cannot read is a :class:`MemoryStoreError`
    (without libpq's message, which quotes the URL and so its password)."""
    psycopg = _psycopg()
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise url_error(_shown(url), "not a PostgreSQL URL libpq can read; use postgresql://user:password@host:5432/dbname") from None
    port = str(info.get("port") or "5432")
    if not all(p.strip().isdigit() for p in port.split(",")):
        raise url_error(_shown(url), f"the port {port!r} is not a number")
    return info


def where_of(info: dict[str, Any]) -> str:
    """``host:port/dbname`` of a URL's settings, for messages (no user, no password)."""
    return f"{info.get('host') or 'localhost'}:{info.get('port') or '5432'}/{info.get('dbname') or info.get('user') or ''}"


def _shown(url: str) -> str:
    from .base import redact_url

    return redact_url(url)


class PostgresStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        self._psycopg = _psycopg()
        info = conninfo_of(url)
        self.where = where_of(info)
        self._password = str(info.get("password") or "")
        self._pool: Any = None
        self._conn: Any = None  # without psycopg-pool: one connection, one call at a time
        self._lock: asyncio.Lock | None = None
        self._opening: asyncio.Lock | None = None
        self._puts = 0

    # -------------------------------------------------------------------- connections
    def _said(self, err: BaseException) -> str:
        """The first line of a driver error, any echo of the password masked."""
        text = _first_line(err)
        return text.replace(self._password, "***") if self._password else text

    def _unavailable(self, err: BaseException) -> MemoryStoreUnavailable:
        return MemoryStoreUnavailable(f"PostgreSQL memory store at {self.where} ({STORE_URL_VAR}) does not answer: "
                                      f"{self._said(err)}")

    def _refused(self, err: BaseException) -> Exception:
        """A failed connection as the error it is: transient, or a setting to fix."""
        text = str(err).replace(self._password, "***") if self._password else str(err)
        if "FATAL" in text:
            if any(word in text for word in _TRANSIENT):
                return self._unavailable(err)
            fatal = text.split("FATAL:", 1)[1].strip().splitlines()[0]
        elif "no password supplied" in text or "invalid" in text:  # libpq's own refusals: the URL's settings
            fatal = text.split("failed: ")[-1].splitlines()[0].strip()
        else:
            return self._unavailable(err)
        if "does not exist" in fatal and "database" in fatal:
            fix = "create it (createdb), or name an existing database in the URL"
        elif "password" in fatal or "role" in fatal or "authentication" in fatal or "pg_hba" in fatal:
            fix = "give the right user and password in the URL (postgresql://user:password@host:5432/dbname)"
        else:
            fix = "check the URL"
        return MemoryStoreError(f"PostgreSQL memory store at {self.where} refused the connection: {fatal}; {fix} "
                                f"({STORE_URL_VAR} or create_worker(memory_store=...))", setting=STORE_URL_VAR)

    async def _open(self) -> None:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is not None or self._conn is not None:
                return
            psycopg = self._psycopg
            try:
                first = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            except psycopg.OperationalError as err:
                raise self._refused(err) from None
            try:
                await self._set_up(first)
                await self._purge(first)
            except BaseException as err:
                await first.close()
                if isinstance(err, psycopg.OperationalError):
                    raise self._unavailable(err) from None
                raise
            try:
                from psycopg_pool import AsyncConnectionPool
            except ImportError:
                self._conn, self._lock = first, asyncio.Lock()
                return
            await first.close()
            pool = AsyncConnectionPool(self.url, min_size=1, max_size=POOL_MAX, open=False, name="lmthing-memory",
                                       kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}, timeout=30.0)
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            except Exception as err:
                await pool.close()
                raise self._unavailable(err) from None
            self._pool = pool

    async def _set_up(self, conn: Any) -> None:
        psycopg = self._psycopg
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            row = await (await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).fetchone()
            if row is None:
                try:
                    async with conn.transaction():
                        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as err:
                    raise MemoryStoreError(
                        f"PostgreSQL memory store at {self.where}: the server has no pgvector extension "
                        f"({self._said(err)}); install it on the server (Debian: apt install postgresql-<version>-pgvector; "
                        "Docker: the pgvector/pgvector image), or use a SQLite store "
                        f"({STORE_URL_VAR}=sqlite:///.lmthing/memory.db)", setting=STORE_URL_VAR) from None
                except psycopg.errors.InsufficientPrivilege:
                    raise MemoryStoreError(
                        f"PostgreSQL memory store at {self.where}: pgvector is not enabled in this database and this user "
                        "may not enable it; have a superuser run CREATE EXTENSION vector in it once "
                        f"({STORE_URL_VAR})", setting=STORE_URL_VAR) from None
            await conn.execute(_SCHEMA)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None and self._conn is None:
            await self._open()
        psycopg = self._psycopg
        try:
            if self._pool is not None:
                async with self._pool.connection() as conn:
                    yield conn
            else:
                assert self._lock is not None
                async with self._lock:
                    if self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True,
                                                                           connect_timeout=CONNECT_TIMEOUT)
                    yield self._conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as err:
            raise self._unavailable(err) from None
        except _PoolTimeout as err:
            raise self._unavailable(err) from None

    async def close(self) -> None:
        pool, conn = self._pool, self._conn
        self._pool = self._conn = None
        if pool is not None:
            await pool.close()
        if conn is not None:
            await conn.close()

    # -------------------------------------------------------------------------- writes
    async def put(self, record: MemoryRecord, embedding: Sequence[float] | None = None) -> MemoryRecord:
        stored, vector = prepare(record, embedding)
        row = self._row(stored, vector)
        async with self._connection() as conn, conn.transaction():
            if vector is not None:
                await self._claim(conn, stored, len(vector))
            cur = await conn.execute(_UPSERT + " RETURNING created_at", row)
            (created_at,) = await cur.fetchone()
        await self._count_puts(1)
        return stored.model_copy(update={"created_at": created_at})

    async def _put_batch(self, items: Sequence[tuple[MemoryRecord, Sequence[float] | None]]) -> int:
        """Many puts in one transaction (bench/memory.py's loading path; not part of Store)."""
        rows, claims = [], {}
        for record, embedding in items:
            stored, vector = prepare(record, embedding)
            rows.append(self._row(stored, vector))
            if vector is not None:
                claims.setdefault((stored.namespace, len(vector)), stored)
        async with self._connection() as conn, conn.transaction():
            for (_, dimensions), stored in claims.items():
                await self._claim(conn, stored, dimensions)
            async with conn.cursor() as cur:
                await cur.executemany(_UPSERT, rows)
        await self._count_puts(len(rows))
        return len(rows)

    def _row(self, r: MemoryRecord, vector: list[float] | None) -> tuple[Any, ...]:
        what = f"memory record {r.namespace}/{r.scope}/{r.key}"
        return (r.namespace, r.scope, r.key, r.kind, r.text, to_json(r.value, what=f"the value of {what}"),
                to_json(r.metadata, what=f"the metadata of {what}"), r.created_at or r.updated_at, r.updated_at,
                r.expires_at, r.embedding_model, r.dimensions, _vector(vector) if vector is not None else None)

    async def _claim(self, conn: Any, r: MemoryRecord, dimensions: int) -> None:
        held, held_model = await (await conn.execute(_CLAIM, (r.namespace, r.embedding_model, dimensions))).fetchone()
        if held != dimensions:
            raise dimension_error(r.namespace, held, held_model, dimensions, r.embedding_model)

    async def delete(self, namespace: str | None, scope: str | None = None, key: str | None = None) -> int:
        check_delete(namespace, scope)
        where, args = _where(namespace=namespace, scope=scope, key=key)
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(f"DELETE FROM lmthing_memory_records WHERE {where} RETURNING expires_at", args)
            now = time.time()
            gone = [expires for (expires,) in await cur.fetchall()]
            if gone:
                await self._forget_empty(conn)
        return sum(1 for expires in gone if expires is None or expires > now)

    async def _forget_empty(self, conn: Any) -> None:
        await conn.execute("DELETE FROM lmthing_memory_namespaces n WHERE NOT EXISTS "
                           "(SELECT 1 FROM lmthing_memory_records r WHERE r.namespace = n.namespace)")

    async def _count_puts(self, n: int) -> None:
        self._puts += n
        if self._puts >= PURGE_EVERY:
            async with self._connection() as conn:
                await self._purge(conn)

    async def _purge(self, conn: Any) -> None:
        """Delete the records whose time has passed (they are invisible already)."""
        self._puts = 0
        async with conn.transaction():
            cur = await conn.execute("DELETE FROM lmthing_memory_records WHERE expires_at <= %s", (time.time(),))
            if cur.rowcount:
                await self._forget_empty(conn)

    # --------------------------------------------------------------------------- reads
    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            return await (await conn.execute(sql, args)).fetchall()

    async def get(self, namespace: str, scope: str, key: str) -> MemoryRecord | None:
        where, args = _where(namespace=namespace, scope=scope, key=key, live=True)
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM lmthing_memory_records WHERE {where}", args)
        return record_of(rows[0]) if rows else None

    async def list(
        self, *, namespace: str | None = None, scope: str | None = None, kind: str | None = None,
        limit: int = 100, offset: int = 0, newest_first: bool = True,
    ) -> list[MemoryRecord]:
        where, args = _where(namespace=namespace, scope=scope, kind=kind, live=True)
        order = "DESC" if newest_first else "ASC"
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM lmthing_memory_records WHERE {where} "
                                 f"ORDER BY updated_at {order}, id {order} LIMIT %s OFFSET %s",
                                 [*args, max(0, limit), max(0, offset)])
        return [record_of(row) for row in rows]

    async def search(
        self, namespace: str, scope: str | None, *, text: str | None = None,
        embedding: Sequence[float] | None = None, limit: int = 5, kind: str | None = None,
    ) -> list[SearchHit]:
        if limit <= 0:
            return []
        where, args = _where(namespace=namespace, scope=scope, kind=kind, live=True)
        if embedding is not None:
            vector = check_embedding(embedding, what=f"a search of memory namespace {namespace!r}")
            held = await self._fetch("SELECT dimensions, embedding_model FROM lmthing_memory_namespaces WHERE namespace = %s",
                                     (namespace,))
            if not held:
                return []
            if held[0][0] != len(vector):
                raise dimension_error(namespace, held[0][0], held[0][1], len(vector), None)
            query = _vector(vector)
            rows = await self._fetch(
                f"SELECT {_COLUMNS}, 1 - (embedding <=> %s::vector) FROM lmthing_memory_records "
                f"WHERE {where} AND dimensions = %s AND embedding IS NOT NULL "
                "ORDER BY embedding <=> %s::vector LIMIT %s", [query, *args, len(vector), query, limit])
        else:
            words = query_words(text)
            if not words:
                return []
            rows = await self._fetch(
                f"SELECT {_COLUMNS}, ts_rank(tsv, q) FROM lmthing_memory_records, "
                f"websearch_to_tsquery('{_TEXT_CONFIG}', %s) AS q WHERE tsv @@ q AND {where} "
                "ORDER BY ts_rank(tsv, q) DESC, updated_at DESC LIMIT %s",
                [" or ".join(f'"{w}"' for w in words), *args, limit])  # quoted: the word "or" is a word
        return [SearchHit(record=record_of(row[:-1]), score=float(row[-1])) for row in rows]

    async def namespaces(self) -> list[dict[str, object]]:
        rows = await self._fetch(
            "SELECT r.namespace, count(*), count(DISTINCT r.scope), array_agg(DISTINCT r.kind), max(r.updated_at), "
            "n.embedding_model, n.dimensions FROM lmthing_memory_records r "
            "LEFT JOIN lmthing_memory_namespaces n ON n.namespace = r.namespace "
            f"WHERE {_LIVE.replace('expires_at', 'r.expires_at')} GROUP BY r.namespace, n.embedding_model, n.dimensions "
            "ORDER BY r.namespace", (time.time(),))
        return [{"namespace": ns, "records": count, "scopes": scopes, "kinds": sorted(kinds), "updated_at": updated,
                 "embedding_model": model, "dimensions": dims}
                for ns, count, scopes, kinds, updated, model, dims in rows]


def _vector(values: list[float]) -> str:
    return "[" + ",".join(repr(x) for x in values) + "]"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _where(**parts: Any) -> tuple[str, list[Any]]:
    return where_clause("%s", **parts)
