"""A prompt that touches every span kind: model calls, an activity tool, an in-workflow
tool, a failing tool and a sub-agent (child workflow)."""

from datetime import timedelta

from pydantic import BaseModel

from lmthing import RetryOptions, prompt, tool
from lmthing.testing import scripted_model, text, tool_call


class Topic(BaseModel):
    topic: str


class Words(BaseModel):
    words: str


@tool
async def measure(text: str) -> dict:
    """Count the characters of a text (an activity tool, with a span of its own)."""
    from opentelemetry import trace

    with trace.get_tracer("tracing_app").start_as_current_span("count characters"):
        return {"length": len(text)}


@tool(retry=RetryOptions(initial_interval=timedelta(milliseconds=50), maximum_attempts=1))
async def broken() -> dict:
    """Fails every time."""
    raise RuntimeError("the archive is offline")


def research(args: Topic, child):
    child.user(f"Research {args.topic}")


TRACED = scripted_model(
    "tracing-run",
    [
        [
            tool_call("measure", {"text": "tides"}),
            tool_call("shout", {"words": "hello"}),
            tool_call("researcher", {"topic": "tides"}),
            tool_call("broken", {}),
        ],
        text("All done."),
    ],
    agents={"researcher": [text("The moon pulls the sea.")]},
)


@prompt(model=TRACED, options={"temperature": 0.3, "max_output_tokens": 200})
def traced(p):
    p.def_tool("shout", "Upper-case some words (runs in the workflow).", Words, lambda a: {"loud": a.words.upper()})
    p.def_tool(measure)
    p.def_tool(broken)
    p.def_agent("researcher", "Research a topic", Topic, research)
    p.user("Measure, shout and research tides.")
