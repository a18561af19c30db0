"""The engine-neutral layers on their own: no Temporal, microseconds per test."""

import asyncio

import pytest
from pydantic import BaseModel

from lmthing.activities.providers.base import ModelConfigError, NullSink, default_registry, resolve_model_spec
from lmthing.activities.providers.scripted import ScriptedProvider, register_script
from lmthing.prompt import StatefulPrompt, tool
from lmthing.prompt.stateful_prompt import PromptError
from lmthing.prompt.types import ModelRequest
from lmthing.testing import text, tool_call


def prepare(body, step=0, **kwargs):
    async def go():
        p = StatefulPrompt(**kwargs)
        await p.run_body(body)
        return p, await p.prepare_step(step)

    return asyncio.run(go())


# ----------------------------------------------------------------------- model resolver
def test_model_strings_split_at_the_first_colon():
    assert resolve_model_spec("openai:gpt-4o", env={}) == ("openai", "gpt-4o")
    assert resolve_model_spec("ollama:llama3:8b", env={}) == ("ollama", "llama3:8b")


def test_aliases_chain_through_lm_model_variables():
    env = {"LM_MODEL_LARGE": "smart", "LM_MODEL_SMART": "anthropic:claude-x"}
    assert resolve_model_spec("large", env=env) == ("anthropic", "claude-x")


def test_a_missing_alias_names_the_variable_to_set():
    with pytest.raises(ModelConfigError, match=r"Model 'smart' .* \(reached through large -> smart\): set LM_MODEL_SMART=provider:model_id on the worker"):
        resolve_model_spec("large", env={"LM_MODEL_LARGE": "smart"})


def test_an_alias_loop_is_reported():
    with pytest.raises(ModelConfigError, match="Model alias loop: a -> b -> a"):
        resolve_model_spec("a", env={"LM_MODEL_A": "b", "LM_MODEL_B": "a"})


def test_an_unknown_provider_lists_the_available_ones():
    with pytest.raises(ModelConfigError, match=r"Unknown model provider 'zai' in 'zai:glm'. Available providers: anthropic, local, openai, scripted\. .*ZAI_API_KEY, ZAI_API_BASE and ZAI_API_TYPE=openai"):
        default_registry().resolve("zai:glm", env={})


# ------------------------------------------------------------------------ scripted model
def test_scripted_steps_group_text_with_the_tool_calls_after_it():
    register_script("unit-group", [text("a"), tool_call("x"), tool_call("y"), text("b"), text("c"), [tool_call("z")]])
    provider = ScriptedProvider()

    def step(n):
        return asyncio.run(provider.complete("unit-group", ModelRequest(model="scripted:unit-group", step=n), NullSink()))

    first = step(0)
    assert first.text == "a" and [c.name for c in first.tool_calls] == ["x", "y"]
    assert [c.id for c in first.tool_calls] == ["call_0_0", "call_0_1"]
    assert step(1).text == "b" and step(2).text == "c"
    assert [c.name for c in step(3).tool_calls] == ["z"]
    with pytest.raises(ModelConfigError, match="has 4 step\\(s\\); the run asked for step 4 \\(steps count from 0, so its model call number 5\\)"):
        step(4)


def test_the_same_step_always_gets_the_same_answer():
    register_script("unit-stable", [text("one"), text("two")])
    provider = ScriptedProvider()
    answers = {asyncio.run(provider.complete("unit-stable", ModelRequest(model="m", step=1), NullSink())).text for _ in range(3)}
    assert answers == {"two"}


# --------------------------------------------------------------------------- the prompt
def test_prepare_step_builds_system_messages_and_tools():
    class Args(BaseModel):
        q: str

    def body(p):
        p.def_system("role", "R")
        p.def_var("X", "1")
        p.def_tool("search", "Search", Args, lambda a: {})
        p.user("hi")

    _, prepared = prepare(body)
    assert prepared.system == "<role>\nR\n</role>\n<variables>\n  <X>\n 1\n  </X>\n</variables>"
    assert [m.content for m in prepared.messages] == ["hi"]
    assert prepared.tools[0].parameters["properties"]["q"]["type"] == "string"


def test_plugins_add_def_methods_bound_to_the_prompt():
    def def_greeting(p, name):
        return p.def_system("greeting", f"Greet {name}")

    _, prepared = prepare(lambda p: p.def_greeting("Ann"), plugins=[{"def_greeting": def_greeting}])
    assert prepared.system == "<greeting>\nGreet Ann\n</greeting>"
    with pytest.raises(AttributeError, match="is the plugin that provides it in plugins"):
        prepare(lambda p: p.def_task_list([]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda p: p.def_tool("bad name!", "d", None, lambda a: 1), "tool name 'bad name!' is invalid"),
        (lambda p: p.def_tool("t", "d", None, None), "give a function to run"),
        (lambda p: p.def_agent("a", "d", None), "give a function fn\\(args, child_prompt\\)"),
        (lambda p: p.def_state("k", object()), "must be JSON-compatible"),
        (lambda p: p.def_effect("not callable"), "the callback must be callable"),
    ],
)
def test_api_misuse_raises_a_prompt_error_that_says_how_to_fix_it(body, message):
    with pytest.raises(PromptError, match=message):
        prepare(body)


def test_step_modifier_rejects_unknown_kinds():
    def body(p):
        p.def_effect(lambda ctx, mod: mod("nope", []))

    with pytest.raises(ValueError, match="unknown kind 'nope'; use one of messages, tools, systems, variables"):
        prepare(body)


# ----------------------------------------------------------------------------- @tool
def test_tool_decorator_needs_a_description_and_named_parameters():
    with pytest.raises(TypeError, match="needs a description"):

        @tool
        def nameless(x: int) -> int:
            return x

    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs are not supported"):

        @tool
        def variadic(*values: int) -> int:
            """Sum."""
            return sum(values)


def test_tool_decorator_keeps_the_function_callable():
    @tool
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    assert double(4) == 8
    assert double.activity_name == "lmthing.tool.double"
