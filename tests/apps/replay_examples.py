"""Representative prompts whose recorded histories (tests/histories/) are replayed by
tests/test_replay.py against the current code.

Each one exercises a different shape of workflow history:

- ``replay_tools_state``: several steps of an in-workflow tool that updates ``def_state``,
  an ``@tool`` activity and an effect that reacts to the state;
- ``replay_subagent``: two sub-agents started in one step (concurrent child workflows),
  each with its own scripted model and its own activity tool call;
- ``replay_parallel``: one model reply with several tool calls run concurrently (three
  activities and an in-workflow tool);
- ``replay_workflow``, ``replay_race``, ``replay_debate``: a workflow (agent steps, a skipped
  step, a retried step, a tool step), a parallel ``first`` whose slow
  branch is cancelled, and a two-round debate with a judge (recorded 2026-12-02);
- ``FOLLOWED``: ``replay_tools_state`` again, with a caller following its stream, so the
  history has the end-of-stream hand-over (recorded 2026-12-01; the others are older and
  have neither it nor ``ToolActivityInput.step``, which is why they are kept as they are);
  and ``replay_subagent`` the same way (recorded 2026-12-02: its root run and its children
  start with the ``LmthingAgent`` search attribute and a summary).
- resilience (docs/resilience.md, recorded 2026-12-02): ``replay_cascade`` (a model that
  answers 500 under a two-attempt policy, a timer, the next model; two steps),
  ``replay_retries`` (retries the workflow runs: three tool activities, jittered timers
  between them), ``replay_guard_skip``, ``replay_guard_ask`` (approved by a person through
  the ``decide`` update, see ``DECISIONS``), ``replay_validator`` (a tool output and then an
  answer fail their validators, so the model calls and answers again) and
  ``replay_budget_tree`` (two sub-agents spend from the root's token budget through
  ``lmthing.budget`` activities and ``lmthing_budget`` updates; the second crosses it);
  ``replay_moderation`` (an input flagged, outputs filtered), ``replay_domains`` (one tool
  call refused by an allowlist, one run) and ``replay_sub_budget`` (a sub-agent's own
  budget: its scout reports to it, and it passes each report on to the root, from its
  update handler).
- ``replay_context`` (recorded 2026-12-02, docs/context.md): ``def_context("summarize")`` over a
  tool loop: summary calls (model-call activities summarized ``summarize context``) between
  the steps' own, and requests sent as layouts of the previous call.
- ``replay_mcp`` (recorded 2026-12-02, docs/mcp.md): the tools of a stdio MCP server
  (tests/mcp_servers/calc.py, started by the recorder's worker): one ``lmthing.mcp.list_tools``
  for three steps, ``lmthing.mcp.call_tool`` activities, two at once, one of them an
  ``isError`` result the model reads.
- ``MESSAGING`` (recorded 2026-12-02): ``replay_live`` as a long-lived agent that answers
  asks, subscribes to a topic, writes a board through its tool and continues as new every
  two turns (both runs of its chain are recorded), with the topic's and the board's own
  workflows.

Changing these prompts changes their histories: re-record them with
``python -m tests.histories.record`` (see that script) in the same change.
The workflow sandbox re-imports this module: it imports only lmthing and pydantic.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from lmthing import call_agent, def_workflow, parallel, prompt, step, tool
from lmthing.activities.providers.base import ModelCallError
from lmthing.testing import scripted_model, text, tool_call
from lmthing.tools.calc import calculate
from lmthing.tools.text import text_stats

CITIES = {"paris": 18, "oslo": 4, "lima": 22, "cairo": 30}


@tool
async def replay_lookup(city: str) -> dict:
    """Look up the temperature of a city."""
    return {"city": city, "celsius": CITIES.get(city.lower(), 0)}


@tool
async def replay_fetch(url: str) -> dict:
    """Fetch a page (offline: says what it would fetch)."""
    return {"url": url, "text": "a forecast"}


class Note(BaseModel):
    text: str


class Topic(BaseModel):
    topic: str


# ----------------------------------------------------------------- tools + state, 4 steps
TOOLS_STATE_MODEL = scripted_model(
    "replay-tools-state",
    [
        text("Noting Paris."),
        tool_call("note", {"text": "paris first"}),
        tool_call("replay_lookup", {"city": "Paris"}),
        text("Noting Oslo."),
        tool_call("note", {"text": "oslo second"}),
        tool_call("replay_lookup", {"city": "Oslo"}),
        tool_call("note", {"text": "compare"}),
        text("Paris is 18 C, Oslo is 4 C."),
    ],
)


@prompt(model=TOOLS_STATE_MODEL)
def replay_tools_state(p):
    notes, set_notes = p.def_state("notes", [])
    p.def_system("role", "You compare city temperatures and keep notes.")
    p.def_data("notes", notes)
    p.user("Compare Paris and Oslo.")

    def note(args: Note):
        set_notes(lambda current: [*current, args.text])
        return {"saved": len(p.get_state("notes"))}

    def remind(ctx, step_modifier):
        step_modifier("systems", [{"name": "progress", "value": f"{len(p.get_state('notes'))} notes so far"}])

    p.def_effect(remind, [len(notes)])
    p.def_tool("note", "Save a note.", Note, note)
    p.def_tool(replay_lookup)


# --------------------------------------------------------------- sub-agents (child workflows)
SUBAGENT_MODEL = scripted_model(
    "replay-subagent",
    [
        text("Asking two researchers."),
        tool_call("researcher", {"topic": "lima"}),
        tool_call("researcher", {"topic": "cairo"}),
        text("Lima is 22 C and Cairo is 30 C."),
    ],
    agents={
        "researcher": [
            lambda req: [tool_call("replay_lookup", {"city": req.messages[0].content or ""})],
            lambda req: text(f"Found: {req.messages[-1].content}"),
        ],
    },
)


@prompt(model=SUBAGENT_MODEL)
def replay_subagent(p):
    p.def_state("mode", "delegate")
    p.def_system("role", "You delegate research.")
    p.user("How warm are Lima and Cairo?")

    def researcher(args: Topic, child):
        child.def_system("role", "You research one city.")
        child.user(args.topic)
        child.def_tool(replay_lookup)

    p.def_agent("researcher", "Research one city.", Topic, researcher)


# ------------------------------------------------------------ concurrent tool calls, 2 steps
PARALLEL_MODEL = scripted_model(
    "replay-parallel",
    [
        text("Looking up three cities at once."),
        tool_call("replay_lookup", {"city": "Paris"}),
        tool_call("replay_lookup", {"city": "Oslo"}),
        tool_call("tally", {"text": "three lookups"}),
        tool_call("replay_lookup", {"city": "Lima"}),
        text("Lima is the warmest."),
    ],
)


@prompt(model=PARALLEL_MODEL)
def replay_parallel(p):
    tallies, set_tallies = p.def_state("tallies", 0)
    p.user("Which of Paris, Oslo and Lima is the warmest?")
    p.def_tool(replay_lookup)
    p.def_tool("tally", "Count a batch of lookups.", Note, lambda args: set_tallies(lambda n: n + 1) or {"ok": True})


# ------------------------------------------------- orchestration (recorded 2026-12-02)
class Ask(BaseModel):
    task: str


def _ask(args: Ask, child):
    child.user(args.task)


def _fails_then_works(ctx):
    # Fails in the workflow (a failing activity would put a stack trace, with this machine's
    # paths, in the history): the step's retry runs it again.
    if ctx.attempt == 1:
        raise ValueError("first attempt fails on purpose")
    return "second attempt works"


ORCHESTRATION_MODEL = scripted_model(
    "replay-orchestration",
    [text("Orchestrated.")],
    agents={
        "analyzer": [text("score 4")], "fast": [text("fast answer")],
        "slow": [text("slow " * 20, delay=0.1)],
        "pro": [lambda req: text(f"pro: {len(req.messages[-1].content or '')} chars heard")],
        "con": [lambda req: text(f"con: {len(req.messages[-1].content or '')} chars heard")],
        "judge": [text("pro")],
    },
)


def _define_agents(p) -> None:
    from lmthing.orchestration import TeamTask

    for name in ("analyzer", "fast", "slow"):
        p.def_agent(name, f"The {name} agent", Ask, _ask)
    for name in ("pro", "con", "judge"):
        p.def_agent(name, f"The {name} debater", TeamTask, lambda args, child: child.user(args.prompt()))


@prompt(model=ORCHESTRATION_MODEL)
async def replay_workflow(p):
    _define_agents(p)
    p.def_workflow("review", [
        step("analyze", agent="analyzer", args={"task": "Score the code"}),
        step("polish", condition=lambda ctx: "9" in ctx.results.analyze, agent="fast", args={"task": "x"}),
        step("flaky", action=_fails_then_works, retries=1),
        step("shout", tool=replay_lookup, args={"city": "Paris"}, on_error="report"),
        step("report", action=lambda ctx: f"{ctx.results.analyze}; {ctx.results.flaky}"),
    ])
    review = await p.run_workflow("review")
    p.def_var("REVIEW", review.output)
    p.user("Summarize the review.")


@prompt(model=ORCHESTRATION_MODEL)
async def replay_race(p):
    _define_agents(p)
    p.def_parallel("race", {"fast": call_agent("fast"), "slow": call_agent("slow")}, aggregation="first")
    race = await p.run_parallel("race", {"task": "Answer"})
    p.def_var("WINNER", race.winner)
    p.user("Who won?")


@prompt(model=ORCHESTRATION_MODEL)
async def replay_debate(p):
    _define_agents(p)
    p.def_team("debaters", ["pro", "con"], judge="judge")
    debate = await p.run_team("debaters", "debate", "Is it worth it?", rounds=2)
    p.def_var("WINNER", debate.winner)
    p.user("Who won the debate?")


@prompt(model=scripted_model("replay-analyst", [lambda req: text(f"scored: {req.messages[-1].content}")]))
def replay_analyst(p, args: Ask):
    p.user(args.task)


# A standalone workflow type (its agents are prompts, its tool an activity).
replay_flow = def_workflow("replay_flow", [
    step("analyze", agent="replay_analyst", args={"task": "the parser"}),
    step("lookup", tool=replay_lookup, args={"city": "Lima"}),
    step("fan", parallel({"a": call_agent("replay_analyst", {"task": "a"}), "b": call_agent("replay_analyst", {"task": "b"})})),
])

# ---------------------------------------------------- resilience (recorded 2026-12-02)
def _provider_down(request):
    # What the model activity makes of an HTTP 500 from a real provider.
    raise ModelCallError("the provider answered HTTP 500", retryable=True, error_type="ServerError")


BROKEN_MODEL = scripted_model("replay-broken", [_provider_down], repeat=True)
BACKUP_MODEL = scripted_model("replay-backup", [tool_call("replay_lookup", {"city": "Oslo"}), text("Oslo is 4 C.")])


@prompt(fallback="models")
def replay_cascade(p):
    p.def_retry("twice", max_attempts=2, backoff="constant", base_delay=0.1)
    p.def_fallback("models", "cascade", cascade=[{"model": BROKEN_MODEL, "retry": "twice"}, BACKUP_MODEL], retry_delay=0.1)
    p.def_tool(replay_lookup)
    p.user("How warm is Oslo?")


FLAKY_CALLS: Counter[str] = Counter()  # per run; the tool runs in the worker, outside the sandbox


@tool
def replay_flaky(city: str) -> dict:
    """Look a city up in a flaky service: the first two calls of a run reset the connection."""
    from temporalio import activity

    run = activity.info().workflow_id
    FLAKY_CALLS[run] += 1
    if FLAKY_CALLS[run] <= 2:
        raise ConnectionError(f"connection reset (call {FLAKY_CALLS[run]})")
    return {"city": city, "celsius": CITIES.get(city.lower(), 0), "calls": FLAKY_CALLS[run]}


@prompt(model=scripted_model("replay-retries", [
    tool_call("replay_flaky", {"city": "Lima"}), lambda req: text(f"got {req.messages[-1].content}"),
]))
def replay_retries(p):
    # Linear backoff with jitter: the workflow runs the attempts, a durable timer between them.
    p.def_retry("net", max_attempts=4, backoff="linear", base_delay=0.1, max_delay=0.3, jitter=True,
                retryable_errors=["ConnectionError"])
    p.def_tool(replay_flaky, retry="net")
    p.user("How warm is Lima?")


@prompt(model=scripted_model("replay-guard-skip", [tool_call("replay_lookup", {"city": "Cairo"}), text("I may not look.")]))
def replay_guard_skip(p):
    p.def_state("signed_in", False)
    p.def_guard("signed_in", lambda c: c.state["signed_in"], on_fail="skip", message="sign in first", tools=["replay_lookup"])
    p.def_tool(replay_lookup)
    p.user("How warm is Cairo?")


@prompt(model=scripted_model("replay-guard-ask", [
    tool_call("replay_lookup", {"city": "Paris"}), lambda req: text(f"got {req.messages[-1].content}"),
]))
def replay_guard_ask(p):
    p.def_guard("metered", lambda c: c.args.city != "Paris", on_fail="ask", message="Paris lookups are metered")
    p.def_tool(replay_lookup, guards=["metered"])
    p.user("How warm is Paris?")


def _no_zero(output: dict) -> object:
    return None if output["celsius"] else {"valid": False, "errors": ["no temperature"], "fix": "ask for a known city"}


@prompt(model=scripted_model("replay-validator", [
    [tool_call("replay_lookup", {"city": "Atlantis"})],
    [tool_call("replay_lookup", {"city": "Lima"})],
    text("Warm."),
    text("Lima is 22 C, warmer than most."),
]))
def replay_validator(p):
    # The tool's output fails its validator (the model calls again), then the answer fails
    # the answer validator (the model answers again).
    p.def_validator("known_city", check=_no_zero)
    p.def_validator("long_enough", check=lambda t: None if len(t) > 10 else "write more than 10 characters",
                    answer=True, max_retries=1)
    p.def_tool(replay_lookup, validator="known_city", retry_on_failure=True, max_retries=2)
    p.user("How warm is it somewhere?")


def _scout(args: Ask, child):
    child.def_tool(replay_lookup)
    child.user(args.task)


BUDGET_MODEL = scripted_model(
    "replay-budget",
    [[tool_call("scout", {"task": "paris"})], [tool_call("scout", {"task": "oslo"})], text("Both scouted.")],
    agents={"scout": [*[lambda req: [tool_call("replay_lookup", {"city": req.messages[0].content or ""})]] * 3,
                      text("scouted")]},
)


@prompt(model=BUDGET_MODEL, max_steps=4)
def replay_budget_tree(p):
    # The second scout crosses the tree's budget: it stops, and the root after it.
    p.def_constraint("tokens", "tokens", max=BUDGET_TOKENS, warn=BUDGET_TOKENS / 2)
    p.def_agent("scout", "Scout a city.", Ask, _scout, max_steps=6)
    p.user("Scout Paris, then Oslo.")


BUDGET_TOKENS = 110  # the tree spends ~90 before the second scout starts


@prompt(model=BUDGET_MODEL, max_steps=4)
def replay_budget_reported(p):
    # replay_budget_tree recorded again (2026-12-02) after the patch that has the scouts' model
    # activities report their spend (REPORT_IN_MODEL_CALL): no lmthing.budget activities.
    p.def_constraint("tokens", "tokens", max=BUDGET_TOKENS, warn=BUDGET_TOKENS / 2)
    p.def_agent("scout", "Scout a city.", Ask, _scout, max_steps=6)
    p.user("Scout Paris, then Oslo.")


def _redact_city(said: str) -> object:
    return {"flagged": True, "categories": ["place"], "text": said.replace("Oslo", "[city]")} if "Oslo" in said else None


@prompt(model=scripted_model("replay-moderation", [
    [text("Looking up Oslo."), tool_call("replay_lookup", {"city": "Oslo"})],
    text("Oslo is cold."),
]))
def replay_moderation(p):
    # Output moderation: both steps' text is filtered (the stream holds deltas back), and the
    # input is checked (and flagged) once.
    p.def_moderation("places", _redact_city, on="output", action="filter")
    p.def_moderation("questions", lambda t: "question" if t.endswith("?") else None, on="input", action="flag")
    p.def_tool(replay_lookup)
    p.user("How cold is Oslo?")


@prompt(model=scripted_model("replay-domains", [
    [tool_call("replay_fetch", {"url": "https://weather.example/oslo"}),
     tool_call("replay_fetch", {"url": "https://elsewhere.test/oslo"})],
    text("Fetched one."),
]))
def replay_domains(p):
    p.def_constraint("web", "domains", allow=["weather.example"])
    p.def_tool(replay_fetch)
    p.user("Fetch the forecast.")


def _lead(args: Ask, child):
    child.def_constraint("team", "tokens", max=SUB_BUDGET_TOKENS)  # a budget inside the tree's
    child.def_agent("scout", "Scout a city.", Ask, _scout, max_steps=6)
    child.user(args.task)


SUB_BUDGET_MODEL = scripted_model(
    "replay-sub-budget",
    [[tool_call("lead", {"task": "scout paris"})], text("The lead is done.")],
    agents={"lead": [[tool_call("scout", {"task": "paris"})], text("lead done")],
            "scout": [*[lambda req: [tool_call("replay_lookup", {"city": "Paris"})]] * 4, text("scouted")]},
)
SUB_BUDGET_TOKENS = 60


@prompt(model=SUB_BUDGET_MODEL, max_steps=3)
def replay_sub_budget(p):
    # The scout spends from the lead's budget (which it crosses) and, through the lead, the root's.
    p.def_constraint("tree", "tokens", max=100_000)
    p.def_agent("lead", "Lead the scouting.", Ask, _lead, max_steps=4)
    p.user("Lead the scouting.")

@prompt(model=scripted_model("replay-memory", [
    [tool_call("replay_lookup", {"city": "Oslo"})], [tool_call("replay_lookup", {"city": "Oslo"})],
    text("Remembered Oslo."),
]))
async def replay_memory(p):
    # Scope "run": a recording reads nothing an earlier one left in the store.
    lookups, set_lookups = p.def_state("replay-lookups", 0, persist=True, scope="run")
    notes = p.def_memory("replay-notes", "kv", scope="run")
    await notes.remember({"city": "Oslo"}, key="city")
    p.def_data("city", await notes.recall("city"))
    p.def_effect(lambda ctx, step: set_lookups(len([m for m in ctx.messages if m.role == "tool"])))
    p.def_cache("replay-lookups", scope="run")
    p.def_tool(replay_lookup, cache="replay-lookups")
    p.user("Look up Oslo twice.")


CONTEXT_CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Paris", "Oslo", "Lima", "Cairo"]


@prompt(model=scripted_model("replay-context", [*([tool_call("replay_lookup", {"city": c})] for c in CONTEXT_CITIES),
                                                text("Looked up eight cities.")]), max_steps=12)
def replay_context(p):
    # Older turns are replaced by summaries (the scripted model writes them): model-call
    # activities summarized "summarize context" between the steps' own.
    p.def_context("summarize", max_tokens=220, keep_last=2, keep_first=1, summary_tokens=40)
    p.def_tool(replay_lookup)
    p.user("Look up the temperature of eight cities, one at a time.")


ROLE_MODEL = scripted_model("replay-role", [
    [tool_call("calculate", {"expression": "6 * 7"}), tool_call("replay_fetch", {"url": "https://weather.example/x"})],
    [tool_call("text_stats", {"text": "six times seven"})],
    text("It is 42."),
])


@prompt(model=ROLE_MODEL, max_steps=4)
def replay_role(p):
    # A role (issue 18): a tool allow-list (replay_fetch is defined but not offered, so its
    # call does not run), a token budget, and a template filling the request; built-in tools.
    p.def_tool(calculate)
    p.def_tool(text_stats)
    p.def_tool(replay_fetch)
    p.def_role("counter", system="You count.", allowed_tools=["calculate", "text_stats"], max_tokens=10_000)
    p.assume_role("counter")
    p.def_template("ask", "What is {{a}} times {{b}}?", {"a": "integer", "b": {"type": "integer", "default": 7}})
    p.use_template("ask", {"a": 6})


@prompt(model=scripted_model("replay-mcp", [
    [tool_call("add", {"a": 2, "b": 3}), tool_call("divide", {"a": 1, "b": 0})],
    tool_call("shout", {"text": "five"}),
    text("2 + 3 = 5."),
]))
async def replay_mcp(p):
    # "python" is the worker's interpreter; the path is relative to the recorder's directory.
    await p.def_mcp_server("replay-calc", command=["python", "tests/mcp_servers/calc.py"], tools=["add", "divide", "shout"])
    p.user("Add 2 and 3, divide 1 by 0, and shout the sum.")


EXAMPLES = [replay_tools_state, replay_subagent, replay_parallel, replay_workflow, replay_race, replay_debate,
            replay_cascade, replay_retries, replay_guard_skip, replay_guard_ask, replay_validator, replay_budget_tree,
            replay_moderation, replay_domains, replay_sub_budget, replay_budget_reported, replay_memory,
            replay_context, replay_role, replay_mcp]
# A person's decision the recorder gives (workflow id -> action), for examples that ask one.
DECISIONS = {"replay-guard-ask": "approve"}
# Standalone orchestrations, recorded under their workflow id.
STANDALONE = {"replay-flow": replay_flow}
# Recorded again under another id with a caller following the run's stream to its end: that
# history holds the end-of-stream hand-over (patch marker, the caller's last poll).
FOLLOWED = {"replay-tools-state-followed": replay_tools_state, "replay-subagent-followed": replay_subagent}


def _live_script(request):
    last = request.messages[-1]
    if last.role == "user" and "note" in (last.content or ""):
        return tool_call("board_write", {"key": "note", "value": last.content})
    return text(f"live: {last.content}")


@prompt(model=scripted_model("replay-live", [_live_script], repeat=True), max_steps=3)
async def replay_live(p):
    p.def_blackboard("replay-board")
    message = p.current_message()
    if message is not None and message.content == "subscribe":
        await p.subscribe("replay-news")


# Long-lived: the asks each turn answers, in order (the recorder sends them; see MESSAGING above).
LIVE_ASKS = ["subscribe", "hello", "take a note", "bye"]
LIVE_PUBLISHED = ["news 0", "news 1"]
MESSAGING = {"agent": "replay-live", "topic": "replay-news", "board": "replay-board"}
