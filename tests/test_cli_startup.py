"""Start-up of ``lmthing`` commands (issue 14, "Slow commands"): ``import lmthing`` and
``import lmthing.cli`` load neither Temporal nor the engine, and every public name still
works. What is loaded is checked here, in a fresh interpreter each time; how long it takes
is measured by bench/cli_startup.py, never asserted."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT, cli_env

COMMANDS = ("worker", "dev", "run", "chat", "approvals", "approve", "answer", "replay", "history", "reset", "codec-server", "agents", "breakers", "memory", "mcp", "new", "test")
# Importing the CLI must not load any of these (or a submodule of them).
NOT_AT_START = (
    "temporalio", "openai", "anthropic", "aiohttp", "grpc",
    "lmthing.workflows", "lmthing.workers", "lmthing.client", "lmthing.activities", "lmthing.orchestration",
    "lmthing.observability", "lmthing.plugins", "lmthing.messaging", "lmthing.mcp_server", "mcp", "mcp_types",
)


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=cli_env(),
    )
    assert done.returncode == 0, done.stderr
    return done


def loaded_after(code: str) -> list[str]:
    """The modules of NOT_AT_START in sys.modules after running ``code`` in a new interpreter."""
    done = python(
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in {NOT_AT_START!r}))))"
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_lmthing_and_its_cli_loads_neither_temporal_nor_the_engine() -> None:
    assert loaded_after("import lmthing") == []
    assert loaded_after("import lmthing\nimport lmthing.cli") == []
    # The names other code imports from lmthing.cli are there without loading anything more.
    assert loaded_after("from lmthing.cli import *\nfrom lmthing.cli import app, main, worker, dev, run") == []


def test_named_modules_of_the_brief_stay_out_of_sys_modules() -> None:
    done = python(
        "import sys\nimport lmthing\nimport lmthing.cli\n"
        "for name in ('temporalio.client', 'temporalio.worker', 'openai', 'anthropic'):\n"
        "    assert name not in sys.modules, name\n"
        "print('ok')"
    )
    assert done.stdout.strip() == "ok"


def test_the_public_names_of_lmthing_still_import() -> None:
    done = python(
        "import lmthing\n"
        "from lmthing import prompt, tool, step, def_workflow, RunConfig\n"
        "from lmthing.workflows.definition import prompt as the_decorator\n"
        "from lmthing.prompt.tools import tool as the_tool\n"
        "from lmthing.orchestration import step as the_step\n"
        "assert (prompt, tool, step) == (the_decorator, the_tool, the_step)\n"
        "assert all(getattr(lmthing, name) is not None for name in lmthing.__all__)\n"
        "assert set(lmthing.__all__) <= set(dir(lmthing))\n"
        "from lmthing import *\n"
        "print(sorted(lmthing.__all__) == sorted(n for n in lmthing.__all__ if n in globals()))"
    )
    assert done.stdout.strip() == "True"


def test_prompt_stays_the_decorator_when_the_subpackage_is_imported_first() -> None:
    """``lmthing.prompt`` is both a subpackage and the decorator; importing the subpackage
    first (``from lmthing.prompt.types import ...``, as any worker does) must not make
    ``from lmthing import prompt`` return the module."""
    done = python(
        "import sys, types\n"
        "import lmthing.prompt.types\n"
        "from lmthing.prompt.humans import Decision\n"
        "from lmthing import prompt\n"
        "import lmthing\n"
        "assert callable(prompt) and not isinstance(prompt, types.ModuleType), prompt\n"
        "assert lmthing.prompt is prompt\n"
        "assert isinstance(sys.modules['lmthing.prompt'], types.ModuleType)\n"
        "@prompt\n"
        "def hello(p):\n"
        "    p.user('hi')\n"
        "print(hello.spec.name)"
    )
    assert done.stdout.strip() == "hello"


def test_every_public_name_has_a_source_module() -> None:
    """A name added to ``lmthing.__all__`` needs its entry in ``_SOURCES`` (and under
    TYPE_CHECKING), or ``from lmthing import it`` fails."""
    import lmthing

    assert sorted(lmthing._SOURCES) == sorted(lmthing.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import lmthing

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lmthing.nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from lmthing import nope", {})


def test_lmthing_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lmthing", "--help"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=cli_env(COLUMNS="200"),
    )
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^\W*([a-z][a-z-]*)\s{2,}\S", done.stdout.split("Commands", 1)[1], re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)


def test_the_cli_default_task_queue_is_the_workers() -> None:
    from lmthing.cli.common import DEFAULT_TASK_QUEUE
    from lmthing.workers import DEFAULT_TASK_QUEUE as WORKERS_DEFAULT

    assert DEFAULT_TASK_QUEUE == WORKERS_DEFAULT


def test_every_name_lmthing_cli_exports_resolves() -> None:
    import lmthing.cli

    missing = [name for name in lmthing.cli.__all__ if getattr(lmthing.cli, name, None) is None]
    assert missing == []
