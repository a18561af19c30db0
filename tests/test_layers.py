"""The layer rules of ARCHITECTURE.md, checked on the source: a file's folder says what it
may import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lmthing"

FORBIDDEN = {
    # prompt/ is engine-neutral: no Temporal, no other lmthing layer.
    "prompt": (
        "temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client",
        "lmthing.orchestration", "lmthing.plugins", "lmthing.messaging", "lmthing.memory", "lmthing.mcp",
        # of resilience/ only the leaves: the breaker's state machine and the domain
        # allowlists (ToolContext checks them); the rest is the engine's
        *(f"lmthing.resilience.{m}" for m in ("plugin", "book", "checks", "budget", "specs", "moderation")),
    ),
    # workflows/ is deterministic orchestration: activity *names* only, no I/O libraries.
    "workflows": (
        "openai", "anthropic", "httpx", "requests", "aiohttp", "socket", "subprocess", "mcp",
        "lmthing.workers", "lmthing.client", "lmthing.activities.model", "lmthing.activities.tools",
        "lmthing.activities.providers",
    ),
    "activities": ("lmthing.workflows", "lmthing.workers", "lmthing.client"),
    # cli/ is a thin edge over client/ and workers/: no provider SDKs of its own.
    "cli": ("openai", "anthropic"),
    # orchestration/ is engine-neutral like prompt/: it runs agents and tools through the
    # prompt's public calls or a host the workflow layer gives it.
    "orchestration": ("temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client"),
    # messaging/ is engine-neutral like prompt/: message types and the state machines of a
    # mailbox, a topic and a board; the workflows, activities and client use them.
    "messaging": (
        "temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client",
        "lmthing.orchestration", "lmthing.plugins",
    ),
    # resilience/ is engine-neutral like prompt/: the definitions of def_retry, def_fallback,
    # def_guard, def_validator and def_constraint, the checks and budgets the workflow layer
    # runs, and the circuit breaker's state machine (breaker.py, a leaf prompt/ may use).
    "resilience": (
        "temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client",
        "lmthing.orchestration", "lmthing.plugins", "lmthing.messaging",
    ),
    # memory/ is engine-neutral like prompt/: the records that cross to the memory
    # activities, def_memory / def_cache / def_context and the context-window rules; every
    # store read and write is an activity (activities/memory.py, activities/stores/).
    "memory": (
        "temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client",
        "lmthing.orchestration", "lmthing.plugins", "lmthing.messaging", "sqlite3", "psycopg", "openai",
    ),
    # mcp_server/ is an edge like cli/, over client/: it starts runs, it runs nothing (the
    # worker of `lmthing mcp serve --with-worker` is the CLI's), and no provider SDKs.
    "mcp_server": ("openai", "anthropic", "lmthing.activities", "lmthing.workers", "lmthing.cli"),
    # tools/ holds @tool activities (built-in tools) and the tool registry: I/O is theirs,
    # but they are activities, never workflow code, and reach no worker or client.
    "tools": ("lmthing.workflows", "lmthing.workers", "lmthing.client"),
    # mcp/ is engine-neutral like prompt/: an MCP server's settings, def_mcp_server and the
    # records that cross to the MCP activities; the SDK and its sessions are the worker's.
    "mcp": (
        "temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client",
        "lmthing.orchestration", "lmthing.plugins", "lmthing.messaging", "mcp", "httpx", "httpx2", "anyio", "subprocess",
    ),
    # plugins/ is built on the public def_* API only, as a user's plugin would be.
    "plugins": ("temporalio", "lmthing.workflows", "lmthing.activities", "lmthing.workers", "lmthing.client"),
}


def imports_of(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer):
    offenders = [
        f"{path.relative_to(ROOT.parent)} imports {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for name in imports_of(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offenders == []
