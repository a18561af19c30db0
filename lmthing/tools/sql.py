"""SQL tools: queries on a SQLite file inside the files root, read-only unless allowed.

The database is opened with a ``file:...?mode=ro`` URI, so SQLite itself refuses every
write (``INSERT``, ``DROP``, ``ATTACH`` of a new file, ``PRAGMA`` writes): no parsing of the
model's SQL is relied on. ``LMTHING_SQL_ALLOW_WRITE=true`` opens it ``mode=rw`` (an
existing file only: a typo does not create an empty database). One statement per call;
parameters go separately (``?`` or ``:name``), at most ``LMTHING_SQL_MAX_ROWS`` rows come back.
``ATTACH`` is refused (an authorizer), since it would open a file by any path.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lmthing.prompt.tools import ToolContext, tool

from .files import inside, root_of
from .registry import tagged
from .settings import ENV, IO_RETRY, ToolInputError, ToolRefused, ToolSettings, settings_of


def connect(path: Path, writable: bool) -> sqlite3.Connection:
    uri = f"file:{quote(str(path))}?mode={'rw' if writable else 'ro'}"
    conn = sqlite3.connect(uri, uri=True, timeout=5)
    conn.set_authorizer(_authorize)
    return conn


def _authorize(action: int, *args: object) -> int:
    # ATTACH would open another file by a path SQLite resolves, outside the files root.
    return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) else sqlite3.SQLITE_OK


async def _database(ctx: ToolContext, database: str) -> tuple[ToolSettings, Path]:
    settings = await settings_of(ctx)
    target = inside(root_of(settings), database)
    if not target.is_file():
        raise ToolInputError(f"No database file {database!r} in the files root")
    return settings, target


def _run(path: Path, sql: str, params: Any, settings: ToolSettings) -> dict[str, Any]:
    conn = connect(path, settings.sql_allow_write)
    try:
        try:
            cursor = conn.execute(sql, params or ())
        except sqlite3.Error as err:  # Warning too: more than one statement
            words = str(err).lower()
            if "readonly" in words or "read-only" in words:
                raise ToolRefused(f"Refused: the database is read-only on this worker ({err}); writes need "
                                  f"{ENV['sql_allow_write']}=true") from None
            if "not authorized" in words:
                raise ToolRefused(f"Refused: {err} (ATTACH would open a file outside the files root)") from None
            raise ToolInputError(f"SQL error: {err}") from None
        except sqlite3.Warning as err:
            raise ToolInputError(f"SQL error: {err}") from None
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(settings.sql_max_rows + 1)
        conn.commit()
        return {"columns": columns, "rows": [list(r) for r in rows[: settings.sql_max_rows]],
                "truncated": len(rows) > settings.sql_max_rows, "changed": conn.total_changes}
    finally:
        conn.close()


@tagged("sql", "database", "query")
@tool(retry=IO_RETRY)
async def sql_query(database: str, sql: str, ctx: ToolContext, params: list[Any] | dict[str, Any] | None = None) -> dict:
    """Run one SQL statement on a SQLite file in the files root (read-only unless the worker allows writes)."""
    settings, path = await _database(ctx, database)
    return await asyncio.to_thread(_run, path, sql, params, settings)


@tagged("sql", "database", "schema")
@tool(retry=IO_RETRY)
async def sql_tables(database: str, ctx: ToolContext) -> dict:
    """The tables and views of a SQLite file in the files root, with their columns."""
    settings, path = await _database(ctx, database)

    def read() -> dict[str, Any]:
        conn = connect(path, False)
        try:
            tables = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                                  "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
            return {"tables": [{"name": name, "type": kind, "columns": [
                {"name": c[1], "type": c[2], "primary_key": bool(c[5])}
                for c in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))]} for name, kind in tables]}
        except sqlite3.DatabaseError as err:
            raise ToolInputError(f"{database!r} is not a SQLite database: {err}") from None
        finally:
            conn.close()

    return await asyncio.to_thread(read)
