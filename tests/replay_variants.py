"""Deliberately changed versions of tests/apps/replay_examples.replay_tools_state (and of its
standalone replay_flow), registered
under the same workflow name, for tests/test_replay.py to prove that the replay check
catches an incompatible change (and to pin down what it does not catch).

Not under tests/apps/ on purpose: no worker runs these, only the Replayer. The workflow
sandbox re-imports this module, so it imports only lmthing, pydantic and the app module.
"""

from __future__ import annotations

from lmthing import call_agent, def_workflow, parallel, prompt, step, tool
from tests.apps.replay_examples import TOOLS_STATE_MODEL, Note, replay_analyst, replay_lookup  # noqa: F401 (replay_analyst: flow_reordered's agent)

NAME = "replay_tools_state"


@tool
async def replay_lookup_v2(city: str) -> dict:
    """Look up the temperature of a city (new service)."""
    return {"city": city, "celsius": 0}


def _common(p, system: str = "You compare city temperatures and keep notes."):
    notes, set_notes = p.def_state("notes", [])
    p.def_system("role", system)
    p.def_data("notes", notes)
    p.user("Compare Paris and Oslo.")

    def note(args: Note):
        set_notes(lambda current: [*current, args.text])
        return {"saved": len(p.get_state("notes"))}

    def remind(ctx, step_modifier):
        step_modifier("systems", [{"name": "progress", "value": f"{len(p.get_state('notes'))} notes so far"}])

    p.def_effect(remind, [len(notes)])
    p.def_tool("note", "Save a note.", Note, note)


@prompt(name=NAME, model=TOOLS_STATE_MODEL)
def lookup_in_workflow(p):
    """Incompatible: the lookup is now computed inside the workflow (no activity scheduled)."""
    _common(p)
    p.def_tool("replay_lookup", "Look up the temperature of a city.", None, lambda args: {"celsius": 0})


@prompt(name=NAME, model=TOOLS_STATE_MODEL)
def lookup_other_activity(p):
    """Incompatible: the tool the model calls now runs a different activity type."""
    _common(p)
    p.def_tool("replay_lookup", "Look up the temperature of a city.", None, replay_lookup_v2)


@prompt(name=NAME, model=TOOLS_STATE_MODEL)
def reworded(p):
    """Compatible for Temporal: only text the model sees changed (activity inputs are not
    compared on replay), so the same commands come out in the same order."""
    _common(p, system="You compare the temperatures of cities and write notes.")
    p.def_tool(replay_lookup)


INCOMPATIBLE = [lookup_in_workflow, lookup_other_activity]


# The standalone replay_flow with its tool step moved after the parallel group: a run in
# flight would see a child workflow where its history has an activity.
flow_reordered = def_workflow("replay_flow", [
    step("analyze", agent="replay_analyst", args={"task": "the parser"}),
    step("fan", parallel({"a": call_agent("replay_analyst", {"task": "a"}), "b": call_agent("replay_analyst", {"task": "b"})})),
    step("lookup", tool=replay_lookup, args={"city": "Lima"}),
])
