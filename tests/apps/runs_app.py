"""Prompts for run-level behaviour: inputs, stop conditions, continue-as-new, failures."""

import datetime

from pydantic import BaseModel

from lmthing import has_tool_call, prompt
from lmthing.testing import scripted_model, text, tool_call


class Greeting(BaseModel):
    name: str
    excited: bool = False


def _greet_reply(request):
    user = request.messages[0].content
    return text(f"Replying to: {user}")


@prompt(model=scripted_model("runs-greet", [_greet_reply]))
def greet(p, args: Greeting):
    p.user(f"Greet {args.name}{'!' if args.excited else '.'}")


COUNT_STEPS = 8


@prompt(
    model=scripted_model(
        "runs-counter",
        [[tool_call("bump", {"by": i})] for i in range(1, COUNT_STEPS)] + [text("counted")],
    ),
    max_steps=50,
)
def counter(p):
    total, set_total = p.def_state("total", 0)
    seen, set_seen = p.def_state("seen_steps", [])
    p.def_system("total", f"Total so far: {total}")
    p.def_effect(lambda ctx, mod: set_seen(lambda s: [*s, ctx.step_number]), [])
    p.def_tool("bump", "Add to the total", None, lambda args: set_total(lambda t: t + args["by"]) or {"ok": True})
    p.user("Count")


@prompt(
    model=scripted_model(
        "runs-stop",
        [[tool_call("work", {})], [tool_call("finish", {"answer": "42"})], [tool_call("work", {})], text("never")],
    ),
    stop_when=has_tool_call("finish"),
)
def stops_on_finish(p):
    p.def_tool("work", "Work", None, lambda args: {"ok": True})
    p.def_tool("finish", "Finish", None, lambda args: {"final": args["answer"]})
    p.user("Work then finish")


@prompt(model=scripted_model("runs-loop", [[tool_call("again", {})] for _ in range(10)]), max_steps=3)
def loops(p):
    p.def_tool("again", "Again", None, lambda args: {})
    p.user("Loop")


@prompt
def no_model(p):
    p.user("Hi")


@prompt(model="nope:some-model")
def unknown_provider(p):
    p.user("Hi")


@prompt(model="missing_alias_xyz")
def missing_alias(p):
    p.user("Hi")


@prompt(model=scripted_model("runs-raises", [text("unreachable")]))
def raises(p):
    settings = {}
    p.user(settings["language"])


@prompt(model=scripted_model("runs-clock", [text("unreachable")]))
def reads_clock(p):
    p.user(f"It is {datetime.datetime.now()}")


@prompt(model=scripted_model("runs-clock-tool", [tool_call("now", {}), text("unreachable")]))
def clock_tool(p):
    p.def_tool("now", "Current time", None, lambda args: {"now": str(datetime.datetime.now())})
    p.user("What time is it?")


@prompt(model=scripted_model("runs-bad-state", [text("unreachable")]))
def bad_state(p):
    p.def_state("handle", object())
    p.user("Hi")


@prompt(model=scripted_model("runs-bad-api", [text("unreachable")]))
def bad_api(p):
    p.def_message("system", "nope")


@prompt(model=scripted_model("runs-huge", [lambda request: text("x" * 1_600_000)]))
def huge_reply(p):
    p.user("Write a novel")
