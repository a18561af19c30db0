"""People in the loop: approval policies, questions, decisions, and the host interface the
engine implements (the prompt layer only declares and asks; waiting is the engine's job)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["approve", "deny", "modify"]


def as_timedelta(timeout: timedelta | float | None) -> timedelta | None:
    if timeout is None or isinstance(timeout, timedelta):
        return timeout
    return timedelta(seconds=float(timeout))


@dataclass(frozen=True)
class ApprovalPolicy:
    """``def_approval(name, ...)``: who must agree before a tool runs, and what happens when
    nobody answers in time."""

    name: str
    message: str | None = None
    options: tuple[Action, ...] = ("approve", "deny", "modify")
    timeout: timedelta | None = None
    default: Action = "deny"

    def __post_init__(self) -> None:
        unknown = set(self.options) - {"approve", "deny", "modify"}
        if unknown or not self.options:
            raise ValueError(f"def_approval({self.name!r}): options must be among approve, deny, modify; got {self.options}")
        if self.default not in ("approve", "deny"):
            raise ValueError(f"def_approval({self.name!r}): default must be 'approve' or 'deny', got {self.default!r}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Decision(_Model):
    """What a person sends to decide a pending approval (signal or update ``decide``)."""

    id: str
    action: Action
    args: dict[str, Any] | None = None  # replacement arguments, for "modify"
    reason: str | None = None
    by: str | None = None


class Answer(_Model):
    """What a person sends to answer a pending question (signal or update ``answer``)."""

    id: str
    answer: str
    by: str | None = None


class AskArgs(_Model):
    """Arguments of a ``def_interaction`` tool."""

    question: str = Field(description="The question for the person")
    options: list[str] | None = Field(default=None, description="Answers to choose from, if any")


class PendingRequest(_Model):
    """An approval or a question waiting for a person (query ``pending``)."""

    id: str
    kind: Literal["approval", "question"]
    step: int
    message: str
    tool: str | None = None
    args: dict[str, Any] | None = None
    options: list[str] = Field(default_factory=list)
    deadline: str | None = None  # ISO time, from workflow time
    default: str | None = None


class DecisionRecord(_Model):
    """The audit of one decision or answer: who, when, why, and what it was about."""

    id: str
    kind: Literal["approval", "question"]
    step: int
    tool: str | None = None
    message: str
    action: str  # approve / deny / modify, or "answer"
    args: dict[str, Any] | None = None  # the arguments the tool ran with (after modify)
    answer: str | None = None
    reason: str | None = None
    by: str
    at: str
    timed_out: bool = False


class HumanHost(Protocol):
    """What the engine offers workflow-side code for asking people."""

    async def request_approval(
        self, policy: ApprovalPolicy, *, tool: str | None, args: dict[str, Any] | None, message: str | None = None
    ) -> DecisionRecord: ...

    async def ask(
        self, question: str, *, options: list[str] | None, timeout: timedelta | None, default: str | None, key: str
    ) -> str: ...
