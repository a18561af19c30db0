"""Prompts and tools for the resilience tests (tests/test_resilience.py): retry policies,
model cascades, tool fallbacks, guards and validators.

The tools count their calls in ``CALLS`` (they run as activities in the test process, not
in the sandbox), so a test can tell how often a dependency was really called."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

CALLS: Counter[str] = Counter()
FAILURES_BEFORE_SUCCESS: dict[str, int] = {}


class Query(BaseModel):
    q: str


@tool
def flaky_fetch(q: str) -> dict:
    """Fetch from a flaky API: fails FAILURES_BEFORE_SUCCESS['flaky_fetch'] times, then answers."""
    CALLS["flaky_fetch"] += 1
    if CALLS["flaky_fetch"] <= FAILURES_BEFORE_SUCCESS.get("flaky_fetch", 0):
        raise ConnectionError(f"connection reset (call {CALLS['flaky_fetch']})")
    return {"answer": f"fetched {q}", "calls": CALLS["flaky_fetch"]}


@tool
def broken_search(q: str) -> dict:
    """Search (always fails with a ValueError)."""
    CALLS["broken_search"] += 1
    raise ValueError("the search index is corrupt")


@tool
def backup_search(q: str) -> dict:
    """Search the backup index."""
    CALLS["backup_search"] += 1
    return {"hits": [f"backup hit for {q}"]}


# ------------------------------------------------------------------------ retry policies
@prompt(model=scripted_model("res-linear", [tool_call("flaky_fetch", {"q": "x"}), text("done")]))
def linear_retry(p):
    p.def_retry("net", max_attempts=4, backoff="linear", base_delay=0.2, max_delay=1.0, jitter=True,
                retryable_errors=["ConnectionError"])
    p.def_tool(flaky_fetch, retry="net")
    p.user("Fetch x.")


@prompt(model=scripted_model("res-allow-list", [tool_call("broken_search", {"q": "x"}), text("done")]))
def allow_list(p):
    p.def_retry("net", max_attempts=5, backoff="constant", base_delay=0.1, retryable_errors=["ConnectionError"])
    p.def_tool(broken_search, retry="net")
    p.user("Search x.")


@prompt(model=scripted_model("res-native", [tool_call("flaky_fetch", {"q": "y"}), text("done")]))
def native_retry(p):
    p.def_retry("net", max_attempts=3, backoff="exponential", base_delay=0.1, max_delay=0.5, multiplier=3,
                non_retryable_errors=["ValueError"])
    p.def_tool(flaky_fetch, retry="net")
    p.user("Fetch y.")


# ---------------------------------------------------------------------------- cascades
@prompt(fallback="models", max_steps=2)
def cascading(p):
    p.def_retry("twice", max_attempts=2, backoff="constant", base_delay=0.1)
    p.def_fallback("models", "cascade", cascade=[{"model": "openai:gpt-4o", "retry": "twice"}, "anthropic:claude-haiku-4-5"],
                   retry_delay=0.2)
    p.user("Say hello.")


@prompt(max_steps=3)
def cascading_agent(p):
    p.def_fallback("models", "cascade", cascade=["openai:gpt-4o", "anthropic:claude-haiku-4-5"], max_attempts=1)
    p.def_agent("helper", "A helper", Query, lambda args, child: child.user(f"Help with {args.q}"), fallback="models")
    p.user("Ask the helper about tea.")


# --------------------------------------------------------------------------- fallbacks
@prompt(model=scripted_model("res-alternative", [tool_call("broken_search", {"q": "tea"}), text("done")]))
def alternative(p):
    p.def_fallback("searches", "alternative", alternatives={"broken_search": ["backup_search"]})
    p.def_tool(broken_search)
    p.def_tool(backup_search)
    p.user("Search tea.")


@prompt(model=scripted_model("res-default", [tool_call("broken_search", {"q": "tea"}), text("done")]))
def default_value(p):
    p.def_fallback("empty", "default", default_value={"hits": []})
    p.def_tool(broken_search, fallback="empty")
    p.user("Search tea.")


# ------------------------------------------------------------------------------ guards
def _delete_tool(p, guards=()):
    deleted, set_deleted = p.def_state("deleted", [])
    p.def_tool("delete_file", "Delete a file", Query, lambda a: set_deleted([*deleted, a.q]) or {"deleted": a.q},
               guards=list(guards))


@prompt(model=scripted_model("res-guard-skip", [tool_call("delete_file", {"q": "a.txt"}), text("ok")]))
def guard_skips(p):
    p.def_state("authenticated", False)
    p.def_guard("auth", lambda c: c.state["authenticated"], on_fail="skip", message="Authentication required",
                tools=["delete_file"])
    _delete_tool(p)
    p.user("Delete a.txt.")


@prompt(model=scripted_model("res-guard-ask", [tool_call("delete_file", {"q": "b.txt"}), text("ok")]))
def guard_asks(p):
    p.def_guard("safe_mode", lambda c: not c.args.q.endswith(".txt"), on_fail="ask", message="text files are protected")
    _delete_tool(p, guards=["safe_mode"])
    p.user("Delete b.txt.")


@prompt(model=scripted_model("res-guard-throw", [tool_call("delete_file", {"q": "c.txt"}), text("ok")]))
def guard_throws(p):
    p.def_guard("never", lambda c: False, message="deleting is off today")
    _delete_tool(p, guards=["never"])
    p.user("Delete c.txt.")


# -------------------------------------------------------------------------- validators
class Code(BaseModel):
    code: str


def _no_rm(output: dict) -> dict:
    if "rm -rf" in output["code"]:
        return {"valid": False, "errors": ["the code deletes files"], "fix": "write code that does not delete"}
    return {"valid": True}


@prompt(model=scripted_model("res-validator", [
    tool_call("generate_code", {"code": "rm -rf /"}),
    tool_call("generate_code", {"code": "print('hi')"}),
    text("here is the code"),
]))
def validated_tool(p):
    p.def_validator("safe_code", check=_no_rm, sanitize=lambda out: {**out, "code": out["code"].strip()})
    p.def_tool("generate_code", "Generate code", Code, lambda a: {"code": "  " + a.code + "  "},
               validator="safe_code", retry_on_failure=True, max_retries=2)
    p.user("Write code.")


@prompt(model=scripted_model("res-answer", [text("short"), text("a much longer answer")]))
def validated_answer(p):
    p.def_validator("long_enough", check=lambda t: None if len(t) > 10 else f"the answer has {len(t)} characters; write more than 10",
                    answer=True, max_retries=1)
    p.user("Answer at length.")


# --------------------------------------------------------------------------- bad input
@prompt(model=scripted_model("res-bad-retry", [text("unreachable")]))
def unknown_retry(p):
    p.def_tool(flaky_fetch, retry="nosuch")
    p.user("x")


@prompt(model=scripted_model("res-bad-guard", [text("unreachable")]))
def guard_on_unknown_tool(p):
    p.def_guard("auth", lambda c: True, tools=["delete_everything"])
    p.user("x")
