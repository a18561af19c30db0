"""Prompts and standalone orchestrations for tests/test_orchestration*.py.

Agents are scripted: a def_agent's script is chosen by its name (``agents={...}``), a
prompt-agent has a scripted model of its own. A slow agent streams its words with a delay,
so that a test can see it being cancelled.
"""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import (
    END,
    call_agent,
    call_tool,
    def_orchestration,
    def_workflow,
    prompt,
    step,
    team,
    tool,
)
from lmthing.activities.providers.base import ModelConfigError
from lmthing.orchestration import TeamTask
from lmthing.testing import scripted_model, text, tool_call


class Task(BaseModel):
    task: str


class Review(BaseModel):
    score: int
    summary: str


def answer_task(args: Task, child):
    child.user(args.task)


def answer_team_task(args: TeamTask, child):
    child.user(args.prompt())


@tool
async def shout(text: str) -> dict:
    """Upper-case a text (an activity tool)."""
    return {"text": text.upper()}


SLOW = "slowly " * 30  # 30 words at 0.2 s: six seconds, unless cancelled


def fail_first_two(request):
    """A model that fails the first two attempts of a step (the attempt is in the child's id)."""
    attempt = request.workflow_id.rsplit("/", 2)[-2]
    if attempt in ("1", "2"):
        raise ModelConfigError(f"attempt {attempt} of the flaky agent fails on purpose")
    return text("third time lucky")


# ------------------------------------------------------------------- parallel, in a prompt
RACE = scripted_model(
    "orch-race",
    [text("The race is over.")],
    agents={"fast": [text("fast wins")], "slow": [text(SLOW.strip(), delay=0.2)], "broken": []},
)


@prompt(model=RACE)
async def orch_race(p, args: Task):
    p.def_agent("fast", "Answers at once", Task, answer_task)
    p.def_agent("slow", "Answers slowly", Task, answer_task)
    p.def_agent("broken", "Always fails", Task, answer_task)
    aggregation = {"first": "first", "all": "all", "timeout": "all"}[args.task]
    branches = {"fast": call_agent("fast"), "slow": call_agent("slow")}
    options: dict = {"aggregation": aggregation}
    if args.task == "all":
        branches = {"fast": call_agent("fast"), "broken": call_agent("broken"), "fast2": call_agent("fast")}
        options["min_success"] = 2
    if args.task == "timeout":
        options.update(timeout=1.5, min_success=1)
    p.def_parallel("race", branches, **options)
    result = await p.run_parallel("race", {"task": "Say something"})
    p.def_data("RACE", result.model_dump(mode="json"))
    p.user("Report the race.")


SCORES = {"short": 1.0, "a much longer answer": 5.0, "medium one": 3.0}

BEST = scripted_model(
    "orch-nbest",
    [text("Best picked.")],
    agents={"a": [text("short")], "b": [text("a much longer answer")], "c": [text("medium one")]},
)


@prompt(model=BEST)
async def orch_nbest(p):
    for name in ("a", "b", "c"):
        p.def_agent(name, f"Writer {name}", Task, answer_task)
    p.def_parallel("writers", {n: call_agent(n) for n in ("a", "b", "c")}, aggregation="n_best", n=2,
                   evaluator=lambda result: SCORES[result])
    result = await p.run_parallel("writers", {"task": "Write"})
    p.def_data("BEST", result.model_dump(mode="json"))
    p.user("Which was best?")


# ------------------------------------------------------------------- a workflow, in a prompt
WORKFLOW = scripted_model(
    "orch-workflow",
    [text("Workflow done.")],
    agents={"analyzer": [text('{"score": 4, "summary": "needs work"}')], "flaky": [fail_first_two],
            "never": [text("I must not run")]},
)


def _count(ctx):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    return ctx.state["n"]


def _explode(ctx):
    raise RuntimeError("the risky step broke")


@prompt(model=WORKFLOW)
async def orch_workflow(p):
    p.def_agent("analyzer", "Scores code", Task, answer_task, response_schema=Review)
    p.def_agent("flaky", "Fails twice", Task, answer_task)
    p.def_agent("never", "Must not run", Task, answer_task)
    p.def_workflow("review", [
        step("analyze", agent="analyzer", args={"task": "Score this code"}),
        step("polish", condition=lambda ctx: ctx.results.analyze["score"] >= 7, agent="never", args={"task": "x"}),
        step("loop", condition=lambda ctx: ctx.state.get("n", 0) < 3, action=_count, on_success="loop", max_iterations=5),
        step("flaky", agent="flaky", args={"task": "Try"}, retries=2),
        step("shout", tool=shout, args=lambda ctx: {"text": ctx.results.flaky}),
        step("risky", action=_explode, on_error="recover"),
        step("unreached", agent="never", args={"task": "x"}),
        step("recover", action=lambda ctx: f"recovered from: {ctx.error}", on_success=END),
        step("after_end", agent="never", args={"task": "x"}),
    ])
    result = await p.run_workflow("review", {"files": ["a.py"]})
    p.def_data("REVIEW", result.model_dump(mode="json", exclude={"trace"}))
    p.user("Summarize the review.")


SLOW_WORKFLOW = scripted_model("orch-slow-workflow", [text("never reached")], agents={"slow": [text(SLOW.strip(), delay=0.2)]})


@prompt(model=SLOW_WORKFLOW)
async def orch_max_duration(p):
    p.def_agent("slow", "Answers slowly", Task, answer_task)
    p.def_workflow("hurry", [step("quick", action=lambda ctx: "ok"), step("crawl", agent="slow", args={"task": "go"})],
                   max_duration=1.5)
    await p.run_workflow("hurry")
    p.user("unreachable")


# ------------------------------------------------------------------- as a tool for the model
TOOLFLOW = scripted_model(
    "orch-as-tool",
    [tool_call("pipeline_tool", {"task": "hello world"}), text("Piped.")],
    agents={"writer": [text("written: hello world")]},
)


@prompt(model=TOOLFLOW)
def orch_as_tool(p):
    p.def_agent("writer", "Writes", Task, answer_task)
    p.def_pipeline("pipeline_tool", [
        ("wrap", lambda value: {"task": value}),
        ("write", call_agent("writer")),
        ("shout", call_tool(shout, lambda ctx: {"text": ctx.input})),
        ("pick", lambda value: value["text"]),
    ], as_tool=True, description="Write and shout a text")
    p.user("Use the pipeline.")


# ------------------------------------------------------------------- standalone
ANALYZER_MODEL = scripted_model("orch-analyzer", [text('{"score": 5, "summary": "fine"}')])
FIXER_MODEL = scripted_model("orch-fixer", [text("fixed it")])


@prompt(model=ANALYZER_MODEL, capabilities=["code-review"])
def code_analyzer(p, args: Task):
    """Scores a piece of code from 1 to 10."""
    p.user(args.task)


@prompt(model=FIXER_MODEL, capabilities=["code-review", "editing"])
def code_fixer(p, args: Task):
    """Suggests fixes for code."""
    p.user(args.task)


class Files(BaseModel):
    files: list[str]


standalone_review = def_workflow("standalone_review", [
    step("analyze", agent="code_analyzer", args=lambda ctx: {"task": f"Review {', '.join(ctx.input['files'])}"}),
    step("fix", condition=lambda ctx: "5" in str(ctx.results.analyze), agent="code_fixer", args={"task": "Fix it"}),
    step("shout", tool=shout, args=lambda ctx: {"text": ctx.results.fix}),
], input_model=Files, description="Analyze files, fix them if needed, and shout the result.")


# ------------------------------------------------------------------- teams, in a prompt
def said_before(request) -> list[str]:
    """The other members' earlier answers a team member was shown (TeamTask.prompt())."""
    last = request.messages[-1].content or ""
    if "said before" not in last:
        return []
    block = last.split("said before", 1)[1].split("\n\n", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def arguing(name: str):
    def reply(request):
        heard = said_before(request)
        return text(f"{name} round {'2' if heard else '1'} answering [{' | '.join(heard)}]")
    return reply


def converging(first: str):
    return lambda request: text("42" if said_before(request) else first)


TEAM_MODEL = scripted_model(
    "orch-team",
    [text("Team done.")],
    agents={
        "alice": [text("yes")], "bob": [text("No.")], "carol": [text("I vote YES")], "dave": [text("maybe later")],
        "pro": [arguing("pro")], "con": [arguing("con")], "judge": [text("The winner is pro.")],
        "ann": [converging("42")], "ben": [converging("41")],
        # A hierarchical team runs its lead as the hidden agent "<team>__lead".
        "board__lead": [tool_call("alice", {"task": "Should we ship?"}), text("The chair decides: ship, as alice said yes.")],
        "splitter": [text("no")],
    },
)


@prompt(model=TEAM_MODEL)
async def orch_team(p, args: Task):
    for name in ("alice", "bob", "carol", "dave", "pro", "con", "judge", "ann", "ben", "chair", "splitter"):
        p.def_agent(name, f"Member {name}", TeamTask, answer_team_task)
    p.def_team("board", ["alice", "bob", "carol", "dave"], lead="chair")
    p.def_team("tied", ["alice", "splitter"])
    p.def_team("debaters", ["pro", "con"], judge="judge")
    p.def_team("thinkers", ["ann", "ben"])
    pattern, team, options = {
        "vote": ("vote", "board", {"options": ["yes", "no"]}),
        "tie-first": ("vote", "tied", {"options": ["yes", "no"]}),
        "tie-none": ("vote", "tied", {"options": ["yes", "no"], "tie_break": "none"}),
        "tie-agent": ("vote", "tied", {"options": ["yes", "no"], "tie_break": "splitter"}),
        "debate": ("debate", "debaters", {"rounds": 2}),
        "consensus": ("consensus", "thinkers", {"max_rounds": 3}),
        "sequential": ("sequential", "board", {}),
        "hierarchical": ("hierarchical", "board", {}),
    }[args.task]
    result = await p.run_team(team, pattern, "Should we ship?", **options)
    p.def_data("TEAM", result.model_dump(mode="json"))
    p.user("Report the team's outcome.")


# ------------------------------------------------------------------- handoff
class Refund(BaseModel):
    order: int


HANDOFF_MODEL = scripted_model(
    "orch-handoff",
    [
        # Step 0, as triage: two transfers in one reply (the first wins).
        [tool_call("transfer_to_billing", {"task": "refund order 7"}), tool_call("transfer_to_support", {"task": "x"})],
        [tool_call("refund", {"order": 7}), tool_call("ledger", {"task": "log the refund of order 7"})],  # step 1, as billing
        text("Order 7 is refunded."),  # step 2, as billing
    ],
    agents={"ledger": [text("logged")]},
)


def billing_agent(args: Task, child):
    child.def_system("role", "You are the billing agent.")
    child.def_tool("refund", "Refund an order", Refund, lambda a: {"refunded": a.order})
    # A sub-agent of the agent the run was handed to: its child workflow finds it by
    # re-running the triage prompt, then the billing agent's function.
    child.def_agent("ledger", "Records payments", Task, answer_task)
    child.user("this message is not added: the conversation goes on")


def support_agent(args: Task, child):
    child.def_system("role", "You are the support agent.")


@prompt(model=HANDOFF_MODEL)
def orch_triage(p):
    p.def_system("role", "You are the triage agent.")
    p.def_agent("billing", "Handles payments and refunds", Task, billing_agent)
    p.def_agent("support", "Handles everything else", Task, support_agent)
    p.def_handoff("billing")
    p.def_handoff("support")
    p.user("I want my money back for order 7.")


# ------------------------------------------------------------------- mistakes
BAD_MODEL = scripted_model("orch-bad", [text("never called")])


@prompt(model=BAD_MODEL)
def orch_bad_route(p):
    p.def_workflow("broken", [step("a", action=lambda ctx: 1, on_success="nowhere")])
    p.user("unreachable")


@prompt(model=BAD_MODEL)
def orch_unknown_agent(p):
    p.def_parallel("broken", {"x": call_agent("nobody")})
    p.user("unreachable")


# ------------------------------------------------------------------- plans (004's DSL)
PLAN_MODEL = scripted_model(
    "orch-plan",
    [text("Planned.")],
    agents={"router": [text("summarize")], "summarizer": [text("the summary")],
            "voter_x": [text("Paris")], "voter_y": [text(" paris ")], "voter_z": [text("Lyon")]},
)


@prompt(model=PLAN_MODEL)
async def orch_plan(p, args: Task):
    from lmthing import choose, loop_while, parallel, sequence, task

    for name in ("router", "summarizer", "voter_x", "voter_y", "voter_z"):
        p.def_agent(name, f"Agent {name}", Task, answer_task)
    ask = {"task": "Capital of France?"}
    vote = {"majority": "majority", "consensus": "consensus"}[args.task]
    plan = sequence(
        task(lambda ctx: 2),
        loop_while(lambda ctx: ctx.input < 5, task(lambda ctx: ctx.input + 1), max_iterations=10),
        choose(lambda ctx: ctx.input >= 5, then=task(lambda ctx: f"big {ctx.input}"), otherwise=task(lambda ctx: "small")),
        choose(decide="router", branches={
            "summarize": call_agent("summarizer", lambda ctx: {"task": f"Summarize: {ctx.input}"}),
            "drop": task(lambda ctx: None),
        }),
        parallel({n: call_agent(f"voter_{n}", ask) for n in ("x", "y", "z")}, aggregation=vote),
    )
    value = await p.run_plan(plan, None)
    p.def_var("PLAN", value)
    p.user("Go.")


# ------------------------------------------------------------------- a standalone team vote
@prompt(model=scripted_model("orch-ballot-yes", [text("yes")]), capabilities=["voting"])
def ballot_yes(p, args: TeamTask):
    """Votes yes."""
    p.user(args.prompt())


@prompt(model=scripted_model("orch-ballot-no", [text("no")]), capabilities=["voting"])
def ballot_no(p, args: TeamTask):
    """Votes no."""
    p.user(args.prompt())


board_vote = def_orchestration("board_vote", team("board", ["ballot_yes", "ballot_no", "ballot_yes2"]).vote(options=["yes", "no"]))


@prompt(model=scripted_model("orch-ballot-yes2", [text("Yes, ship it")]), name="ballot_yes2")
def ballot_yes_too(p, args: TeamTask):
    """Votes yes as well."""
    p.user(args.prompt())


JUDGED = scripted_model(
    "orch-judged",
    [text("Judged.")],
    agents={"a": [text("short")], "b": [text("a much longer answer")], "critic": [text('{"ranking": ["b", "a"]}')]},
)


@prompt(model=JUDGED)
async def orch_judged(p):
    for name in ("a", "b", "critic"):
        p.def_agent(name, f"Agent {name}", Task, answer_task, capabilities=["writing"] if name != "critic" else ["judging"])
    p.def_parallel("writers", {n: call_agent(n) for n in ("a", "b")}, aggregation="n_best", judge="critic")
    result = await p.run_parallel("writers", {"task": "Write"})
    p.def_data("BEST", {**result.model_dump(mode="json"), "writers": p.select_agents(["writing"]),
                        "voters": p.select_agents(["voting"])})
    p.user("Which was best?")


# ------------------------------------------------------------------- a bug in a condition
def _bad_condition(ctx):
    return ctx.results["missing"]["score"] < 7


broken_condition_flow = def_workflow("broken_condition_flow", [
    step("analyze", agent="code_analyzer", args={"task": "x"}),
    step("check", condition=_bad_condition, action=lambda ctx: "never"),
])


@prompt(model=BAD_MODEL)
async def orch_bad_condition(p):
    p.def_workflow("broken", [step("first", action=lambda ctx: 1), step("check", condition=_bad_condition, action=lambda ctx: 2)])
    await p.run_workflow("broken")
    p.user("unreachable")
