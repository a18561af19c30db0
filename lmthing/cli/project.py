"""``lmthing new NAME`` scaffolds an agent project that passes its own tests at once, and
``lmthing test`` runs a project's checks: every recorded history under ``histories/``
replayed against the app (does the new code still do what the recorded runs did?), then
its tests (scripted scenarios) with pytest. The scaffolds are the files under
``lmthing/cli/templates/_common/`` and ``templates/<kind>/`` (its own files over the shared
ones), with ``{{name}}`` and ``{{module}}`` filled in and ``.tmpl`` dropped from the names."""

from __future__ import annotations

import re
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import CliError, _execute, _execute_sync, app, console, import_app, prompts_of
from .history import ReplayAppOption, _print_replay_report

TEMPLATES = Path(__file__).with_name("templates")


class ProjectKind(str, Enum):
    chat = "chat"
    research = "research"
    workflow = "workflow"


def _module_name(name: str) -> str:
    module = re.sub(r"[^0-9a-zA-Z_]", "_", name).strip("_").lower()
    if not module or module[0].isdigit():
        raise CliError(f"{name!r} does not make a Python module name: start with a letter (e.g. my-agents)", code=2)
    return module


def scaffold(name: str, kind: str, parent: Path) -> Path:
    """Write project ``name`` of ``kind`` under ``parent``; its folder."""
    module = _module_name(name)
    target = parent / name
    if target.exists() and any(target.iterdir()):
        raise CliError(f"{target} exists and is not empty: pick another name or --dir", code=2)
    for source in (TEMPLATES / "_common", TEMPLATES / kind):  # the kind's files over the shared ones
        for path in sorted(source.rglob("*")):
            if path.is_dir() or path.suffix == ".pyc" or "__pycache__" in path.parts:
                continue
            relative = Path(*[part.replace("{{module}}", module) for part in path.relative_to(source).parts])
            out = target / relative.with_name(relative.name.removesuffix(".tmpl"))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(path.read_text().replace("{{name}}", name).replace("{{module}}", module))
    return target


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The project's name (also its folder; its module is the name in snake_case).")],
    template: Annotated[ProjectKind, typer.Option("--template", help="chat, research (tools and a sub-agent) or workflow.")]
    = ProjectKind.chat,
    directory: Annotated[Path, typer.Option("--dir", help="Where to make the project folder.")] = Path("."),
) -> None:
    """Make an agent project: the prompt module, a worker entry, tests on the scripted model,
    a replay history folder and a Dockerfile. Its tests pass at once (`lmthing test`)."""
    target = _execute_sync(lambda: scaffold(name, template.value, directory))
    module = _module_name(name)
    console.print(f"[bold]Made[/bold] {target} ({template.value}). Next:")
    console.print(f"  cd {target}\n  lmthing test --app {module}.agents      # its tests and recorded histories"
                  f"\n  lmthing run {module}/agents.py           # one run on the embedded server")


@app.command("test")
def test_project(
    app_target: ReplayAppOption = None,
    histories: Annotated[Path, typer.Option(help="Recorded histories to replay (JSON, `lmthing history export`).")]
    = Path("histories"),
    tests: Annotated[Path, typer.Option(help="The project's tests (pytest).")] = Path("tests"),
) -> None:
    """Replay the app's recorded histories against its current code, then run its tests."""

    async def replay_all() -> tuple[int, int]:
        import logging

        from lmthing.client.history import load_history_file
        from lmthing.client.replay import replay_history

        module = import_app(app_target or "")
        workflows = prompts_of(module)
        logging.getLogger("temporalio.worker._workflow").setLevel(logging.CRITICAL)
        files = sorted(histories.glob("*.json")) if histories.is_dir() else []
        failed = 0
        for path in files:
            report = await replay_history(load_history_file(path, None), workflows)
            _print_replay_report(report, module.__name__)
            failed += 0 if report.deterministic else 1
        return len(files), failed

    if not app_target:
        raise CliError("Give --app MODULE (or set LMTHING_APP): the module with the project's prompts", code=2)
    replayed, failed = _execute(replay_all)
    console.print(f"{replayed} histor{'y' if replayed == 1 else 'ies'} replayed, {failed} diverged")
    code = 1 if failed else 0
    if tests.exists():
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(tests)], check=False)
        code = code or done.returncode
    else:
        console.print(f"no {tests}/ folder: no tests run")
    raise typer.Exit(code)
