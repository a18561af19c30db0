"""The memory store drivers (lmthing.activities.stores), the same behaviour checked on a
real SQLite file (FTS5, sqlite-vec) and on a real PostgreSQL server with pgvector
(tests/pg.py): what an agent stores it gets back, once per address, searchable by words and
by meaning, gone when expired or forgotten; bad settings fail with the setting named."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from lmthing.activities.stores import open_store
from lmthing.activities.stores.base import Store
from lmthing.memory.types import MemoryRecord, MemoryStoreError, MemoryStoreUnavailable

from tests.pg import database_url, new_database
from tests.support import REPO_ROOT, free_port


def rec(key: str, text: str = "", *, namespace: str = "notes", scope: str = "global", **fields: object) -> MemoryRecord:
    return MemoryRecord(namespace=namespace, scope=scope, key=key, text=text, **fields)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/memory.db"  # tmp_path is absolute: sqlite:////tmp/...
    else:
        url = new_database(request.getfixturevalue("postgres_url"))
    s = open_store(url)
    yield s
    await s.close()


async def test_put_then_get_and_replace_keeps_one_record_and_its_creation_time(store: Store) -> None:
    first = await store.put(rec("colour", "the user's favourite colour is green", value={"colour": "green"},
                                metadata={"source": "chat"}))
    assert first.created_at > 0 and first.updated_at == first.created_at
    got = await store.get("notes", "global", "colour")
    assert got is not None and got.value == {"colour": "green"} and got.metadata == {"source": "chat"}
    assert got.created_at == pytest.approx(first.created_at)

    await asyncio.sleep(0.02)
    again = await store.put(rec("colour", "the user's favourite colour is blue", value={"colour": "blue"}))
    assert again.created_at == pytest.approx(first.created_at)
    assert again.updated_at > first.updated_at
    got = await store.get("notes", "global", "colour")
    assert got is not None and got.value == {"colour": "blue"} and got.metadata == {}
    assert got.created_at == pytest.approx(first.created_at)
    assert len(await store.list(namespace="notes")) == 1
    # The old text is no longer found, the new one is.
    assert await store.search("notes", None, text="green") == []
    assert [h.record.key for h in await store.search("notes", None, text="blue")] == ["colour"]
    assert await store.get("notes", "global", "nothing") is None
    assert await store.get("notes", "run:other", "colour") is None


async def test_values_round_trip_as_json_in_key_order(store: Store) -> None:
    value = {"b": 1, "a": [1.5, None, True, "x"], "nested": {"z": {}, "y": "é"}}
    await store.put(rec("v", value=value))
    got = await store.get("notes", "global", "v")
    assert got is not None and got.value == value and list(got.value) == ["b", "a", "nested"]
    await store.put(rec("s", value="just a string"))
    got = await store.get("notes", "global", "s")
    assert got is not None and got.value == "just a string"


async def test_list_is_newest_first_and_filters_by_namespace_scope_and_kind(store: Store) -> None:
    for i, (ns, scope, kind) in enumerate([("a", "global", "kv"), ("a", "run:1", "episodic"), ("b", "global", "kv"),
                                            ("a", "global", "episodic"), ("a", "run:1", "kv")]):
        await store.put(rec(f"k{i}", namespace=ns, scope=scope, kind=kind, updated_at=1000.0 + i))
    keys = lambda rs: [r.key for r in rs]  # noqa: E731
    assert keys(await store.list()) == ["k4", "k3", "k2", "k1", "k0"]
    assert keys(await store.list(newest_first=False)) == ["k0", "k1", "k2", "k3", "k4"]
    assert keys(await store.list(namespace="a")) == ["k4", "k3", "k1", "k0"]
    assert keys(await store.list(namespace="a", scope="run:1")) == ["k4", "k1"]
    assert keys(await store.list(namespace="a", kind="episodic")) == ["k3", "k1"]
    assert keys(await store.list(scope="global", kind="kv")) == ["k2", "k0"]
    assert keys(await store.list(namespace="a", limit=2)) == ["k4", "k3"]
    assert keys(await store.list(namespace="a", limit=2, offset=2)) == ["k1", "k0"]


async def test_keyword_search_ranks_the_matching_record_first(store: Store) -> None:
    await store.put(rec("pets", "Alice has two cats and a dog"))
    await store.put(rec("trip", "Alice flew to Lisbon in March for a conference"))
    await store.put(rec("food", "Bob likes spicy noodles"))
    await store.put(rec("other-scope", "Lisbon conference slides", scope="run:x"))
    await store.put(rec("other-ns", "Lisbon conference", namespace="elsewhere"))

    hits = await store.search("notes", "global", text="When did Alice travel to the Lisbon conference?")
    assert [h.record.key for h in hits][0] == "trip"
    assert "other-scope" not in [h.record.key for h in hits] and "other-ns" not in [h.record.key for h in hits]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    # Word forms match (stemming): "cat" finds "cats".
    assert [h.record.key for h in await store.search("notes", None, text="cat")] == ["pets"]
    # Every scope when scope is None; limit; a kind filter; text that is only punctuation.
    assert {h.record.key for h in await store.search("notes", None, text="Lisbon")} == {"trip", "other-scope"}
    assert len(await store.search("notes", None, text="Lisbon", limit=1)) == 1
    assert await store.search("notes", None, text="Lisbon", kind="episodic") == []
    assert await store.search("notes", None, text="?!\"'*") == []
    assert await store.search("notes", None, text='"unbalanced* (quote NEAR(') == []
    # Words that are operators of a search syntax are only words.
    assert [h.record.key for h in await store.search("notes", None, text="noodles OR or AND NOT -Bob")][0] == "food"


async def test_vector_search_ranks_by_cosine_similarity(store: Store) -> None:
    vectors = {"east": [1.0, 0.0, 0.0], "north-east": [1.0, 1.0, 0.0], "north": [0.0, 2.0, 0.0],
               "up": [0.0, 0.0, 5.0], "west": [-1.0, 0.0, 0.0]}
    for key, v in vectors.items():
        await store.put(rec(key, f"direction {key}", kind="vector", embedding_model="hand"), v)
    await store.put(rec("no-vector", "direction none"))  # never a vector hit
    await store.put(rec("east-run", "east in a run", scope="run:1", kind="vector"), [1.0, 0.05, 0.0])

    hits = await store.search("notes", "global", embedding=[0.9, 0.1, 0.0], limit=10)
    assert [h.record.key for h in hits] == ["east", "north-east", "north", "up", "west"]
    expected = [0.9 / (0.9055385), (0.9 + 0.1) / (0.9055385 * 2 ** 0.5), 0.1 / 0.9055385, 0.0, -0.9 / 0.9055385]
    assert [h.score for h in hits] == pytest.approx(expected, abs=1e-4)
    assert hits[0].record.dimensions == 3 and hits[0].record.embedding_model == "hand"
    # Scope None searches every scope; limit is the number of hits.
    assert [h.record.key for h in await store.search("notes", None, embedding=[1, 0, 0], limit=2)] == ["east", "east-run"]
    assert await store.search("elsewhere", None, embedding=[1, 0, 0]) == []
    # Replacing a record without its embedding takes it out of vector search.
    await store.put(rec("east", "no longer a vector"))
    assert "east" not in [h.record.key for h in await store.search("notes", "global", embedding=[1, 0, 0], limit=10)]


async def test_expired_records_are_invisible(store: Store) -> None:
    now = time.time()
    await store.put(rec("old", "expired fact", kind="vector", expires_at=now - 1), [1.0, 0.0])
    await store.put(rec("soon", "fresh fact", kind="vector", expires_at=now + 3600), [1.0, 0.1])
    await store.put(rec("ever", "lasting fact", kind="vector"), [0.9, 0.2])
    assert await store.get("notes", "global", "old") is None
    assert [r.key for r in await store.list(namespace="notes", newest_first=False)] == ["soon", "ever"]
    assert {h.record.key for h in await store.search("notes", None, text="fact")} == {"soon", "ever"}
    assert [h.record.key for h in await store.search("notes", None, embedding=[1.0, 0.0])] == ["soon", "ever"]
    assert (await store.namespaces())[0]["records"] == 2
    # Forgetting the namespace counts what was visible.
    assert await store.delete("notes") == 2


async def test_delete_counts_what_it_deleted_and_namespaces_lists_what_is_left(store: Store) -> None:
    for ns, scope, key in [("a", "global", "1"), ("a", "global", "2"), ("a", "run:9", "1"), ("b", "run:9", "1"),
                           ("b", "global", "1")]:
        await store.put(rec(key, f"{ns} {scope} {key}", namespace=ns, scope=scope, kind="kv"))
    await store.put(rec("v", "a vector", namespace="b", scope="global", kind="vector", embedding_model="m"), [0.5, 0.5])
    listed = {n["namespace"]: n for n in await store.namespaces()}
    assert listed["a"]["records"] == 3 and listed["a"]["kinds"] == ["kv"] and listed["a"]["scopes"] == 2
    assert listed["b"]["records"] == 3 and listed["b"]["kinds"] == ["kv", "vector"]
    assert listed["b"]["embedding_model"] == "m" and listed["b"]["dimensions"] == 2
    assert listed["a"]["embedding_model"] is None and listed["a"]["dimensions"] is None

    assert await store.delete("a", "global", "1") == 1
    assert await store.delete("a", "global", "1") == 0  # again: nothing left to delete
    assert await store.delete(None, "run:9") == 2  # a scope across namespaces
    assert await store.delete("a") == 1
    assert [n["namespace"] for n in await store.namespaces()] == ["b"]
    assert await store.delete("b", key="1") == 1
    assert [r.key for r in await store.list(namespace="b")] == ["v"]
    with pytest.raises(MemoryStoreError, match="namespace or a scope"):
        await store.delete(None)


async def test_a_second_embedding_length_in_a_namespace_names_both_and_the_fix(store: Store) -> None:
    await store.put(rec("a", "first", kind="vector", embedding_model="small-3"), [0.1, 0.2, 0.3])
    with pytest.raises(MemoryStoreError) as err:
        await store.put(rec("b", "second", kind="vector", embedding_model="big-4"), [0.1, 0.2, 0.3, 0.4])
    text = str(err.value)
    for part in ("'notes'", "3-dimension", "'small-3'", "4 dimensions", "'big-4'", "same embedding model",
                 "lmthing memory forget --namespace notes"):
        assert part in text, text
    assert await store.get("notes", "global", "b") is None  # nothing half-written
    with pytest.raises(MemoryStoreError, match="3-dimension"):
        await store.search("notes", None, embedding=[1.0, 0.0])
    # Another namespace may use another length; forgetting the namespace frees its length.
    await store.put(rec("c", namespace="other", kind="vector"), [1.0, 0.0])
    assert await store.delete("notes") == 1
    await store.put(rec("b", "second", kind="vector", embedding_model="big-4"), [0.1, 0.2, 0.3, 0.4])
    assert [h.record.key for h in await store.search("notes", None, embedding=[0.1, 0.2, 0.3, 0.4])] == ["b"]


async def test_an_unusable_embedding_is_refused(store: Store) -> None:
    for bad, why in (([], "empty"), ([0.0, 0.0], "all zeros"), ([1.0, float("nan")], "NaN")):
        with pytest.raises(MemoryStoreError, match=why):
            await store.put(rec("x", kind="vector"), bad)
    with pytest.raises(MemoryStoreError, match="dimensions=2"):
        await store.put(rec("x", kind="vector", dimensions=2), [1.0, 2.0, 3.0])
    with pytest.raises(MemoryStoreError, match="not JSON"):
        await store.put(rec("x", value={1, 2}))


async def test_two_store_objects_share_one_database(store: Store) -> None:
    """Two workers on one URL see each other's writes (and the schema is made once)."""
    other = open_store(store.url)
    try:
        await asyncio.gather(*(s.put(rec(f"k{i}", "shared")) for i in range(10) for s in (store, other)))
        assert len(await other.list(namespace="notes")) == 10
        assert (await store.get("notes", "global", "k3")) is not None
        # A vector length first used through one object is searchable and deletable through the other.
        await store.put(rec("v1", "first vector", kind="vector"), [1.0, 0.0, 0.0])
        assert [h.record.key for h in await other.search("notes", None, embedding=[1.0, 0.0, 0.0])] == ["v1"]
        assert await other.delete("notes", "global", "v1") == 1
        await store.put(rec("v2", "second vector", kind="vector"), [0.0, 1.0, 0.0])
        assert [h.record.key for h in await other.search("notes", None, embedding=[1.0, 0.0, 0.0])] == ["v2"]
    finally:
        await other.close()


# ------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("url, words", [
    ("memory.db", "is not a URL"),
    ("mysql://u:hunter2@db/x", "unknown kind 'mysql'"),
    ("sqlite://relative.db", "three slashes"),
    ("sqlite:///", "no file name"),
    ("postgresql://u:hunter2@[bad/db", "not a PostgreSQL URL"),
    ("postgresql://u:hunter2@db:port/x", "the port 'port' is not a number"),
])
def test_a_bad_url_names_the_setting(url: str, words: str) -> None:
    with pytest.raises(MemoryStoreError) as err:
        open_store(url)
    assert words in str(err.value) and "LMTHING_MEMORY_URL" in str(err.value)
    assert err.value.setting == "LMTHING_MEMORY_URL"
    assert "hunter2" not in str(err.value)


async def test_a_sqlite_file_that_is_not_a_database(tmp_path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    s = open_store(f"sqlite:///{tmp_path}/junk.db")
    with pytest.raises(MemoryStoreError, match="not a usable memory store") as err:
        await s.get("n", "global", "k")
    assert err.value.setting == "LMTHING_MEMORY_URL"
    await s.close()


async def test_a_relative_sqlite_path_is_made_under_the_current_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_store("sqlite:///deep/er/memory.db")
    await s.put(rec("k", "v"))
    await s.close()
    assert (tmp_path / "deep" / "er" / "memory.db").is_file()


def test_without_sqlite_vec_the_error_says_what_to_install(tmp_path) -> None:
    code = (
        "import asyncio, sys\n"
        "sys.modules['sqlite_vec'] = None  # as if the package were not installed\n"
        "from lmthing.activities.stores import open_store\n"
        "from lmthing.memory.types import MemoryStoreError\n"
        f"s = open_store('sqlite:///{tmp_path}/m.db')\n"
        "try:\n"
        "    asyncio.run(s.get('n', 'global', 'k'))\n"
        "except MemoryStoreError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert "pip install sqlite-vec" in done.stdout, done.stdout + done.stderr


async def test_an_unreachable_postgres_is_transient_and_hides_the_password() -> None:
    port = free_port()  # nothing listens there
    s = open_store(f"postgresql://agent:s3cret-pw@127.0.0.1:{port}/memory")
    with pytest.raises(MemoryStoreUnavailable) as err:
        await s.get("n", "global", "k")
    text = str(err.value)
    assert f"127.0.0.1:{port}/memory" in text and "LMTHING_MEMORY_URL" in text and "does not answer" in text
    assert "s3cret" not in text
    await s.close()


async def test_a_missing_database_or_role_is_a_setting_to_fix(postgres_url: str) -> None:
    s = open_store(database_url(postgres_url, "no_such_db"))
    with pytest.raises(MemoryStoreError) as err:
        await s.list()
    assert 'database "no_such_db" does not exist' in str(err.value) and "LMTHING_MEMORY_URL" in str(err.value)
    assert err.value.setting == "LMTHING_MEMORY_URL"
    await s.close()

    s = open_store(postgres_url.replace("postgres:@", "nobody:pw-xyz@"))
    with pytest.raises(MemoryStoreError) as err:
        await s.list()
    assert 'role "nobody" does not exist' in str(err.value) and "user and password" in str(err.value)
    assert "pw-xyz" not in str(err.value)
    await s.close()


async def test_postgres_reconnects_after_the_store_is_closed(postgres_url: str) -> None:
    s = open_store(new_database(postgres_url))
    await s.put(rec("k", "kept"))
    await s.close()
    assert (await s.get("notes", "global", "k")) is not None  # the next call connects again
    await s.close()
