"""Prompts that pin lmthing's step-by-step behaviour (LMTHING_SEMANTICS.md)."""

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call


class Flag(BaseModel):
    value: bool = True


def _two_steps(name: str, tool: str = "toggle", args: dict | None = None) -> str:
    return scripted_model(name, [tool_call(tool, args or {}), text("done")])


@prompt(model=scripted_model("sem-render", [text("ok")]))
def render_example(p):
    p.def_system("role", "You are a helpful assistant.")
    p.def_var("USER_NAME", "John Doe")
    p.def_data("USER_DATA", {"age": 30, "city": "NYC"})
    p.user("Hi")


@prompt(model=scripted_model("sem-nothing", [text("ok")]))
def no_system(p):
    p.user("Hi")


@prompt(model=scripted_model("sem-yaml", [text("ok")]))
def nested_data(p):
    p.def_data("PROFILE", {"name": "Ann", "tags": ["a", "b"], "address": {"city": "Oslo", "zip": "0150"}})
    p.user("Hi")


@prompt(model=_two_steps("sem-rerun"))
def rerun(p):
    """Re-runs keep the user message single, move redefined parts in place, and drop what
    the function no longer declares."""
    toggled, set_toggled = p.def_state("toggled", False)
    runs, set_runs = p.def_state("runs", 0)
    p.def_system("first", "one" if not toggled else "one, after toggle")
    if not toggled:
        p.def_system("temporary", "only before the toggle")
        p.def_tool("toggle", "Flip the toggle", None, lambda args: set_toggled(True) or {"toggled": True})
    p.def_system("last", "three")
    p.user(f"Runs so far: {runs}")
    p.def_effect(lambda ctx, mod: set_runs(lambda r: r + 1))


@prompt(model=scripted_model("sem-remind", [[tool_call("noop")], [tool_call("noop")], text("done")]))
def remind(p):
    step, set_step = p.def_state("step", 0)
    name = p.def_var("USER_NAME", "Ann")
    search = p.def_tool("noop", "Does nothing", None, lambda args: set_step(step + 1) or {})
    if step == 0:
        name.remind()
        search.remind()
    p.user(f"Greet {name} using {search.value}")


@prompt(model=scripted_model("sem-disable", [[tool_call("noop")], [tool_call("noop")], text("done")]))
def disable(p):
    secret = p.def_var("SECRET", "s3cr3t")
    helper = p.def_tool("noop", "Does nothing", None, lambda args: {})

    def effect(ctx, mod):
        if ctx.step_number == 1:
            secret.disable()
            helper.disable()

    p.def_effect(effect)
    p.user("Hi")


@prompt(model=scripted_model("sem-effects", [[tool_call("bump")], [tool_call("noop")], [tool_call("bump")], text("done")]))
def effects(p):
    count, set_count = p.def_state("count", 0)
    log, set_log = p.def_state("log", [])
    p.def_tool("bump", "Increment", None, lambda args: set_count(lambda c: c + 1) or {"count": count + 1})
    p.def_tool("noop", "Nothing", None, lambda args: {})

    def add(entry):
        set_log(lambda items: [*items, entry])

    p.def_effect(lambda ctx, mod: add(f"every:{ctx.step_number}"))
    p.def_effect(lambda ctx, mod: add(f"once:{ctx.step_number}"), [])
    p.def_effect(lambda ctx, mod: add(f"count={count}:{ctx.step_number}"), [count])
    p.def_effect(
        lambda ctx, mod: add(f"last:{ctx.last_tool.tool_name if ctx.last_tool else None}"),
    )
    p.user("Go")


@prompt(model=scripted_model("sem-mod", [text("ok")]))
def step_modifiers(p):
    p.def_system("role", "Assistant")
    p.def_system("style", "Be brief")
    p.def_tool("a", "Tool A", None, lambda args: {})
    p.def_tool("b", "Tool B", None, lambda args: {})

    def effect(ctx, mod):
        mod("tools", ["b"])
        mod("systems", ["style", {"name": "extra", "value": "Added for this call"}])
        mod("variables", [{"name": "TODAY", "value": "Monday"}, {"name": "CFG", "value": {"k": 1}, "data": True}])
        mod("messages", [{"role": "user", "content": "Appended for this call"}])

    p.def_effect(effect)
    p.user("Hi")


@prompt(model=scripted_model("sem-mod-steps", [tool_call("a"), text("done")]))
def step_modifier_once(p):
    p.def_tool("a", "Tool A", None, lambda args: {})

    def effect(ctx, mod):
        if ctx.step_number == 0:
            mod("messages", [{"role": "user", "content": "only at step 0"}])

    p.def_effect(effect)
    p.user("Hi")


@prompt(model=scripted_model("sem-state", [tool_call("setters", {}), text("done")]))
def state_semantics(p):
    value, set_value = p.def_state("value", 10)
    seen, set_seen = p.def_state("seen", [])
    again, _ = p.def_state("value", 10)  # declared again (same initial): the same state

    def setters(args):
        set_value(20)
        set_value(lambda prev: prev + 1)
        # The closure sees the snapshot of its own step, not the setter's change.
        set_seen(lambda s: [*s, {"closure_value": value, "again": again}])
        return {"closure_value": value}

    p.def_tool("setters", "Call setters", None, setters)
    p.user(f"value={value}")


@prompt(model=scripted_model("sem-reminded", [text("ok")]))
def reminded_items(p):
    a = p.def_var("A", "1")
    b = p.def_system("B", "2")
    a.remind()
    b.remind()
    p.def_state("items", p.get_reminded_items())
    p.user(f"{a} {b.value} {str(a)}")
