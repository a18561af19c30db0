"""The lmthing side of ``bench/overhead.py``: one prompt, one ``@tool`` activity tool, and
scripted models whose first N-1 steps each call the tool once and whose last step answers.

Kept in its own importable module (``bench.overhead_app``) because the workflow sandbox
re-imports the module that defines a prompt.
"""

from __future__ import annotations

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

SYSTEM = "You are a benchmark agent. Call the lookup tool until you have enough, then answer."
USER = "Look up the numbers 0 to 18 one by one, then summarise."
ANSWER = "Done: looked up every number."


@tool
async def lookup(n: int) -> dict:
    """Look up a number and return a few facts about it."""
    return {"n": n, "square": n * n, "parity": "even" if n % 2 == 0 else "odd", "label": f"item-{n}"}


def script_for(steps: int) -> str:
    """Register (once per process) the scripted model for a run of ``steps`` model steps."""
    # One explicit step per list item: consecutive tool_call items would otherwise be grouped
    # into a single step with several parallel calls.
    items = [[tool_call("lookup", {"n": i})] for i in range(steps - 1)] + [text(ANSWER)]
    return scripted_model(f"bench-overhead-{steps}", items)


@prompt(max_steps=100)
def overhead_agent(p):
    p.def_system("role", SYSTEM)
    p.def_tool(lookup)
    p.user(USER)


def fake_openai_reply(request):
    """The fake OpenAI server's rule (tests/fakes): a ``lookup`` call while the conversation
    has fewer than ``steps - 1`` tool results, then the answer; ``steps`` is read from the
    system prompt's ``[steps=N]``, which both sides send."""
    from tests.fakes import Call, Reply

    messages = request.body["messages"]
    steps = int(messages[0]["content"].rsplit("[steps=", 1)[1].split("]", 1)[0])
    done = sum(1 for m in messages if m["role"] == "tool")
    if done < steps - 1:
        return Reply(tool_calls=[Call("lookup", {"n": done}, id=f"call_{done}_0")])
    return Reply(text=ANSWER)


@prompt(model="openai:fake-model", max_steps=100)
def overhead_agent_openai(p, steps: int):
    """The same agent through lmthing's OpenAI provider (official SDK, streaming)."""
    p.def_system("role", f"{SYSTEM} [steps={steps}]")
    p.def_tool(lookup)
    p.user(USER)
