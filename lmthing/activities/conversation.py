"""The model activity's side of :mod:`lmthing.prompt.conversation`: rebuild the whole
request of a call that was sent as a delta.

Each worker keeps the last request it sent to the model for each run (an LRU of
``MAX_RUNS`` runs). A call whose base is not in this worker's cache (another worker served
the previous step, or this one restarted) asks the run for it: the ``model_request`` query
answers with the whole request of the step being called, from the workflow's memory.
Queries add nothing to history, and the digests make sure that what was rebuilt is exactly
what the workflow meant. A call sent as a layout (def_context rearranged the conversation)
is rebuilt the same way, from segments of the cached call (``_resolve_layout``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.prompt.conversation import assemble, extend_digests, system_digest, tools_digest
from lmthing.prompt.types import Conversation, ConversationBase, Message, ModelRequest, ToolDefinition

MAX_RUNS = 256
REQUEST_QUERY = "model_request"  # PromptWorkflow.model_request


@dataclass
class _Sent:
    messages: list[Message]
    digests: list[str]
    system: str | None
    tools: list[ToolDefinition]


class RequestCache:
    """What this worker last sent the model for each run, least recently used dropped first."""

    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self._runs: OrderedDict[tuple[str, str], _Sent] = OrderedDict()
        self._max = max_runs

    def get(self, key: tuple[str, str]) -> _Sent | None:
        entry = self._runs.get(key)
        if entry is not None:
            self._runs.move_to_end(key)
        return entry

    def put(self, key: tuple[str, str], sent: _Sent) -> None:
        self._runs[key] = sent
        self._runs.move_to_end(key)
        while len(self._runs) > self._max:
            self._runs.popitem(last=False)


def _matches(sent: _Sent, base: ConversationBase) -> bool:
    return (
        len(sent.digests) > base.length and sent.digests[base.length] == base.digest
        and (base.system_digest is None or system_digest(sent.system) == base.system_digest)
        and (base.tools_digest is None or tools_digest(sent.tools) == base.tools_digest)
    )


async def resolve(request: ModelRequest, cache: RequestCache) -> ModelRequest:
    """``request`` made whole, and the cache updated for the run's next call."""
    base = request.conversation.base
    # The base is always the previous call of the run that schedules this one.
    key = (request.workflow_id or "", activity.info().workflow_run_id or "")
    if base is None:
        messages = list(request.conversation.messages)
        cache.put(key, _Sent(messages, extend_digests([], messages, 0), request.system, list(request.tools)))
        return request
    if base.layout is not None:
        return await _resolve_layout(request, cache, key)
    sent = cache.get(key)
    if sent is not None and _matches(sent, base):
        prefix, digests = sent.messages[: base.length], sent.digests[: base.length + 1]
        system, tools = sent.system, sent.tools
    else:
        activity.logger.info(
            "Step %d: this worker did not serve the run's previous model call; rebuilt its input from the run", request.step
        )
        whole = await _ask_the_run(request, key[1])
        prefix = whole.messages[: base.length]
        digests = extend_digests([], prefix, 0)
        system, tools = whole.system, whole.tools
        if digests[-1] != base.digest:
            raise ApplicationError(
                f"The conversation of step {request.step} could not be rebuilt: the run's messages do not match the "
                "digest the call was sent with.",
                type="ConversationMismatch",
            )
    messages = [*prefix, *request.conversation.delta]
    system = system if base.system_digest is not None else request.system
    tools = tools if base.tools_digest is not None else request.tools
    cache.put(key, _Sent(messages, extend_digests(digests, messages, base.length), system, list(tools)))
    return request.model_copy(update={"conversation": Conversation(messages=messages), "system": system, "tools": tools})


async def _resolve_layout(request: ModelRequest, cache: RequestCache, key: tuple[str, str]) -> ModelRequest:
    """A call whose messages are segments of the previous call's and of its delta."""
    base = request.conversation.base
    assert base is not None and base.layout is not None
    sent = cache.get(key)
    messages = None
    if sent is not None and _same_parts(sent, base):
        messages = assemble(sent.messages, base.layout, request.conversation.delta)
        system, tools = sent.system, sent.tools
    digests = extend_digests([], messages, 0) if messages is not None else []
    if messages is None or digests[-1] != base.digest:
        activity.logger.info(
            "Step %d: this worker did not serve the run's previous model call; rebuilt its input from the run", request.step
        )
        whole = await _ask_the_run(request, key[1])
        messages, system, tools = whole.messages, whole.system, whole.tools
        digests = extend_digests([], messages, 0)
        if digests[-1] != base.digest:
            raise ApplicationError(
                f"The conversation of step {request.step} could not be rebuilt: the run's messages do not match the "
                "digest the call was sent with.",
                type="ConversationMismatch",
            )
    system = system if base.system_digest is not None else request.system
    tools = tools if base.tools_digest is not None else request.tools
    cache.put(key, _Sent(messages, digests, system, list(tools)))
    return request.model_copy(update={"conversation": Conversation(messages=messages), "system": system, "tools": tools})


def _same_parts(sent: _Sent, base: ConversationBase) -> bool:
    return ((base.system_digest is None or system_digest(sent.system) == base.system_digest)
            and (base.tools_digest is None or tools_digest(sent.tools) == base.tools_digest))


async def _ask_the_run(request: ModelRequest, run_id: str) -> ModelRequest:
    handle = activity.client().get_workflow_handle(request.workflow_id or "", run_id=run_id)
    # A def_context summary call is not a step's own call: the run answers with that request.
    asked = {"step": request.step, "summarize": True} if request.summarize is not None else request.step
    return await handle.query(REQUEST_QUERY, asked, result_type=ModelRequest)
