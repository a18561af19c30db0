"""lmthing's built-in tools, offline on a scripted model.

    lmthing run examples/builtin_tools.py

What it shows (docs/tools.md):

* ``p.def_tools(builtins.category("files"))`` and single tools (``p.def_tool(builtins.calc.calculate)``):
  each is an ``@tool`` activity the worker runs, because this module binds them at its top
  level (``from lmthing.tools.files import ...``), where a worker's scan finds tools;
* the worker's settings: the file tools may only touch one folder, declared here with
  ``def_tool_settings`` as a resource (made on the worker, never in the workflow); a path
  outside it (``../escape.txt``) is refused and the refusal goes back to the model.
"""

from __future__ import annotations

from typing import Any

import lmthing.tools as builtins
from lmthing import def_resource, prompt
from lmthing.testing import scripted_model, text, tool_call
from lmthing.tools.calc import calculate
from lmthing.tools.data import csv_parse
from lmthing.tools.files import file_stat, glob_files, list_dir, make_dir, read_file, search_files, write_file
from lmthing.tools.settings import SETTINGS_RESOURCE
from lmthing.tools.text import slugify
from lmthing.tools.time import time_diff

__all__ = ["calculate", "csv_parse", "file_stat", "glob_files", "list_dir", "make_dir", "read_file", "search_files",
           "slugify", "time_diff", "write_file"]

SALES = "region,amount\nnorth,120.5\nsouth,80\nwest,42.25\n"


def workspace() -> Any:
    """The files root of this example: a fresh folder under the temp dir, made on the worker
    (I/O never happens in the workflow, which re-imports this module for every run)."""
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.gettempdir()) / "lmthing-builtin-tools-example"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    return builtins.ToolSettings(files_root=str(root))


# def_tool_settings(files_root=...) does the same for a fixed folder; this one is made fresh.
tool_settings = def_resource(SETTINGS_RESOURCE, init=workspace)

SCRIPT = [
    [tool_call("write_file", {"path": "report/sales.csv", "content": SALES}),
     tool_call("write_file", {"path": "../escape.txt", "content": "outside"})],
    [tool_call("read_file", {"path": "report/sales.csv"}), tool_call("csv_parse", {"text": SALES}),
     tool_call("calculate", {"expression": "120.5 + 80 + 42.25"})],
    [tool_call("glob_files", {"pattern": "**/*.csv"}), tool_call("slugify", {"text": "Q3 Sales Report"}),
     tool_call("time_diff", {"start": "2026-07-01T00:00:00Z", "end": "2026-09-30T00:00:00Z"})],
    text("Q3 sales came to 242.75 over 91 days, saved as report/sales.csv (the write outside the folder was refused)."),
]


@prompt(model=scripted_model("builtin-tools-example", SCRIPT), max_steps=6)
def sales_report(p) -> None:
    """Write, read and sum a small sales report with the built-in tools."""
    p.def_tools(builtins.category("files"))
    p.def_tools([csv_parse, calculate, slugify, time_diff])
    p.def_system("role", "You keep the sales reports. Use the tools; files live in your workspace folder.")
    p.user("Save the Q3 sales as report/sales.csv and tell me the total.")
