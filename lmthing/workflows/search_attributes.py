"""lmthing's search attributes: how a person finds runs in the Temporal UI and CLI.

- ``LmthingWaiting`` (Bool): the run waits on a person (upserted while it does).
- ``LmthingAgent`` (Keyword): the agent a run is: the prompt's name for a root run, the
  agent's name for a sub-agent (``def_agent``, ``p.call_prompt``, a team member, an
  orchestration step). Set when the run starts (by ``start_prompt`` and by the parent
  for a child), so it costs no history event:
  ``temporal workflow list --query 'LmthingAgent = "researcher"'``.

A server only accepts attributes its namespace knows; ``lmthing dev`` registers both and
``lmthing worker`` registers them when it may (:func:`lmthing.workers.register_search_attributes`).
``RunConfig(search_attributes=False)`` runs without any of them.

Only ``temporalio.common`` is imported: the client imports this module too.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

WAITING = SearchAttributeKey.for_bool("LmthingWaiting")
AGENT = SearchAttributeKey.for_keyword("LmthingAgent")

# name -> `temporal operator search-attribute create --type` value
REGISTERED: dict[str, str] = {WAITING.name: "Bool", AGENT.name: "Keyword"}


def agent_attributes(agent: str) -> TypedSearchAttributes:
    """What a run of ``agent`` starts with."""
    return TypedSearchAttributes([SearchAttributePair(AGENT, agent)])


def create_commands() -> list[str]:
    """The `temporal` commands that register lmthing's attributes on a namespace."""
    return [f"temporal operator search-attribute create --name {name} --type {kind}" for name, kind in REGISTERED.items()]
