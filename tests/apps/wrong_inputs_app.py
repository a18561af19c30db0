"""Prompts for tests/test_wrong_inputs.py: each makes one mistake a user makes in a prompt
function, a tool or a model reply, and must get a message that names it and the fix."""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

UNREACHED = scripted_model("wrong-inputs-unreached", [text("the model was called, though the prompt is broken")])


class City(BaseModel):
    city: str


# ------------------------------------------------------- mistakes in the prompt function
@prompt(model=UNREACHED)
def state_key_twice(p):
    p.def_state("count", 0)
    p.def_state("count", [])  # a second part of the prompt picked the same key
    p.user("Hi")


@prompt(model=UNREACHED)
def system_part_not_text(p):
    p.def_system("rules", {"tone": "kind"})
    p.user("Hi")


@prompt(model=UNREACHED)
def data_not_json(p):
    p.def_data("when", object())
    p.user("Hi")


@prompt(model=UNREACHED)
def effect_deps_not_a_list(p):
    count, _ = p.def_state("count", 0)
    p.def_effect(lambda ctx, step: None, count)
    p.user("Hi")


@prompt(model=UNREACHED)
def tool_schema_not_a_schema(p):
    p.def_tool("lookup", "Looks a city up", {"city": "str"}, lambda args: args)
    p.user("Hi")


@prompt(model=UNREACHED)
def tool_schema_an_instance(p):
    p.def_tool("lookup", "Looks a city up", City(city="x"), lambda args: args)
    p.user("Hi")


@prompt(model=UNREACHED)
def agent_without_function(p):
    p.def_agent("helper", "Helps", City, "not a function")
    p.user("Hi")


@prompt(model=UNREACHED)
def tool_name_with_spaces(p):
    p.def_tool("look up", "Looks a city up", City, lambda args: args)
    p.user("Hi")


@prompt(model=UNREACHED)
def plugin_method_missing(p):
    p.def_task_list([{"id": "1", "title": "x"}])  # without plugins=[task_list_plugin]
    p.user("Hi")


@prompt(model=UNREACHED)
def message_not_text(p):
    p.user({"text": "Hi"})


@prompt(model=UNREACHED)
def unknown_event(p):
    p.def_event("on_tool_start", lambda event: None)
    p.user("Hi")


@prompt(model=UNREACHED)
def metric_of_unknown_kind(p):
    p.def_metric("files", "tally")
    p.user("Hi")


@prompt(model=UNREACHED)
async def emits_lifecycle_awaited(p):
    await p.emit("on_finish")
    p.user("Hi")


@prompt(model=UNREACHED)
def reads_the_clock(p):
    import datetime

    p.user(f"It is {datetime.datetime.now()}")  # not deterministic: the sandbox refuses it


@prompt(model=UNREACHED)
def raises_a_plain_error(p):
    {}["missing"]  # a bug in the user's own code


# ------------------------------------------------ mistakes the model makes with tools
@tool
async def wi_lookup(city: str) -> dict:
    """Looks a city up."""
    return {"city": city, "population": 1000}


@tool
async def wi_explodes(city: str) -> dict:
    """Always fails."""
    raise ValueError(f"no data for {city}")


MODEL_MISTAKES = scripted_model("wrong-inputs-model", [
    [
        tool_call("no_such_tool", {"city": "Oslo"}),
        tool_call("wi_lookup", '{"city": "Oslo"'),  # malformed JSON
        tool_call("wi_lookup", {"town": "Oslo"}),  # a field the schema does not have
        tool_call("wi_lookup", {"city": 7}),  # the wrong type
        tool_call("wi_lookup", "[1, 2]"),  # JSON, but not an object
        tool_call("wi_explodes", {"city": "Oslo"}),  # the tool itself raises
    ],
    text("done"),
])


@prompt(model=MODEL_MISTAKES)
def model_misuses_tools(p):
    p.def_tool(wi_lookup)
    p.def_tool(wi_explodes)
    p.user("Look Oslo up.")


# ------------------------------------------- mistakes in what a run is started with
@prompt(model=scripted_model("wrong-inputs-city", [text("A fine city.")]))
def takes_a_city(p, args: City):
    p.user(f"Tell me about {args.city}.")
