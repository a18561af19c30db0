"""``lmthing memory list | show | search | forget`` as an operator runs it (a subprocess),
against a SQLite file and a real PostgreSQL server filled through the Store API: what
agents stored is listed, shown, found and deleted; mistakes are one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from lmthing.activities.stores import open_store
from lmthing.memory.types import MemoryRecord

from tests.pg import new_database
from tests.support import REPO_ROOT, cli_env, free_port


def lm(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lmthing", "memory", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=cli_env(COLUMNS="200", **env), timeout=120)


def ok(*args: str, **env: str) -> str:
    done = lm(*args, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def fails(*args: str, **env: str) -> str:
    """The one-line error of a command that should fail with exit code 2."""
    done = lm(*args, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    return done.stderr


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A store holding what two agents remembered."""
    url = f"sqlite:///{tmp_path}/memory.db" if request.param == "sqlite" else new_database(request.getfixturevalue("postgres_url"))
    store = open_store(url)
    t = time.time() - 100
    for i, (ns, scope, key, text, kind, value, vector) in enumerate([
        ("notes", "global", "colour", "The user's favourite colour is green", "kv", {"colour": "green"}, None),
        ("notes", "global", "city", "The user lives in Porto, near the river", "vector", None, [1.0, 0.0]),
        ("notes", "run:wf-1", "draft", "A draft reply about the invoice", "episodic", None, None),
        ("prefs", "agent:helper", "tone", "", "state", {"tone": "formal"}, None),
    ]):
        await store.put(MemoryRecord(namespace=ns, scope=scope, key=key, text=text, kind=kind, value=value,
                                     embedding_model="hand-made" if vector else None, updated_at=t + i), vector)
    await store.close()
    yield url


async def test_list_shows_namespaces_then_records(url: str) -> None:
    out = ok("list", "--store", url)
    assert "notes 3 record(s) in 2 scope(s); kinds episodic, kv, vector; embeddings hand-made (2 dims)" in out, out
    assert "prefs 1 record(s) in 1 scope(s); kinds state" in out, out
    spaces = json.loads(ok("list", "--store", url, "--json"))
    assert [(n["namespace"], n["records"]) for n in spaces] == [("notes", 3), ("prefs", 1)]

    records = json.loads(ok("list", "--namespace", "notes", "--json", "--store", url))
    assert [r["key"] for r in records] == ["draft", "city", "colour"]  # newest first
    assert records[2]["value"] == {"colour": "green"} and records[1]["dimensions"] == 2
    out = ok("list", "-n", "notes", "--scope", "run:wf-1", "--store", url)
    assert "notes run:wf-1 draft episodic" in out and "A draft reply about the invoice" in out and "colour" not in out
    assert [r["key"] for r in json.loads(ok("list", "--kind", "state", "--json", "--store", url))] == ["tone"]
    assert [r["key"] for r in json.loads(ok("list", "-n", "notes", "--limit", "1", "--json", "--store", url))] == ["draft"]


async def test_show_prints_one_record(url: str) -> None:
    out = ok("show", "notes", "colour", "--store", url)
    assert "notes global colour (kv)" in out and "text: The user's favourite colour is green" in out
    assert '"colour": "green"' in out
    one = json.loads(ok("show", "prefs", "tone", "--scope", "agent:helper", "--json", "--store", url))
    assert one["value"] == {"tone": "formal"} and one["kind"] == "state"
    err = fails("show", "prefs", "tone", "--store", url)  # it is not in scope global
    assert "No record 'tone' in memory namespace 'prefs', scope 'global'" in err and "--scope" in err


async def test_search_finds_by_keywords(url: str) -> None:
    hits = json.loads(ok("search", "notes", "which colour does the user like?", "--json", "--store", url))
    assert hits[0]["record"]["key"] == "colour" and hits[0]["score"] > 0
    out = ok("search", "notes", "river", "--store", url)
    assert "notes global city vector" in out and "Porto" in out
    assert "Nothing in notes matches 'zebra'" in ok("search", "notes", "zebra", "--store", url)
    assert json.loads(ok("search", "notes", "invoice", "--scope", "global", "--json", "--store", url)) == []


async def test_forget_deletes_and_asks_for_yes_before_a_whole_namespace(url: str) -> None:
    err = fails("forget", "--namespace", "notes", "--store", url)
    assert "every record of namespace 'notes' (3 record(s) now); add --yes" in err
    assert "Deleted 1 record(s)." in ok("forget", "-n", "notes", "-s", "global", "--key", "colour", "--store", url)
    assert "Deleted 0 record(s)." in ok("forget", "-n", "notes", "-s", "global", "--key", "colour", "--store", url)
    assert "add --yes" in fails("forget", "--scope", "agent:helper", "--store", url)
    assert json.loads(ok("forget", "--namespace", "notes", "--yes", "--json", "--store", url)) == {"deleted": 2}
    assert [n["namespace"] for n in json.loads(ok("list", "--json", "--store", url))] == ["prefs"]
    assert "needs --namespace or --scope" in fails("forget", "--store", url)


def test_the_store_url_comes_from_lmthing_memory_url(tmp_path) -> None:
    db = tmp_path / "env.db"
    assert "No memories in sqlite:///" in ok("list", LMTHING_MEMORY_URL=f"sqlite:///{db}")
    assert db.is_file()


def test_store_errors_are_one_line_with_the_setting() -> None:
    err = fails("list", "--store", "mysql://root:hunter2@db/x")
    assert "unknown kind 'mysql'" in err and "LMTHING_MEMORY_URL" in err and "hunter2" not in err
    port = free_port()
    err = fails("search", "notes", "x", "--store", f"postgresql://u:s3cret@127.0.0.1:{port}/mem")
    assert f"127.0.0.1:{port}/mem" in err and "does not answer" in err and "s3cret" not in err
    assert "--kind 'nope' is not a record kind" in fails("list", "--kind", "nope")
    assert "--limit must be 1 or more" in fails("search", "notes", "x", "--limit", "0")
