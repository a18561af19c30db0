"""Prompts and a tool for the cache tests (tests/test_cache.py): an @tool whose result is
kept in a def_cache, counted where it really runs (on the worker)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from lmthing import prompt, tool
from lmthing.testing import last_user_text, scripted_model, text, tool_call

with workflow.unsafe.imports_passed_through():
    from tests.apps.model_call_log import ASKED

RUNS: list[str] = []  # each real run of the tool, on this worker process


@tool
def exchange_rate(currency: str, day: str) -> dict:
    """The exchange rate of a currency on a day (an expensive lookup)."""
    RUNS.append(f"{currency}@{day}")
    return {"currency": currency, "rate": 1.0 + len(currency) / 10, "day": day}


def _lookup(request: Any) -> Any:
    if request.step == 0:
        return [tool_call("exchange_rate", {"currency": "EUR", "day": last_user_text(request).split()[-1]})]
    return text(str(request.messages[-1].content))


@prompt(model=scripted_model("cache-lookup", [_lookup], repeat=True), max_steps=3)
def cached_lookup(p, args: dict):
    p.def_cache("rates", ttl=args.get("ttl"), key=(lambda a: a["currency"]) if args.get("by_currency") else None)
    p.def_tool(exchange_rate, cache="rates")
    p.user(f"What is the euro's rate on {args.get('day', '2026-12-01')}")


@prompt(model=scripted_model("cache-undefined", [_lookup], repeat=True), max_steps=3)
def undefined_cache(p):
    p.def_tool(exchange_rate, cache="nowhere")
    p.user("What is the euro's rate?")


def _answer(request: Any) -> Any:
    ASKED.append(last_user_text(request))
    return text(f"The answer to {last_user_text(request)!r} is 42.")


@prompt(model=scripted_model("cache-answers", [_answer], repeat=True))
def cached_answers(p, args: dict):
    p.def_cache("answers", ttl=3600, model_calls=True)
    p.user(args["question"])
