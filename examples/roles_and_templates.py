"""A code reviewer that takes a role and fills a template, offline on a scripted model.

    lmthing run examples/roles_and_templates.py --input '{"code": "def add(a, b): return a - b"}'

What it shows (docs/templates-and-roles.md):

* ``def_template("review", ...)``: typed variables with defaults and an enum, rendered into
  the user message (``use_template``);
* ``def_role("reviewer", ...)`` and ``assume_role``: a system part with the role's tone and
  capabilities, only ``read_guidelines`` offered to the model (``publish`` is defined but not
  offered, so the model's attempt to call it does not run), and a token budget;
* ``def_plugin``: a small plugin installed for the run, listed with its version.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call


class Code(BaseModel):
    code: str
    level: str = "strict"


def _reviewer(request: Any) -> Any:
    offered = [t.name for t in request.tools]
    if request.step == 0:
        return [tool_call("read_guidelines", {}), tool_call("publish", {"verdict": "ship it"})]
    results = [m.content for m in request.messages if m.role == "tool"]
    return text(f"Offered tools: {offered}. The guidelines say: {results[0]}. "
                f"Publishing was refused: {results[1]}. Verdict: `a - b` should be `a + b`.")


def _signed(p, who: str) -> None:
    p.def_system("signature", f"Sign every review as {who}.")


@prompt(model=scripted_model("reviewer", [_reviewer], repeat=True), max_steps=3)
def code_review(p, args: Code):
    p.def_tool("read_guidelines", "Read the team's review guidelines", None, lambda a: "names say what things do")
    p.def_tool("publish", "Publish a review verdict", {"type": "object", "properties": {"verdict": {"type": "string"}}},
               lambda a: {"published": a["verdict"]})
    p.def_role("reviewer", system="You review Python code.", allowed_tools=["read_guidelines"],
               max_tokens=50_000, personality={"tone": "kind but exact"}, capabilities=["code-review"])
    p.assume_role("reviewer")
    p.def_plugin("signature", {"def_signature": _signed}, version="1.0.0")
    p.def_signature("the review bot")
    p.def_template("review", "Review this {{language}} code at the {{level}} level:\n{{code}}", {
        "language": {"type": "string", "default": "python"},
        "level": {"type": "enum", "values": ["basic", "strict"], "default": "basic"},
        "code": "string",
    })
    p.use_template("review", {"code": args.code, "level": args.level})
