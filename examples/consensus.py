"""Multi-model consensus (``001`` defParallel with ``aggregation="consensus"``), durable.

Run it (offline: three scripted "models" stand in for three providers)::

    lmthing run examples/consensus.py
    lmthing run examples/consensus.py --input '{"question": "Is 1024 a power of two?"}'

Three agents, each on its own model, answer the same question at once (each a **child
workflow**); the group succeeds when at least two answer (``min_success=2``) and all that
answered agree. A group ``timeout`` of 60 s is one durable timer: agents still running
then are cancelled. The prompt then reports the agreed answer.

With real models, give each agent ``model="openai:gpt-4o"``, ``"anthropic:claude-..."``...
(docs/providers.md); ``key=`` normalises answers before they are compared.
"""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import call_agent, prompt
from lmthing.testing import scripted_model, text


class Question(BaseModel):
    question: str = "Is 1024 a power of two? Answer yes or no."


GPT = scripted_model("consensus-gpt", [text("Yes")])
CLAUDE = scripted_model("consensus-claude", [text("yes.")])
GEMINI = scripted_model("consensus-gemini", [text(" YES ")])
REPORTER = scripted_model("consensus-reporter", [text("All three models agree: yes, 1024 = 2^10.")])


def _answer(args: Question, child):
    child.def_system("role", "Answer in one word.")
    child.user(args.question)


def _normalise(answer: str) -> str:
    return answer.strip().strip(".!").lower()


@prompt(model=REPORTER)
async def consensus(p, args: Question):
    """Ask three models the same question and report what they agree on."""
    for name, model in (("gpt", GPT), ("claude", CLAUDE), ("gemini", GEMINI)):
        p.def_agent(name, f"The {name} model", Question, _answer, model=model)
    p.def_parallel(
        "multi_model_consensus",
        {name: call_agent(name) for name in ("gpt", "claude", "gemini")},
        aggregation="consensus", min_success=2, timeout=60, key=_normalise,
    )
    agreed = await p.run_parallel("multi_model_consensus", args.model_dump())
    p.def_data("ANSWERS", {"agreed": agreed.value, "by": list(agreed.results), "failed": agreed.errors})
    p.user(f"Report the agreed answer to: {args.question}")
