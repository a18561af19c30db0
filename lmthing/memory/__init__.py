"""Memory, engine-neutral: what agents remember across runs (``p.def_memory``, persisted
``def_state``, ``def_cache``, beliefs; docs/memory.md). The records here cross the
workflow/activity boundary; every read and write of a store is an activity
(``lmthing.activities.memory``), the drivers are in ``lmthing.activities.stores``."""
