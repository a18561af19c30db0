-- The memory store of the compose stack's workers (LMTHING_MEMORY_URL, docs/memory-stores.md);
-- pgvector's extension is created in it by the first worker that uses it.
CREATE DATABASE lmthing_memory;
