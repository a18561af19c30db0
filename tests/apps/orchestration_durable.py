"""An orchestration whose worker tests/test_orchestration_durability.py SIGKILLs mid-way:
agent steps, a parallel group and a slow @tool step, as a standalone workflow type and
from a prompt function. Loaded by the session worker and by tests/worker_process.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from lmthing import call_agent, def_workflow, parallel, prompt, step, tool
from lmthing.testing import scripted_model, text

SLOW_SECONDS = 1.5


class Task(BaseModel):
    task: str


def echo(request):
    """Answers with what it was asked, so every child's answer is its own."""
    return text(f"done: {request.messages[-1].content}")


@prompt(model=scripted_model("orch-durable-writer", [echo]))
def durable_writer(p, args: Task):
    p.user(args.task)


@tool(timeout=timedelta(seconds=3))
async def slow_orchestration_step(label: str) -> dict:
    """Slow work, so that a test can kill the worker while it runs."""
    await asyncio.sleep(SLOW_SECONDS)
    return {"label": label.upper()}


def steps_of(agent: str) -> list:
    return [
        step("first", agent=agent, args={"task": "first"}),
        step("fan", parallel({f"b{i}": call_agent(agent, {"task": f"branch {i}"}) for i in range(3)})),
        step("slow", tool=slow_orchestration_step, args=lambda ctx: {"label": ctx.results.first}),
        step("last", agent=agent, args=lambda ctx: {"task": f"after {ctx.results.slow['label']}"}),
    ]


durable_flow = def_workflow("durable_flow", steps_of("durable_writer"))


@prompt(model=scripted_model("orch-durable-parent", [text("All steps ran.")], agents={"writer": [echo]}))
async def durable_flow_prompt(p):
    p.def_agent("writer", "Writes", Task, lambda args, child: child.user(args.task))
    p.def_workflow("flow", steps_of("writer"))
    result = await p.run_workflow("flow")
    p.def_data("FLOW", result.model_dump(mode="json", exclude={"trace", "runs"}))
    p.user("Report.")
