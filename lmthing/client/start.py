"""Starting a run the way every lmthing run starts: its agent on the ``LmthingAgent``
search attribute and a summary for the Temporal UI.

A namespace that does not know lmthing's search attributes (a plain
``temporal server start-dev``, a new namespace) gets them registered on the first start,
as ``lmthing worker`` does; where this client may not register them (Temporal Cloud without
operator rights), runs start without them and one warning says how to add them. A run's
sub-agents carry the attribute only if the run does (workflows/search_attributes.py), so a
namespace without it never sees a child start command it would refuse.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from lmthing.workflows.search_attributes import REGISTERED, agent_attributes

from .namespace import register_search_attributes

if TYPE_CHECKING:
    from lmthing.workflows.config import RunConfig

log = logging.getLogger("lmthing.client")

# Clients (per namespace) whose namespace lacks the attributes and may not get them.
_WITHOUT: weakref.WeakKeyDictionary[Client, set[str]] = weakref.WeakKeyDictionary()


async def start_run(
    client: Client,
    name: str,
    payload: Any,
    *,
    config: RunConfig,
    id: str,
    task_queue: str,
    summary: str,
    result_type: type | None = None,
) -> WorkflowHandle[Any, Any]:
    check_config(config)
    use = config.search_attributes and client.namespace not in _WITHOUT.get(client, set())

    async def start(with_attributes: bool) -> WorkflowHandle[Any, Any]:
        # Without them, the run is told so: it then upserts no LmthingWaiting either.
        run_config = config if with_attributes else config.model_copy(update={"search_attributes": False})
        return await client.start_workflow(
            name, args=[payload, run_config], id=id, task_queue=task_queue, result_type=result_type,
            search_attributes=agent_attributes(name) if with_attributes else None, static_summary=summary,
        )

    if not use:
        return await start(False)
    try:
        return await start(True)
    except RPCError as err:
        if err.status != RPCStatusCode.INVALID_ARGUMENT or not any(attr in str(err) for attr in REGISTERED):
            raise
    problem = await register_search_attributes(client)
    if problem is None:
        try:
            return await start(True)
        except RPCError as err:
            problem = str(err)  # registered, but not in effect yet
    _WITHOUT.setdefault(client, set()).add(client.namespace)
    log.warning(
        "Namespace %r does not know lmthing's search attributes, so runs start without them (no filtering by "
        "LmthingAgent, and `lmthing approvals` cannot find runs waiting on a person). %s",
        client.namespace, problem,
    )
    return await start(False)


def check_config(config: RunConfig) -> None:
    """A field RunConfig or its ModelOptions does not have is a typo the worker would ignore
    (it cannot tell a typo from a field of newer code): refuse it before the run starts."""
    from lmthing.prompt.types import unknown_fields

    for model, label in ((config, "RunConfig"), (config.options, "ModelOptions")):
        unknown = unknown_fields(model)
        if unknown:
            raise TypeError(
                f"{label} has no field(s) {', '.join(map(repr, unknown))}; its fields are {', '.join(type(model).model_fields)}"
            )
