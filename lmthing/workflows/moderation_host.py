"""A run's moderation (``def_moderation``), workflow side: which texts are checked when,
and what a finding does (docs/resilience.md).

Inputs are the conversation's user messages, each checked once, before the model call that
would first send it (the digests of checked texts are carried across continue-as-new; the
engine's own messages, such as a validator's request to answer again, are not checked).
Outputs are the model's text at every step, checked before its tool calls run and before
the caller sees it. A check function runs here (it must be deterministic); a moderation
model is asked in the ``lmthing.moderate`` activity, once per moderation and step for all
new texts, so the history shows each request and its answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from lmthing.activities.names import MODERATE
from lmthing.prompt.types import Message
from lmthing.resilience.book import ResilienceBook
from lmthing.resilience.checks import CheckError, call_user_fn
from lmthing.resilience.moderation import (
    Finding,
    ModerationCall,
    ModerationDef,
    ModerationDefError,
    ModerationScores,
    ModerationTarget,
    from_check,
    from_scores,
)

from . import routing
from .errors import cause_message

MODERATION_TIMEOUT = timedelta(seconds=60)
# The activity heartbeats every second: a check lost with its worker is made again this soon.
MODERATION_HEARTBEAT = timedelta(seconds=10)
MODERATION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                               maximum_interval=timedelta(seconds=30), maximum_attempts=5)


_DONE = {"block": "blocked", "flag": "flagged", "filter": "filtered"}


class Blocked(Exception):
    """A ``block`` moderation flagged a text: the run ends with ``finding``'s message."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.blocked_message())
        self.finding = finding


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunModeration:
    book: ResilienceBook
    # Digests of the input texts already checked (or written by the engine itself).
    checked: set[str] = field(default_factory=set)
    # Every finding of the run, as the step records keep them (RunResult.moderation).
    findings: list[dict[str, Any]] = field(default_factory=list)
    # Puts a "moderation" event on the run's stream.
    publish: Callable[[int, str], None] | None = None

    def engine_wrote(self, text: str) -> None:
        """A user message the engine adds (a retry request, a budget's final instruction)."""
        self.checked.add(digest(text))

    def holds_output(self) -> bool:
        """Whether an output moderation may change the model's text (block or filter)."""
        return any(m.action != "flag" for m in self.book.moderations_on("output"))

    async def inputs(self, messages: list[Message], step: int, notes: list[dict[str, Any]]) -> None:
        """Check the user messages not checked yet; raises :class:`Blocked` on a block."""
        moderations = self.book.moderations_on("input")
        if not moderations:
            return  # most runs: no digests computed
        texts = list(dict.fromkeys(
            m.content for m in messages if m.role == "user" and m.content and digest(m.content) not in self.checked))
        if not texts:
            return
        for moderation in moderations:
            for finding in await self._findings(moderation, "input", texts):
                self._record(finding, step, notes)
        self.checked.update(digest(t) for t in texts)

    async def output(self, text: str, step: int, notes: list[dict[str, Any]]) -> str:
        """Check the model's text; the text to go on with (cleaned by a ``filter``)."""
        for moderation in self.book.moderations_on("output") if text else ():
            for finding in await self._findings(moderation, "output", [text]):
                self._record(finding, step, notes)
                if finding.filtered is not None:
                    text = finding.filtered
        return text

    def _record(self, finding: Finding, step: int, notes: list[dict[str, Any]]) -> None:
        note = finding.note(step)
        notes.append(note)
        self.findings.append(note)
        if self.publish is not None:
            self.publish(step, f"{finding.target} {_DONE[finding.action]} by moderation '{finding.moderation}' "
                               f"({', '.join(finding.categories) or 'flagged'})")
        if finding.action == "block":
            raise Blocked(finding)

    async def _findings(self, moderation: ModerationDef, target: ModerationTarget, texts: list[str]) -> list[Finding]:
        try:
            if moderation.check is not None:
                found = [from_check(moderation, target, text, await call_user_fn(
                    moderation.check, f"The check of moderation '{moderation.name}'", text)) for text in texts]
            else:
                scores = await self._ask_model(moderation, texts)
                found = [from_scores(moderation, target, text, s) for text, s in zip(texts, scores, strict=True)]
        except (CheckError, ModerationDefError) as err:
            raise ApplicationError(str(err), type="ModerationError", non_retryable=True) from None
        return [f for f in found if f is not None]

    async def _ask_model(self, moderation: ModerationDef, texts: list[str]) -> list[ModerationScores]:
        try:
            return await workflow.execute_activity(
                MODERATE,
                ModerationCall(model=moderation.model or "", texts=texts),
                result_type=list[ModerationScores],
                task_queue=routing.model_task_queue(),
                start_to_close_timeout=MODERATION_TIMEOUT,
                heartbeat_timeout=MODERATION_HEARTBEAT,
                retry_policy=MODERATION_RETRY,
                summary=f"moderation {moderation.name}",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            # Without its moderation the run does not go on unchecked: it fails, saying why.
            raise ApplicationError(
                f"Moderation '{moderation.name}' ({moderation.model}) could not check the text: {cause_message(err)}",
                type="ModerationFailed", non_retryable=True,
            ) from None
