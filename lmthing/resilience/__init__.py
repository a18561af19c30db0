"""Resilience definitions, engine-neutral: retry policies, fallbacks, guards, validators and
budgets (``p.def_retry``, ``p.def_fallback``, ``p.def_guard``, ``p.def_validator``,
``p.def_constraint``; docs/resilience.md). The workflow layer applies them."""
