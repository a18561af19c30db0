"""lmthing's behaviours, checked in what the model receives at each step of a real run."""

from tests.apps import semantics
from tests.support import roles, run

EXPECTED_SYSTEM = """<role>
You are a helpful assistant.
</role>
<variables>
  <USER_NAME>
 John Doe
  </USER_NAME>
  <USER_DATA>
age: 30
city: NYC

  </USER_DATA>
</variables>"""


async def test_system_prompt_renders_byte_for_byte(client, worker):
    _, steps = await run(client, semantics.render_example)
    assert steps[0].request.system == EXPECTED_SYSTEM


async def test_no_parts_and_no_variables_means_no_system_message(client, worker):
    _, steps = await run(client, semantics.no_system)
    assert steps[0].request.system is None
    assert roles(steps[0].request.messages) == ["user"]


async def test_data_variables_dump_yaml_like_js_yaml(client, worker):
    _, steps = await run(client, semantics.nested_data)
    assert steps[0].request.system == (
        "<variables>\n  <PROFILE>\n"
        "name: Ann\ntags:\n  - a\n  - b\naddress:\n  city: Oslo\n  zip: '0150'\n"
        "\n  </PROFILE>\n</variables>"
    )


async def test_rerun_keeps_one_user_message_keeps_slots_and_reconciles(client, worker):
    result, steps = await run(client, semantics.rerun)
    first, second = steps[0].request, steps[1].request
    assert first.system == (
        "<first>\none\n</first>\n<temporary>\nonly before the toggle\n</temporary>\n<last>\nthree\n</last>"
    )
    # 'first' was redefined and keeps its slot; 'temporary' was not re-declared: gone.
    assert second.system == "<first>\none, after toggle\n</first>\n<last>\nthree\n</last>"
    assert [t.name for t in first.tools] == ["toggle"]
    assert second.tools == []
    # The user message from the first run only, never duplicated by re-runs.
    assert [m.content for m in second.messages if m.role == "user"] == ["Runs so far: 0"]
    assert roles(second.messages) == ["user", "assistant", "tool"]
    assert result.state == {"toggled": True, "runs": 2}


async def test_remind_appends_one_assistant_message_at_the_next_call_only(client, worker):
    _, steps = await run(client, semantics.remind)
    reminder = steps[0].request.messages[-1]
    assert reminder.role == "assistant"
    assert reminder.content == (
        "\n\n[Reminder: Remember to use the following items in your response:\n"
        "- USER_NAME (variable)\n- noop (tool)]"
    )
    assert steps[0].request.messages[0].content == "Greet <USER_NAME> using <noop>"
    later = [m.content for s in steps[1:] for m in s.request.messages]
    assert not any(c and "[Reminder:" in c for c in later)


async def test_disable_removes_a_definition_from_exactly_the_next_call(client, worker):
    _, steps = await run(client, semantics.disable)
    systems = [s.request.system for s in steps]
    tools = [[t.name for t in s.request.tools] for s in steps]
    assert "SECRET" in systems[0] and systems[1] is None and "SECRET" in systems[2]
    assert tools == [["noop"], [], ["noop"]]


async def test_effects_run_by_dependencies_and_see_the_context(client, worker):
    result, _ = await run(client, semantics.effects)
    log = result.state["log"]
    assert [e for e in log if e.startswith("every:")] == ["every:0", "every:1", "every:2", "every:3"]
    assert [e for e in log if e.startswith("once:")] == ["once:0"]
    # count changes after steps 0 and 2 (bump), so the [count] effect runs at 0, 1 and 3.
    assert [e for e in log if e.startswith("count=")] == ["count=0:0", "count=1:1", "count=2:3"]
    assert [e for e in log if e.startswith("last:")] == ["last:None", "last:bump", "last:noop", "last:bump"]


async def test_step_modifier_filters_adds_and_appends_for_one_call(client, worker):
    _, steps = await run(client, semantics.step_modifiers)
    request = steps[0].request
    assert [t.name for t in request.tools] == ["b"]
    assert request.system == (
        "<style>\nBe brief\n</style>\n<extra>\nAdded for this call\n</extra>\n"
        "<variables>\n  <TODAY>\n Monday\n  </TODAY>\n  <CFG>\nk: 1\n\n  </CFG>\n</variables>"
    )
    # 'messages' appends to the history for this call (lmthing replaced the whole history).
    assert [(m.role, m.content) for m in request.messages] == [("user", "Hi"), ("user", "Appended for this call")]


async def test_step_modifier_messages_are_not_kept_in_the_conversation(client, worker):
    _, steps = await run(client, semantics.step_modifier_once)
    assert [m.content for m in steps[0].request.messages] == ["Hi", "only at step 0"]
    assert "only at step 0" not in [m.content for m in steps[1].request.messages]


async def test_state_initial_setters_and_closure_snapshots(client, worker):
    result, steps = await run(client, semantics.state_semantics)
    assert steps[0].request.messages[0].content == "value=10"
    assert steps[0].tool_results[0].result == {"closure_value": 10}
    assert result.state["value"] == 21
    assert result.state["seen"] == [{"closure_value": 10, "again": 10}]


async def test_proxies_render_as_tags_and_reminded_items_are_listed(client, worker):
    result, steps = await run(client, semantics.reminded_items)
    assert steps[0].request.messages[0].content == "<A> <B> <A>"
    assert result.state["items"] == [{"type": "def", "name": "A"}, {"type": "defSystem", "name": "B"}]
    assert steps[0].request.messages[-1].content.endswith("- A (variable)\n- B (system part)]")
