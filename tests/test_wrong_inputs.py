"""Wrong inputs (issue 14): things users really get wrong, across the Python API, prompt
code, model replies to tools, the lmthing CLI and the `temporal` CLI.

Every case asserts what the user reads: the message names what was wrong and how to fix
it. Cases that run on the dev server also assert that nothing hangs (each is bounded) and
that no run is left with a failing workflow task (Temporal would retry that forever). More
cases of the same kind are in tests/test_first_contact.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support import temporal_cli
from tests.test_cli import lmthing

BOUND = 30.0  # seconds: no case may take longer than this


class City(BaseModel):
    city: str


def _fn(args: Any) -> Any:
    return args


def _prompt() -> Any:
    from lmthing.prompt.stateful_prompt import StatefulPrompt

    return StatefulPrompt()


def _api_cases() -> list[Any]:
    import lmthing as lm
    from lmthing.orchestration import team
    from lmthing.prompt.stateful_prompt import PromptError
    from lmthing.testing import scripted_model, text

    p = _prompt()
    agent = lm.call_agent("writer")

    def state_twice(p: Any) -> None:
        p.def_state("n", 0)
        p.def_state("n", [])

    def run_body(body: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: asyncio.run(_prompt().run_body(body))

    def prompt_of(**kwargs: Any) -> Callable[[], Any]:
        def make() -> Any:
            def agent_fn(p: Any) -> None:
                p.user("x")

            return lm.prompt(**kwargs)(agent_fn)

        return make

    def case(id: str, make: Callable[[], Any], error: type[BaseException], said: str) -> Any:
        return pytest.param(make, error, said, id=id)

    return [
        # definitions on the prompt
        case("def_tool-no-function", lambda: p.def_tool("t", "d", City, 5), PromptError, "def_tool('t'): give a function to run"),
        case("def_tool-bad-name", lambda: p.def_tool("bad name!", "d", City, _fn), PromptError,
             "tool name 'bad name!' is invalid; use 1-64 letters, digits, '_' or '-'"),
        case("def_tool-dict-not-a-schema", lambda: p.def_tool("t", "d", {"x": 1}, _fn), PromptError,
             "the dict {'x': 1} is not a JSON schema of an object; give a pydantic model class"),
        case("def_tool-model-instance", lambda: p.def_tool("t", "d", City(city="x"), _fn), PromptError,
             "the schema is the model class, not an instance: give City, not City(...)"),
        case("def_tool-plain-type", lambda: p.def_tool("t", "d", str, _fn), PromptError,
             "a tool's arguments are an object: wrap the value in a pydantic model"),
        case("def_tool-description-not-text", lambda: p.def_tool("t", 5, City, _fn), PromptError,
             "def_tool('t'): the description is text the model reads, got int 5"),
        case("def_agent-no-function", lambda: p.def_agent("a", "d", City, "x"), PromptError, "def_agent('a'): give a function fn(args, child_prompt)"),
        case("def_agent-bad-schema", lambda: p.def_agent("a", "d", 3, lambda a, c: None), PromptError,
             "def_agent('a'): the schema must be a pydantic model class, a JSON schema dict or None, got 3"),
        case("def_system-not-text", lambda: p.def_system("s", {"a": 1}), PromptError,
             "def_system('s'): a system part is text, got dict {'a': 1}; format it first, or use def_data"),
        case("def_system-empty-name", lambda: p.def_system("", "x"), PromptError, "def_system: the name must be a non-empty string"),
        case("def_var-name-not-text", lambda: p.def_var(3, "x"), PromptError, "def_var: the name must be a non-empty string, got 3"),
        case("def_data-not-json", lambda: p.def_data("d", {"a": object()}), PromptError,
             "def_data('d'): the value {'a': <object object"),
        case("def_effect-not-callable", lambda: p.def_effect(3), PromptError, "def_effect: the callback must be callable(ctx, step_modifier)"),
        case("def_effect-deps-not-a-list", lambda: p.def_effect(lambda c, m: None, deps=3), PromptError,
             "def_effect: deps is a list of the values the effect depends on (deps=[count]), got int 3"),
        case("def_event-lifecycle-lookalike", lambda: p.def_event("on_tool_start", lambda e: None), PromptError,
             "def_event: unknown lifecycle event 'on_tool_start'. Lifecycle events: before_model_call"),
        case("def_event-handler-not-callable", lambda: p.def_event("x", 3), PromptError, "def_event('x', handler): the handler must be callable, got int"),
        case("def_metric-unknown-kind", lambda: p.def_metric("m", "gauge2"), PromptError,
             "def_metric('m'): kind must be 'counter', 'gauge' or 'histogram', got 'gauge2'"),
        case("def_metric-bad-name", lambda: p.def_metric("bad name", "counter"), PromptError,
             "metric names are letters, digits and underscores, not starting with a digit (Prometheus)"),
        case("user-None", lambda: p.user(None), PromptError, "a message is text, got NoneType None; format it first"),
        case("def_message-unknown-role", lambda: p.def_message("robot", "hi"), PromptError,
             "def_message: role must be 'user' or 'assistant', got 'robot'; use def_system for system text"),
        case("def_state-key-not-text", lambda: p.def_state(5, 0), PromptError, "def_state: the name must be a non-empty string, got 5"),
        case("def_state-not-json", lambda: p.def_state("k", object()), PromptError, "def_state('k'): the value <object object"),
        case("def_state-key-twice", run_body(state_twice), PromptError,
             "def_state('n') is declared twice in one run of the prompt function, with different initial values (0, then [])"),
        case("plugin-method-without-plugin", lambda: p.def_task_list([]), AttributeError,
             "StatefulPrompt has no attribute 'def_task_list' (is the plugin that provides it in plugins=[...]?)"),
        case("emit-lifecycle-name", lambda: asyncio.run(p.emit("on_step")), PromptError,
             "emit('on_step'): lifecycle events are fired by the run itself; emit custom events only"),
        # @prompt and @tool
        case("prompt-on-a-value", lambda: lm.prompt(model="openai:gpt-4o")(5), TypeError, "@prompt decorates a function fn(p) or fn(p, args), got 5"),
        case("prompt-on-a-lambda", lambda: lm.prompt(model="openai:gpt-4o")(lambda p: None), TypeError,
             "@prompt on a lambda: its workflow type would be '<lambda>'; use a def, or give name=..."),
        case("prompt-three-parameters", lambda: lm.prompt()(_three), TypeError,
             "the function takes (p) or (p, args)"),
        case("prompt-model-not-text", prompt_of(model=5), TypeError, "@prompt: model= is a string 'provider:model_id' (e.g. 'openai:gpt-4o') or an alias; got 5"),
        case("prompt-model-empty", prompt_of(model=" "), TypeError, "@prompt: model= is a string 'provider:model_id'"),
        case("prompt-max-steps-0", prompt_of(max_steps=0), TypeError, "@prompt: max_steps= is a positive int (model calls a run may make); got 0"),
        case("prompt-name-empty", prompt_of(name=""), TypeError, "@prompt: name= is the workflow type, a non-empty string; got ''"),
        case("prompt-system-not-text", prompt_of(system=["be nice"]), TypeError, "@prompt: system= is text; got list"),
        case("prompt-plugins-not-a-list", prompt_of(plugins="task_list"), TypeError, "@prompt: plugins= is a list"),
        case("prompt-stop-when-not-callable", prompt_of(stop_when=3), TypeError, "stop_when= is a function of the steps so far (e.g. step_count_is(3))"),
        case("prompt-unknown-option", prompt_of(options={"temprature": 0}), TypeError,
             "@prompt: unknown model option(s) temprature; the options are temperature, max_output_tokens"),
        case("tool-on-a-value", lambda: lm.tool(5), TypeError, "tool(): use @tool, @tool(name=..., ...), or tool(name, description, schema, fn)"),
        case("tool-without-description", lambda: lm.tool(lambda x: x), TypeError, "Tool '<lambda>' needs a description: give it a docstring or description=..."),
        case("sub-tool-no-function", lambda: lm.tool("t", "d", City, None), TypeError, "tool('t'): give a function to run"),
        case("sub-tool-bad-schema", lambda: lm.tool("t", "d", [1], _fn), TypeError, "tool('t'): the schema must be a pydantic model class"),
        case("sub-agent-no-function", lambda: lm.agent("a", "d", City, None), TypeError, "agent('a'): give a function fn(args, child_prompt)"),
        # run settings
        case("RetryOptions-negative", lambda: lm.RetryOptions(maximum_attempts=-1), ValueError,
             "RetryOptions: maximum_attempts must be >= 0 (0 = unlimited), got -1"),
        # the scripted model
        case("script-not-a-list", lambda: scripted_model("wi-x", "hello"), TypeError, "scripted_model(wi-x): a script is a list of replies"),
        case("script-unknown-item", lambda: scripted_model("wi-y", ["hello"]), TypeError,
             "Scripted model: unsupported item 'hello'; use text(...), tool_call(...) or a list"),
        case("script-text-not-text", lambda: text(5), TypeError, "text(): the model's reply is a str, got int 5"),
        # orchestration
        case("step-empty-id", lambda: lm.step("", agent="a"), Exception, "step: the id must be a non-empty string other than '__end__'"),
        case("step-two-actions", lambda: lm.step("s", agent="a", tool="t"), Exception,
             "step 's': give exactly one of action=fn(ctx), agent='<name>' or tool=<tool>"),
        case("step-negative-retries", lambda: lm.step("s", agent="x", retries=-1), Exception, "step 's': retries must be an int >= 0, got -1"),
        case("step-negative-timeout", lambda: lm.step("s", agent="x", timeout=-2), Exception, "step 's': timeout is in seconds and must be > 0, got -2"),
        case("step-condition-not-callable", lambda: lm.step("s", agent="x", condition=5), Exception,
             "step 's': condition must be a function fn(ctx) -> bool, got 5"),
        case("workflow-unknown-route", lambda: lm.def_workflow("wi-w", steps=[lm.step("a", agent="x", on_success="zzz")]), Exception,
             "workflow 'wi-w': step 'a' routes on_success to unknown step 'zzz' (steps: a; END ends the workflow)"),
        case("workflow-duplicate-ids", lambda: lm.def_workflow("wi-w2", steps=[lm.step("a", agent="x"), lm.step("a", agent="y")]), Exception,
             "workflow 'wi-w2': two steps have the id 'a'; step ids must be unique"),
        case("workflow-no-steps", lambda: lm.def_workflow("wi-w3", steps=[]), Exception, "workflow 'wi-w3': give a list of step(...) items (at least one)"),
        case("pipeline-empty", lambda: lm.def_pipeline("wi-p", []), Exception, "pipeline 'wi-p': give a list of stages"),
        case("parallel-unknown-aggregation", lambda: lm.parallel([agent], aggregation="most"), Exception,
             "unknown aggregation 'most'; use one of all, first, majority, consensus, n_best"),
        case("parallel-min-success-too-big", lambda: lm.parallel([agent], min_success=3), Exception,
             "min_success must be an int from 1 to the number of branches (1), got 3"),
        case("parallel-negative-timeout", lambda: lm.parallel([agent], timeout=-1), Exception, "timeout is in seconds and must be > 0, got -1"),
        case("parallel-n-best-without-scorer", lambda: lm.parallel([agent, agent], aggregation="n_best"), Exception,
             "n_best needs evaluator=fn(result) -> score or judge='<agent name>' (exactly one)"),
        case("parallel-no-branches", lambda: lm.parallel([]), Exception, "give at least one branch"),
        case("loop-without-bound", lambda: lm.loop_while(lambda c: True, agent, max_iterations=0), Exception,
             "loop_while: max_iterations must be a positive int (a loop needs an exit bound), got 0"),
        case("loop-predicate-not-callable", lambda: lm.loop_while(3, agent, max_iterations=2), Exception,
             "loop_while: the predicate must be a function fn(ctx), got 3"),
        case("sequence-of-a-value", lambda: lm.sequence(3), Exception, "sequence item 0: 3 is not something that can run"),
        case("choose-predicate-and-decide", lambda: lm.choose(lambda c: "a", branches={"a": agent}, decide="r"), Exception,
             "choose: give either a predicate or decide='<agent name>' (exactly one)"),
        case("call_agent-no-name", lambda: lm.call_agent(""), Exception, "call_agent: give the agent's name (a def_agent or a prompt), got ''"),
        case("call_tool-a-lambda", lambda: lm.call_tool(lambda: 1), Exception, "call_tool: give a def_tool name or an @tool function"),
        case("team-no-members", lambda: team("t", members=[]), Exception, "team 't': members must be a non-empty list of agent names, got []"),
        case("team-member-twice", lambda: team("t", members=["a", "a"]), Exception, "team 't': a member is listed twice in ['a', 'a']"),
        case("team-members-a-string", lambda: team("t", members="ab"), Exception, "members must be a non-empty list of agent names, got 'ab'"),
    ]


def _three(p: Any, a: Any, b: Any) -> None:
    pass


@pytest.mark.parametrize(("make", "error", "said"), _api_cases())
def test_the_python_api_refuses_a_mistake_where_it_is_written(make: Callable[[], Any], error: type[BaseException], said: str) -> None:
    with pytest.raises(error) as raised:
        make()
    assert said in " ".join(str(raised.value).split())
    # Raised with `from None` (or first-hand): no chain of internal exceptions on top of it.
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)


# ----------------------------------------------------- in a run: the prompt function
PROMPT_MISTAKES = [
    ("state_key_twice", "def_state('count') is declared twice in one run of the prompt function, with different initial values (0, then [])"),
    ("system_part_not_text", "def_system('rules'): a system part is text, got dict {'tone': 'kind'}"),
    ("data_not_json", "def_data('when'): the value <object object"),
    ("effect_deps_not_a_list", "def_effect: deps is a list of the values the effect depends on (deps=[count]), got int 0"),
    ("tool_schema_not_a_schema", "def_tool('lookup'): the dict {'city': 'str'} is not a JSON schema of an object"),
    ("tool_schema_an_instance", "def_tool('lookup'): the schema is the model class, not an instance: give City, not City(...)"),
    ("agent_without_function", "def_agent('helper'): give a function fn(args, child_prompt)"),
    ("tool_name_with_spaces", "tool name 'look up' is invalid; use 1-64 letters, digits, '_' or '-'"),
    ("plugin_method_missing", "StatefulPrompt has no attribute 'def_task_list' (is the plugin that provides it in plugins=[...]?)"),
    ("message_not_text", "a message is text, got dict {'text': 'Hi'}; format it first"),
    ("unknown_event", "def_event: unknown lifecycle event 'on_tool_start'"),
    ("metric_of_unknown_kind", "def_metric('files'): kind must be 'counter', 'gauge' or 'histogram', got 'tally'"),
    ("emits_lifecycle_awaited", "emit('on_finish'): lifecycle events are fired by the run itself; emit custom events only"),
    ("reads_the_clock", "is not deterministic: it used datetime.datetime.now"),
    ("raises_a_plain_error", "raised KeyError: 'missing'"),
]


@pytest.mark.parametrize(("name", "said"), PROMPT_MISTAKES, ids=[n for n, _ in PROMPT_MISTAKES])
async def test_a_mistake_in_the_prompt_function_fails_the_run_once_with_the_fix(client, worker, name: str, said: str) -> None:
    from temporalio.client import WorkflowFailureError

    from tests.support import event_kinds, history, scheduled_activities, start

    handle = await start(client, name)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), BOUND)
    message = " ".join(str(failed.value.cause).split())
    assert f"Prompt '{name}'" in message and said in message
    events = await history(handle)
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(events)  # failed once, not retried forever
    assert scheduled_activities(events) == []  # found before the model was paid for


async def test_what_the_model_gets_wrong_about_tools_goes_back_to_it_and_the_run_goes_on(client, worker) -> None:
    from tests.apps import wrong_inputs_app as app
    from tests.support import event_kinds, history, scheduled_activities, start

    handle = await start(client, app.model_misuses_tools)
    assert (await asyncio.wait_for(handle.result(), BOUND)).text == "done"
    results = (await handle.steps())[0].tool_results
    errors = [" ".join(str(r.result["error"]).split()) for r in results]
    assert all(r.is_error for r in results)
    expected = [
        "Model tried to call unavailable tool 'no_such_tool'. Available tools: wi_lookup, wi_explodes.",  # lmthing's words
        # the AI SDK's words, which lmthing's model saw (docs/api.md), with pydantic's account
        "Invalid input for tool wi_lookup: JSON parsing failed: Text: {\"city\": \"Oslo\". Error message: Expecting ',' delimiter",
        "Invalid input for tool wi_lookup: Type validation failed: Value: {\"town\":\"Oslo\"}. Error message: city: Field required",
        "Invalid input for tool wi_lookup: Type validation failed: Value: {\"city\":7}. Error message: city: Input should be a valid string",
        "Invalid input for tool wi_lookup: Type validation failed: Value: [1,2]. Error message: expected a JSON object, got list",
        "no data for Oslo",
    ]
    for error, said in zip(errors, expected, strict=True):
        assert said in error, error
    events = await history(handle)
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(events)
    # Bad arguments never reach an activity: only the tool that raises was scheduled.
    assert scheduled_activities(events) == ["lmthing.model_call", "lmthing.tool.wi_explodes", "lmthing.model_call"]


# ----------------------------------------------------------------------- the lmthing CLI
@pytest.fixture(scope="module")
def broken_apps(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("apps")
    files = {
        "syntax": "def broken(:\n",
        "raises": 'raise RuntimeError("boom at import")\n',
        "empty": "x = 1\n",
        "imports": "import not_a_module_xyz\n",
    }
    for name, body in files.items():
        (folder / f"{name}_app.py").write_text(body)
    (folder / "history.json").write_text("not json")
    return {name: str(folder / f"{name}_app.py") for name in files} | {"history": str(folder / "history.json"), "dir": str(folder)}


CLI_MISTAKES = [
    ("run-missing-file", ["run", "{dir}/nope.py"], 2, "No such file: {dir}/nope.py"),
    ("run-unknown-module", ["run", "no.such.module"], 2,
     "Cannot find module 'no.such.module': give a dotted module name importable from the current folder or a path to a .py file"),
    ("run-syntax-error", ["run", "{syntax}"], 1, "Cannot import {syntax}: SyntaxError: invalid syntax (syntax_app.py, line 1)"),
    ("run-app-raises", ["run", "{raises}"], 1, "Cannot import {raises}: RuntimeError: boom at import"),
    ("run-app-imports-missing", ["run", "{imports}"], 1, "Cannot import {imports}: No module named 'not_a_module_xyz'"),
    ("run-no-prompts", ["run", "{empty}"], 2, "No prompts found in empty_app ({empty}): define one at module level with @prompt"),
    ("run-misspelt-prompt", ["run", "examples/consensus.py", "--prompt", "consensu"], 2,
     "No prompt named 'consensu' in consensus; it defines: consensus. Did you mean 'consensus'?"),
    ("run-input-not-json", ["run", "examples/consensus.py", "--input", "not json"], 2, "--input is not valid JSON: Expecting value at position 0"),
    ("run-input-wrong-type", ["run", "examples/consensus.py", "--input", '{"question": 5}'], 2,
     "--input does not fit prompt 'consensus': question: Input should be a valid string"),
    ("run-input-not-an-object", ["run", "examples/consensus.py", "--input", "[1, 2]"], 2,
     "--input does not fit prompt 'consensus': (input): Input should be a valid dictionary or instance of Question"),
    ("run-max-steps-0", ["run", "examples/consensus.py", "--max-steps", "0"], 2, "Invalid value for '--max-steps'"),
    ("run-no-target", ["run"], 2, "Missing argument 'target'"),
    ("worker-no-app", ["worker"], 2, "Missing option '--app'"),
    ("worker-app-without-prompts", ["worker", "--app", "{empty}"], 2, "No prompts found in empty_app"),
    ("agents-list-app-raises", ["agents", "list", "--app", "{raises}"], 1, "Cannot import {raises}: RuntimeError: boom at import"),
    ("replay-missing-history", ["replay", "--history-file", "{dir}/none.json", "--app", "examples.consensus"], 1, "No such file: {dir}/none.json"),
    ("replay-not-a-history", ["replay", "--history-file", "{history}", "--app", "examples.consensus"], 1,
     "{history} is not a history JSON file: Expecting value: line 1 column 1 (char 0)"),
    ("dev-port-out-of-range", ["dev", "--port", "99999"], 2, "Invalid value for '--port': Input should be less than or equal to 65535"),
    ("codec-server-port-out-of-range", ["codec-server", "--port", "70000"], 2, "Invalid value for '--port'"),
    ("approve-without-ids", ["approve"], 2, "Missing argument 'workflow_id'"),
    ("unknown-command", ["aprove"], 2, "No such command 'aprove'"),
]


@pytest.mark.parametrize(("args", "code", "said"), [pytest.param(a, c, s, id=i) for i, a, c, s in CLI_MISTAKES])
async def test_the_cli_says_what_is_wrong_in_one_message(broken_apps: dict[str, str], args: list[str], code: int, said: str) -> None:
    def fill(text: str) -> str:
        for key, value in broken_apps.items():
            text = text.replace("{" + key + "}", value)
        return text

    done = await asyncio.wait_for(lmthing(*map(fill, args)), BOUND)
    assert done.code == code, done.out + done.err
    shown = " ".join((done.out + done.err).replace("│", " ").split())
    assert " ".join(fill(said).split()) in shown, shown
    assert "Traceback" not in done.err


# ------------------------------------------------ operators: the `temporal` CLI on a run
DECISION_MISTAKES = [
    ("decide-not-an-object", ["--name", "decide", "--input", '"yes"'],
     "Invalid decision: (input): Input should be a valid dictionary or instance of Decision"),
    ("decide-unknown-id", ["--name", "decide", "--input", '{"id": "zz", "action": "approve"}'], "No pending approval 'zz' (pending approvals: {id})"),
    ("decide-unknown-action", ["--name", "decide", "--input", '{"id": "{id}", "action": "maybe"}'],
     "Invalid decision: action: Input should be 'approve', 'deny' or 'modify'"),
    ("decide-modify-without-args", ["--name", "decide", "--input", '{"id": "{id}", "action": "modify"}'],
     "A 'modify' decision needs replacement arguments for approval '{id}'"),
    ("answer-an-approval", ["--name", "answer", "--input", '{"id": "{id}", "answer": "yes"}'],
     "'{id}' is a pending approval, not a question: decide it with lmthing approve"),
    ("answer-without-text", ["--name", "answer", "--input", '{"id": "{id}"}'], "Invalid answer: answer: Field required"),
]


async def test_a_wrong_decision_from_the_temporal_cli_is_refused_and_the_run_waits_on(client, worker) -> None:
    """An operator decides from `temporal workflow update`: each wrong decision is refused
    with the reason (not retryable: the same one would be refused again), nothing of it
    lands in the history, and the run still waits for the right one."""
    from tests.apps import humans_app
    from tests.support import event_kinds, history, pending_of, start

    handle = await start(client, humans_app.pay)
    [approval] = await pending_of(handle)
    for case, args, said in DECISION_MISTAKES:
        code, shown = await temporal_cli(client, "workflow", "update", "execute", "--workflow-id", handle.id,
                                      *[a.replace("{id}", approval.id) for a in args])
        assert code == 1, case
        assert said.replace("{id}", approval.id) in shown, (case, shown)
        assert "retryable: false" in shown, (case, shown)
    events = await history(handle)
    assert "WORKFLOW_EXECUTION_UPDATE_ACCEPTED" not in event_kinds(events) and "WORKFLOW_TASK_FAILED" not in event_kinds(events)
    assert [p.id for p in await handle.pending()] == [approval.id]
    await handle.decide(approval.id, "approve")
    assert (await asyncio.wait_for(handle.result(), BOUND)).text == "done"


START_MISTAKES = [
    ("input-not-an-object", ['"Oslo"'], "InvalidPromptInput", "Invalid input for prompt 'takes_a_city': (input): Input should be a valid dictionary or instance of City"),
    ("input-missing-field", ['{"town": "Oslo"}'], "InvalidPromptInput", "Invalid input for prompt 'takes_a_city': city: Field required"),
    ("config-wrong-type", ['{"city": "Oslo"}', '{"max_steps": "many"}'], "InvalidRunConfig",
     "Invalid run config for prompt 'takes_a_city': max_steps: Input should be a valid integer"),
    ("config-not-an-object", ['{"city": "Oslo"}', '"fast"'], "InvalidRunConfig",
     "Invalid run config for prompt 'takes_a_city': (input): Input should be a valid dictionary or instance of RunConfig"),
    ("config-unknown-provider", ['{"city": "Oslo"}', '{"model": "nosuch:x"}'], "ModelCallFailed",
     "The model call of step 0 (nosuch:x) failed: Unknown model provider 'nosuch' in 'nosuch:x'. Available providers: anthropic, local, openai, scripted"),
]


@pytest.mark.parametrize(("inputs", "kind", "said"), [pytest.param(i, k, s, id=c) for c, i, k, s in START_MISTAKES])
async def test_a_run_started_from_the_temporal_cli_with_wrong_input_fails_once_with_the_reason(
    client, worker, inputs: list[str], kind: str, said: str
) -> None:
    """Before, a second --input that did not decode failed the workflow task on every
    attempt (a traceback each time in the worker's console); now the run fails, once."""
    from temporalio.client import WorkflowFailureError

    from tests.support import TEST_TASK_QUEUE, event_kinds, new_id

    workflow_id = new_id("wi-start")
    args = ["workflow", "start", "--type", "takes_a_city", "--task-queue", TEST_TASK_QUEUE, "--workflow-id", workflow_id]
    for value in inputs:
        args += ["--input", value]
    code, shown = await temporal_cli(client, *args)
    assert code == 0, shown
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), BOUND)
    assert failed.value.cause.type == kind and said in str(failed.value.cause)
    assert "WORKFLOW_TASK_FAILED" not in event_kinds(list((await handle.fetch_history()).events))


async def test_a_run_config_field_the_worker_does_not_know_is_refused_by_the_client_and_ignored_by_the_worker(
    client, worker, caplog
) -> None:
    """A typo in RunConfig is refused before the run starts; the same field from elsewhere
    (`temporal workflow start`, or newer client code during a rolling deploy) is ignored by
    the worker, which logs it."""
    import logging

    from lmthing import ModelOptions, RunConfig
    from tests.apps import wrong_inputs_app as app
    from tests.support import TEST_TASK_QUEUE, new_id, start

    with pytest.raises(TypeError) as typo:
        await start(client, app.takes_a_city, {"city": "Oslo"}, config=RunConfig(modle="x"))
    assert "RunConfig has no field(s) 'modle'; its fields are model, options" in str(typo.value)
    with pytest.raises(TypeError) as option:
        await start(client, app.takes_a_city, {"city": "Oslo"}, config=RunConfig(options=ModelOptions(temprature=0)))
    assert "ModelOptions has no field(s) 'temprature'" in str(option.value)

    workflow_id = new_id("wi-newer")
    with caplog.at_level(logging.WARNING):
        code, shown = await temporal_cli(client, "workflow", "start", "--type", "takes_a_city", "--task-queue", TEST_TASK_QUEUE,
                                      "--workflow-id", workflow_id, "--input", '{"city": "Oslo"}', "--input", '{"stream_batch": 5}')
        assert code == 0, shown
        await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), BOUND)
    assert "Run config of 'takes_a_city' has field(s) this worker does not know, ignored: stream_batch" in caplog.text


@pytest.mark.parametrize(("store", "threshold", "said"), [
    ("relative/dir", "", "LMTHING_PAYLOAD_STORE='relative/dir': give an absolute path, the same for every process"),
    ("ftp://x/y", "", "LMTHING_PAYLOAD_STORE='ftp://x/y': use a folder (/path or file:///path) or s3://bucket"),
    ("s3://", "", "LMTHING_PAYLOAD_STORE='s3://': give a bucket, s3://bucket"),
    ("/tmp/payloads", "big", "LMTHING_PAYLOAD_STORE_THRESHOLD='big': give a size in bytes (>= 0)"),
])
async def test_a_payload_store_setting_that_cannot_work_is_named(store: str, threshold: str, said: str) -> None:
    done = await asyncio.wait_for(lmthing("approvals", "--address", "127.0.0.1:1", LMTHING_PAYLOAD_STORE=store,
                                          LMTHING_PAYLOAD_STORE_THRESHOLD=threshold), BOUND)
    assert done.code == 2, done.err
    assert said in done.err and "Traceback" not in done.err
