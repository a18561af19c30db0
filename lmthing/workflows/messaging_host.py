"""The ``messaging`` service of a prompt run (``p.service("messaging")``), which the
messaging plugin (:mod:`lmthing.messaging.plugin`) is built on: each call that reaches
another workflow is an activity (``activities/messaging.py``), scheduled on the run's tool
queue and retried; the receiver drops repeats by message id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from lmthing.activities.names import BOARD, PUBLISH, SEND, SUBSCRIBE
from lmthing.messaging.types import AgentMessage, MessagingError

from . import routing
from .errors import cause_message as _cause_message

# A publish or a delivery waits (heartbeating) while the receiver is full: no overall timeout.
MESSAGING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                              maximum_attempts=10)  # a refusal (bad message, unknown agent) is non-retryable already


class WorkflowMessaging:
    def __init__(self, mailbox: Any, prompt_name: str, args: Any, config: Any) -> None:
        self._mailbox = mailbox
        self._prompt = prompt_name
        self._args = args
        self._config = config

    def me(self) -> str:
        return workflow.info().workflow_id

    def long_lived(self) -> bool:
        return self._mailbox.live

    def current_message(self) -> AgentMessage | None:
        return self._mailbox.current

    async def _call(self, name: str, arg: dict[str, Any], what: str) -> Any:
        try:
            return await workflow.execute_activity(
                name, arg, task_queue=routing.tool_task_queue(), start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(seconds=30), retry_policy=MESSAGING_RETRY, summary=what,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # the run is being cancelled: it ends cancelled, not failed
            # A plain exception: the model reads it as the tool's error (publish, board tools);
            # from the prompt function it fails the run with this message.
            raise MessagingError(f"{what} failed: {_cause_message(err)}") from None

    async def publish(self, topic: str, message: AgentMessage) -> dict[str, Any]:
        receipt = await self._call(PUBLISH, {"topic": topic, "message": message.model_dump(mode="json"),
                                             "task_queue": workflow.info().task_queue}, f"publish to {topic}")
        return to_jsonable_python(receipt)

    async def subscribe(self, topic: str) -> dict[str, Any]:
        subscriber = {"agent_id": self.me(), "prompt": workflow.info().workflow_type, "args": self._args,
                      "task_queue": workflow.info().task_queue, "config": self._config}
        return to_jsonable_python(await self._call(SUBSCRIBE, {"topic": topic, "subscriber": subscriber,
                                                               "task_queue": workflow.info().task_queue}, f"subscribe to {topic}"))

    async def send(self, agent_id: str, prompt: str, args: Any, message: AgentMessage) -> dict[str, Any]:
        target = {"agent_id": agent_id, "prompt": prompt, "args": args, "task_queue": workflow.info().task_queue}
        result = await self._call(SEND, {"target": target, "message": message.model_dump(mode="json")}, f"message to {agent_id}")
        return {"id": message.id, "to": agent_id, **to_jsonable_python(result)}

    async def board(self, board: str, op: str, *, key: str | None = None, value: Any = None,
                    expected_version: int | None = None) -> dict[str, Any]:
        answer = await self._call(BOARD, {"board": board, "op": op, "key": key, "value": value,
                                          "expected_version": expected_version, "writer": self.me(),
                                          "task_queue": workflow.info().task_queue}, f"board {board} {op}")
        out = to_jsonable_python(answer, exclude_none=True)
        if not out.get("entries"):
            out.pop("entries", None)
        return out
