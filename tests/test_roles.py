"""Templates, roles and plugins in real runs (docs/templates-and-roles.md): a typed template
renders with its defaults and refuses a value of the wrong type; a role limits the tools the
model is offered and may call, puts one behind a person's approval, and fails the run when
it names a tool the prompt does not define; a plugin installed by def_plugin lends the
prompt its methods, with its version listed, and uninstalls."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError

from lmthing.plugins.roles import roles_plugin
from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from tests.apps import roles_app as app
from tests.support import pending_of, run, start


@pytest.fixture(autouse=True)
def _worker(worker):
    return worker


async def test_a_template_renders_its_values_and_defaults(client):
    result, _ = await run(client, app.templated_review, {"code": "x = 1", "level": "strict"})
    assert result.text == "Review this python code at the strict level (score 7):\nx = 1"


async def test_a_template_value_of_the_wrong_type_fails_naming_the_variable(client):
    handle = await start(client, app.templated_review, {"code": "x = 1", "level": "lax"})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "variable 'level' is one of 'basic', 'strict'; got 'lax'" in str(failure.value.cause)


def test_a_template_refuses_undeclared_places_and_missing_values():
    p = StatefulPrompt(plugins=[roles_plugin])
    with pytest.raises(PromptError, match=r"uses \{\{who\}\}, which variables= does not declare"):
        p.def_template("hello", "Hello {{who}}")
    p.def_template("hello", "Hello {{who}}", {"who": "string"})
    with pytest.raises(PromptError, match="needs a value for 'who'"):
        p.use_template("hello", {}, as_="text")
    with pytest.raises(PromptError, match="has no variable"):
        p.use_template("hello", {"who": "Ada", "whom": "Bob"}, as_="text")
    assert p.use_template("hello", {"who": "Ada"}, as_="text") == "Hello Ada"


async def test_a_role_limits_the_tools_the_model_sees_and_may_call(client):
    result, steps = await run(client, app.role_play, {"role": "senior"})
    assert [t.name for t in steps[0].request.tools] == ["read_file"]
    assert "You are a senior engineer.\nTone: calm\nCapabilities: code-review" in steps[0].request.system
    # The model called deploy anyway: it was not offered, so it did not run.
    assert "deploy" in str(steps[0].tool_results[0].result) and steps[0].tool_results[0].is_error
    assert "deployed" not in result.text


async def test_a_role_puts_a_tool_behind_a_persons_approval(client):
    handle = await start(client, app.role_play, {"role": "junior"})
    [item] = await pending_of(handle)
    assert item.tool == "deploy"
    await handle.decide(item.id, "approve", by="lead")
    result = await handle.result()
    assert '"deployed":"staging"' in result.text.replace(" ", "")
    assert (await handle.handle.query("budget"))["tokens"] > 0  # the role's token budget keeps a ledger


async def test_a_role_naming_an_unknown_tool_fails_the_run_naming_it(client):
    handle = await start(client, app.role_play, {"role": "confused"})
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "names tool 'read_fiel', which the prompt does not define" in str(failure.value.cause)


async def test_a_plugin_installed_for_the_run_lends_its_methods(client):
    result, _ = await run(client, app.with_plugin)
    assert "Greet Ada by name." in result.text
    assert "name: greeter" in result.text and "version: 1.2.0" in result.text


def test_an_uninstalled_plugin_is_gone():
    p = StatefulPrompt()
    p.def_plugin("greeter", {"def_greeting": lambda p, who: p.def_system("greeting", who)}, version="1.0")
    p.def_greeting("Ada")
    assert p.installed_plugins() == [{"name": "greeter", "version": "1.0"}]
    assert p.uninstall_plugin("greeter") is True
    with pytest.raises(AttributeError, match="def_greeting"):
        p.def_greeting("Bob")
    with pytest.raises(PromptError, match="a plugin is a dict of functions"):
        p.def_plugin("empty", {})
