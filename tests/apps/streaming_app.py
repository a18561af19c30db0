"""Prompts for the streaming tests: a tool round, then a slowly streamed answer."""

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call

SLOW_ANSWER = "The tide turns twice a day because the moon pulls the oceans toward it as the earth spins."


@prompt(
    model=scripted_model(
        "streaming-tools",
        [
            text("Let me check the almanac."),
            tool_call("almanac", {"place": "Brest"}),
            text(SLOW_ANSWER, delay=0.05),
        ],
    )
)
def tides(p):
    p.def_tool("almanac", "Tide tables", None, lambda args: {"high": ["06:10", "18:32"], "place": args["place"]})
    p.user("When is high tide in Brest?")


@prompt(model=scripted_model("streaming-crawl", [text(SLOW_ANSWER, delay=0.25)]))
def crawl(p):
    p.user("Explain tides slowly.")
