"""What a namespace must have for lmthing: its search attributes (workflows/search_attributes.py).

Registering them is a call on the operator API of the client's namespace, made by the
caller edge (``start_prompt`` on its first start in a namespace that lacks them) and by
``lmthing worker`` / ``lmthing run --address`` when they start.
"""

from __future__ import annotations

from temporalio.client import Client


async def register_search_attributes(client: Client) -> str | None:
    """Make sure the namespace knows lmthing's search attributes (``LmthingWaiting``,
    ``LmthingAgent``).

    Returns None when they are there, else what the operator should run: runs set them
    (a sub-agent starts with ``LmthingAgent``, a run waiting on a person upserts
    ``LmthingWaiting``), and a server that does not know one fails that workflow task until
    it is created (`lmthing dev` registers them itself)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from lmthing.workflows.search_attributes import REGISTERED

    kinds = {"Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL, "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
    missing = list(REGISTERED)
    try:
        known = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = [name for name in REGISTERED if name not in known.custom_attributes]
        if not missing:
            return None
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={name: kinds[REGISTERED[name]] for name in missing},
            )
        )
        return None
    except Exception as err:  # no operator rights (e.g. Temporal Cloud): tell the operator
        commands = "; ".join(
            f"temporal operator search-attribute create --name {name} --type {REGISTERED[name]}" for name in missing
        )
        return f"could not register search attribute(s) {', '.join(missing)} ({err}); run: {commands}"

