"""Prompts that call lmthing's built-in tools (tests/test_builtin_tools.py,
tests/test_tool_security.py). The session worker loads this module, so every built-in is
registered on it (they are bound at the top level here, as a user's app module would).

The scripted model reads the tool calls to make from the user message (a JSON list of
``{"tool": name, "args": {...}}``), so one prompt serves every case with its own paths and
URLs: the test gives them as the run's arguments."""

from __future__ import annotations

import json

from pydantic import BaseModel

import lmthing.tools as builtins
from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text, tool_call

# Every built-in at the top level, where the worker's --app scan finds @tool functions.
globals().update({t.name: t for t in builtins.ALL})


class Calls(BaseModel):
    calls: list[dict]


def _calls_from_user(request):
    return [tool_call(c["tool"], c.get("args", {})) for c in json.loads(last_user_text(request))]


@prompt(model=scripted_model("builtins-calls", [_calls_from_user, text("done")]))
def builtins_calls(p, args: Calls):
    p.def_tools(builtins.safe())
    p.user(json.dumps(args.calls))


@prompt(model=scripted_model("builtins-shell", [_calls_from_user, text("done")]))
def builtins_shell(p, args: Calls):
    p.def_approval("shell", message="Run this command?", default="deny")
    p.def_tools(builtins.category("shell"))
    p.user(json.dumps(args.calls))
