"""Starting a run the way every lmthing run starts: its agent on the ``LmthingAgent``
search attribute and a summary for the Temporal UI, and a server that does not know the
attribute answered with the fix instead of a bare RPC error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from lmthing.workflows.search_attributes import REGISTERED, agent_attributes, create_commands

if TYPE_CHECKING:
    from lmthing.workflows.config import RunConfig


class SearchAttributesMissing(RuntimeError):
    """The namespace does not know lmthing's search attributes."""


async def start_run(
    client: Client,
    name: str,
    args: list[Any],
    *,
    config: RunConfig,
    id: str,
    task_queue: str,
    summary: str,
    result_type: type | None = None,
) -> WorkflowHandle[Any, Any]:
    check_config(config)
    attributes = agent_attributes(name) if config.search_attributes else None
    try:
        return await client.start_workflow(
            name, args=args, id=id, task_queue=task_queue, result_type=result_type,
            search_attributes=attributes, static_summary=summary,
        )
    except RPCError as err:
        unknown = [attr for attr in REGISTERED if attr in str(err)]
        if err.status != RPCStatusCode.INVALID_ARGUMENT or not unknown:
            raise
        raise SearchAttributesMissing(
            f"Namespace {client.namespace!r} does not know lmthing's search attribute {unknown[0]}, so the run was "
            f"not started. `lmthing worker` registers them when it starts (it needs operator rights); or run "
            f"{' and '.join(f'`{c}`' for c in create_commands())}; or start without them: "
            "RunConfig(search_attributes=False)."
        ) from None


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
