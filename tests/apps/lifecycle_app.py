"""Prompts with lifecycle handlers, metrics and loggers (def_event, def_metric, def_logger)."""

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call


class Nothing(BaseModel):
    pass


@tool
async def count_chars(text: str) -> dict:
    """Count the characters of a text."""
    return {"length": len(text)}


def _explode(args: Nothing) -> dict:
    raise ValueError("the fuse blew")


class Topic(BaseModel):
    topic: str


def _summarize(args: Topic, child):
    child.user(f"Summarize {args.topic}")


HOOKED = scripted_model(
    "lifecycle-hooked",
    [
        [tool_call("count_chars", {"text": "tides"})],
        [tool_call("explode", {})],
        [tool_call("summarizer", {"topic": "tides"})],
        [tool_call("summarizer", {})],  # invalid arguments: the agent does not start
        text("Finished."),
    ],
    agents={"summarizer": [text("Tides follow the moon.")]},
)


@prompt(model=HOOKED)
def hooked(p):
    """Records every lifecycle event, in order, into def_state."""
    seen, set_seen = p.def_state("seen", [])

    def note(entry: str) -> None:
        set_seen(lambda old: [*old, entry])

    p.def_tool(count_chars)
    p.def_tool("explode", "Always fails (in the workflow).", Nothing, _explode)
    p.def_agent("summarizer", "Summarize a topic", Topic, _summarize)
    p.def_event("before_model_call", lambda e: note(f"before_model_call {e.step} msgs={len(e.request.conversation.messages)}"))
    p.def_event("after_model_call", lambda e: note(f"after_model_call {e.step} {e.response.finish_reason}"))
    p.def_event("onToolStart", lambda e: note(f"before_tool {e.step} {e.tool} {e.args}"))
    p.def_event("after_tool", lambda e: note(f"after_tool {e.step} {e.kind} {e.tool} error={e.is_error} {e.result}"))
    p.def_event("on_error", lambda e: note(f"on_error {e.where} {e.tool} {e.error}"))
    p.def_event("on_step", lambda e: note(f"on_step {e.step} tools={len(e.record.tool_results)}"))

    async def finished(e):
        note(f"on_finish {e.result.steps} {e.result.text}")
        await p.emit("audit", {"steps": e.result.steps})

    p.def_event("on_finish", finished)
    p.def_event("audit", lambda e: note(f"audit {e.data}"))
    p.user("Measure, explode, then summarize.")


INSTRUMENTED = scripted_model(
    "lifecycle-instrumented",
    [[tool_call("count_chars", {"text": "abc"})], [tool_call("count_chars", {"text": "abcdefgh"})], text("Done.")],
)


@prompt(model=INSTRUMENTED)
def instrumented(p):
    """Counts and measures tool calls with its own metrics, and logs each step."""
    p.def_metric("measured_texts", "counter", "Texts measured", labels=["tool"])
    p.def_metric("text_length", "histogram", "Length of measured texts", buckets=[2, 5, 10])
    p.def_metric("last_length", "gauge", "Length of the last measured text")
    log = p.def_logger("audit", fields={"team": "research"}, redact=["customer_token"])
    p.def_tool(count_chars)

    def after(e):
        if e.tool == "count_chars" and not e.is_error:
            p.record_metric("measured_texts", 1, {"tool": e.tool})
            p.record_metric("text_length", e.result["length"])
            p.record_metric("last_length", e.result["length"])
            log.info("measured", length=e.result["length"], customer_token="ct-secret-42", name="clash")

    p.def_event("after_tool", after)
    p.def_event("on_step", lambda e: p.logger.debug("not shown: below the logger's level"))
    p.user("Measure two texts.")


@prompt(model=scripted_model("lifecycle-broken-handler", [tool_call("count_chars", {"text": "x"}), text("never")]))
def broken_handler(p):
    p.def_tool(count_chars)

    def bad(e):
        raise KeyError("no such column")

    p.def_event("before_tool", bad)
    p.user("Go")


@prompt(model=scripted_model("lifecycle-bad-metric", [text("never")]))
def bad_metric(p):
    p.def_metric("runs", "counter", labels=["region"])
    p.record_metric("runs", 1, {"zone": "eu"})


@prompt(model=scripted_model("lifecycle-clock-handler", [text("never")]))
def clock_handler(p):
    import datetime

    def stamp(e):
        p.def_state("at", None)[1](datetime.datetime.now().isoformat())

    p.def_event("before_model_call", stamp)
    p.user("Go")
