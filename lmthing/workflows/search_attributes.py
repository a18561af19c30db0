"""lmthing's search attributes: how a person finds runs in the Temporal UI and CLI.

- ``LmthingWaiting`` (Bool): the run waits on a person (upserted while it does).
- ``LmthingAgent`` (Keyword): the agent a run is: the prompt's name for a root run, the
  agent's name for a sub-agent (``def_agent``, ``p.call_prompt``, a team member, an
  orchestration step). Set when the run starts (by ``start_prompt`` and by the parent
  for a child, if the parent has it), so it costs no history event:
  ``temporal workflow list --query 'LmthingAgent = "researcher"'``.

A server only accepts attributes its namespace knows; ``lmthing dev`` registers both,
``lmthing worker`` and the first ``start_prompt`` register them when they may
(:func:`lmthing.client.namespace.register_search_attributes`), and where they may not, runs start
without them (lmthing/client/start.py). ``RunConfig(search_attributes=False)`` runs
without any of them.

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


def child_attributes(agent: str, parent: TypedSearchAttributes, enabled: bool) -> TypedSearchAttributes | None:
    """A child's attributes: only when its parent run has ``LmthingAgent`` itself, which
    proves the namespace knows it (a child start command with an unknown attribute would
    fail the parent's workflow task over and over)."""
    return agent_attributes(agent) if enabled and parent.get(AGENT) is not None else None
