"""The task graph plugin: lmthing's ``defTaskGraph``, built only on the public ``def_*`` API.

Pass ``task_graph_plugin`` in ``plugins=[...]``; then ``p.def_task_graph(nodes)`` returns
``(graph, set_graph)`` and registers the tools ``generateTaskGraph``, ``getUnblockedTasks``,
``updateTaskStatus``, ``spawnTask``, ``forkTask``, ``askHuman``, ``answerQuestion``,
``readTree`` and ``runTaskGraph``, plus an effect that shows the "## Task Graph Status" block
to the model on every step (added as a system part of its own; other parts stay).

Tool names, arguments, descriptions, results and messages are lmthing's (its CORD-style
nodes: ``node_type`` spawn / fork / ask, ``[From <title>]: <output>`` context); where ours
does more or refuses more, docs/api.md ("Parity with lmthing") lists it: ``askHuman`` puts
a ready question to a person and waits, completing a task before its dependencies or a
second time is refused, a spawn task keeps the output of every dependency, and the status
block reaches the model at all (lmthing's never did).

``await p.run_task_graph(graph, agent=..., max_concurrency=N, on_failure=...)`` runs a graph
with the engine: every ready task becomes a child workflow of its agent (``p.call_agent``),
at most ``max_concurrency`` at once. See docs/plugins.md ("Task graph") for the semantics.

Everything here is deterministic workflow-side code (no I/O, no clocks, no randomness): the
tools are in-workflow tools and the graph lives in ``def_state`` (key ``"taskGraph"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from lmthing.prompt.stateful_prompt import PromptError

STATE_KEY = "taskGraph"
STATUSES = ("pending", "in_progress", "completed", "failed", "skipped")
POLICIES = ("fail_fast", "continue", "skip_dependents")
_LIST_FIELDS = ("dependencies", "unblocks", "required_capabilities")
_OPTIONAL_FIELDS = ("assigned_subagent", "question", "answer_options", "input_context", "output_result", "error")
NODE_TYPES = ("spawn", "fork", "ask")


class TaskGraphError(PromptError):
    """A graph is invalid (cycle, unknown reference, duplicate id, bad field); ``errors``
    holds lmthing's validation messages, when those are the reason."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


class TaskGraphFailed(PromptError):
    """``run_task_graph(on_failure="fail_fast")`` stopped because a task failed."""

    def __init__(self, message: str, graph: list[dict[str, Any]], failed: list[str]) -> None:
        super().__init__(message)
        self.graph = graph
        self.failed = failed


# ------------------------------------------------------------------------------ schemas
class TaskInput(BaseModel):
    """The arguments a task's sub-agent receives; give it to ``def_agent`` as the schema."""

    id: str
    title: str
    description: str = ""
    input_context: str = ""
    required_capabilities: list[str] = Field(default_factory=list)


NodeType = Literal["spawn", "fork", "ask"]


class TaskNodeArgs(BaseModel):
    """One node of ``generateTaskGraph`` (lmthing's fields and descriptions; the lists and
    the description may be left out)."""

    id: str = Field(description="Unique task identifier")
    title: str = Field(description="Concise task name")
    description: str = Field("", description="Detailed execution instructions")
    node_type: NodeType | None = Field(
        None, description="Node type: spawn (default), fork (inherits all context), or ask (human question)"
    )
    dependencies: list[str] = Field(default_factory=list, description="IDs of upstream tasks that must complete first")
    unblocks: list[str] = Field(default_factory=list, description="IDs of downstream tasks this unblocks")
    required_capabilities: list[str] = Field(
        default_factory=list, description='Capabilities needed, e.g. ["database", "web-search"]'
    )
    assigned_subagent: str | None = Field(None, description="Subagent to handle this task")
    input_context: str | None = Field(None, description="Context from upstream tasks")
    question: str | None = Field(None, description="For ask nodes: the question to ask the human")
    answer_options: list[str] | None = Field(None, description="For ask nodes: optional answer choices")


class GenerateArgs(BaseModel):
    tasks: list[TaskNodeArgs]


class NoArgs(BaseModel):
    pass


class UpdateArgs(BaseModel):
    taskId: str = Field(description="The ID of the task to update")
    status: Literal["in_progress", "completed", "failed"] = Field(description="New status for the task")
    output_result: str | None = Field(None, description="Summary/artifact produced upon completion")


class SpawnArgs(BaseModel):
    """``spawnTask`` / ``forkTask``: lmthing's fields; ``id`` defaults to ``task-<n>``."""

    id: str | None = Field(None, description="Unique task identifier")
    title: str = Field(description="Concise task name")
    description: str = Field("", description="Detailed execution instructions")
    dependencies: list[str] = Field(default_factory=list, description="IDs of upstream tasks that must complete first")
    unblocks: list[str] = Field(default_factory=list, description="IDs of downstream tasks this unblocks")
    required_capabilities: list[str] = Field(default_factory=list, description="Capabilities needed")
    assigned_subagent: str | None = Field(None, description="Subagent to handle this task")


class AskArgs(BaseModel):
    """``askHuman``: lmthing's fields; ``id`` defaults to ``ask-<n>``."""

    id: str | None = Field(None, description="Unique task identifier for the question node")
    question: str = Field(description="The question to present to the human")
    answer_options: list[str] | None = Field(None, description="Optional list of answer choices")
    dependencies: list[str] = Field(default_factory=list, description="IDs of upstream tasks that must complete first")
    unblocks: list[str] = Field(default_factory=list, description="IDs of downstream tasks blocked until answered")


class AnswerArgs(BaseModel):
    taskId: str = Field(description="The ID of the ask node to answer")
    answer: str = Field(description="The human's answer to the question")


class RunArgs(BaseModel):
    agent: str | None = Field(None, description="Agent for tasks without assigned_subagent")
    max_concurrency: int = Field(4, ge=1, le=100)
    on_failure: Literal["fail_fast", "continue", "skip_dependents"] = "fail_fast"


# Tool descriptions, lmthing's word for word (askHuman: plus what ours does beyond it).
GENERATE_DESCRIPTION = (
    "Create or replace the task graph DAG from a list of task nodes. "
    'All new tasks are initialized with status "pending". '
    "Each task must have an id, title, description, dependencies (array of upstream task IDs), "
    "unblocks (array of downstream task IDs), and required_capabilities. "
    'Optionally set node_type to "spawn" (default, clean-slate context), '
    '"fork" (inherits ALL completed results), or "ask" (human-in-the-loop question). '
    "The graph is validated for cycles and missing references."
)
UNBLOCKED_DESCRIPTION = (
    "Get all tasks whose upstream dependencies are fully completed and are ready to be started. "
    "Use this to find the next tasks to work on."
)
UPDATE_DESCRIPTION = (
    "Update the status of a task in the graph. When a task is completed, "
    "downstream tasks that have all dependencies met will be automatically unblocked. "
    "Fork nodes will receive context from ALL completed tasks; spawn nodes only from direct dependencies. "
    'Use status "in_progress" to start a task, "completed" when done (attach output_result), '
    'or "failed" if it cannot be completed.'
)
SPAWN_DESCRIPTION = (
    "Dynamically add a new spawn task to the running graph. "
    "A spawned task gets a clean slate: only the outputs of its declared dependencies are injected as context. "
    "Equivalent to CORD's spawn() primitive."
)
FORK_DESCRIPTION = (
    "Dynamically add a new fork task to the running graph. "
    "A forked task inherits ALL completed tasks' outputs as context when it becomes unblocked. "
    "Use fork for synthesis or analysis steps that need the full picture of what the team has learned. "
    "Equivalent to CORD's fork() primitive."
)
ASK_DESCRIPTION = (
    "Create a human-in-the-loop question node. The question will appear in the task graph "
    'and downstream tasks will be blocked until it is answered via the "answerQuestion" tool. '
    "Use this when the agent needs information that cannot be researched autonomously. "
    "Equivalent to CORD's ask() primitive. "
    "When the node's dependencies are complete, the question is put to a person right away and "
    "the call returns their answer, which completes the node."
)
ANSWER_DESCRIPTION = (
    "Provide a human answer to a pending ask node, completing it and unblocking downstream tasks. "
    "The answer becomes the output_result of the ask node and is propagated as context to dependents."
)
READ_TREE_DESCRIPTION = (
    "View the full task coordination tree in a hierarchical CORD-style format. "
    "Shows all tasks with their types (SPAWN/FORK/ASK), statuses, and dependency relationships. "
    "Use this to understand the current state of the entire task tree. "
    "Equivalent to CORD's read_tree() primitive."
)
RUN_DESCRIPTION = "Run every remaining task with sub-agents, in dependency order, and return the graph."


# ---------------------------------------------------------------------- graph functions
def _ids(ids: list[str]) -> str:
    return ", ".join(ids) if ids else "(none)"


def _clean(nodes: Any) -> list[dict[str, Any]]:
    """Nodes as plain dicts in one key order; structural problems raise TaskGraphError."""
    if not isinstance(nodes, (list, tuple)):
        raise TaskGraphError(f"A task graph is a list of task nodes, got {type(nodes).__name__}")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(nodes):
        node = raw.model_dump(exclude_none=True) if isinstance(raw, BaseModel) else dict(raw) if isinstance(raw, dict) else None
        if node is None:
            raise TaskGraphError(f"Task #{i + 1} is not a dict: {raw!r}")
        tid = node.get("id")
        if not isinstance(tid, str) or not tid:
            raise TaskGraphError(f"Task #{i + 1} has no id (a non-empty string)")
        status = node.get("status", "pending")
        if status not in STATUSES:
            raise TaskGraphError(f"Task '{tid}' has an unknown status {status!r}; use one of {', '.join(STATUSES)}")
        node_type = node.get("node_type")
        if node_type is not None and node_type not in NODE_TYPES:
            raise TaskGraphError(f"Task '{tid}' has an unknown node_type {node_type!r}; use one of {', '.join(NODE_TYPES)}")
        clean: dict[str, Any] = {
            "id": tid,
            "title": str(node.get("title") or tid),
            "description": str(node.get("description") or ""),
            "status": status,
        }
        if node_type is not None:
            clean["node_type"] = node_type
        for f in _LIST_FIELDS:
            value = node.get(f) or []
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TaskGraphError(f"Task '{tid}': {f} must be a list of strings, got {value!r}")
            clean[f] = list(dict.fromkeys(value))
        for f in _OPTIONAL_FIELDS:
            if node.get(f) is not None:
                if f == "answer_options":
                    clean[f] = [str(v) for v in node[f]]
                else:
                    clean[f] = str(node[f])
        out.append(clean)
    return out


def graph_errors(graph: list[dict[str, Any]]) -> list[str]:
    """lmthing's validation messages for a graph (edges already symmetric): duplicate ids,
    references to unknown tasks, and the tasks on or behind a cycle (Kahn's algorithm)."""
    errors: list[str] = []
    seen: set[str] = set()
    for n in graph:
        if n["id"] in seen:
            errors.append(f'Duplicate task ID: "{n["id"]}"')
        seen.add(n["id"])
    for n in graph:
        for d in n["dependencies"]:
            if d not in seen:
                errors.append(f'Task "{n["id"]}" depends on unknown task "{d}"')
        for u in n["unblocks"]:
            if u not in seen:
                errors.append(f'Task "{n["id"]}" unblocks unknown task "{u}"')
    stuck = cycle_members(graph)
    if stuck:
        errors.append(f"Circular dependency detected involving tasks: {', '.join(stuck)}")
    return errors


def cycle_members(graph: list[dict[str, Any]]) -> list[str]:
    """Ids that Kahn's algorithm cannot order (they lie on or behind a cycle), in graph order;
    references to unknown ids are ignored."""
    ids = {n["id"] for n in graph}
    indegree = {n["id"]: 0 for n in graph}
    after: dict[str, list[str]] = {n["id"]: [] for n in graph}
    for n in graph:
        for d in n["dependencies"]:
            if d in ids:
                after[d].append(n["id"])
                indegree[n["id"]] += 1
    queue = [tid for tid, d in indegree.items() if d == 0]
    ordered: set[str] = set()
    while queue:
        tid = queue.pop(0)
        ordered.add(tid)
        for u in after[tid]:
            indegree[u] -= 1
            if indegree[u] == 0:
                queue.append(u)
    return [n["id"] for n in graph if n["id"] not in ordered]


def _symmetric(graph: list[dict[str, Any]]) -> None:
    """Edges both ways: A in B.dependencies <=> B in A.unblocks (unknown ids are skipped)."""
    by_id = {n["id"]: n for n in graph}
    for n in graph:
        for d in n["dependencies"]:
            if d in by_id and n["id"] not in by_id[d]["unblocks"]:
                by_id[d]["unblocks"].append(n["id"])
        for u in n["unblocks"]:
            if u in by_id and n["id"] not in by_id[u]["dependencies"]:
                by_id[u]["dependencies"].append(n["id"])


def normalize(nodes: Any) -> list[dict[str, Any]]:
    """Validate ``nodes`` and return plain dicts with edges made symmetric.

    Raises :class:`TaskGraphError` (``.errors``: lmthing's messages) for duplicate ids,
    unknown references and cycles, and for malformed nodes."""
    out = _clean(nodes)
    _symmetric(out)
    errors = graph_errors(out)
    if errors:
        raise TaskGraphError(f"Invalid task graph: {'; '.join(errors)}", errors)
    return out


def is_ready(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> bool:
    return node["status"] == "pending" and all(by_id[d]["status"] == "completed" for d in node["dependencies"])


def unblocked(graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {n["id"]: n for n in graph}
    return [n for n in graph if is_ready(n, by_id)]


def _unmet(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    return [d for d in node["dependencies"] if by_id[d]["status"] != "completed"]


def complete(graph: list[dict[str, Any]], task_id: str, output: str | None) -> list[dict[str, Any]]:
    """Mark ``task_id`` completed and pass its output on; returns the newly ready tasks.

    The context format is lmthing's, ``[From <title>]: <output>``. A spawn task (the default)
    gets the output of each of its dependencies as that one completes (lmthing kept only the
    dependency that completed last); a fork task, when it becomes ready, gets the outputs of
    every completed task, after its own context (lmthing's rule)."""
    by_id = {n["id"]: n for n in graph}
    node = by_id[task_id]
    node["status"] = "completed"
    node.pop("error", None)
    if output is not None:
        node["output_result"] = output
    for u in node["unblocks"]:
        down = by_id[u]
        if output and down["status"] != "completed" and down.get("node_type") != "fork":
            _add_context(down, f"[From {node['title']}]: {output}")
    newly = [n for n in graph if n["id"] in node["unblocks"] and is_ready(n, by_id)]
    for n in newly:
        if n.get("node_type") == "fork":
            parts = [f"[From {t['title']}]: {t['output_result']}" for t in graph if t["status"] == "completed" and t.get("output_result")]
            if parts:
                n["input_context"] = "\n\n".join([n["input_context"], *parts] if n.get("input_context") else parts)
    return newly


def _add_context(node: dict[str, Any], part: str) -> None:
    node["input_context"] = f"{node['input_context']}\n\n{part}" if node.get("input_context") else part


def dependents(graph: list[dict[str, Any]], task_id: str) -> list[str]:
    """Every task downstream of ``task_id`` (transitively), in graph order."""
    by_id = {n["id"]: n for n in graph}
    found: set[str] = set()
    stack = list(by_id[task_id]["unblocks"])
    while stack:
        tid = stack.pop()
        if tid not in found:
            found.add(tid)
            stack.extend(by_id[tid]["unblocks"])
    return [n["id"] for n in graph if n["id"] in found]


def _type_tag(n: dict[str, Any]) -> str:
    nt = n.get("node_type")
    return f" [{nt.upper()}]" if nt and nt != "spawn" else ""


def _format_node(n: dict[str, Any]) -> str:
    deps = f" (depends on: {', '.join(n['dependencies'])})" if n["dependencies"] else ""
    caps = f" [{', '.join(n['required_capabilities'])}]" if n["required_capabilities"] else ""
    agent = f" → {n['assigned_subagent']}" if n.get("assigned_subagent") else ""
    ask = f"\n    ? {n['question']}" if n.get("node_type") == "ask" and n.get("question") else ""
    return f"  - [{n['id']}]{_type_tag(n)} {n['title']}{deps}{caps}{agent}{ask}"


def _format_nodes(nodes: list[dict[str, Any]]) -> str:
    return "\n".join(_format_node(n) for n in nodes) or "  (none)"


def status_block(graph: list[dict[str, Any]]) -> str:
    """The "## Task Graph Status" block, as lmthing's effect wrote it (it never reached
    lmthing's model; ours gets it every step). Sections: pending human questions (when
    any), In Progress, Ready to Start (when any), Blocked / Pending, Completed, Failed (when
    any), Skipped (when any: a status of ``run_task_graph``), then two lines of usage."""
    by_id = {n["id"]: n for n in graph}
    ready = [n for n in graph if is_ready(n, by_id)]
    ready_ids = {n["id"] for n in ready}
    in_progress = [n for n in graph if n["status"] == "in_progress"]
    blocked = [n for n in graph if n["status"] == "pending" and n["id"] not in ready_ids]
    completed = [n for n in graph if n["status"] == "completed"]
    failed = [n for n in graph if n["status"] == "failed"]
    skipped = [n for n in graph if n["status"] == "skipped"]
    asks = [n for n in graph if n.get("node_type") == "ask" and n["status"] != "completed"]
    ask_section = ""
    if asks:
        lines = []
        for n in asks:
            opts = f"\n    Options: {', '.join(n['answer_options'])}" if n.get("answer_options") else ""
            lines.append(f"  - [{n['id']}] {n.get('question') or n['title']}{opts}")
        ask_section = (
            f"\n### ⚠ Pending Human Questions ({len(asks)})\n" + "\n".join(lines)
            + '\n  Use "answerQuestion" to unblock downstream tasks.\n'
        )
    ready_section = f"\n### Ready to Start ({len(ready)})\n{_format_nodes(ready)}\n" if ready else ""
    failed_section = f"### Failed ({len(failed)})\n{_format_nodes(failed)}\n" if failed else ""
    skipped_section = f"### Skipped ({len(skipped)})\n{_format_nodes(skipped)}\n" if skipped else ""
    content = (
        "\n## Task Graph Status\n"
        f"{ask_section}\n"
        f"### In Progress ({len(in_progress)})\n{_format_nodes(in_progress)}\n"
        f"{ready_section}\n"
        f"### Blocked / Pending ({len(blocked)})\n{_format_nodes(blocked)}\n\n"
        f"### Completed ({len(completed)})\n{_format_nodes(completed)}\n\n"
        f"{failed_section}{skipped_section}"
        'Use "getUnblockedTasks" to find tasks ready for execution, "updateTaskStatus" to update task progress.\n'
        'Use "spawnTask" or "forkTask" to add tasks dynamically. Use "readTree" to view the full coordination tree.\n'
    )
    return content.strip()


_SYMBOLS = {"completed": "✓", "in_progress": "●", "failed": "✗"}


def tree(graph: list[dict[str, Any]]) -> str:
    """lmthing's CORD-style outline: roots first, each task under the tasks it depends on
    (written once), e.g. ``✓ [completed] SPAWN Research`` then ``  result: <output>``."""
    if not graph:
        return "(empty)"
    lines: list[str] = []
    rendered: set[str] = set()

    def walk(n: dict[str, Any], indent: int) -> None:
        if n["id"] in rendered:
            return
        rendered.add(n["id"])
        pad = "  " * indent
        label = _SYMBOLS.get(n["status"], "○") + _type_tag(n)
        kind = n["node_type"].upper() if n.get("node_type") else "SPAWN"
        status = "[" + n["status"].replace("_", " ", 1) + "]"
        blocked = f" blocked-by: {', '.join(n['dependencies'])}" if n["dependencies"] and n["status"] == "pending" else ""
        lines.append(f"{pad}{label} {status} {kind} {n['title']}{blocked}")
        if n.get("node_type") == "ask" and n.get("question") and n["status"] != "completed":
            lines.append(f"{pad}  ? {n['question']}")
            if n.get("answer_options"):
                lines.append(f"{pad}  Options: {', '.join(n['answer_options'])}")
        if n.get("output_result") and n["status"] == "completed":
            out = n["output_result"]
            lines.append(f"{pad}  result: {out[:80] + '…' if len(out) > 80 else out}")
        for child in (c for c in graph if n["id"] in c["dependencies"]):
            walk(child, indent + 1)

    for n in graph:
        if not n["dependencies"]:
            walk(n, 0)
    for n in graph:
        walk(n, 0)
    return "\n".join(lines)


def tree_summary(graph: list[dict[str, Any]]) -> str:
    """The ``readTree`` message: lmthing's counts (plus skipped tasks, when any)."""
    count = {s: sum(1 for n in graph if n["status"] == s) for s in STATUSES}
    text = (
        f"{len(graph)} tasks: {count['completed']} completed, {count['in_progress']} in progress, "
        f"{count['pending']} pending, {count['failed']} failed"
    )
    if count["skipped"]:
        text += f", {count['skipped']} skipped"
    asks = [n for n in graph if n.get("node_type") == "ask" and n["status"] != "completed"]
    if asks:
        text += f" | {len(asks)} unanswered question(s) — use answerQuestion to unblock."
    return text


# ------------------------------------------------------------------------------ plugin
def _graph(p: Any) -> list[dict[str, Any]]:
    return [dict(n, **{f: list(n[f]) for f in _LIST_FIELDS}) for n in (p.get_state(STATE_KEY) or [])]


def _store(p: Any, graph: list[dict[str, Any]]) -> None:
    p.def_state(STATE_KEY, [])[1](graph)


def _not_found(tid: str, graph: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": False, "taskId": tid, "message": f'Task "{tid}" not found. Available IDs: {", ".join(n["id"] for n in graph)}'}


def _with_unblocked(out: dict[str, Any], newly: list[dict[str, Any]]) -> dict[str, Any]:
    if newly:
        out["newlyUnblockedTasks"] = newly
    return out


def _added(g: list[dict[str, Any]], node: dict[str, Any], prefix: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    """``g`` plus ``node``, validated as lmthing did for a task added at run time."""
    if any(n["id"] == node["id"] for n in g):
        return None, f'Task ID "{node["id"]}" already exists.'
    try:
        new = _clean([*g, node])
    except TaskGraphError as err:
        return None, f"{prefix}: {err}"
    _symmetric(new)
    errors = graph_errors(new)
    if errors:
        return None, f"{prefix}: {'; '.join(errors)}"
    return new, None


def _answer(g: list[dict[str, Any]], node: dict[str, Any], answer: str) -> dict[str, Any]:
    """Complete ask node ``node`` with ``answer``: lmthing's answerQuestion result."""
    newly = complete(g, node["id"], answer)
    titles = ", ".join(n["title"] for n in newly)
    message = f'Question answered: "{answer}". ' + (f"Newly unblocked: {titles}." if newly else "No tasks newly unblocked.")
    return _with_unblocked({"success": True, "taskId": node["id"], "message": message, "task": node}, newly)


def def_task_graph(p: Any, nodes: Any = (), agent: str | None = None) -> tuple[list[dict[str, Any]], Callable[[Any], None]]:
    """lmthing ``defTaskGraph``: ``(graph, set_graph)``; ``agent`` is the default agent of
    the ``runTaskGraph`` tool. The setter validates (a bad graph raises TaskGraphError;
    lmthing only logged a warning and kept the bad graph)."""
    initial = normalize(list(nodes))
    graph, raw_set = p.def_state(STATE_KEY, initial)

    def set_graph(value: Any) -> None:
        raw_set(lambda old: normalize(value(old) if callable(value) else value))

    async def generate(args: GenerateArgs) -> dict[str, Any]:
        # Every task starts pending, without a result (lmthing's rule).
        tasks = [t.model_dump(exclude_none=True) | {"status": "pending"} for t in args.tasks]
        try:
            new = normalize(tasks)
        except TaskGraphError as err:
            return {"success": False, "message": str(err)}
        _store(p, new)
        ready = len(unblocked(new))
        return {
            "success": True,
            "message": f"Task graph created with {len(new)} tasks. {ready} task(s) are immediately ready for execution.",
            "taskCount": len(new),
            "tasks": new,
        }

    async def get_unblocked(args: NoArgs) -> dict[str, Any]:
        g = _graph(p)
        ready = unblocked(g)
        if ready:
            return {"success": True, "message": f"{len(ready)} task(s) are ready for execution.", "tasks": ready}
        in_progress = sum(1 for n in g if n["status"] == "in_progress")
        pending = sum(1 for n in g if n["status"] == "pending")
        if in_progress:
            message = f"No tasks are unblocked. {in_progress} task(s) are currently in progress. Waiting for them to complete."
        elif pending:
            message = f"No tasks are currently unblocked. {pending} task(s) are still pending but have unmet dependencies."
        else:
            message = "All tasks have been completed or failed. No tasks remaining."
        return {"success": True, "message": message, "tasks": []}

    async def update(args: UpdateArgs) -> dict[str, Any]:
        g = _graph(p)
        by_id = {n["id"]: n for n in g}
        node = by_id.get(args.taskId)
        if node is None:
            return _not_found(args.taskId, g)
        tid, title = args.taskId, node["title"]
        if node["status"] == "completed":
            # lmthing re-completed a completed task (its output went downstream again); we
            # refuse that too, in lmthing's words for the other statuses.
            return {"success": False, "taskId": tid, "task": node,
                    "message": f'Task "{title}" is already completed and cannot be changed to "{args.status}".'}
        if args.status == "in_progress" and node["status"] == "in_progress":
            return {"success": True, "taskId": tid, "message": f'Task "{title}" is already in progress.', "task": node}
        unmet = _unmet(node, by_id)
        if args.status == "in_progress" and unmet:
            return {"success": False, "taskId": tid, "task": node,
                    "message": f'Cannot start task "{title}". Unmet dependencies: {", ".join(unmet)}'}
        if args.status == "completed" and unmet:
            # lmthing let a task complete before its dependencies; we refuse (DAG order).
            return {"success": False, "taskId": tid, "task": node,
                    "message": f'Cannot complete task "{title}". Unmet dependencies: {", ".join(unmet)}'}
        newly: list[dict[str, Any]] = []
        if args.status == "completed":
            newly = complete(g, tid, args.output_result)
            titles = ", ".join(n["title"] for n in newly)
            message = f'Task "{title}" completed. Newly unblocked: {titles}.' if newly else f'Task "{title}" completed.'
        else:
            node["status"] = args.status
            if args.output_result is not None:
                node["output_result"] = args.output_result
            message = f'Task "{title}" marked as failed.' if args.status == "failed" else f'Task "{title}" is now in progress.'
        _store(p, g)
        return _with_unblocked({"success": True, "taskId": tid, "message": message, "task": node}, newly)

    def add_task(args: SpawnArgs, node_type: str) -> tuple[dict[str, Any] | None, str]:
        g = _graph(p)
        node = args.model_dump(exclude_none=True) | {
            "id": args.id or _fresh_id(g, "task-", len(g) + 1), "node_type": node_type, "status": "pending",
        }
        new, problem = _added(g, node, "Invalid task")
        if new is None:
            return None, problem or ""
        _store(p, new)
        return next(n for n in new if n["id"] == node["id"]), ""

    async def spawn(args: SpawnArgs) -> dict[str, Any]:
        task, problem = add_task(args, "spawn")
        if task is None:
            return {"success": False, "message": problem}
        deps = ", ".join(args.dependencies) or "none"
        return {"success": True, "message": f'Spawned task "{task["title"]}" ({task["id"]}). Dependencies: {deps}.', "task": task}

    async def fork(args: SpawnArgs) -> dict[str, Any]:
        task, problem = add_task(args, "fork")
        if task is None:
            return {"success": False, "message": problem}
        deps = ", ".join(args.dependencies) or "none"
        return {"success": True, "task": task, "message": (
            f'Forked task "{task["title"]}" ({task["id"]}) added. '
            f"It will inherit ALL completed task outputs when unblocked. Dependencies: {deps}."
        )}

    async def ask(args: AskArgs, info: Any) -> dict[str, Any]:
        g = _graph(p)
        q = args.question
        node: dict[str, Any] = {
            "id": args.id or _fresh_id(g, "ask-", len(g) + 1),
            "title": f"[ASK] {q[:60] + '…' if len(q) > 60 else q}",
            "description": q,
            "node_type": "ask",
            "status": "pending",
            "dependencies": args.dependencies,
            "unblocks": args.unblocks,
            "required_capabilities": [],
            "question": q,
        }
        if args.answer_options is not None:
            node["answer_options"] = args.answer_options
        new, problem = _added(g, node, "Invalid ask node")
        if new is None:
            return {"success": False, "message": problem}
        _store(p, new)
        by_id = {n["id"]: n for n in new}
        created = by_id[node["id"]]
        if _unmet(created, by_id):
            # Not askable yet (lmthing's behaviour for every ask): the node waits for its
            # dependencies and for answerQuestion.
            opts = f" Options: {', '.join(args.answer_options)}." if args.answer_options else ""
            return {"success": True, "task": created, "message": (
                f'Question node "{created["id"]}" created: "{q}".{opts} '
                f"Downstream tasks ({', '.join(args.unblocks) or 'none'}) are blocked until answered."
            )}
        # Ours: a person answers now (lmthing never asked anyone); the call waits for them.
        answer = await p.ask_human(q, options=args.answer_options, key=f"askHuman:{info.tool_call_id}")
        g = _graph(p)  # re-read: the graph may have changed while we waited
        current = next((n for n in g if n["id"] == created["id"]), None)
        if current is None or current["status"] == "completed":
            return {"success": True, "taskId": created["id"], "message": f'Question answered: "{answer}".', "answer": answer}
        out = _answer(g, current, answer)
        _store(p, g)
        return {**out, "answer": answer}

    async def answer_question(args: AnswerArgs) -> dict[str, Any]:
        g = _graph(p)
        by_id = {n["id"]: n for n in g}
        node = by_id.get(args.taskId)
        if node is None:
            return _not_found(args.taskId, g)
        if node.get("node_type") != "ask":
            return {"success": False, "taskId": args.taskId,
                    "message": f'Task "{args.taskId}" is not an ask node (type: {node.get("node_type") or "spawn"}).'}
        if node["status"] == "completed":
            return {"success": False, "taskId": args.taskId, "message": f'Ask node "{node["title"]}" has already been answered.'}
        unmet = _unmet(node, by_id)
        if unmet:
            return {"success": False, "taskId": args.taskId,
                    "message": f'Cannot answer "{node["title"]}" yet. Unmet dependencies: {", ".join(unmet)}'}
        out = _answer(g, node, args.answer)
        _store(p, g)
        return out

    async def read_tree(args: NoArgs) -> dict[str, Any]:
        g = _graph(p)
        if not g:
            return {"success": True, "message": "Task tree is empty.", "tree": "(empty)", "tasks": []}
        return {"success": True, "message": tree_summary(g), "tree": tree(g), "tasks": g}

    async def run_tool(args: RunArgs, info: Any) -> dict[str, Any]:
        try:
            g = await run_task_graph(
                p, None, agent=args.agent or agent, max_concurrency=args.max_concurrency,
                on_failure=args.on_failure, key_prefix=f"{info.tool_call_id}/",
            )
        except TaskGraphFailed as err:
            return {"success": False, "message": str(err), "tasks": err.graph}
        except PromptError as err:
            return {"success": False, "message": str(err), "tasks": _graph(p)}
        return {"success": True, "message": _summary(g), "tasks": g}

    p.def_tool("generateTaskGraph", GENERATE_DESCRIPTION, GenerateArgs, generate)
    p.def_tool("getUnblockedTasks", UNBLOCKED_DESCRIPTION, NoArgs, get_unblocked)
    p.def_tool("updateTaskStatus", UPDATE_DESCRIPTION, UpdateArgs, update)
    p.def_tool("spawnTask", SPAWN_DESCRIPTION, SpawnArgs, spawn)
    p.def_tool("forkTask", FORK_DESCRIPTION, SpawnArgs, fork)
    p.def_tool("askHuman", ASK_DESCRIPTION, AskArgs, ask)
    p.def_tool("answerQuestion", ANSWER_DESCRIPTION, AnswerArgs, answer_question)
    p.def_tool("readTree", READ_TREE_DESCRIPTION, NoArgs, read_tree)
    p.def_tool("runTaskGraph", RUN_DESCRIPTION, RunArgs, run_tool)

    def show(ctx: Any, mod: Any) -> None:
        g = _graph(p)
        if g:  # lmthing showed no block for an empty graph
            mod("systems", [{"name": "taskGraph", "value": status_block(g)}])

    p.def_effect(show)
    return graph, set_graph


def _fresh_id(graph: list[dict[str, Any]], prefix: str, start: int) -> str:
    ids = {n["id"] for n in graph}
    n = start
    while f"{prefix}{n}" in ids:
        n += 1
    return f"{prefix}{n}"


def _summary(graph: list[dict[str, Any]]) -> str:
    counts = {s: [n["id"] for n in graph if n["status"] == s] for s in STATUSES}
    parts = [f"{s}: {_ids(ids)}" for s, ids in counts.items() if ids]
    return "Task graph run finished. " + "; ".join(parts)


# ----------------------------------------------------------------------- engine runner
async def run_task_graph(
    p: Any,
    graph: Any = None,
    agent: str | None = None,
    max_concurrency: int = 4,
    on_failure: str = "fail_fast",
    key_prefix: str = "",
) -> list[dict[str, Any]]:
    """Run a task graph with sub-agents as child workflows; returns the finished graph.

    ``graph`` None runs the prompt's own graph (``def_task_graph``); a given graph becomes
    the prompt's graph. Tasks already ``completed`` are not run again; ``pending``,
    ``in_progress``, ``failed`` and ``skipped`` ones are (re)run. Each task runs as
    ``p.call_agent(task.assigned_subagent or agent, TaskInput, key=f"{key_prefix}task-{id}")``.
    """
    if on_failure not in POLICIES:
        raise PromptError(f"run_task_graph: on_failure must be one of {', '.join(POLICIES)}, got {on_failure!r}")
    if not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 1000:
        raise PromptError(f"run_task_graph: max_concurrency must be an int from 1 to 1000, got {max_concurrency!r}")
    g = normalize(_graph(p) if graph is None else list(graph))
    for n in g:
        if n["status"] != "completed":
            n["status"] = "pending"
            n.pop("error", None)
    # Ask nodes are put to a person (p.ask_human); every other task needs an agent.
    agent_tasks = [n for n in g if n["status"] == "pending" and n.get("node_type") != "ask"]
    missing = [n["id"] for n in agent_tasks if not (n.get("assigned_subagent") or agent)]
    if missing:
        raise PromptError(f"run_task_graph: tasks {_ids(missing)} have no assigned_subagent; pass agent=<def_agent name>")
    names = sorted({n.get("assigned_subagent") or agent for n in agent_tasks})  # type: ignore[type-var]
    unknown = [a for a in names if p.defined_agent(a.partition(".")[0]) is None]
    if unknown:
        raise PromptError(f"run_task_graph: no agent {_ids(unknown)} is defined; declare it with def_agent(name, ..., TaskInput, fn)")
    by_id = {n["id"]: n for n in g}
    _store(p, g)

    done: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    running: dict[str, asyncio.Task[None]] = {}
    failed: list[str] = []
    stop = False

    async def run_one(node: dict[str, Any]) -> None:
        if node.get("node_type") == "ask":
            answer = await p.ask_human(
                node.get("question") or node["title"], options=node.get("answer_options"), key=f"{key_prefix}task-{node['id']}"
            )
            await done.put((node["id"], {"response": answer}))
            return
        args = TaskInput(
            id=node["id"], title=node["title"], description=node["description"],
            input_context=node.get("input_context") or "", required_capabilities=node["required_capabilities"],
        ).model_dump()
        try:
            outcome = await p.call_agent(node.get("assigned_subagent") or agent, args, key=f"{key_prefix}task-{node['id']}")
        except PromptError as err:
            outcome = {"error": str(err)}
        await done.put((node["id"], outcome))

    def start_ready() -> None:
        for n in g:
            if stop or len(running) >= max_concurrency:
                return
            if n["id"] not in running and is_ready(n, by_id):
                n["status"] = "in_progress"
                running[n["id"]] = asyncio.create_task(run_one(n))

    try:
        start_ready()
        _store(p, g)
        while running:
            tid, outcome = await done.get()
            await running.pop(tid)
            if "error" in outcome or "validationError" in outcome:
                node = by_id[tid]
                node["status"] = "failed"
                node["error"] = outcome.get("error") or f"validation error: {outcome['validationError']}"
                if "response" in outcome:
                    node["output_result"] = outcome["response"]
                failed.append(tid)
                if on_failure == "fail_fast":
                    stop = True
                elif on_failure == "skip_dependents":
                    for d in dependents(g, tid):
                        if by_id[d]["status"] == "pending":
                            by_id[d]["status"] = "skipped"
                            by_id[d]["error"] = f"skipped: depends on failed task '{tid}'"
            else:
                complete(g, tid, outcome.get("response", ""))
            start_ready()
            _store(p, g)
    finally:
        # Cancelled from outside: cancel the running tasks' children and wait for them to end.
        for task in running.values():
            task.cancel()
        if running:
            await asyncio.gather(*running.values(), return_exceptions=True)
    if failed and on_failure == "fail_fast":
        raise TaskGraphFailed(
            f"Task graph stopped: task {_ids(failed)} failed ({by_id[failed[0]]['error']}); "
            f"not started: {_ids([n['id'] for n in g if n['status'] == 'pending'])}",
            g, failed,
        )
    return g


class _TaskGraphPlugin:
    """``plugins=[task_graph_plugin]`` gives a prompt ``p.def_task_graph`` and ``p.run_task_graph``."""

    def_task_graph = staticmethod(def_task_graph)
    run_task_graph = staticmethod(run_task_graph)


task_graph_plugin = _TaskGraphPlugin()

__all__ = [
    "TaskGraphError", "TaskGraphFailed", "TaskInput", "dependents", "def_task_graph", "normalize",
    "run_task_graph", "status_block", "task_graph_plugin", "tree", "unblocked",
]
