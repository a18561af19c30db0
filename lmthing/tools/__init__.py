"""lmthing's built-in tools (seed 003's built-in tools, 000's BuiltinTools), each an
``@tool`` activity, grouped by category, and the tool registry (docs/tools.md)::

    import lmthing.tools as builtins

    @prompt(model="openai:gpt-4o-mini")
    def analyst(p):
        p.def_tool(builtins.web.http_fetch)
        p.def_tools(builtins.category("files"))

A worker runs them once it knows them: a module it loads (``--app``) that imports them at
its top level, or ``create_worker(client, tools=lmthing.tools.ALL)``. What they may touch
(files root, private addresses, database writes, the shell) is the worker's setting
(:mod:`lmthing.tools.settings`).
"""

from __future__ import annotations

from lmthing.prompt.tools import ActivityTool

from . import calc, code, data, files, shell, sql, text, time, web
from .registry import ENTRY_POINT_GROUP, Entry, ToolRegistry, tagged
from .settings import ToolInputError, ToolLimitExceeded, ToolRefused, ToolSettings, def_tool_settings

MODULES = (web, files, time, data, text, calc, sql, shell, code)

BUILTINS = ToolRegistry()
for _module in MODULES:
    BUILTINS.load_module(_module)

ALL: list[ActivityTool] = BUILTINS.all()
CATEGORIES: list[str] = BUILTINS.categories()


def category(name: str) -> list[ActivityTool]:
    """The built-in tools of one category (web, files, time, data, text, calc, sql, shell, code)."""
    return BUILTINS.category(name)


def safe() -> list[ActivityTool]:
    """Every built-in but the shell: those a prompt may show without a def_approval("shell")."""
    return [t for t in ALL if not t.approval_required]


__all__ = [
    "ALL", "BUILTINS", "CATEGORIES", "ENTRY_POINT_GROUP", "Entry", "ToolInputError", "ToolLimitExceeded", "ToolRefused",
    "ToolRegistry", "ToolSettings", "calc", "category", "code", "data", "def_tool_settings", "files", "safe", "shell",
    "sql", "tagged", "text", "time", "web",
]
