"""Prompts for the memory tests (tests/test_memory.py): a key-value memory remembered in one
run and recalled in the next, a vector memory searched by meaning, an episodic memory with
a summary, beliefs, memory tools the model calls, and a session scope."""

from __future__ import annotations

from typing import Any

from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text, tool_call


def _say_vars(request: Any) -> Any:
    """Answers with the system prompt's variables block, so a test reads what was recalled."""
    system = request.system or ""
    start = system.find("<variables>")
    return text(system[start:system.find("</variables>") + 12] if start >= 0 else "no variables")


SAY = scripted_model("memory-say", [_say_vars], repeat=True)


async def _remember_and_show(p, args: dict, memory: str, scope: str, key: str) -> None:
    """Remember ``args["set"]`` under ``key`` if given; show what the memory holds there."""
    kv = p.def_memory(memory, "kv", scope=scope)
    if "set" in args:
        await kv.remember(args["set"], key=key)
    p.def_var(key, await kv.recall(key))


@prompt(model=SAY)
async def kv_prefs(p, args: dict):
    await _remember_and_show(p, args, "prefs", "agent", "color")
    p.user("What is my color?")


@prompt(model=SAY)
async def session_notes(p, args: dict):
    await _remember_and_show(p, args, "session-notes", "session", "topic")
    p.user("What were we on?")


@prompt(model=SAY)
async def vector_facts(p, args: dict):
    facts = p.def_memory("facts", "vector", dimensions=64)
    for fact in args.get("store", []):
        await facts.remember(fact)
    if "ask" in args:
        p.def_data("found", await facts.search(args["ask"], limit=args.get("limit", 3)))
    p.user("Which facts fit?")


@prompt(model=SAY)
async def diary(p, args: dict):
    events = p.def_memory("diary", "episodic", scope="global")
    for n, event in enumerate(args.get("events", [])):
        await events.remember(event, key=f"{args['day']}-{n}")
    if args.get("summarize"):
        p.def_var("summary", await events.summarize(summarizer=lambda texts: f"{len(texts)} events: " + "; ".join(texts)))
    p.def_data("recalled", await events.recall(limit=2))
    p.user("What happened?")


@prompt(model=SAY)
async def beliefs(p, args: dict):
    b = p.def_memory("beliefs", "belief", scope="global", half_life=args.get("half_life"))
    for n, (proposition, evidence) in enumerate(args.get("evidence", [])):
        await b.update(proposition, evidence, key=str(n))
    p.def_var("p", round(await b.belief(args["ask"]), 4))
    p.user("How sure are you?")


def _remember_then_answer(request: Any) -> Any:
    if request.step == 0:
        return [tool_call("notes_remember", {"text": last_user_text(request)})]
    return text("noted")


@prompt(model=scripted_model("memory-tools", [_remember_then_answer], repeat=True), max_steps=3)
async def note_taker(p, args: dict):
    p.def_memory("notes", "vector", scope="global", dimensions=64, tools=True)
    p.user(args["note"])


def _recall_then_answer(request: Any) -> Any:
    if request.step == 0:
        return [tool_call("notes_recall", {"query": last_user_text(request)})]
    return text(str(request.messages[-1].content))


@prompt(model=scripted_model("memory-recall-tool", [_recall_then_answer], repeat=True), max_steps=3)
async def note_reader(p, args: dict):
    p.def_memory("notes", "vector", scope="global", dimensions=64, tools=True)
    p.user(args["question"])


@prompt(model=SAY)
async def bad_session(p):
    notes = p.def_memory("nosession", "kv", scope="session")
    await notes.recall("x")
    p.user("hi")


def _count_then_answer(request: Any) -> Any:
    if request.step == 0:
        return [tool_call("bump", {})]
    return _say_vars(request)


@prompt(model=scripted_model("memory-counter", [_count_then_answer], repeat=True), max_steps=3)
async def visit_counter(p, args: dict):
    visits, set_visits = p.def_state("visits", 0, persist=True, scope=args.get("scope", "agent"))
    p.def_tool("bump", "Count this visit", None, lambda a: set_visits(lambda v: v + 1) or {"visits": visits + 1})
    p.def_var("visits", visits)
    p.user("Count me.")


@prompt(model=SAY)
async def local_facts(p, args: dict):
    facts = p.def_memory("local-facts", "vector", scope="global", embedding="local:all-minilm-l6-v2")
    for fact in args.get("store", []):
        await facts.remember(fact)
    if "ask" in args:
        p.def_data("found", await facts.search(args["ask"], limit=1))
    p.user("Which fact fits?")


@prompt(model=SAY)
async def vector_facts_32(p, args: dict):
    facts = p.def_memory("facts", "vector", dimensions=32)  # the same memory as vector_facts, shorter vectors
    for fact in args.get("store", []):
        await facts.remember(fact)
    p.user("Store it.")


def _bump_then_answer(request: Any) -> Any:
    return [tool_call("bump", {})] if request.step == 0 else text("counted")


@prompt(model=scripted_model("memory-changing", [_bump_then_answer], repeat=True), max_steps=3)
async def changing_value(p, args: dict):
    count, set_count = p.def_state("count", 0)
    p.def_tool("bump", "Count one more", None, lambda a: set_count(count + 1) or {"count": count + 1})
    await p.def_memory("counts", "kv", scope="run").remember(count, key="count")
    p.user("Count.")


@prompt(model=SAY)
async def forgetful(p, args: dict):
    notes = p.def_memory("forgetful", "kv", scope="global")
    for key, value in args.get("set", {}).items():
        await notes.remember(value, key=key)
    if "forget" in args:
        p.def_var("forgot", await notes.forget(args["forget"]))
    p.def_data("left", {k: await notes.recall(k) for k in ("a", "b")})
    p.user("What is left?")


@prompt(model=SAY)
async def short_lived(p, args: dict):
    notes = p.def_memory("short-lived", "kv", scope="global", ttl=1)
    if "set" in args:
        await notes.remember(args["set"], key="code")
    p.def_var("code", await notes.recall("code"))
    p.user("What is the code?")
