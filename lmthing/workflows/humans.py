"""Approvals and questions inside the workflow: what is pending, how decisions arrive
(signal or validating update, same names), durable-timer defaults, and the audit trail.

A signal cannot be refused, so an invalid one (unknown id, second decision, bad modified
arguments) is logged and changes nothing; the update runs the same checks in its validator
and is rejected with the reason, which is what `lmthing approve` uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from lmthing.prompt.humans import (
    Answer,
    ApprovalPolicy,
    Decision,
    DecisionRecord,
    PendingRequest,
)
from lmthing.prompt.tools import ToolDef, format_validation_error

from .search_attributes import WAITING  # marks runs waiting on a person


class RejectedDecision(ApplicationError):
    """A decision or answer that changes nothing, and why. Raised by the update validators,
    so the caller gets it; non-retryable, as the same decision would be refused again
    (`temporal workflow update` prints "retryable: false")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="RejectedDecision", non_retryable=True)


@dataclass
class _Waiting:
    request: PendingRequest
    policy: ApprovalPolicy | None = None
    tool: ToolDef | None = None
    decision: Decision | None = None
    answer: Answer | None = None


class HumanLoop:
    """The run's pending approvals and questions, and every decision made so far."""

    def __init__(
        self,
        step: Callable[[], int],
        decisions: list[DecisionRecord] | None = None,
        answers: dict[str, str] | None = None,
        counter: int = 0,
        mark_waiting: bool = True,
    ) -> None:
        self._step = step
        self.decisions: list[DecisionRecord] = list(decisions or [])
        self.answers: dict[str, str] = dict(answers or {})
        self.counter = counter
        self._mark_waiting = mark_waiting
        self._pending: dict[str, _Waiting] = {}

    # ------------------------------------------------------------------- what is pending
    def pending(self) -> list[PendingRequest]:
        return [w.request for w in self._pending.values()]

    def _open(self, waiting: _Waiting) -> None:
        self._pending[waiting.request.id] = waiting
        if len(self._pending) == 1:
            self._set_waiting(True)

    def _close(self, request_id: str) -> None:
        self._pending.pop(request_id, None)
        if not self._pending:
            self._set_waiting(False)

    def _set_waiting(self, value: bool) -> None:
        if self._mark_waiting:  # False also when the run has search_attributes off
            workflow.upsert_search_attributes([WAITING.value_set(value)])

    def _new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # ------------------------------------------------------------------------ approvals
    async def request_approval(
        self,
        policy: ApprovalPolicy,
        *,
        tool: str | None,
        args: dict[str, Any] | None,
        message: str | None = None,
        tool_def: ToolDef | None = None,
    ) -> DecisionRecord:
        text = message or policy.message or (f"Run tool '{tool}'?" if tool else f"Approve '{policy.name}'?")
        request = PendingRequest(
            id=self._new_id("a"),
            kind="approval",
            step=self._step(),
            message=text,
            tool=tool,
            args=args,
            options=list(policy.options),
            deadline=_deadline(policy.timeout),
            default=policy.default,
        )
        waiting = _Waiting(request, policy=policy, tool=tool_def)
        self._open(waiting)
        arrived = await self._wait_for(request.id, lambda: waiting.decision is not None, policy.timeout)
        if arrived and waiting.decision is not None:
            d = waiting.decision
            record = DecisionRecord(
                id=request.id, kind="approval", step=request.step, tool=tool, message=text, action=d.action,
                args=d.args if d.action == "modify" else args, reason=d.reason, by=d.by or "unknown", at=_now(),
            )
        else:
            record = DecisionRecord(
                id=request.id, kind="approval", step=request.step, tool=tool, message=text, action=policy.default,
                args=args, reason=f"no decision within {policy.timeout}", by="timeout", at=_now(), timed_out=True,
            )
        self.decisions.append(record)
        return record

    def check_decision(self, raw: Any) -> tuple[_Waiting, Decision]:
        """Validate a decision; raise RejectedDecision saying why it changes nothing."""
        try:
            decision = Decision.model_validate(raw)
        except ValidationError as err:
            raise RejectedDecision(f"Invalid decision: {format_validation_error(err)}") from None
        waiting = self._find(decision.id, "approval")
        assert waiting.policy is not None
        if decision.action not in waiting.policy.options:
            raise RejectedDecision(
                f"Approval '{decision.id}' allows {', '.join(waiting.policy.options)}; '{decision.action}' is not one of them"
            )
        if decision.action == "modify":
            if decision.args is None:
                raise RejectedDecision(f"A 'modify' decision needs replacement arguments for approval '{decision.id}'")
            if waiting.tool is not None:
                _, problem = waiting.tool.validate_args(decision.args)
                if problem is not None:
                    raise RejectedDecision(problem)
        return waiting, decision

    def decide(self, raw: Any) -> str:
        waiting, decision = self.check_decision(raw)
        waiting.decision = decision
        return f"{decision.action} recorded for {decision.id}"

    # ------------------------------------------------------------------------ questions
    async def ask(
        self, question: str, *, options: list[str] | None, timeout: timedelta | None, default: str | None, key: str
    ) -> str:
        if key in self.answers:
            return self.answers[key]
        if timeout is not None and default is None:
            from lmthing.prompt.stateful_prompt import PromptError

            raise PromptError(f"ask_human({question!r}): a timeout needs a default answer (default=...)")
        request = PendingRequest(
            id=self._new_id("q"), kind="question", step=self._step(), message=question,
            options=list(options or []), deadline=_deadline(timeout), default=default,
        )
        waiting = _Waiting(request)
        self._open(waiting)
        arrived = await self._wait_for(request.id, lambda: waiting.answer is not None, timeout)
        if arrived and waiting.answer is not None:
            answer, by, timed_out = waiting.answer.answer, waiting.answer.by or "unknown", False
        else:
            answer, by, timed_out = default or "", "timeout", True
        self.answers[key] = answer
        self.decisions.append(
            DecisionRecord(
                id=request.id, kind="question", step=request.step, message=question, action="answer",
                answer=answer, by=by, at=_now(), timed_out=timed_out,
            )
        )
        return answer

    def check_answer(self, raw: Any) -> tuple[_Waiting, Answer]:
        try:
            answer = Answer.model_validate(raw)
        except ValidationError as err:
            raise RejectedDecision(f"Invalid answer: {format_validation_error(err)}") from None
        waiting = self._find(answer.id, "question")
        if waiting.request.options and answer.answer not in waiting.request.options:
            raise RejectedDecision(
                f"Question '{answer.id}' takes one of: {', '.join(waiting.request.options)}; got {answer.answer!r}"
            )
        return waiting, answer

    def answer(self, raw: Any) -> str:
        waiting, answer = self.check_answer(raw)
        waiting.answer = answer
        return f"answer recorded for {answer.id}"

    # ---------------------------------------------------------------------------- shared
    async def _wait_for(self, request_id: str, condition: Callable[[], bool], timeout: timedelta | None) -> bool:
        try:
            arrived = await _wait(condition, timeout)
        except asyncio.CancelledError:
            self._close(request_id)  # the run is being cancelled: it waits on nobody now
            raise
        except BaseException:
            # Evicted from the worker's cache (GeneratorExit): no commands may be issued.
            self._pending.pop(request_id, None)
            raise
        self._close(request_id)
        return arrived

    def _find(self, request_id: str, kind: str) -> _Waiting:
        waiting = self._pending.get(request_id)
        if waiting is not None and waiting.request.kind == kind and waiting.decision is None and waiting.answer is None:
            return waiting
        done = next((d for d in self.decisions if d.id == request_id), None)
        if done is not None or (waiting is not None and (waiting.decision or waiting.answer)):
            who = f" ({done.action} by {done.by})" if done else ""
            raise RejectedDecision(f"'{request_id}' was already decided{who}; a decision cannot be changed")
        if waiting is not None and waiting.request.kind != kind:  # an approval answered, or a question decided
            other = waiting.request.kind
            how = "lmthing approve / handle.decide()" if other == "approval" else "lmthing answer / handle.answer()"
            raise RejectedDecision(f"'{request_id}' is a pending {other}, not a {kind}: decide it with {how}")
        pending = ", ".join(w.request.id for w in self._pending.values() if w.request.kind == kind) or "none"
        raise RejectedDecision(f"No pending {kind} '{request_id}' (pending {kind}s: {pending})")


async def _wait(condition: Callable[[], bool], timeout: timedelta | None) -> bool:
    """Wait for ``condition`` on a durable timer; False when ``timeout`` passed first."""
    try:
        await workflow.wait_condition(condition, timeout=timeout)
        return True
    except asyncio.TimeoutError:
        return False


def _now() -> str:
    return workflow.now().isoformat()


def _deadline(timeout: timedelta | None) -> str | None:
    return (workflow.now() + timeout).isoformat() if timeout is not None else None


def modified_args(tool: ToolDef, record: DecisionRecord, original: Any) -> Any:
    """The arguments a tool runs with after a decision (validated replacement for modify)."""
    if record.action != "modify" or record.args is None:
        return original
    args, _ = tool.validate_args(record.args)
    return args


def dump_args(args: Any) -> dict[str, Any] | None:
    if isinstance(args, BaseModel):
        return args.model_dump(mode="json")
    return dict(args) if isinstance(args, dict) else None
