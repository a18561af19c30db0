"""Prompts for the moderation tests (tests/test_moderation.py): def_moderation with a check
function and with OpenAI's moderation endpoint (the fake server's /v1/moderations)."""

from __future__ import annotations

from collections import Counter

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

CALLS: Counter[str] = Counter()


@tool
def send_email(to: str, body: str) -> dict:
    """Send an email."""
    CALLS["send_email"] += 1
    return {"sent": True, "to": to}


def no_secrets(text: str):
    """Flags a text that mentions the launch code (a user's own moderation rule)."""
    return ["secrets"] if "launch code" in text.lower() else None


def redact_phone(text: str):
    """Flags and cleans a phone number (a filter)."""
    if "555-0199" in text:
        return {"flagged": True, "categories": ["pii"], "text": text.replace("555-0199", "[redacted]")}
    return None


@prompt(model=scripted_model("mod-input", [text("This should never be said.")]))
def blocked_input(p, ask):
    p.def_moderation("secrets", no_secrets, on="input", message="Refused ({categories}): ask something else.")
    p.user(ask)


@prompt(model=scripted_model("mod-flag", [text("The launch code is 0000."), text("unused")]))
def flagged_output(p):
    p.def_moderation("secrets", no_secrets, action="flag")
    p.user("What is the code?")


@prompt(model=scripted_model("mod-output", [
    [text("Sending the launch code now."), tool_call("send_email", {"to": "x@example.com", "body": "launch code"})],
    text("unused"),
]))
def blocked_output(p):
    p.def_moderation("secrets", no_secrets, on="output")
    p.def_tool(send_email)
    p.user("Mail the code.")


@prompt(model=scripted_model("mod-filter", [
    [text("Call 555-0199."), tool_call("send_email", {"to": "y@example.com", "body": "hi"})],
    text("Done: call 555-0199 again."),
]))
def filtered_output(p):
    p.def_moderation("pii", redact_phone, on="output", action="filter")
    p.def_tool(send_email)
    p.user("Who do I call?")


@prompt(model=scripted_model("mod-openai", [tool_call("send_email", {"to": "z@example.com", "body": "hi"}),
                                            text("All sent, nothing violent here.")]))
def openai_moderated(p, ask):
    p.def_moderation("safety", model="openai:omni-moderation-latest", categories=["violence", "hate"])
    p.def_tool(send_email)
    p.user(ask)


@prompt(model=scripted_model("mod-bad-check", [text("hello")]))
def bad_check(p):
    p.def_moderation("odd", lambda t: 42)
    p.user("Hi.")
