"""What the model and the callbacks see, string for string against lmthing (issue 13).

Every expected text below is lmthing's, taken from its source and tests at 4a7107c2
(org/libs/core/src/..., file named in each test); where ours differs on purpose the test
says so and docs/api.md ("Parity with lmthing") lists the difference. Real runs go through
the dev server like tests/test_semantics.py; the engine-neutral texts are unit tests."""

from __future__ import annotations

import asyncio
import json

from pydantic import BaseModel, Field

from lmthing.client import get_handle
from lmthing.plugins.task_graph import (
    TaskGraphError,
    graph_errors,
    normalize,
    status_block,
    task_graph_plugin,
    tree,
    tree_summary,
)
from lmthing.plugins.task_list import render_task_status, task_list_plugin
from lmthing.prompt import tool
from lmthing.prompt.agents import agent, lmthing_schema, response_schema_instruction
from lmthing.prompt.tools import parse_tool_input, unavailable_tool_message
from tests.apps import parity_app as app
from tests.support import run, start
from tests.test_prompt_unit import prepare

# StatefulPrompt.ts:_createResponseSchemaInstruction, as agent-response-schema.test.ts.snap
# shows it for z.object({summary: z.string().describe(...), score: z.number().describe(...)})
# with system 'You are a data analyst.'.
# The schema lmthing printed for that zod object (shared by the expected texts below).
ANALYSIS_SCHEMA = """{
  "type": "object",
  "properties": {
    "summary": {
      "type": "string",
      "description": "Summary of the analysis"
    },
    "score": {
      "type": "number",
      "description": "Score from 0-100"
    }
  },
  "required": [
    "summary",
    "score"
  ]
}"""
ANALYST_SYSTEM = f"""<responseFormat>
You are a data analyst.

You must respond with a valid JSON object that matches this schema:

{ANALYSIS_SCHEMA}

Return only the JSON object in your response, without any additional text or explanation.
</responseFormat>"""

# agent-response-schema.test.ts.snap: z.object({status: z.string(), errors: z.array(z.string())}).
VALIDATOR_SYSTEM = """<responseFormat>
You must respond with a valid JSON object that matches this schema:

{
  "type": "object",
  "properties": {
    "status": {
      "type": "string"
    },
    "errors": {
      "type": "array",
      "items": {
        "type": "string"
      }
    }
  },
  "required": [
    "status",
    "errors"
  ]
}

Return only the JSON object in your response, without any additional text or explanation.
</responseFormat>"""


def tool_messages(step):
    return [m.content for m in step.request.messages if m.role == "tool"]




def call(p, name, args):
    tdef = p.defined_tool(name)
    parsed, problem = tdef.parse_input(args)
    assert problem is None, problem
    out = tdef.fn(parsed)
    return asyncio.run(out) if asyncio.iscoroutine(out) else out


# ================================================================ calls and arguments
async def test_a_call_to_an_unavailable_tool_names_every_tool_the_prompt_defines(client, worker):
    # defEffect.test.ts.snap ("filters tools via stepModifier"): the AI SDK's NoSuchToolError,
    # listing all tools, also at a step where some were disabled.
    _, steps = await run(client, app.unavailable)
    assert [t.name for t in steps[0].request.tools] == ["helper", "t2"]  # t1 disabled at step 0
    assert [t.name for t in steps[1].request.tools] == ["t1", "helper", "t2"]  # definition order
    worker_call, disabled_call = steps[0].tool_results
    assert worker_call.content == "Model tried to call unavailable tool 'worker'. Available tools: t1, helper, t2."
    assert worker_call.is_error and worker_call.result == {"error": worker_call.content}
    # Ours: a disabled tool is refused (lmthing's AI SDK would have run it), in the same words.
    assert disabled_call.content == "Model tried to call unavailable tool 't1'. Available tools: t1, helper, t2."
    # The model reads the bare text, as the snapshot's error-text output.
    assert tool_messages(steps[1]) == [worker_call.content, disabled_call.content]
    # A result that is not text reaches the model as compact JSON (JSON.stringify).
    assert tool_messages(steps[2])[-1] == '{"ok":true}'


async def test_a_call_when_no_tool_is_defined(client, worker):
    _, steps = await run(client, app.no_tools)
    assert steps[0].tool_results[0].content == "Model tried to call unavailable tool 'ghost'. No tools are available."


def test_unavailable_tool_message_unit():
    assert unavailable_tool_message("x", ["a", "b"]) == "Model tried to call unavailable tool 'x'. Available tools: a, b."
    assert unavailable_tool_message("x", []) == "Model tried to call unavailable tool 'x'. No tools are available."


async def test_invalid_input_uses_the_ai_sdks_words(client, worker):
    # The AI SDK's InvalidToolInputError / TypeValidationError / JSONParseError framing; the
    # "Error message" part is pydantic's account here (zod's in lmthing).
    _, steps = await run(client, app.invalid_input)
    bad_type, bad_json, bad_calls = (s.tool_results[0] for s in steps[:3])
    assert bad_type.content == (
        'Invalid input for tool add: Type validation failed: Value: {"a":"x","b":1}.\n'
        "Error message: a: Input should be a valid integer, unable to parse string as an integer"
    )
    assert bad_json.content == (
        "Invalid input for tool add: JSON parsing failed: Text: {bad.\n"
        "Error message: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert bad_calls.content.startswith('Invalid input for tool ops: Type validation failed: Value: {"calls":"nope"}.\nError message: ')
    assert all(r.is_error and r.result == {"error": r.content} for r in (bad_type, bad_json, bad_calls))
    assert tool_messages(steps[1])[-1] == bad_type.content


def test_parse_tool_input_unit():
    class A(BaseModel):
        a: int

    assert parse_tool_input(A, {"a": 1}, "t")[0] == A(a=1)
    assert parse_tool_input(A, "", "t")[1].startswith("Invalid input for tool t: Type validation failed: Value: {}.\nError message: a: Field required")
    assert parse_tool_input(A, "[1]", "t")[1] == (
        "Invalid input for tool t: Type validation failed: Value: [1].\nError message: expected a JSON object, got list"
    )


# ====================================================================== tool failures
async def test_tool_errors_and_on_error_have_lmthings_shapes(client, worker):
    # CallbackExecutor.ts (+ its test): with callbacks, {error: message} is the result and
    # what onError(input, error) receives; a non-undefined return replaces it. Without
    # callbacks the error went through the AI SDK: the model read the bare message.
    result, steps = await run(client, app.tool_errors)
    plain, kept, handled, activity, ok, ops = steps[0].tool_results
    assert plain.is_error and plain.result == {"error": "Division by zero"} and plain.content == "Division by zero"
    assert kept.is_error and kept.result == {"error": "Division by zero"} and kept.content is None
    assert result.state["on_error_args"] == [{"error": "Division by zero"}]
    assert not handled.is_error
    assert handled.result == {"error_handled": True, "message": "Tool failed gracefully", "was": "Division by zero"}
    assert activity.is_error and activity.content == "the fuse blew"  # an @tool activity, after its retries
    assert ok.result == {"result": 5.0}
    # StatefulPrompt.ts (_registerCompositeTool): sub-tool errors as {error}, unknown names
    # as "Unknown sub-tool: <name>", the other calls still run.
    assert ops.result == {"results": [
        {"name": "double", "result": {"result": 10}},
        {"name": "risky", "result": {"error": "Cannot process zero"}},
        {"name": "ghost", "result": {"error": "Unknown sub-tool: ghost"}},
    ]}
    assert tool_messages(steps[1]) == [
        "Division by zero",
        '{"error":"Division by zero"}',
        '{"error_handled":true,"message":"Tool failed gracefully","was":"Division by zero"}',
        "the fuse blew",
        '{"result":5.0}',  # Python prints the float 5.0 as 5.0 (JSON.stringify: 5)
        '{"results":[{"name":"double","result":{"result":10}},{"name":"risky","result":{"error":"Cannot process zero"}},'
        '{"name":"ghost","result":{"error":"Unknown sub-tool: ghost"}}]}',
    ]


def test_composite_schema_and_description_are_lmthings():
    # CompositeExecutor.ts: one variant per member with its own args schema; descriptions.
    class Path(BaseModel):
        path: str

    body = lambda p: p.def_tool("file", "File operations", [  # noqa: E731
        tool("write", "Write a file", Path, lambda a: {}), tool("read", "Read a file", Path, lambda a: {}),
    ])
    _, prepared = prepare(body)
    [definition] = prepared.tools
    assert definition.description == "File operations\n\nAvailable sub-tools:\n  - write: Write a file\n  - read: Read a file"
    calls = definition.parameters["properties"]["calls"]
    assert calls["description"] == "Array of sub-tool calls to execute"
    write = calls["items"]["anyOf"][0]
    assert write["properties"]["name"] == {"type": "string", "const": "write", "description": 'Call the "write" sub-tool'}
    assert write["properties"]["args"]["description"] == "Write a file"
    assert write["properties"]["args"]["properties"]["path"]["type"] == "string"
    assert write["required"] == ["name", "args"]

    agents = lambda p: p.def_agent("team", "Team", [agent("a", "Agent A", Path, lambda a, c: None)])  # noqa: E731
    _, prepared = prepare(agents)
    calls = prepared.tools[0].parameters["properties"]["calls"]
    assert calls["description"] == "Array of agent calls to execute"
    assert calls["items"]["anyOf"][0]["properties"]["name"]["description"] == 'Call the "a" agent'
    assert prepared.tools[0].description == "Team\n\nAvailable sub-agents:\n  - a: Agent A"


def test_reminding_twice_lists_the_item_twice():
    # StatefulPrompt.ts: onRemind pushes every time.
    def body(p):
        name = p.def_var("NAME", "Ann")
        name.remind()
        name.remind()
        p.user("Hi")

    _, prepared = prepare(body)
    assert prepared.messages[-1].content == (
        "\n\n[Reminder: Remember to use the following items in your response:\n- NAME (variable)\n- NAME (variable)]"
    )


# ========================================================================= sub-agents
async def test_sub_agent_results_and_system_parts_are_lmthings(client, worker):
    handle = await start(client, app.agents)
    assert (await handle.result()).text == "Analysis complete!"
    steps = await handle.steps()
    analyst, terse, validator, team, broken = (s.tool_results[0] for s in steps[:5])
    # StreamText.ts (middleware): {response, steps} reached the model as the response text.
    answer = '{"summary": "Analysis shows positive trends", "score": 85}'
    assert analyst.result == {"response": answer} and analyst.content == answer
    assert tool_messages(steps[1]) == [answer]
    assert terse.content == "short answer"
    # With a validation error the model read the object (ours leaves the child's steps out).
    assert validator.content is None and set(validator.result) == {"response", "validationError"}
    assert tool_messages(steps[3])[-1] == json.dumps(validator.result, separators=(",", ":"))
    # _registerCompositeAgent: "Error: Unknown sub-agent: <name>".
    # ... and a failing member's "Error: <message>".
    ghost, member, failing = team.result["results"]
    assert ghost == {"name": "ghost", "response": "Error: Unknown sub-agent: ghost"}
    assert member == {"name": "member", "response": "member answer"}
    assert failing["name"] == "failing" and failing["response"].startswith("Error: Prompt 'agents' raised KeyError: 'language'")
    # A failing agent: its error message, as text.
    assert broken.is_error and broken.content == broken.result["error"]
    assert broken.content.startswith("Prompt 'agents' raised KeyError: 'language'")
    # defAgent: system + response schema -> <responseFormat>; system alone -> <agentSystem>.
    child = lambda name, step: get_handle(client, f"{handle.id}/{name}/call_{step}_0")  # noqa: E731
    assert (await child("analyst", 0).steps())[0].request.system == ANALYST_SYSTEM
    assert (await child("terse", 1).steps())[0].request.system == "<agentSystem>\nYou are terse.\n</agentSystem>"
    assert (await child("validator", 2).steps())[0].request.system == VALIDATOR_SYSTEM


def test_response_schema_instruction_unit():
    class Out(BaseModel):
        result: str
        timestamp: float

    # agent-response-schema.test.ts.snap ("processor"): no descriptions, numbers, required.
    assert response_schema_instruction(Out) == (
        "You must respond with a valid JSON object that matches this schema:\n\n"
        '{\n  "type": "object",\n  "properties": {\n    "result": {\n      "type": "string"\n    },\n'
        '    "timestamp": {\n      "type": "number"\n    }\n  },\n  "required": [\n    "result",\n'
        '    "timestamp"\n  ]\n}\n\n'
        "Return only the JSON object in your response, without any additional text or explanation."
    )

    class Inner(BaseModel):
        title: str

    class Rich(BaseModel):
        count: int = Field(description="How many")
        maybe: str | None = None
        nullable: bool | None
        items: list[Inner]
        kind: str = "x"

    # StatefulPrompt.ts:_zodToJsonSchema: optional -> inner type, nullable -> nullable: true,
    # integers are numbers, nested objects inline, defaulted fields not required.
    assert lmthing_schema(Rich) == {
        "type": "object",
        "properties": {
            "count": {"type": "number", "description": "How many"},
            "maybe": {"type": "string"},
            "nullable": {"type": "boolean", "nullable": True},
            "items": {"type": "array", "items": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}},
            "kind": {"type": "string"},
        },
        "required": ["count", "nullable", "items"],
    }


# ========================================================================== task list
STATUS_0 = """<taskList>
## Current Task Status

### In Progress (0)
  (none)

### Pending (2)
  - [1] Research the topic
  - [2] Write implementation

### Completed (1)
  - [3] Add tests

Use "startTask" to begin a pending task, "completeTask" when finished, and "failTask" if there is an error.
</taskList>"""


async def test_task_list_results_refusals_and_status_block(client, worker):
    # taskList.ts: messages word for word, task objects, the block without an empty Failed.
    _, steps = await run(client, app.task_list)
    r = [s.tool_results[0].result for s in steps[:5]]
    assert r[0] == {"success": False, "taskId": "1", "task": {"id": "1", "name": "Research the topic", "status": "pending"},
                    "message": 'Task "Research the topic" is still pending. Use startTask first to begin work on it.'}
    assert r[1]["message"] == 'Task "Add tests" is already completed and cannot be restarted' and r[1]["success"] is False
    assert r[2]["message"] == 'Task "Add tests" is already completed and cannot be failed' and r[2]["success"] is False
    assert r[3] == {"success": False, "taskId": "9", "message": 'Task with ID "9" not found. Available task IDs: 1, 2, 3'}
    # failTask without a reason: metadata {...metadata, failureReason: undefined} -> {}.
    assert r[4] == {"success": True, "taskId": "2", "message": 'Failed task: "Write implementation"',
                    "task": {"id": "2", "name": "Write implementation", "status": "failed", "metadata": {}}}
    assert STATUS_0 in steps[0].request.system
    assert (
        "### Completed (1)\n  - [3] Add tests\n\n### Failed (1)\n  - [2] Write implementation\n"
        'Use "startTask" to begin a pending task'
    ) in steps[5].request.system
    # The taskId parameter lists the ids, as lmthing's z.enum(taskIds).describe(...).
    start_tool = next(t for t in steps[0].request.tools if t.name == "startTask")
    assert start_tool.parameters["properties"]["taskId"]["enum"] == ["1", "2", "3"]
    assert start_tool.parameters["properties"]["taskId"]["description"] == "The ID of the task"
    assert start_tool.description == "Mark a task as started/in-progress. Call this before beginning work on a task."


def test_task_list_unit_edge_texts():
    assert render_task_status([]).startswith("## Current Task Status\n\n### In Progress (0)\n  (none)\n\n### Pending (0)")
    p, _ = prepare(lambda p: p.def_task_list([]), plugins=[task_list_plugin])
    # An empty list: lmthing's join of no ids is the empty string.
    assert call(p, "startTask", {"taskId": "x"})["message"] == 'Task with ID "x" not found. Available task IDs: '


# ========================================================================= task graph
GRAPH_STATUS_0 = """<taskGraph>
## Task Graph Status

### In Progress (0)
  (none)

### Ready to Start (1)
  - [research] Research [web-search]

### Blocked / Pending (1)
  - [write] Write (depends on: research) → writer

### Completed (0)
  (none)

Use "getUnblockedTasks" to find tasks ready for execution, "updateTaskStatus" to update task progress.
Use "spawnTask" or "forkTask" to add tasks dynamically. Use "readTree" to view the full coordination tree.
</taskGraph>"""

GRAPH_STATUS_LAST = """## Task Graph Status

### ⚠ Pending Human Questions (1)
  - [q1] Which city?
    Options: Paris, Oslo
  Use "answerQuestion" to unblock downstream tasks.

### In Progress (0)
  (none)

### Ready to Start (1)
  - [write] Write (depends on: research) → writer

### Blocked / Pending (1)
  - [q1] [ASK] [ASK] Which city? (depends on: write)
    ? Which city?

### Completed (1)
  - [research] Research [web-search]

Use "getUnblockedTasks" to find tasks ready for execution, "updateTaskStatus" to update task progress.
Use "spawnTask" or "forkTask" to add tasks dynamically. Use "readTree" to view the full coordination tree."""


async def test_task_graph_update_results_refusals_and_status_block(client, worker):
    # taskGraph.ts (updateTaskStatus, askHuman, the status effect).
    _, steps = await run(client, app.task_graph)
    r = [s.tool_results[0].result for s in steps[:6]]
    assert r[0]["success"] is False and r[0]["message"] == 'Cannot start task "Write". Unmet dependencies: research'
    assert r[0]["task"]["id"] == "write"
    assert r[1]["success"] and r[1]["message"] == 'Task "Research" is now in progress.' and r[1]["task"]["status"] == "in_progress"
    assert r[2]["success"] and r[2]["message"] == 'Task "Research" is already in progress.' and r[2]["task"]["status"] == "in_progress"
    assert r[3]["message"] == 'Task "Research" completed. Newly unblocked: Write.'
    assert r[3]["task"]["status"] == "completed" and r[3]["task"]["output_result"] == "facts"
    assert [t["id"] for t in r[3]["newlyUnblockedTasks"]] == ["write"]
    assert r[3]["newlyUnblockedTasks"][0]["input_context"] == "[From Research]: facts"
    assert "newlyUnblockedTasks" not in r[1]
    assert r[4] == {"success": False, "taskId": "research", "task": r[3]["task"],
                    "message": 'Task "Research" is already completed and cannot be changed to "failed".'}
    assert r[5]["success"] and r[5]["message"] == (
        'Question node "q1" created: "Which city?". Options: Paris, Oslo. Downstream tasks (none) are blocked until answered.'
    )
    assert r[5]["task"]["title"] == "[ASK] Which city?" and r[5]["task"]["node_type"] == "ask"
    assert GRAPH_STATUS_0 in steps[0].request.system
    assert "<role>\nYou are a planner.\n</role>" in steps[0].request.system  # other parts stay
    assert f"<taskGraph>\n{GRAPH_STATUS_LAST}\n</taskGraph>" in steps[6].request.system
    tools = {t.name: t for t in steps[0].request.tools}
    assert tools["updateTaskStatus"].parameters["properties"]["output_result"]["description"] == "Summary/artifact produced upon completion"
    assert tools["spawnTask"].description.startswith("Dynamically add a new spawn task to the running graph. ")


def graph_tools(nodes):
    p, _ = prepare(lambda p: p.def_task_graph(nodes), plugins=[task_graph_plugin])
    return p


def test_task_graph_validation_texts():
    # taskGraph.ts:validateTaskGraph / detectCycles, joined by "; ".
    cycle = [{"id": "x", "title": "X", "dependencies": ["z"]}, {"id": "y", "title": "Y", "dependencies": ["x"]},
             {"id": "z", "title": "Z", "dependencies": ["y"]}, {"id": "free", "title": "Free"}]
    try:
        normalize(cycle)
    except TaskGraphError as err:
        assert str(err) == "Invalid task graph: Circular dependency detected involving tasks: x, y, z"
    else:
        raise AssertionError("a cycle was accepted")
    refs = [{"id": "a", "title": "A", "dependencies": ["ghost"]}, {"id": "b", "title": "B", "unblocks": ["phantom"]}]
    assert graph_errors([{**n, "dependencies": n.get("dependencies", []), "unblocks": n.get("unblocks", [])} for n in refs]) == [
        'Task "a" depends on unknown task "ghost"', 'Task "b" unblocks unknown task "phantom"',
    ]
    p = graph_tools([])
    bad = call(p, "generateTaskGraph", {"tasks": cycle})
    assert bad == {"success": False, "message": "Invalid task graph: Circular dependency detected involving tasks: x, y, z"}
    dupes = call(p, "generateTaskGraph", {"tasks": [{"id": "a", "title": "1"}, {"id": "a", "title": "2"}]})
    assert dupes["message"] == 'Invalid task graph: Duplicate task ID: "a"'
    ok = call(p, "generateTaskGraph", {"tasks": [{"id": "a", "title": "A", "description": "d", "unblocks": ["b"]},
                                                  {"id": "b", "title": "B", "description": "d"}]})
    assert ok["message"] == "Task graph created with 2 tasks. 1 task(s) are immediately ready for execution."
    assert ok["taskCount"] == 2 and ok["tasks"][1]["dependencies"] == ["a"] and ok["tasks"][1]["status"] == "pending"


def test_task_graph_tool_texts():
    p = graph_tools([{"id": "a", "title": "A", "unblocks": ["b"]}, {"id": "b", "title": "B"}])
    assert call(p, "getUnblockedTasks", {})["message"] == "1 task(s) are ready for execution."
    assert call(p, "updateTaskStatus", {"taskId": "nope", "status": "completed"}) == {
        "success": False, "taskId": "nope", "message": 'Task "nope" not found. Available IDs: a, b'}
    assert call(p, "updateTaskStatus", {"taskId": "a", "status": "in_progress"})["success"]
    assert call(p, "getUnblockedTasks", {})["message"] == (
        "No tasks are unblocked. 1 task(s) are currently in progress. Waiting for them to complete.")
    assert call(p, "updateTaskStatus", {"taskId": "a", "status": "failed"})["message"] == 'Task "A" marked as failed.'
    assert call(p, "getUnblockedTasks", {})["message"] == (
        "No tasks are currently unblocked. 1 task(s) are still pending but have unmet dependencies.")
    # Spawn / fork (CORD primitives): messages, node types, duplicate and invalid ids.
    spawned = call(p, "spawnTask", {"id": "c", "title": "C", "description": "d", "dependencies": ["a"]})
    assert spawned["message"] == 'Spawned task "C" (c). Dependencies: a.' and spawned["task"]["node_type"] == "spawn"
    assert call(p, "spawnTask", {"id": "c", "title": "C", "description": "d"}) == {"success": False, "message": 'Task ID "c" already exists.'}
    assert call(p, "spawnTask", {"id": "d", "title": "D", "dependencies": ["ghost"]})["message"] == (
        'Invalid task: Task "d" depends on unknown task "ghost"')
    forked = call(p, "forkTask", {"id": "f", "title": "Synthesis", "description": "d"})
    assert forked["message"] == ('Forked task "Synthesis" (f) added. It will inherit ALL completed task outputs when unblocked. '
                                 "Dependencies: none.")
    assert forked["task"]["node_type"] == "fork"
    # answerQuestion refusals.
    assert call(p, "answerQuestion", {"taskId": "a", "answer": "x"})["message"] == 'Task "a" is not an ask node (type: spawn).'
    assert call(p, "answerQuestion", {"taskId": "zz", "answer": "x"})["message"] == 'Task "zz" not found. Available IDs: a, b, c, f'
    # Ours: completing before the dependencies is refused (lmthing allowed it).
    blocked = call(p, "updateTaskStatus", {"taskId": "b", "status": "completed"})
    assert blocked["success"] is False and blocked["message"] == 'Cannot complete task "B". Unmet dependencies: a'
    # A completion that unblocks nothing; then nothing is left.
    q = graph_tools([{"id": "only", "title": "Only"}])
    assert call(q, "updateTaskStatus", {"taskId": "only", "status": "completed"})["message"] == 'Task "Only" completed.'
    assert call(q, "getUnblockedTasks", {}) == {
        "success": True, "message": "All tasks have been completed or failed. No tasks remaining.", "tasks": []}
    again = call(q, "updateTaskStatus", {"taskId": "only", "status": "completed"})
    assert again["message"] == 'Task "Only" is already completed and cannot be changed to "completed".'


def test_task_graph_ask_answer_fork_and_tree():
    nodes = [
        {"id": "a", "title": "Research", "unblocks": ["q", "s"]},
        {"id": "q", "title": "[ASK] Which year?", "node_type": "ask", "question": "Which year?"},
        {"id": "s", "title": "Synthesis", "node_type": "fork", "dependencies": ["a", "q"]},
    ]
    p = graph_tools(nodes)
    assert call(p, "answerQuestion", {"taskId": "q", "answer": "2024"})["message"] == (
        'Cannot answer "[ASK] Which year?" yet. Unmet dependencies: a')
    call(p, "updateTaskStatus", {"taskId": "a", "status": "in_progress"})
    done = call(p, "updateTaskStatus", {"taskId": "a", "status": "completed", "output_result": "facts"})
    assert done["message"] == 'Task "Research" completed. Newly unblocked: [ASK] Which year?.'
    answered = call(p, "answerQuestion", {"taskId": "q", "answer": "2024"})
    assert answered["message"] == 'Question answered: "2024". Newly unblocked: Synthesis.'
    assert answered["task"]["output_result"] == "2024" and answered["task"]["status"] == "completed"
    # A fork node gets every completed output when it becomes ready.
    fork = answered["newlyUnblockedTasks"][0]
    assert fork["input_context"] == "[From Research]: facts\n\n[From [ASK] Which year?]: 2024"
    assert call(p, "answerQuestion", {"taskId": "q", "answer": "again"})["message"] == (
        'Ask node "[ASK] Which year?" has already been answered.')
    read = call(p, "readTree", {})
    assert read["message"] == "3 tasks: 2 completed, 0 in progress, 1 pending, 0 failed"
    assert read["tree"] == (
        "✓ [completed] SPAWN Research\n"
        "  result: facts\n"
        "  ✓ [ASK] [completed] ASK [ASK] Which year?\n"
        "    result: 2024\n"
        "    ○ [FORK] [pending] FORK Synthesis blocked-by: a, q"
    )
    empty = graph_tools([])
    assert call(empty, "readTree", {}) == {"success": True, "message": "Task tree is empty.", "tree": "(empty)", "tasks": []}


def test_task_graph_status_block_unit():
    g = normalize([
        {"id": "a", "title": "A", "status": "in_progress"},
        {"id": "b", "title": "B", "status": "failed", "required_capabilities": ["db"]},
        {"id": "c", "title": "C", "dependencies": ["a"]},
    ])
    assert status_block(g) == (
        "## Task Graph Status\n\n"
        "### In Progress (1)\n  - [a] A\n\n"
        "### Blocked / Pending (1)\n  - [c] C (depends on: a)\n\n"
        "### Completed (0)\n  (none)\n\n"
        "### Failed (1)\n  - [b] B [db]\n"
        'Use "getUnblockedTasks" to find tasks ready for execution, "updateTaskStatus" to update task progress.\n'
        'Use "spawnTask" or "forkTask" to add tasks dynamically. Use "readTree" to view the full coordination tree.'
    )
    assert tree_summary(g) == "3 tasks: 0 completed, 1 in progress, 1 pending, 1 failed"
    assert tree(g) == "● [in progress] SPAWN A\n  ○ [pending] SPAWN C blocked-by: a\n✗ [failed] SPAWN B"


# ========================================================================== functions
FUNCTIONS_PART = """<available_functions>
# Available Functions

You can call these functions using Python code via the runToolCode tool.
All code is validated before execution.

## calculate
Add two numbers
- Parameters: a: int, b: int
- Returns: {"sum": int}

## failing
Always fails
- Parameters: a: int, b: int
- Returns: Any

## team (namespace)

### team.researcher (agent)
Research a topic
- Parameters: data: str
- Returns: {"findings": list[str]}

</available_functions>"""


async def test_run_tool_code_results_and_function_listing(client, worker):
    # FunctionPlugin.ts / FunctionPlugin.test.ts: the messages, onError's Error, the layout.
    result, steps = await run(client, app.functions)
    shape, static, failing, agent_bad = (s.tool_results[0].result for s in steps[:4])
    # "should enforce response schema for function outputs": a runtime error.
    assert shape["success"] is False and shape["message"] == "Runtime error during execution."
    assert shape["error"].startswith("Line 1: calculate: ") and "sum: Field required" in shape["error"]
    assert static["success"] is False and static["message"] == "Python validation failed. Fix the errors and try again."
    assert static["errors"][0].startswith("Line 1: unknown function 'nope'")
    assert failing == {"success": False, "error": "Line 2: failing: Execution failed", "message": "Runtime error during execution."}
    # onError got the error object, whose message is 'Execution failed'.
    assert result.state["on_error"] == [{"type": "ToolFailure", "message": "Execution failed"}]
    assert agent_bad["message"] == "Runtime error during execution."
    assert agent_bad["error"].startswith("Line 1: team.researcher: Agent response validation failed: ")
    for step in steps:
        assert [t.name for t in step.request.tools] == ["runToolCode"]
        assert FUNCTIONS_PART in step.request.system
    run_tool = steps[0].request.tools[0]
    assert run_tool.description.startswith("Execute Python code that calls available functions. Code is validated before execution. ")
    assert run_tool.parameters["properties"]["code"]["description"] == "Python code to execute. Can call any registered functions."


# plugins/function/sandbox.ts (createWrappedAgent): a function agent's child got
# defSystem('responseFormat', system ? `${system}\n\n${instruction}` : instruction), in words of
# its own (not defAgent's). Ours prints the real schema where lmthing printed {"type": "object"}.
FUNCTION_AGENT_SYSTEM = """<responseFormat>
You must respond with valid JSON that matches this schema:

{
  "type": "object",
  "properties": {
    "findings": {
      "type": "array",
      "items": {
        "type": "string"
      }
    }
  },
  "required": [
    "findings"
  ]
}

IMPORTANT: Your response must be ONLY valid JSON matching this schema, with no additional text before or after.
</responseFormat>"""


async def test_a_function_agents_child_gets_lmthings_function_agent_instruction(client, worker):
    handle = await start(client, app.functions)
    await handle.result()
    steps = await handle.steps()
    # team.researcher, called from the fourth script (step 3, its first call).
    child = get_handle(client, f"{handle.id}/fn-team/researcher/s3-{steps[3].response.tool_calls[0].id}-1")
    [child_step] = await child.steps()  # schema_retries=0: one answer
    assert child_step.request.system == FUNCTION_AGENT_SYSTEM
    # The schema still does its work: the provider is asked for it, the reply is checked.
    assert child_step.request.options.response_format["name"] == "Findings"
    assert steps[3].tool_results[0].result["error"].startswith("Line 1: team.researcher: Agent response validation failed: ")


ANALYZER_SYSTEM = f"""<responseFormat>
You are a data analyst.

You must respond with valid JSON that matches this schema:

{ANALYSIS_SCHEMA}

IMPORTANT: Your response must be ONLY valid JSON matching this schema, with no additional text before or after.
</responseFormat>
<role>
Be brief.
</role>"""


def test_a_function_agents_system_comes_first_in_its_response_format():
    # As lmthing's finalSystem: the agent's system=, a blank line, the instruction; the
    # child's own parts follow. The child prompt is set up as the workflow sets it up.
    from lmthing.plugins.functions import function_plugin
    from lmthing.workflows.agent_body import agent_call

    class Analysis(BaseModel):
        summary: str = Field(description="Summary of the analysis")
        score: float = Field(description="Score from 0-100")

    class Data(BaseModel):
        data: str

    def analyse(args, child):
        child.def_system("role", "Be brief.")
        child.user(f"Analyze: {args.data}")

    parent, _ = prepare(
        lambda p: p.def_function_agent("analyzer", "Analyze data", Data, analyse, system="You are a data analyst.",
                                       response_schema=Analysis),
        plugins=[function_plugin],
    )
    adef = parent.defined_agent("fn-analyzer")
    child, prepared = prepare(agent_call(adef, Data(data="x")), agent_system=adef.system, response_schema=adef.response_schema,
                              response_instruction=adef.response_instruction)
    assert prepared.system == ANALYZER_SYSTEM
    # A second run of the body (every step re-runs it) renders the same, once.
    async def again():
        await child.run_body(agent_call(adef, Data(data="x")))
        return await child.prepare_step(1)

    assert asyncio.run(again()).system == prepared.system
