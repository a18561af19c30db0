"""A tool registry (seed 000's ToolRegistry): register ``@tool`` functions with a category
and tags, look them up and search them, and load them from a module, a folder of ``.py``
files or installed packages (the entry-point group ``lmthing.tools``).

A registry is a worker-side catalogue: a worker runs the tools it holds with
``create_worker(client, tools=registry.all())`` (or ``lmthing worker --tools-entry-points``),
and a prompt picks what it shows the model with ``p.def_tools(registry.search(tag="files"))``.
It holds ``ActivityTool`` objects, the same ones a prompt module imports, so a tool loaded
twice (by its module and by a folder scan) must come from one import, not two copies.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lmthing.prompt.tools import ActivityTool

ENTRY_POINT_GROUP = "lmthing.tools"
DEFAULT_CATEGORY = "custom"


def tagged(category: str, *tags: str) -> Any:
    """Give an ``@tool`` function a category and tags (put it above ``@tool``): a registry
    that loads the function's module files it under them."""

    def mark(tool: ActivityTool) -> ActivityTool:
        if not isinstance(tool, ActivityTool):
            raise TypeError(f"tagged({category!r}) goes above @tool: it marks an @tool function, got {tool!r}")
        tool.lmthing_category = category  # type: ignore[attr-defined]
        tool.lmthing_tags = tuple(tags)  # type: ignore[attr-defined]
        return tool

    return mark


@dataclass(frozen=True)
class Entry:
    """One registered tool, its category and tags, and where it was loaded from."""

    tool: ActivityTool
    category: str
    tags: tuple[str, ...]
    source: str

    @property
    def name(self) -> str:
        return self.tool.name


class ToolRegistry:
    """Tools by name, each with a category and tags. Names are unique: registering another
    function under a taken name is refused (a worker could not run both)."""

    def __init__(self, tools: Iterable[ActivityTool] = ()) -> None:
        self._entries: dict[str, Entry] = {}
        for t in tools:
            self.register(t)

    # ------------------------------------------------------------------ registering
    def register(self, tool: ActivityTool, *, category: str | None = None, tags: Iterable[str] | None = None,
                 source: str = "") -> ActivityTool:
        """Add ``tool`` (category and tags default to those of :func:`tagged`); returns it,
        so ``@registry.register`` works as a decorator above ``@tool`` too."""
        if not isinstance(tool, ActivityTool):
            raise TypeError(f"ToolRegistry.register: give an @tool function, got {tool!r} (decorate it with @tool)")
        held = self._entries.get(tool.name)
        if held is not None and held.tool.fn is not tool.fn:
            raise ValueError(f"ToolRegistry: a different tool is already registered as {tool.name!r} (from "
                             f"{held.source or held.tool.fn.__module__}); rename one with @tool(name=...)")
        category = category or getattr(tool, "lmthing_category", None) or DEFAULT_CATEGORY
        tags = tuple(tags) if tags is not None else tuple(getattr(tool, "lmthing_tags", ()))
        self._entries[tool.name] = Entry(tool, category, tags, source or tool.fn.__module__)
        return tool

    def unregister(self, name: str) -> None:
        self.entry(name)
        del self._entries[name]

    # ------------------------------------------------------------------ looking up
    def entry(self, name: str) -> Entry:
        found = self._entries.get(name)
        if found is None:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(sorted(self._entries)) or 'none'}"
            raise KeyError(f"No tool named {name!r} in the registry{hint}")
        return found

    def get(self, name: str) -> ActivityTool:
        """The tool ``name`` (a KeyError naming close matches when there is none)."""
        return self.entry(name).tool

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Any:
        return iter(self.all())

    def names(self) -> list[str]:
        return list(self._entries)

    def all(self) -> list[ActivityTool]:
        return [e.tool for e in self._entries.values()]

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def categories(self) -> list[str]:
        return sorted({e.category for e in self._entries.values()})

    def tags(self) -> list[str]:
        return sorted({t for e in self._entries.values() for t in e.tags})

    def category(self, name: str) -> list[ActivityTool]:
        """The tools of one category (a KeyError listing the categories when it has none)."""
        found = [e.tool for e in self._entries.values() if e.category == name]
        if not found:
            raise KeyError(f"No tools in category {name!r}; categories: {', '.join(self.categories()) or 'none'}")
        return found

    def search(self, query: str = "", *, tag: str | Iterable[str] | None = None, category: str | None = None) -> list[ActivityTool]:
        """Tools whose name, description, category or tags contain every word of ``query``
        (case-insensitive), that carry every tag of ``tag`` and are in ``category``."""
        wanted = {tag} if isinstance(tag, str) else set(tag or ())
        words = query.lower().split()
        found = []
        for e in self._entries.values():
            if category is not None and e.category != category:
                continue
            if not wanted <= set(e.tags):
                continue
            haystack = " ".join([e.name, e.tool.description, e.category, *e.tags]).lower()
            if all(w in haystack for w in words):
                found.append(e.tool)
        return found

    # ------------------------------------------------------------------ loading
    def load_module(self, module: ModuleType | str, *, source: str | None = None) -> list[ActivityTool]:
        """Register every ``@tool`` function at the top level of ``module`` (as a worker's
        ``--app`` scan finds them); returns those registered."""
        mod = importlib.import_module(module) if isinstance(module, str) else module
        found = [v for v in vars(mod).values() if isinstance(v, ActivityTool)]
        for t in found:
            self.register(t, source=source or mod.__name__)
        return _unique(found)

    def load_folder(self, folder: str | Path, *, package: str | None = None) -> list[ActivityTool]:
        """Import each ``.py`` file of ``folder`` (not its subfolders; files starting with
        ``_`` are skipped) and register its ``@tool`` functions. ``package``: import them as
        ``package.<file>`` (the folder must then be that package); default, as
        ``lmthing_tools_<folder>.<file>``, once per process."""
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"ToolRegistry.load_folder: {str(root)!r} is not a folder")
        loaded: list[ActivityTool] = []
        for path in sorted(root.glob("*.py")):
            if path.name.startswith("_"):
                continue
            if package:
                mod = importlib.import_module(f"{package}.{path.stem}")
            else:
                name = f"lmthing_tools_{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]}.{path.stem}"
                mod = sys.modules.get(name) or _import_file(name, path)
            loaded += self.load_module(mod)
        return loaded

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[ActivityTool]:
        """Register the tools installed packages publish in the entry-point ``group``. An
        entry point names a module, an ``@tool`` function, a list of them, or a ToolRegistry::

            [project.entry-points."lmthing.tools"]
            weather = "weather_tools"            # every @tool in the module
        """
        from importlib.metadata import entry_points

        loaded: list[ActivityTool] = []
        for ep in entry_points(group=group):
            try:
                value = ep.load()
            except Exception as err:  # noqa: BLE001  (named, then raised: a broken package is the user's to fix)
                raise ImportError(f"Entry point {ep.name!r} = {ep.value!r} (group {group!r}) does not load: {err}") from err
            loaded += self.load_value(value, source=f"entry point {ep.name}")
        return loaded

    def load_value(self, value: Any, *, source: str) -> list[ActivityTool]:
        if isinstance(value, ModuleType):
            return self.load_module(value, source=source)
        if isinstance(value, ToolRegistry):
            for e in value.entries():
                self.register(e.tool, category=e.category, tags=e.tags, source=source)
            return value.all()
        if isinstance(value, ActivityTool):
            return [self.register(value, source=source)]
        if isinstance(value, (list, tuple)) and all(isinstance(v, ActivityTool) for v in value):
            return [self.register(v, source=source) for v in value]
        raise TypeError(f"{source}: expected a module, an @tool function, a list of them or a ToolRegistry; got {value!r}")


def _import_file(name: str, path: Path) -> ModuleType:
    package = name.rsplit(".", 1)[0]
    if package not in sys.modules:
        holder = ModuleType(package)
        holder.__path__ = [str(path.parent)]
        sys.modules[package] = holder
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"ToolRegistry.load_folder: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(item is o for o in out):
            out.append(item)
    return out
