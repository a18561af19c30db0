"""A small research agent: it looks topics up, asks a sub-agent to condense the notes,
records findings in durable state, and answers.

Run it (no API key, no network: it runs offline on a scripted model)::

    lmthing run examples/research_agent.py
    lmthing run examples/research_agent.py --input '{"question": "What does Temporal add to an agent?"}'

Set ``LMTHING_MODEL=provider:model`` (or pass ``--model``) to run it on a real model
instead of the script, e.g. ``openai:gpt-4o-mini`` with ``OPENAI_API_KEY`` set
(docs/providers.md).

What it shows, one lmthing API each:

* ``def_system`` / ``def_var`` / ``def_data``: system parts and variables, re-declared on
  every step by the prompt function;
* ``@tool`` (``lookup``): a module-level tool that runs as a Temporal **activity**, retried
  per its policy;
* ``def_state`` + an in-workflow tool (``save_finding``, a closure over the state setter):
  durable workflow state, readable with the ``state`` query;
* ``def_agent`` (``summarizer``): a sub-agent that runs as a **child workflow**;
* ``def_effect``: runs before each model call and adds a progress note for that call only;
* ``p.user(...)``: the first user message.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

# A tiny offline knowledge base for the activity tool.
NOTES: dict[str, str] = {
    "temporal": (
        "Temporal runs code as durable workflows: every step is recorded in an event history, "
        "so a crashed worker resumes where it stopped instead of starting over."
    ),
    "durable execution": (
        "Durable execution persists progress after each side effect; activities are retried "
        "with backoff and workflows are replayed deterministically from history."
    ),
    "agents": (
        "An LLM agent is a loop: call the model, run the tools it asks for, feed the results "
        "back, until it answers. Each model call and tool call is a side effect."
    ),
}


@tool
def lookup(topic: str) -> dict[str, str]:
    """Look up the research notes about a topic (an offline knowledge base)."""
    key = topic.strip().lower()
    if key not in NOTES:
        return {"topic": topic, "error": f"No notes on {topic!r}. Known topics: {', '.join(NOTES)}"}
    return {"topic": key, "notes": NOTES[key]}


class ResearchInput(BaseModel):
    question: str = "Why run an LLM agent as a durable Temporal workflow?"
    topics: list[str] = Field(default_factory=lambda: ["temporal", "durable execution"])


class Finding(BaseModel):
    finding: str = Field(description="One self-contained finding, in a sentence.")


class SummarizeArgs(BaseModel):
    notes: str = Field(description="The notes to condense.")


# The scripted model plays these items back, one model step at a time: a text item plus
# the tool calls right after it form one step. The sub-agent gets its own script.
SCRIPT = [
    text("I'll start with the notes on Temporal."),
    tool_call("lookup", {"topic": "temporal"}),
    text("Let me ask the summarizer to condense them with the notes on durable execution."),
    tool_call(
        "summarizer",
        {"notes": NOTES["temporal"] + " " + NOTES["durable execution"]},
    ),
    text("Recording that finding."),
    tool_call(
        "save_finding",
        {"finding": "A durable workflow resumes an agent after a crash instead of restarting it."},
    ),
    text(
        "Running an agent as a durable Temporal workflow means every model call and tool call is "
        "recorded: if a worker crashes mid-run, the agent resumes at the step where it stopped, "
        "failed calls are retried with backoff, and the whole run can be inspected and replayed."
    ),
]
SUMMARIZER_SCRIPT = [
    text("Temporal records each step of a workflow, retries failed activities and resumes after crashes."),
]

DEMO_MODEL = scripted_model("research-demo", SCRIPT, agents={"summarizer": SUMMARIZER_SCRIPT})


def summarize(args: SummarizeArgs, child) -> None:
    """The sub-agent's prompt function: it runs in its own child workflow."""
    child.def_system("role", "You condense research notes into one plain sentence.")
    child.def_var("NOTES", args.notes)
    child.user("Summarize <NOTES> in one sentence.")


@prompt(model=DEMO_MODEL, max_steps=8)
def research(p, args: ResearchInput) -> None:
    """Answer a question from notes, recording findings along the way."""
    p.def_system("role", "You are a careful research assistant.")
    p.def_system(
        "method",
        "Look topics up with lookup, ask summarizer to condense long notes, record each "
        "finding with save_finding, then answer in a short paragraph.",
    )
    question = p.def_var("QUESTION", args.question)
    p.def_data("TOPICS", args.topics)

    findings, set_findings = p.def_state("findings", [])

    def save_finding(a: Finding) -> dict[str, int]:
        # An in-workflow tool: deterministic code that updates durable state.
        set_findings(lambda old: [*old, a.finding])
        return {"saved": len(findings) + 1}

    p.def_tool(lookup)
    p.def_tool("save_finding", "Record one finding for the final answer.", Finding, save_finding)
    p.def_agent("summarizer", "Condense research notes into one sentence.", SummarizeArgs, summarize)

    def progress(ctx, step_modifier) -> None:
        note = f"This is step {ctx.step_number + 1}. Findings recorded so far: {len(findings)}."
        step_modifier("systems", [{"name": "progress", "value": note}])

    p.def_effect(progress)  # no deps: runs before every model call
    p.user(f"Answer {question} using the topics in <TOPICS>.")


if __name__ == "__main__":  # `python examples/research_agent.py` = `lmthing run examples/research_agent.py`
    import sys

    from lmthing.cli import main

    sys.exit(main(["run", __file__, *sys.argv[1:]]))
