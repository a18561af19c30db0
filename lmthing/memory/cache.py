"""``p.def_cache(name, ttl=, max_size=, key=, scope=)`` (the seeds' defCache and
CacheManager lru / ttl / persistent; docs/memory.md) and what the engine sends with a
cached tool call.

A tool names its cache (``p.def_tool(my_tool, cache="lookups")``). The call's key is made
in the workflow, deterministically: ``key(args)`` if given, else a digest of the tool's
name and arguments. The tool's activity answers from the cache when the key is there (an
LRU on the worker, then the memory store), so a hit skips the side effect and outlives
workers and runs; whether it hit is in the activity's result and on the step's record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

from .types import SCOPE_KINDS, CacheRef

CACHE_SERVICE_ATTR = "caches"


@dataclass(frozen=True)
class CacheSpec:
    name: str
    ttl: float | None
    max_size: int
    key: Callable[[Any], Any] | None
    scope: str
    # The run's model calls are cached too: a request already answered is answered again.
    model_calls: bool = False


def def_cache(p: StatefulPrompt, name: str, *, ttl: Any = None, max_size: int = 1000,
              key: Callable[[Any], Any] | None = None, scope: str = "global", model_calls: bool = False) -> CacheSpec:
    """A cache that tools name with ``cache=``: ``ttl`` seconds an entry lives (None: until
    forgotten), ``max_size`` entries in each worker's LRU, ``key(args)`` the part of the
    arguments that decides a hit (default: all of them), ``scope`` who shares it
    (``"global"``, the default, or ``"agent"``, ``"session"``, ``"run"``).
    ``model_calls=True``: the run's model calls use it too, keyed by everything the model
    would receive (model, system prompt, messages, tools, options)."""
    api = f"def_cache({name!r})"
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name) or name.startswith("_"):
        raise PromptError(f"{api}: the name is letters, digits, '_', '-' or '.', not starting with '_'; got {name!r}")
    seconds = ttl.total_seconds() if hasattr(ttl, "total_seconds") else ttl
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
        raise PromptError(f"{api}: ttl is a number of seconds (or a timedelta) above 0; got {ttl!r}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise PromptError(f"{api}: max_size is a whole number above 0; got {max_size!r}")
    if key is not None and not callable(key):
        raise PromptError(f"{api}: key is a function of the tool's arguments; got {key!r}")
    if scope not in SCOPE_KINDS:
        raise PromptError(f"{api}: scope is one of {', '.join(SCOPE_KINDS)}; got {scope!r}")
    if not isinstance(model_calls, bool):
        raise PromptError(f"{api}: model_calls is True or False; got {model_calls!r}")
    spec = CacheSpec(name, None if seconds is None else float(seconds), max_size, key, scope, model_calls)
    host = p.service("memory")
    if host is not None:
        getattr(host, CACHE_SERVICE_ATTR)[name] = spec
    return spec


def cache_ref(spec: CacheSpec | None, cache: str, tool: str, args: dict[str, Any], scope: str | None) -> CacheRef:
    """What the tool's activity gets: the cache's name, the call's key and lifetime.
    ``scope``: the run's string for the cache's scope kind."""
    if spec is None:
        raise PromptError(f"Tool '{tool}' names cache {cache!r}, which the prompt function does not define; add "
                          f"p.def_cache({cache!r}, ...)")
    if scope is None:
        raise PromptError(f"def_cache({cache!r}) has scope='session', but this run has no session: start it with "
                          "session='...', or use another scope")
    try:
        material = spec.key(args) if spec.key is not None else args
        text = json.dumps({"tool": tool, "key": material}, sort_keys=True, default=str)
    except Exception as err:  # noqa: BLE001  (the user's key function)
        raise PromptError(f"def_cache({cache!r}): key(args) failed for tool '{tool}': {type(err).__name__}: {err}") from None
    return CacheRef(name=spec.name, key=hashlib.sha256(text.encode()).hexdigest()[:32], scope=scope,
                    ttl_seconds=spec.ttl, max_size=spec.max_size)


def model_call_cache(caches: dict[str, CacheSpec], request: dict[str, Any], scope_of: Callable[[str], str | None]
                     ) -> CacheRef | None:
    """The CacheRef of a model request (its fields that reach the provider, as JSON) under
    the run's ``def_cache(..., model_calls=True)``, if it has one."""
    spec = next((c for c in caches.values() if c.model_calls), None)
    if spec is None:
        return None
    return cache_ref(spec, spec.name, "model_call", request, scope_of(spec.scope))


def cached_result(output: Any) -> tuple[Any, str | None]:
    """A cached call's activity result: the tool's result, and ``"hit"`` or ``"miss"``."""
    if isinstance(output, dict) and output.get("lmthing_cache") in ("hit", "miss") and set(output) == {"lmthing_cache", "result"}:
        return output["result"], output["lmthing_cache"]
    return output, None
