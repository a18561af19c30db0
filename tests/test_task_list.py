"""The task list plugin against a real dev server: every transition and message, the status
block in what the model receives at every step, tasks added through the setter."""

from lmthing.plugins import render_task_status
from tests.apps import task_list_app
from tests.support import run

R, W, T = ("1", "Research the topic"), ("2", "Write implementation"), ("3", "Add tests")
CLOSING = 'Use "startTask" to begin a pending task, "completeTask" when finished, and "failTask" if there is an error.'


def block(in_progress=(), pending=(), completed=(), failed=()) -> str:
    """lmthing's format (taskList.ts), written out independently of the plugin: Failed only
    when a task failed, followed by a single newline."""

    def section(title, items):
        lines = "\n".join(f"  - [{i}] {n}" for i, n in items) or "  (none)"
        return f"### {title} ({len(items)})\n{lines}"

    text = "\n\n".join(
        ["## Current Task Status", section("In Progress", in_progress), section("Pending", pending), section("Completed", completed)]
    ) + "\n\n"
    if failed:
        text += section("Failed", failed) + "\n"
    return text + CLOSING


def results(steps):
    return [[r.result for r in s.tool_results] for s in steps]


def test_status_block_format_matches_the_documented_example():
    tasks = [
        {"id": "1", "name": "Research the topic", "status": "in_progress"},
        {"id": "2", "name": "Write implementation", "status": "pending"},
        {"id": "3", "name": "Add tests", "status": "pending"},
    ]
    assert render_task_status(tasks) == (
        "## Current Task Status\n\n"
        "### In Progress (1)\n  - [1] Research the topic\n\n"
        "### Pending (2)\n  - [2] Write implementation\n  - [3] Add tests\n\n"
        "### Completed (0)\n  (none)\n\n" + CLOSING
    )


async def test_every_transition_and_message(client, worker):
    result, steps = await run(client, task_list_app.task_list_transitions)
    assert len(steps) == 16
    out = results(steps)

    def ok(task_id, message, status, name, **extra):
        return {"success": True, "taskId": task_id, "message": message, "task": {"id": task_id, "name": name, "status": status, **extra}}

    def bad(task_id, message, status, name, **extra):
        return {**ok(task_id, message, status, name, **extra), "success": False}

    assert out[0] == [ok("1", 'Started task: "Research the topic"', "in_progress", R[1])]
    assert out[1] == [ok("1", 'Task "Research the topic" is already in progress', "in_progress", R[1])]
    assert out[2] == [
        bad(
            "2",
            'Task "Write implementation" is still pending. Use startTask first to begin work on it.',
            "pending",
            W[1],
        )
    ]
    assert out[3] == [ok("1", 'Completed task: "Research the topic"', "completed", R[1])]
    assert out[4] == [ok("1", 'Task "Research the topic" is already completed', "completed", R[1])]
    assert out[5] == [
        bad("1", 'Task "Research the topic" is already completed and cannot be restarted', "completed", R[1])
    ]
    assert out[6] == [
        bad("1", 'Task "Research the topic" is already completed and cannot be failed', "completed", R[1])
    ]
    assert out[7] == [ok("2", 'Started task: "Write implementation"', "in_progress", W[1])]
    reason = {"failureReason": "API down"}
    assert out[8] == [ok("2", 'Failed task: "Write implementation" - API down', "failed", W[1], metadata=reason)]
    assert out[9] == [ok("2", 'Task "Write implementation" is already failed', "failed", W[1], metadata=reason)]
    # Restarting keeps the recorded reason (as lmthing does) until the next failTask.
    assert out[10] == [ok("2", 'Restarted failed task: "Write implementation"', "in_progress", W[1], metadata=reason)]
    # No reason: lmthing's {...metadata, failureReason: undefined} leaves "metadata": {}.
    assert out[11] == [ok("2", 'Failed task: "Write implementation"', "failed", W[1], metadata={})]
    assert out[12] == [ok("2", 'Completed task: "Write implementation"', "completed", W[1], metadata={})]
    missing = 'Task with ID "x" not found. Available task IDs: 1, 2, 3'
    assert out[13] == [{"success": False, "taskId": "x", "message": missing}] * 3
    assert out[14] == [ok("3", 'Failed task: "Add tests" - skipped', "failed", T[1], metadata={"failureReason": "skipped"})]
    assert all(not r.is_error for s in steps for r in s.tool_results)

    assert result.text == "done"
    assert result.state["taskList"] == [
        {"id": "1", "name": R[1], "status": "completed"},
        {"id": "2", "name": W[1], "status": "completed", "metadata": {}},
        {"id": "3", "name": T[1], "status": "failed", "metadata": {"failureReason": "skipped"}},
    ]


async def test_status_block_is_in_the_system_prompt_at_every_step(client, worker):
    _, steps = await run(client, task_list_app.task_list_transitions)
    expected = (
        [block(pending=[R, W, T])]
        + [block(in_progress=[R], pending=[W, T])] * 3
        + [block(completed=[R], pending=[W, T])] * 4
        + [block(in_progress=[W], pending=[T], completed=[R])]
        + [block(failed=[W], pending=[T], completed=[R])] * 2
        + [block(in_progress=[W], pending=[T], completed=[R])]
        + [block(failed=[W], pending=[T], completed=[R])]
        + [block(completed=[R, W], pending=[T])] * 2
        + [block(completed=[R, W], failed=[T])]
    )
    assert len(steps) == len(expected)
    for step, status in zip(steps, expected, strict=True):
        # The block is added next to the prompt's own parts, never instead of them.
        assert step.request.system == f"<role>\nYou manage tasks.\n</role>\n<taskList>\n{status}\n</taskList>", step.step
        assert [t.name for t in step.request.tools] == ["startTask", "completeTask", "failTask"]
    params = {t.name: t.parameters for t in steps[0].request.tools}
    assert params["startTask"]["required"] == ["taskId"]
    assert set(params["failTask"]["properties"]) == {"taskId", "reason"}


async def test_tasks_added_through_the_setter_are_addressable(client, worker):
    result, steps = await run(client, task_list_app.task_list_setter)
    out = results(steps)
    assert out[0] == [{"success": False, "taskId": "2", "message": 'Task with ID "2" not found. Available task IDs: 1'}]
    assert out[1] == [{"added": "Second"}]
    assert out[2][0]["message"] == 'Started task: "Second"'
    assert out[3][0]["message"] == 'Completed task: "Second"'
    assert out[5][0] == {
        "success": True,
        "taskId": "10",
        "message": 'Started task: "Numeric id"',
        "task": {"id": "10", "name": "Numeric id", "status": "in_progress", "metadata": {"k": 1}},
    }
    assert out[6][0]["message"] == 'Task with ID "2" not found. Available task IDs: 9, 10'

    first, second = ("1", "First"), ("2", "Second")
    replacement, numeric = ("9", "Replacement"), ("10", "Numeric id")
    expected = [
        block(pending=[first]),
        block(pending=[first]),
        block(pending=[first, second]),
        block(in_progress=[second], pending=[first]),
        block(pending=[first], completed=[second]),
        block(pending=[replacement, numeric]),
        block(in_progress=[numeric], pending=[replacement]),
        block(in_progress=[numeric], pending=[replacement]),
    ]
    assert len(steps) == len(expected)
    for step, status in zip(steps, expected, strict=True):
        assert f"<taskList>\n{status}\n</taskList>" in step.request.system
    # The prompt function's (tasks, set_tasks) snapshot follows the list run by run.
    assert "<TASK_IDS>\n 1\n" in steps[0].request.system
    assert "<TASK_IDS>\n 1,2\n" in steps[2].request.system
    assert "<TASK_IDS>\n 9,10\n" in steps[5].request.system
    assert result.state["taskList"] == [
        {"id": "9", "name": "Replacement", "status": "pending"},
        {"id": "10", "name": "Numeric id", "status": "in_progress", "metadata": {"k": 1}},
    ]
