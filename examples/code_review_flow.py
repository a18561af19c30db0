"""001's code-review workflow as a workflow type of its own: ``code_review_flow``.

Its steps are those of ``examples/code_review.py``; its agents are the prompts below (each
a child workflow), its tool the ``apply_patches`` activity. Start it by name from anywhere
a Temporal client is::

    lmthing dev --app examples/code_review_flow.py     # server, UI on :8233, worker
    temporal workflow start --type code_review_flow --task-queue lmthing --input '{"files": ["api.py"]}'
    temporal workflow query --workflow-id <id> --type steps       # what ran so far

From Python: ``await lmthing.client.run_orchestration(client, code_review_flow, {"files": [...]})``.
"""

from __future__ import annotations

from lmthing import def_workflow, prompt
from lmthing.testing import scripted_model, text

from examples.code_review import Files, Request, apply_patches, review_steps

ANALYZER = scripted_model("code-review-analyzer", [text('{"score": 6, "changes_needed": true, "issues": ["naming"]}')])
IMPROVER = scripted_model("code-review-improver", [text('{"patches": ["rename handlers"]}')])


@prompt(model=ANALYZER)
def code_analyzer(p, args: Request):
    """Scores code quality and lists issues (JSON)."""
    p.user(args.task)


@prompt(model=IMPROVER)
def code_improver(p, args: Request):
    """Proposes patches for code issues (JSON)."""
    p.user(args.task)


code_review_flow = def_workflow(
    "code_review_flow", review_steps("code_analyzer", "code_improver"), max_duration=300, input_model=Files,
    description="001's code-review workflow as a workflow type of its own.",
)

__all__ = ["apply_patches", "code_analyzer", "code_improver", "code_review_flow"]
