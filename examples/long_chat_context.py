"""A long tool loop whose model calls stay inside a context window, offline on a scripted model.

    lmthing run examples/long_chat_context.py

The agent reads 30 sensors, one tool call per step, then reports: 31 model calls over a
conversation of 61 messages. ``def_context("summarize", max_tokens=700, ...)`` keeps every
call under 500 tokens (700 less 200 reserved for the reply, by lmthing's ~4 characters per
token estimate, docs/context.md):

* when a request would go over, the older readings are replaced by a summary, written by a
  model call of its own (in the history: a ``lmthing.model_call`` activity summarized
  ``summarize context``; the scripted model writes an extractive one), and recorded on the
  step (``handle.steps()[n].context["summary"]``);
* the task (``keep_first=1``), the system parts and the last 4 messages are always sent;
* the run's conversation holds the summary, not the readings it replaced, so a
  continue-as-new would carry the shorter conversation.

The last answer is made from what the model received: how many messages, and the summary.
``--model openai:gpt-4o-mini`` (with ``OPENAI_API_KEY``) runs it on a real model instead;
the summaries are then that model's.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from lmthing import prompt
from lmthing.memory.context import SUMMARY_HEADER
from lmthing.testing import scripted_model, text, tool_call

SENSORS = 30


class Sensor(BaseModel):
    sensor: str


def read_sensor(args: Sensor) -> dict:
    """The plant's sensors (deterministic: the example runs in the workflow)."""
    number = int(args.sensor.removeprefix("S-"))
    return {"sensor": args.sensor, "celsius": 18 + number % 7, "status": "ok" if number % 9 else "check the fan"}


def _model(request):
    """One sensor per step, then the report, from what this call received."""
    if request.step < SENSORS:
        return tool_call("read_sensor", {"sensor": f"S-{request.step + 1}"})
    summary = next((m.content for m in request.messages if (m.content or "").startswith(SUMMARY_HEADER)), "")
    latest = max((int(n) for n in re.findall(r"S-(\d+)", summary)), default=0)
    return text(f"All {SENSORS} sensors are read; S-9, S-18 and S-27 need their fans checked. This call received "
                f"{len(request.messages)} messages: the readings up to S-{latest} came as a summary.")


@prompt(model=scripted_model("long-chat-context", [_model], repeat=True), max_steps=40)
def long_chat_context(p) -> None:
    """Read every sensor of the plant, then report."""
    p.def_context("summarize", max_tokens=700, reserved_tokens=200, keep_first=1, keep_last=4, summary_tokens=100)
    p.def_system("role", "You read every sensor of the plant, one per step, then report what needs attention.")
    p.def_tool("read_sensor", "Read one sensor.", Sensor, read_sensor)
    p.user(f"Read the {SENSORS} sensors S-1 to S-{SENSORS} and report.")
