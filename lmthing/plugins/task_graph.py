"""The task graph plugin: lmthing's ``defTaskGraph``, built only on the public ``def_*`` API.

Pass ``task_graph_plugin`` in ``plugins=[...]``; then ``p.def_task_graph(nodes)`` returns
``(graph, set_graph)`` and registers the tools ``generateTaskGraph``, ``getUnblockedTasks``,
``updateTaskStatus``, ``spawnTask``, ``forkTask``, ``askHuman``, ``answerQuestion``,
``readTree`` and ``runTaskGraph``, plus an effect that shows the "## Task Graph Status" block
to the model on every step (added as a system part of its own; other parts stay).

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
_OPTIONAL_FIELDS = ("assigned_subagent", "input_context", "output_result", "error", "question", "answer")


class TaskGraphError(PromptError):
    """A graph is invalid (cycle, unknown reference, duplicate id, bad field)."""


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


class TaskNodeArgs(BaseModel):
    id: str = Field(description="Unique identifier")
    title: str = Field(description="Concise task name")
    description: str = Field("", description="Detailed execution instructions")
    status: Literal["pending", "in_progress", "completed", "failed", "skipped"] = "pending"
    dependencies: list[str] = Field(default_factory=list, description="Ids of upstream tasks that must complete first")
    unblocks: list[str] = Field(default_factory=list, description="Ids of downstream tasks waiting on this one")
    required_capabilities: list[str] = Field(default_factory=list)
    assigned_subagent: str | None = None
    input_context: str | None = None
    output_result: str | None = None


class GenerateArgs(BaseModel):
    tasks: list[TaskNodeArgs]


class NoArgs(BaseModel):
    pass


class UpdateArgs(BaseModel):
    taskId: str
    status: Literal["in_progress", "completed", "failed"]
    output_result: str | None = None


class SpawnArgs(BaseModel):
    title: str
    description: str = ""
    id: str | None = Field(None, description="Defaults to task-<n>")
    dependencies: list[str] = Field(default_factory=list)
    unblocks: list[str] = Field(default_factory=list)
    required_capabilities: list[str] = Field(default_factory=list)
    assigned_subagent: str | None = None
    input_context: str | None = None


class SubtaskArgs(BaseModel):
    title: str
    description: str = ""
    id: str | None = Field(None, description="Defaults to <taskId>.<n>")
    required_capabilities: list[str] | None = None
    assigned_subagent: str | None = None


class ForkArgs(BaseModel):
    taskId: str
    subtasks: list[SubtaskArgs]


class AskArgs(BaseModel):
    question: str
    options: list[str] | None = None
    taskId: str | None = Field(None, description="The task the question is about; the answer joins its input_context")


class AnswerArgs(BaseModel):
    taskId: str
    answer: str
    question: str | None = Field(None, description="Defaults to the task's open question")


class RunArgs(BaseModel):
    agent: str | None = Field(None, description="Agent for tasks without assigned_subagent")
    max_concurrency: int = Field(4, ge=1, le=100)
    on_failure: Literal["fail_fast", "continue", "skip_dependents"] = "fail_fast"


# ---------------------------------------------------------------------- graph functions
def _ids(ids: list[str]) -> str:
    return ", ".join(ids) if ids else "(none)"


def normalize(nodes: Any) -> list[dict[str, Any]]:
    """Validate ``nodes`` and return plain dicts with edges made symmetric.

    Raises :class:`TaskGraphError` naming the offending ids: duplicates, unknown references,
    bad statuses, and cycles (found with Kahn's algorithm)."""
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
        clean: dict[str, Any] = {
            "id": tid,
            "title": str(node.get("title") or tid),
            "description": str(node.get("description") or ""),
            "status": status,
        }
        for f in _LIST_FIELDS:
            value = node.get(f) or []
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TaskGraphError(f"Task '{tid}': {f} must be a list of strings, got {value!r}")
            clean[f] = list(dict.fromkeys(value))
        for f in _OPTIONAL_FIELDS:
            if node.get(f) is not None:
                clean[f] = str(node[f])
        out.append(clean)

    seen: set[str] = set()
    dupes = [n["id"] for n in out if n["id"] in seen or seen.add(n["id"])]  # type: ignore[func-returns-value]
    if dupes:
        raise TaskGraphError(f"Duplicate task ids: {_ids(list(dict.fromkeys(dupes)))}")
    by_id = {n["id"]: n for n in out}
    problems = []
    for n in out:
        for d in n["dependencies"]:
            if d not in by_id:
                problems.append(f"task '{n['id']}' depends on unknown task '{d}'")
        for u in n["unblocks"]:
            if u not in by_id:
                problems.append(f"task '{n['id']}' unblocks unknown task '{u}'")
    if problems:
        raise TaskGraphError(f"Unknown task references: {'; '.join(problems)} (known ids: {_ids(list(by_id))})")

    # Edges both ways: A in B.dependencies <=> B in A.unblocks.
    for n in out:
        for d in n["dependencies"]:
            if n["id"] not in by_id[d]["unblocks"]:
                by_id[d]["unblocks"].append(n["id"])
        for u in n["unblocks"]:
            if n["id"] not in by_id[u]["dependencies"]:
                by_id[u]["dependencies"].append(n["id"])

    # Kahn's algorithm: what cannot be ordered lies on (or behind) a cycle.
    indegree = {n["id"]: len(n["dependencies"]) for n in out}
    queue = [tid for tid, d in indegree.items() if d == 0]
    ordered = 0
    while queue:
        tid = queue.pop(0)
        ordered += 1
        for u in by_id[tid]["unblocks"]:
            indegree[u] -= 1
            if indegree[u] == 0:
                queue.append(u)
    if ordered < len(out):
        stuck = [n["id"] for n in out if indegree[n["id"]] > 0]
        raise TaskGraphError(f"The task graph has a cycle; these tasks can never start: {_ids(stuck)}")
    return out


def is_ready(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> bool:
    return node["status"] == "pending" and all(by_id[d]["status"] == "completed" for d in node["dependencies"])


def unblocked(graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {n["id"]: n for n in graph}
    return [n for n in graph if is_ready(n, by_id)]


def complete(graph: list[dict[str, Any]], task_id: str, output: str | None) -> list[dict[str, Any]]:
    """Mark ``task_id`` completed, pass its output downstream; returns the newly ready tasks."""
    by_id = {n["id"]: n for n in graph}
    node = by_id[task_id]
    node["status"] = "completed"
    node.pop("error", None)
    if output is not None:
        node["output_result"] = output
    newly = []
    for u in node["unblocks"]:
        down = by_id[u]
        if output is not None:
            part = f"[{node['id']}] {node['title']}: {output}"
            down["input_context"] = f"{down['input_context']}\n\n{part}" if down.get("input_context") else part
        if is_ready(down, by_id):
            newly.append(down)
    return newly


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


def _line(n: dict[str, Any], deps: bool = False) -> str:
    text = f"  - [{n['id']}] {n['title']}"
    if deps and n["dependencies"]:
        text += f" (depends on: {', '.join(n['dependencies'])})"
    if n["required_capabilities"]:
        text += f" [{', '.join(n['required_capabilities'])}]"
    return text


def status_block(graph: list[dict[str, Any]]) -> str:
    """The "## Task Graph Status" block the model sees every step."""
    by_id = {n["id"]: n for n in graph}
    sections: list[tuple[str, list[str]]] = [
        ("In Progress", [_line(n) for n in graph if n["status"] == "in_progress"]),
        ("Blocked", [_line(n, True) for n in graph if n["status"] == "pending" and not is_ready(n, by_id)]),
        ("Pending", [_line(n) for n in graph if is_ready(n, by_id)]),
        ("Completed", [_line(n) for n in graph if n["status"] == "completed"]),
        ("Failed", [_line(n) for n in graph if n["status"] == "failed"]),
    ]
    skipped = [_line(n) for n in graph if n["status"] == "skipped"]
    if skipped:
        sections.append(("Skipped", skipped))
    out = ["## Task Graph Status"]
    for title, lines in sections:
        out.append(f"\n### {title} ({len(lines)})")
        out.extend(lines or ["  (none)"])
    out.append(
        '\nUse "getUnblockedTasks" to find tasks ready for execution, "updateTaskStatus" to update task progress.'
    )
    return "\n".join(out)


def tree(graph: list[dict[str, Any]]) -> str:
    """The graph as an outline: roots first, each task under the tasks it depends on (a task
    with several parents is written out once, then referred to as "(see above)")."""
    by_id = {n["id"]: n for n in graph}
    lines: list[str] = []
    shown: set[str] = set()

    def walk(tid: str, depth: int) -> None:
        n = by_id[tid]
        pad = "  " * depth
        if tid in shown:
            lines.append(f"{pad}- [{tid}] {n['title']} (see above)")
            return
        shown.add(tid)
        lines.append(f"{pad}- [{tid}] {n['title']} ({n['status']})")
        for u in n["unblocks"]:
            walk(u, depth + 1)

    for n in graph:
        if not n["dependencies"]:
            walk(n["id"], 0)
    return "\n".join(lines) or "(empty graph)"


# ------------------------------------------------------------------------------ plugin
def _graph(p: Any) -> list[dict[str, Any]]:
    return [dict(n, **{f: list(n[f]) for f in _LIST_FIELDS}) for n in (p.get_state(STATE_KEY) or [])]


def _store(p: Any, graph: list[dict[str, Any]]) -> None:
    p.def_state(STATE_KEY, [])[1](graph)


def _unknown(tid: str, graph: list[dict[str, Any]]) -> str:
    return f"Task '{tid}' not found. Available tasks: {_ids([n['id'] for n in graph])}"


def def_task_graph(p: Any, nodes: Any = (), agent: str | None = None) -> tuple[list[dict[str, Any]], Callable[[Any], None]]:
    """lmthing ``defTaskGraph``: ``(graph, set_graph)``; ``agent`` is the default agent of
    the ``runTaskGraph`` tool. The setter validates (a bad graph raises TaskGraphError)."""
    initial = normalize(list(nodes))
    graph, raw_set = p.def_state(STATE_KEY, initial)

    def set_graph(value: Any) -> None:
        raw_set(lambda old: normalize(value(old) if callable(value) else value))

    async def generate(args: GenerateArgs) -> dict[str, Any]:
        try:
            new = normalize(args.tasks)
        except TaskGraphError as err:
            return {"success": False, "message": str(err), "taskCount": 0, "tasks": []}
        _store(p, new)
        return {"success": True, "message": f"Task graph created with {len(new)} tasks.", "taskCount": len(new), "tasks": new}

    async def get_unblocked(args: NoArgs) -> dict[str, Any]:
        ready = unblocked(_graph(p))
        if not ready:
            return {"success": True, "message": "No tasks are ready: every pending task waits on another task.", "tasks": []}
        return {"success": True, "message": f"{len(ready)} task(s) ready: {_ids([n['id'] for n in ready])}", "tasks": ready}

    async def update(args: UpdateArgs) -> dict[str, Any]:
        g = _graph(p)
        by_id = {n["id"]: n for n in g}
        node = by_id.get(args.taskId)
        if node is None:
            return {"success": False, "taskId": args.taskId, "message": _unknown(args.taskId, g)}
        if node["status"] == "completed":
            return {"success": False, "taskId": args.taskId, "message": f"Task '{args.taskId}' is already completed."}
        waiting = [d for d in node["dependencies"] if by_id[d]["status"] != "completed"]
        if args.status in ("in_progress", "completed") and waiting:
            return {"success": False, "taskId": args.taskId,
                    "message": f"Task '{args.taskId}' is blocked by unfinished tasks: {_ids(waiting)}"}
        if args.status == "completed":
            newly = complete(g, args.taskId, args.output_result)
            _store(p, g)
            msg = f"Task '{args.taskId}' completed."
            msg += f" Newly unblocked: {_ids([n['id'] for n in newly])}" if newly else ""
            return {"success": True, "taskId": args.taskId, "message": msg, "newlyUnblockedTasks": newly}
        node["status"] = args.status
        if args.status == "failed" and args.output_result is not None:
            node["error"] = args.output_result
        _store(p, g)
        verb = "is now in progress" if args.status == "in_progress" else "failed"
        return {"success": True, "taskId": args.taskId, "message": f"Task '{args.taskId}' {verb}."}

    async def spawn(args: SpawnArgs) -> dict[str, Any]:
        g = _graph(p)
        tid = args.id or _fresh_id(g, "task-", len(g) + 1)
        node = args.model_dump(exclude_none=True) | {"id": tid, "status": "pending"}
        try:
            new = normalize(g + [node])
        except TaskGraphError as err:
            return {"success": False, "message": str(err)}
        _store(p, new)
        return {"success": True, "message": f"Task '{tid}' added.", "task": new[-1]}

    async def fork(args: ForkArgs) -> dict[str, Any]:
        g = _graph(p)
        by_id = {n["id"]: n for n in g}
        node = by_id.get(args.taskId)
        if node is None:
            return {"success": False, "taskId": args.taskId, "message": _unknown(args.taskId, g)}
        if node["status"] not in ("pending", "failed"):
            return {"success": False, "taskId": args.taskId,
                    "message": f"Task '{args.taskId}' is {node['status']}; only a pending or failed task can be forked."}
        if not args.subtasks:
            return {"success": False, "taskId": args.taskId, "message": "Give at least one subtask."}
        subs = []
        for i, s in enumerate(args.subtasks):
            sub: dict[str, Any] = {
                "id": s.id or f"{args.taskId}.{i + 1}",
                "title": s.title,
                "description": s.description,
                "status": "pending",
                "dependencies": list(node["dependencies"]),
                "unblocks": [args.taskId],
                "required_capabilities": s.required_capabilities if s.required_capabilities is not None else node["required_capabilities"],
            }
            if s.assigned_subagent or node.get("assigned_subagent"):
                sub["assigned_subagent"] = s.assigned_subagent or node["assigned_subagent"]
            if node.get("input_context"):
                sub["input_context"] = node["input_context"]
            subs.append(sub)
        # The forked task becomes the join: it now waits on its subtasks only.
        for d in node["dependencies"]:
            by_id[d]["unblocks"] = [u for u in by_id[d]["unblocks"] if u != args.taskId]
        node["dependencies"] = [s["id"] for s in subs]
        node["status"] = "pending"
        index = g.index(node)
        try:
            new = normalize(g[:index] + subs + g[index:])
        except TaskGraphError as err:
            return {"success": False, "taskId": args.taskId, "message": str(err)}
        _store(p, new)
        ids = [s["id"] for s in subs]
        return {"success": True, "taskId": args.taskId,
                "message": f"Task '{args.taskId}' forked into {_ids(ids)}; it now runs after them and receives their results.",
                "subtasks": [n for n in new if n["id"] in ids]}

    async def ask(args: AskArgs, info: Any) -> dict[str, Any]:
        if args.taskId is not None and args.taskId not in {n["id"] for n in _graph(p)}:
            return {"success": False, "message": _unknown(args.taskId, _graph(p))}
        answer = await p.ask_human(args.question, options=args.options, key=f"askHuman:{info.tool_call_id}")
        out: dict[str, Any] = {"success": True, "question": args.question, "answer": answer}
        if args.taskId is not None:
            g = _graph(p)  # re-read: the graph may have changed while we waited
            _record_answer(g, args.taskId, args.question, answer)
            _store(p, g)
            out["taskId"] = args.taskId
        return out

    async def answer_question(args: AnswerArgs) -> dict[str, Any]:
        g = _graph(p)
        node = next((n for n in g if n["id"] == args.taskId), None)
        if node is None:
            return {"success": False, "taskId": args.taskId, "message": _unknown(args.taskId, g)}
        question = args.question or (node.get("question") if "answer" not in node else None)
        if not question:
            return {"success": False, "taskId": args.taskId,
                    "message": f"Task '{args.taskId}' has no open question; give the question with the answer."}
        _record_answer(g, args.taskId, question, args.answer)
        _store(p, g)
        return {"success": True, "taskId": args.taskId, "message": f"Answer recorded on task '{args.taskId}'."}

    async def read_tree(args: NoArgs) -> dict[str, Any]:
        g = _graph(p)
        return {"success": True, "tree": tree(g), "tasks": g}

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

    p.def_tool("generateTaskGraph", "Create or replace the task DAG (validated: no cycles, no unknown ids).", GenerateArgs, generate)
    p.def_tool("getUnblockedTasks", "Get pending tasks whose dependencies are all completed.", NoArgs, get_unblocked)
    p.def_tool("updateTaskStatus", "Set a task in_progress, completed (with output_result) or failed; completing unblocks downstream tasks.", UpdateArgs, update)
    p.def_tool("spawnTask", "Add a new task to the graph.", SpawnArgs, spawn)
    p.def_tool("forkTask", "Split a pending task into subtasks; the task then runs after them with their results.", ForkArgs, fork)
    p.def_tool("askHuman", "Ask a person a question and wait for the answer (optionally about a task).", AskArgs, ask)
    p.def_tool("answerQuestion", "Record the answer to a task's question in the graph.", AnswerArgs, answer_question)
    p.def_tool("readTree", "Read the task graph as an outline.", NoArgs, read_tree)
    p.def_tool("runTaskGraph", "Run every remaining task with sub-agents, in dependency order, and return the graph.", RunArgs, run_tool)
    p.def_effect(lambda ctx, mod: mod("systems", [{"name": "taskGraph", "value": status_block(_graph(p))}]))
    return graph, set_graph


def _fresh_id(graph: list[dict[str, Any]], prefix: str, start: int) -> str:
    ids = {n["id"] for n in graph}
    n = start
    while f"{prefix}{n}" in ids:
        n += 1
    return f"{prefix}{n}"


def _record_answer(graph: list[dict[str, Any]], task_id: str, question: str, answer: str) -> None:
    node = next(n for n in graph if n["id"] == task_id)
    node["question"], node["answer"] = question, answer
    part = f"Q: {question}\nA: {answer}"
    node["input_context"] = f"{node['input_context']}\n\n{part}" if node.get("input_context") else part


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
    missing = [n["id"] for n in g if n["status"] == "pending" and not (n.get("assigned_subagent") or agent)]
    if missing:
        raise PromptError(f"run_task_graph: tasks {_ids(missing)} have no assigned_subagent; pass agent=<def_agent name>")
    names = sorted({n.get("assigned_subagent") or agent for n in g if n["status"] == "pending"})  # type: ignore[type-var]
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
