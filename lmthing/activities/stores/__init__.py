"""Memory stores (docs/memory.md): the embedded SQLite file (FTS5 keyword search,
sqlite-vec vectors) and PostgreSQL (tsvector keyword search, pgvector vectors), behind one
:class:`~lmthing.activities.stores.base.Store` interface, opened from a URL on the worker.
Only activities use them."""

from .base import Store, open_store, default_store_url

__all__ = ["Store", "open_store", "default_store_url"]
