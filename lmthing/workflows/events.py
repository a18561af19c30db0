"""The run's event stream, on Temporal's Workflow Streams.

Events published here (step start/finish, tool calls and results, agents, finish, error)
live in workflow memory only: they add nothing to history. Text deltas come from the model
activity as batched signals. Callers read everything through offset-addressed long polls
(``PromptHandle.full_stream``), so a late or reconnecting caller resumes from its cursor.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStream, WorkflowStreamState

from lmthing.prompt.types import StreamEvent, ToolCall, ToolResult, Usage

EVENTS_TOPIC = "events"
# Events kept across continue-as-new; older ones are truncated so the carried state stays
# small (a caller resuming from before the cut restarts at the oldest kept event).
CARRIED_EVENTS = 100  # ~20 steps: a caller further behind than that at a continue-as-new is rare
# How long a finished run waits for a caller that follows its stream to read the end.
HAND_OVER_TIMEOUT = timedelta(seconds=1)
# The patch that introduced the hand-over: runs recorded before it replay without it.
HAND_OVER_PATCH = "lmthing-stream-hand-over"


class RunStream(WorkflowStream):
    """A Workflow Stream that knows how far its pollers have read, so a finished run can
    hand its last events to a caller that follows it before it closes.

    Without that, the run usually closes while the caller sleeps between two polls; the
    caller's next poll is refused and it falls back to a query on the closed run, which the
    worker answers by replaying the whole history (100-200 ms and that much worker CPU,
    growing with the run's length; measured in bench/README.md)."""

    def __init__(self, prior_state: WorkflowStreamState | None = None) -> None:
        super().__init__(prior_state=prior_state)  # (Workflow Streams checks it is called from __init__)
        self._polled = False
        self._delivered = 0  # the highest offset a poll has returned up to

    async def _on_poll(self, payload: PollInput) -> PollResult:  # the update's types come from these hints
        self._polled = True
        result = await super()._on_poll(payload)
        self._delivered = max(self._delivered, result.next_offset)
        return result

    def base_offset(self) -> int:
        """The offset of the oldest event still kept."""
        return self._base_offset

    def end_offset(self) -> int:
        """The offset the next published event gets."""
        return self._base_offset + len(self._log)

    async def hand_over(self) -> None:
        """When a caller has been following this run: wait (at most HAND_OVER_TIMEOUT) until a
        poll has returned everything published, then let the polls still open return, so that
        no caller needs a query on the closed run. Runs nobody followed close at once."""
        if not self._polled or not workflow.patched(HAND_OVER_PATCH):
            return
        end = self.end_offset()
        if self._delivered < end:
            try:
                await workflow.wait_condition(lambda: self._delivered >= end, timeout=HAND_OVER_TIMEOUT)
            except TimeoutError:
                pass  # the caller went away: close anyway; a late one still reads the end by query
        self.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)


class RunEvents:
    """Publishes a run's events to its stream."""

    def __init__(self, stream: RunStream) -> None:
        self._stream = stream
        self._topic = stream.topic(EVENTS_TOPIC, type=StreamEvent)

    def publish(self, event: StreamEvent) -> None:
        self._topic.publish(event)

    def step_start(self, step: int) -> None:
        self.publish(StreamEvent(type="step_start", step=step))

    def step_finish(self, step: int, text: str, usage: Usage) -> None:
        self.publish(StreamEvent(type="step_finish", step=step, text=text, usage=usage))

    def tool_calls(self, step: int, calls: list[ToolCall]) -> None:
        for call in calls:
            self.publish(StreamEvent(type="tool_call", step=step, tool_call=call))

    def tool_results(self, step: int, results: list[ToolResult]) -> None:
        for result in results:
            self.publish(StreamEvent(type="tool_result", step=step, tool_result=result))

    def agent(self, kind: str, step: int, name: str, workflow_id: str, error: str | None = None) -> None:
        self.publish(StreamEvent(type=kind, step=step, agent=name, workflow_id=workflow_id, error=error))  # type: ignore[arg-type]

    def message(self, step: int, message_id: str, text: str) -> None:
        self.publish(StreamEvent(type="message", step=step, message_id=message_id, text=text))

    def reply(self, step: int, message_id: str, text: str, usage: Usage) -> None:
        self.publish(StreamEvent(type="reply", step=step, message_id=message_id, text=text, usage=usage))

    def budget(self, step: int, text: str) -> None:
        self.publish(StreamEvent(type="budget", step=step, text=text))

    def moderation(self, step: int, text: str) -> None:
        self.publish(StreamEvent(type="moderation", step=step, text=text))

    def finish(self, step: int, text: str, usage: Usage) -> None:
        self.publish(StreamEvent(type="finish", step=step, text=text, usage=usage))

    def error(self, step: int, message: str) -> None:
        self.publish(StreamEvent(type="error", step=step, error=message))

    def trim_for_carry(self) -> None:
        """Keep only the newest events before continue-as-new, so the carried state stays small."""
        self._stream.truncate(max(self._stream.base_offset(), self._stream.end_offset() - CARRIED_EVENTS))
