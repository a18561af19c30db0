"""A concierge that remembers its guests between runs, offline on a scripted model.

    lmthing run examples/memory_agent.py --session guest-42 --input '{"request": "a quiet room, please"}'
    lmthing run examples/memory_agent.py --session guest-42 --input '{"request": "book me dinner"}'

The second run knows what the first one learned (docs/memory.md). The store is the embedded
SQLite file `.lmthing/memory.db`, or `LMTHING_MEMORY_URL`; `lmthing memory list` shows it.
What it shows, one definition each:

* ``def_memory("guest", "kv", scope="session")``: the guest's preferences, written by the
  model with the memory's tool (``guest_remember``) and read back in the next run;
* ``def_memory("stays", "episodic", scope="session")``: what happened in each run, in order,
  summarized when it grows;
* ``def_memory("hunches", "belief", scope="session")``: how sure the concierge is that the
  guest is a light sleeper, moved by each request that says so (log-odds);
* ``def_state("visits", 0, persist=True, scope="session")``: a counter that every run of the
  session shares;
* ``def_cache("rooms")`` on the ``room_availability`` tool: the second run asks the same
  question and is answered from the cache, without calling the tool.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import last_user_text, scripted_model, text, tool_call


class Visit(BaseModel):
    request: str


@tool
def room_availability(floor: str) -> dict:
    """Which rooms are free on a floor (a slow call to the hotel system)."""
    print(f"hotel system: asked for the {floor} floor")
    return {"floor": floor, "free": ["412", "418"]}


def _concierge(request: Any) -> Any:
    """Step 0: check rooms; step 1: remember the preference; then answer with what it knows."""
    asked = last_user_text(request)
    if request.step == 0:
        return [tool_call("room_availability", {"floor": "quiet"})]
    if request.step == 1 and "quiet" in asked:
        return [tool_call("guest_remember", {"key": "room", "value": "quiet, high floor"})]
    known = request.system[request.system.find("<variables>"):] if request.system else ""
    return text(f"Done. What I know of you: {' '.join(known.split())}")


@prompt(model=scripted_model("concierge", [_concierge], repeat=True), max_steps=4)
async def concierge(p, visit: Visit):
    visits, set_visits = p.def_state("visits", 0, persist=True, scope="session")
    this_visit, _ = p.def_state("this_visit", visits + 1)  # fixed for the run (visits changes below)
    set_visits(this_visit)
    guest = p.def_memory("guest", "kv", scope="session", tools=True)
    stays = p.def_memory("stays", "episodic", scope="session")
    hunches = p.def_memory("hunches", "belief", scope="session", half_life=30 * 24 * 3600)

    await stays.remember(f"visit {this_visit}: asked for {visit.request}", key=f"visit-{this_visit}")
    if "quiet" in visit.request:
        await hunches.update("light sleeper", 3.0, key=f"visit-{this_visit}")
    if this_visit > 2:
        await stays.summarize(summarizer=lambda texts: "earlier: " + "; ".join(texts), keep_last=1)

    p.def_data("guest", {"room": await guest.recall("room"), "visit": this_visit,
                         "light_sleeper": round(await hunches.belief("light sleeper"), 2),
                         "history": await stays.recall(limit=3)})
    p.def_cache("rooms", ttl=3600)
    p.def_tool(room_availability, cache="rooms")
    p.user(visit.request)
