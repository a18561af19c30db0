"""Prompts with sub-agents (child workflows)."""

import asyncio

from pydantic import BaseModel

from lmthing import agent, prompt, tool
from lmthing.testing import scripted_model, text, tool_call


class Topic(BaseModel):
    topic: str


class Findings(BaseModel):
    findings: list[str]
    confidence: float


@tool
async def pause(seconds: float) -> dict:
    """Wait a while (stands in for slow work)."""
    await asyncio.sleep(seconds)
    return {"waited": seconds}


def research(args: Topic, child):
    # A full prompt: effects run in the child too.
    child.def_system("role", "You are a research specialist.")
    child.def_effect(lambda ctx, mod: mod("variables", [{"name": "STEP", "value": str(ctx.step_number)}]))
    child.user(f"Research: {args.topic}")


PARENT = scripted_model(
    "agents-single",
    [tool_call("researcher", {"topic": "tides"}), text("The moon drives the tides.")],
    agents={"researcher": [text("Tides come from the moon's pull.")]},
)


@prompt(model=PARENT, options={"temperature": 0.2})
def single(p):
    p.def_agent("researcher", "Research a topic", Topic, research)
    p.user("Explain tides")


OVERRIDE = scripted_model("agents-override-child", [text("from the override model")])


@prompt(
    model=scripted_model("agents-override", [tool_call("researcher", {"topic": "x"}), text("done")]),
)
def override_model(p):
    p.def_agent("researcher", "Research", Topic, research, model=OVERRIDE, system="Base system for the child.")
    p.user("Go")


SCHEMA_PARENT = scripted_model(
    "agents-schema",
    [[tool_call("analyst", {"topic": "a"})], [tool_call("stubborn", {"topic": "b"})], text("done")],
    agents={
        "analyst": [text("not json at all"), text('{"findings": ["x"], "confidence": 0.9}')],
        "stubborn": [text('{"findings": "nope"}'), text("still not"), text('{"confidence": 1}')],
    },
)


@prompt(model=SCHEMA_PARENT)
def schema_agents(p):
    p.def_agent("analyst", "Analyse", Topic, research, response_schema=Findings)
    p.def_agent("stubborn", "Never valid", Topic, research, response_schema=Findings, schema_retries=2)
    p.user("Analyse")


TEAM = scripted_model(
    "agents-team",
    [
        tool_call(
            "team",
            {
                "calls": [
                    {"name": "slow", "args": {"topic": "one"}},
                    {"name": "fast", "args": {"topic": "two"}},
                    {"name": "ghost", "args": {}},
                ]
            },
        ),
        text("team done"),
    ],
    agents={
        "slow": [tool_call("pause", {"seconds": 0.6}), text("slow answer")],
        "fast": [text("fast answer")],
    },
)


def slow_agent(args: Topic, child):
    child.def_tool(pause)
    child.user(f"Slowly: {args.topic}")


def fast_agent(args: Topic, child):
    child.user(f"Quickly: {args.topic}")


@prompt(model=TEAM)
def team(p):
    p.def_agent(
        "team",
        "A team of agents",
        [agent("slow", "Slow worker", Topic, slow_agent), agent("fast", "Fast worker", Topic, fast_agent)],
    )
    p.user("Work as a team")


NESTED = scripted_model(
    "agents-nested",
    [tool_call("outer", {"topic": "deep"}), text("nested done")],
    agents={
        "outer": [tool_call("inner", {"topic": "deeper"}), text("outer got inner")],
        "outer/inner": [text("inner answer")],
    },
)


def outer(args: Topic, child):
    depth, _ = child.def_state("depth", 1)
    child.def_agent("inner", "Inner agent", Topic, lambda a, c: c.user(f"Inner on {a.topic} at depth {depth + 1}"))
    child.user(f"Outer on {args.topic}")


@prompt(model=NESTED)
def nested(p):
    p.def_agent("outer", "Outer agent", Topic, outer)
    p.user("Nest")


@prompt(
    model=scripted_model(
        "agents-cancel",
        [tool_call("sleeper", {"topic": "z"}), text("never")],
        agents={"sleeper": [tool_call("pause", {"seconds": 4}), text("woke")]},
    )
)
def cancellable(p):
    p.def_agent("sleeper", "Sleeps", Topic, slow_agent)
    p.user("Sleep")


@prompt(
    model=scripted_model(
        "agents-failing",
        [tool_call("broken", {"topic": "z"}), text("parent went on")],
    )
)
def failing_child(p):
    def broken(args, child):
        raise KeyError("missing setting")

    p.def_agent("broken", "Fails", Topic, broken)
    p.user("Try")


CALLS = scripted_model(
    "agents-called",
    [tool_call("fan_out", {}), text("both done")],
    agents={"researcher": [text("a finding")], "fast": [text("fast answer")]},
)


@prompt(model=CALLS)
def calls_agents_from_code(p):
    p.def_agent("researcher", "Research a topic", Topic, research)
    p.def_agent("team", "A team", [agent("fast", "Fast worker", Topic, fast_agent)])

    async def fan_out(args):
        import asyncio

        first, second, bad, missing = await asyncio.gather(
            p.call_agent("researcher", {"topic": "tides"}, key="t1"),
            p.call_agent("team.fast", {"topic": "waves"}, key="t2"),
            p.call_agent("researcher", {"wrong": 1}, key="t3"),
            p.call_agent("ghost", {}, key="t4"),
            return_exceptions=True,
        )
        return {"first": first, "second": second, "bad": bad, "missing": str(missing)}

    p.def_tool("fan_out", "Ask the agents", None, fan_out)
    p.user("Fan out")
