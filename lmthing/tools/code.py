"""The code interpreter as a tool: model-written Python (a safe subset) run by lmthing's own
interpreter (:mod:`lmthing.plugins.code_interpreter`, the one ``def_function`` scripts run
on), with no functions registered: plain computation, no I/O, bounded in steps, sizes and
output. For scripts that call the prompt's tools, use ``def_function`` instead.
"""

from __future__ import annotations

from typing import Any

from lmthing.plugins.code_interpreter import Limits, run_code
from lmthing.prompt.tools import tool

from .registry import tagged
from .settings import PURE_RETRY


async def _no_functions(name: str, args: dict[str, Any], line: int) -> Any:  # never called: none registered
    raise LookupError(f"No function {name!r} is available in run_python")


@tagged("code", "python", "compute")
@tool(retry=PURE_RETRY)
async def run_python(code: str) -> dict:
    """Run a short Python script (a safe subset: no imports, files or network) and return what it printed and its last value."""
    return await run_code(code, {}, _no_functions, Limits())
