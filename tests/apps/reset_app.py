"""A prompt for tests/test_replay_cli.py: replaying a run, and resetting a failed run after
a tool bug is fixed.

``reset_report`` runs three steps: (1) look a city up, (2) publish a report through a
critical ``@tool``, (3) answer with what was published. While ``PUBLISHER["broken"]`` is
true, the publisher fails and, being critical, fails the run at step 2. The flag is read
inside the activity, i.e. on the worker side: flipping it plays "deploy the fix", after
which ``lmthing reset`` lets the failed run continue with the fixed tool.

``MODEL_CALLS`` counts how often the model was really called per (workflow id, step) in
this worker process, so a test can prove that a reset did not call the model again for the
steps before the reset point.

The workflow sandbox re-imports this module: it imports only lmthing and the standard library.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import timedelta

from lmthing import RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

PUBLISHER = {"broken": False}
MODEL_CALLS: Counter[tuple[str, int]] = Counter()
CITIES = {"paris": 18, "oslo": 4}


@tool
async def reset_lookup(city: str) -> dict:
    """Look up the temperature of a city."""
    return {"city": city, "celsius": CITIES.get(city.lower(), 0)}


@tool(retry=RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=2), critical=True)
async def reset_publish(title: str) -> dict:
    """Publish a report (critical: the run cannot go on without it)."""
    if PUBLISHER["broken"]:
        raise RuntimeError("publisher bug: cannot encode the title")
    return {"published": title, "url": f"https://reports.example/{title.lower().replace(' ', '-')}"}


def _counted(items):
    """A script step that records the real model call (the callable runs in the activity)."""

    def step(request):
        # Runs in the model-call activity. Looked up through sys.modules: the workflow
        # sandbox re-imports this module (re-registering the script with closures over
        # its own copy), while the activity's sys.modules holds the worker's real module.
        sys.modules[__name__].MODEL_CALLS[(request.workflow_id, request.step)] += 1
        return items(request) if callable(items) else list(items)

    return step


RESET_MODEL = scripted_model(
    "reset-report",
    [
        [_counted([text("Looking up Paris."), tool_call("reset_lookup", {"city": "Paris"})])],
        [_counted([text("Publishing."), tool_call("reset_publish", {"title": "Paris is 18 C"})])],
        [_counted(lambda req: [text(f"Published: {req.messages[-1].content}")])],
    ],
)


@prompt(model=RESET_MODEL)
def reset_report(p):
    p.def_system("role", "You write and publish short weather reports.")
    p.user("Report on Paris.")
    p.def_tool(reset_lookup)
    p.def_tool(reset_publish)
