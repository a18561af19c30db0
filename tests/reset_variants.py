"""A deliberately incompatible version of tests/apps/reset_app.reset_report, registered
under the same workflow name, for ``lmthing replay --app tests.reset_variants`` in
tests/test_replay_cli.py.

The change: ``reset_publish`` became an in-workflow tool (a plain lambda) instead of an
``@tool`` activity. Replaying a recorded run, step 1's tool call now schedules no activity
and the workflow goes straight to step 2's model call, where history has the
``lmthing.tool.reset_publish`` activity: a divergence at step 1 (steps count from 0).

Not under tests/apps/ on purpose: no worker runs it, only the Replayer. The workflow
sandbox re-imports this module: it imports only lmthing and the app module.
"""

from __future__ import annotations

from lmthing import prompt
from tests.apps.reset_app import RESET_MODEL, reset_lookup


@prompt(name="reset_report", model=RESET_MODEL)
def reset_report_inline_publish(p):
    p.def_system("role", "You write and publish short weather reports.")
    p.user("Report on Paris.")
    p.def_tool(reset_lookup)
    p.def_tool("reset_publish", "Publish a report.", None, lambda args: {"published": args["title"]})
