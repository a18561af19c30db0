"""What the SQLite and PostgreSQL drivers share, so that they behave alike: checking an
embedding, the one-dimension-per-namespace rule and its error, JSON columns, the words of
a keyword query, and the times a ``put`` stores."""

from __future__ import annotations

import json
import math
import operator
import re
import time
from collections.abc import Sequence
from typing import Any

from lmthing.memory.types import MemoryRecord, MemoryStoreError

from .base import STORE_URL_VAR

# A keyword query is its words, any of which may match (ranked by how well they match):
# recall asks in a sentence ("what is the user's favourite colour?"), so requiring every
# word would find nothing, and the search syntaxes (FTS5's, websearch's) never see raw input.
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 32


def query_words(text: str | None) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text or ""):
        seen.setdefault(word.lower(), None)
    return list(seen)[:MAX_QUERY_WORDS]


def check_embedding(embedding: Sequence[float], *, what: str) -> list[float]:
    """The embedding as floats; an empty, non-finite or all-zero one (no direction, so no
    cosine similarity) is a :class:`MemoryStoreError`."""
    try:
        values = [float(x) for x in embedding]
    except (TypeError, ValueError):
        raise MemoryStoreError(f"{what}: an embedding is a sequence of numbers", setting="embedding_model") from None
    if not values:
        raise MemoryStoreError(f"{what}: the embedding is empty", setting="embedding_model")
    squares = sum(map(operator.mul, values, values))  # one pass: NaN or inf anywhere makes it so
    if not math.isfinite(squares):
        raise MemoryStoreError(f"{what}: the embedding holds NaN or infinite numbers", setting="embedding_model")
    if squares == 0.0:
        raise MemoryStoreError(f"{what}: the embedding is all zeros (it has no direction to compare)",
                               setting="embedding_model")
    return values


def dimension_error(namespace: str, held: int, held_model: str | None, given: int, given_model: str | None) -> MemoryStoreError:
    """The error for a second vector length in a namespace: what is there, what came, the fix."""
    def model(name: str | None) -> str:
        return f"model {name!r}" if name else "an unnamed model"

    return MemoryStoreError(
        f"memory namespace {namespace!r} holds {held}-dimension embeddings ({model(held_model)}), but this one has "
        f"{given} dimensions ({model(given_model)}): set the same embedding model for the namespace as before, or "
        f"delete what it holds with `lmthing memory forget --namespace {namespace} --yes` to start it afresh",
        setting="embedding_model")


def prepare(record: MemoryRecord, embedding: Sequence[float] | None) -> tuple[MemoryRecord, list[float] | None]:
    """The record as it will be stored (``dimensions`` from the embedding, times set but
    ``created_at`` still 0 when the store should keep an existing one) and the vector."""
    vector = None
    dimensions = None
    if embedding is not None:
        vector = check_embedding(embedding, what=f"memory record {record.namespace}/{record.scope}/{record.key}")
        dimensions = len(vector)
        if record.dimensions is not None and record.dimensions != dimensions:
            raise MemoryStoreError(
                f"memory record {record.namespace}/{record.scope}/{record.key}: dimensions={record.dimensions} but "
                f"the embedding has {dimensions} numbers", setting="embedding_model")
    now = time.time()
    stored = record.model_copy(update={
        "dimensions": dimensions,
        "updated_at": record.updated_at or now,
    })
    return stored, vector


def to_json(value: Any, *, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise MemoryStoreError(f"{what} is not JSON: {err}") from None


# The record columns both stores select, in the order record_of reads them.
COLUMNS = ("namespace, scope, key, kind, text, value, metadata, created_at, updated_at, expires_at, "
           "embedding_model, dimensions")


def record_of(row: Sequence[Any], *, parse: Any = None) -> MemoryRecord:
    """A record from a row of COLUMNS (``parse`` reads the JSON columns when the driver
    hands them over as text)."""
    namespace, scope, key, kind, text, value, metadata, created, updated, expires, model, dims = row
    if parse is not None:
        value, metadata = parse(value), parse(metadata)
    return MemoryRecord(namespace=namespace, scope=scope, key=key, kind=kind, text=text, value=value,
                        metadata=metadata, created_at=created, updated_at=updated, expires_at=expires,
                        embedding_model=model, dimensions=dims)


def where_clause(mark: str, *, namespace: str | None = None, scope: str | None = None, key: str | None = None,
          kind: str | None = None, live: bool = False, table: str = "") -> tuple[str, list[Any]]:
    """A WHERE condition (``mark``: the driver's parameter placeholder) matching the given
    address parts (None matches all) and, if ``live``, only records not expired."""
    prefix = f"{table}." if table else ""
    parts, args = ["1 = 1"], []
    for column, value in (("namespace", namespace), ("scope", scope), ("key", key), ("kind", kind)):
        if value is not None:
            parts.append(f"{prefix}{column} = {mark}")
            args.append(value)
    if live:
        parts.append(f"({prefix}expires_at IS NULL OR {prefix}expires_at > {mark})")
        args.append(time.time())
    return " AND ".join(parts), args


def check_delete(namespace: str | None, scope: str | None) -> None:
    if namespace is None and scope is None:
        raise MemoryStoreError("deleting from a memory store needs a namespace or a scope (None matches all)")


def url_error(url_shown: str, problem: str) -> MemoryStoreError:
    return MemoryStoreError(f"memory store URL {url_shown}: {problem} ({STORE_URL_VAR} or "
                            "create_worker(memory_store=...))", setting=STORE_URL_VAR)
