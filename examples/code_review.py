"""The code-review workflow of the spec (``001`` defWorkflow), durable on Temporal.

Run it (offline, on scripted models)::

    lmthing run examples/code_review.py
    lmthing run examples/code_review.py --input '{"files": ["api.py"]}'

The prompt ``code_review`` declares three agents and a workflow, runs the workflow from its
prompt function, and then answers with what the workflow found:

* ``analyze``: the ``code_analyzer`` agent (a **child workflow**) scores the files and
  answers with a ``Review`` (a response schema); on failure the run goes to ``report_error``;
* ``check_quality``: runs only when the score is below 7 (``condition``); the
  ``suggest_improvements`` agent proposes patches; on failure, ``request_human_review``;
* ``apply_fixes``: the ``apply_patches`` ``@tool`` (an **activity**), with ``retries=3`` and a
  ``timeout`` of 30 s (a durable timer) per attempt; then the workflow ends;
* ``report_error`` / ``request_human_review``: error routes (``on_error``), which see ``ctx.error``.

The whole workflow has ``max_duration=300`` s. Every step's outcome is in the result and on
the step record (``handle.steps()[0].orchestration``).

The same steps make a standalone workflow type in ``examples/code_review_flow.py``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lmthing import END, prompt, step, tool
from lmthing.testing import scripted_model, text


class Files(BaseModel):
    files: list[str] = Field(default_factory=lambda: ["app.py", "db.py"], description="Files to review")


class Review(BaseModel):
    score: int = Field(description="Code quality from 1 to 10")
    changes_needed: bool
    issues: list[str]


class Patches(BaseModel):
    patches: list[str]


class Request(BaseModel):
    task: str


@tool
async def apply_patches(patches: list[str]) -> dict:
    """Apply patches to the working tree (here: count them; real code writes files)."""
    return {"applied": len(patches)}


def _ask(args: Request, child):
    child.user(args.task)


MODEL = scripted_model(
    "code-review",
    [text("The review scored the code 5/10; two patches were suggested and applied.")],
    agents={
        "code_analyzer": [text('{"score": 5, "changes_needed": true, "issues": ["no input validation", "N+1 query"]}')],
        "suggest_improvements": [text('{"patches": ["validate request bodies", "batch the user query"]}')],
        "human_review": [text("A person will look at it.")],
    },
)


def review_steps(analyzer: str, improver: str) -> list:
    """The workflow's steps; ``analyzer`` and ``improver`` name the agents to run."""
    return [
        step("analyze", agent=analyzer, args=lambda ctx: {"task": f"Review {', '.join(ctx.input['files'])}"},
             on_success="check_quality", on_error="report_error"),
        step("check_quality", condition=lambda ctx: _score(ctx.results.analyze) < 7,
             agent=improver, args=lambda ctx: {"task": f"Fix: {ctx.results.analyze}"},
             on_success="apply_fixes", on_error="request_human_review"),
        step("apply_fixes", tool=apply_patches, args=lambda ctx: _patches(ctx.results.check_quality),
             retries=3, timeout=30, on_success=END),
        step("report_error", action=lambda ctx: {"error": ctx.error}, on_success=END),
        step("request_human_review", action=lambda ctx: {"needs_human": ctx.error}, on_success=END),
    ]


def _score(review: object) -> int:
    if isinstance(review, dict):
        return int(review["score"])
    import json

    return int(json.loads(str(review))["score"])


def _patches(suggestion: object) -> dict:
    import json

    data = suggestion if isinstance(suggestion, dict) else json.loads(str(suggestion))
    return {"patches": data["patches"]}


@prompt(model=MODEL)
async def code_review(p, args: Files):
    """Review files with an analyzer agent, fix what it finds, and report."""
    p.def_system("role", "You report the outcome of an automated code review.")
    p.def_agent("code_analyzer", "Scores code quality and lists issues", Request, _ask, response_schema=Review)
    p.def_agent("suggest_improvements", "Proposes patches for the issues", Request, _ask, response_schema=Patches)
    p.def_workflow("review", review_steps("code_analyzer", "suggest_improvements"), max_duration=300)
    result = await p.run_workflow("review", args.model_dump())
    p.def_data("REVIEW", {"steps": [f"{r.step}: {r.status}" for r in result.runs], "results": result.results})
    p.user(f"Summarize the review of {', '.join(args.files)}.")
