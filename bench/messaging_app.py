"""What bench/messaging.py runs: a long-lived lmthing agent that answers each topic message
with one scripted model call, and a hand-written Temporal subscriber that runs one activity
per signalled message. Both note when a message's processing reached its activity."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from lmthing import prompt
from lmthing.testing import scripted_model, text

with workflow.unsafe.imports_passed_through():
    from bench.messaging_clock import note as _note


def _answer(request):
    body = next(m.content for m in reversed(request.messages) if m.role == "user")
    message_id = [line for line in body.splitlines() if not line.startswith("<")][0].strip()
    _note(message_id)
    return text(f"got {message_id}")


@prompt(model=scripted_model("bench-messaging", [_answer], repeat=True), max_steps=2)
def bench_subscriber(p):
    """Answers every message it gets."""


@activity.defn(name="bench.process")
async def bench_process(message_id: str) -> str:
    _note(message_id)
    return f"got {message_id}"


@workflow.defn(name="bench_signal_subscriber")
class BenchSignalSubscriber:
    """The hand-written baseline: a workflow that queues signalled messages and runs one
    activity per message, in order."""

    def __init__(self) -> None:
        self._queue: list[str] = []
        self._stop = False

    @workflow.signal
    def message(self, message_id: str) -> None:
        self._queue.append(message_id)

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.run
    async def run(self) -> int:
        done = 0
        while True:
            await workflow.wait_condition(lambda: bool(self._queue) or self._stop)
            if not self._queue:
                return done
            message_id = self._queue.pop(0)
            await workflow.execute_activity("bench.process", message_id, start_to_close_timeout=timedelta(seconds=30))
            done += 1
