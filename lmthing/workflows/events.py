"""The run's event stream, on Temporal's Workflow Streams.

Events published here (step start/finish, tool calls and results, agents, finish, error)
live in workflow memory only: they add nothing to history. Text deltas come from the model
activity as batched signals. Callers read everything through offset-addressed long polls
(``PromptHandle.full_stream``), so a late or reconnecting caller resumes from its cursor.
"""

from __future__ import annotations

from temporalio.contrib.workflow_streams import WorkflowStream

from lmthing.prompt.types import StreamEvent, ToolCall, ToolResult, Usage

EVENTS_TOPIC = "events"
# Events kept across continue-as-new; older ones are truncated so the carried state stays
# small (a caller resuming from before the cut restarts at the oldest kept event).
CARRIED_EVENTS = 500


class RunEvents:
    """Publishes a run's events to its stream."""

    def __init__(self, stream: WorkflowStream) -> None:
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

    def finish(self, step: int, text: str, usage: Usage) -> None:
        self.publish(StreamEvent(type="finish", step=step, text=text, usage=usage))

    def error(self, step: int, message: str) -> None:
        self.publish(StreamEvent(type="error", step=step, error=message))

    def trim_for_carry(self) -> None:
        """Keep only the newest events before continue-as-new, so the carried state stays small."""
        state = self._stream.get_state()
        end = state.base_offset + len(state.log)
        self._stream.truncate(max(state.base_offset, end - CARRIED_EVENTS))
