"""Security of the built-in tools, through real runs on the session worker: paths cannot leave
the files root ('..', absolute paths, symlinks), HTTP requests to private and loopback
addresses are refused unless the worker allows them (a real server on 127.0.0.1 is the
target), oversized and slow responses are cut with a clear error, the shell is refused
unless enabled and waits for a person's approval, and SQL writes are refused read-only."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from aiohttp import web

from lmthing.prompt import StatefulPrompt
from lmthing.prompt.tools import ToolContext
from lmthing.tools import ToolRefused, shell, web as webtools
from tests.apps import builtin_tools_app as app
from tests.apps.builtin_tools_app import Calls
from tests.support import free_port, pending_of, start

CTX = ToolContext(workflow_id="w", run_id="r", tool_call_id="c", idempotency_key="w:c")


async def one_call(client, tool: str, args: dict, prompt=app.builtins_calls):
    """The result of one tool call the scripted model makes in a run."""
    handle = await start(client, prompt, Calls(calls=[{"tool": tool, "args": args}]))
    assert (await handle.result()).text == "done"
    return (await handle.steps())[0].tool_results[0]


@pytest.fixture
def jail(tmp_path, monkeypatch):
    """A files root, with a secret beside it (outside) and symlinks pointing at the secret."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (root / "ok.txt").write_text("fine")
    (root / "dir_link").symlink_to(outside, target_is_directory=True)
    (root / "file_link.txt").symlink_to(outside / "secret.txt")
    monkeypatch.setenv("LMTHING_FILES_ROOT", str(root))
    return root, outside


# ------------------------------------------------------------------------- files
@pytest.mark.parametrize("path", ["../outside/secret.txt", "sub/../../outside/secret.txt", "{outside}/secret.txt",
                                  "dir_link/secret.txt", "file_link.txt"])
async def test_reading_outside_the_root_is_refused(client, worker, jail, path):
    root, outside = jail
    result = await one_call(client, "read_file", {"path": path.format(outside=outside)})
    assert result.is_error and "is outside the files root" in result.result["error"]
    assert "top secret" not in str(result.result)


async def test_writing_outside_the_root_is_refused_and_writes_nothing(client, worker, jail, tmp_path):
    for path in ["../escaped.txt", "dir_link/escaped.txt"]:
        result = await one_call(client, "write_file", {"path": path, "content": "x"})
        assert result.is_error and "is outside the files root" in result.result["error"]
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "outside" / "escaped.txt").exists()


async def test_listing_and_searching_do_not_follow_symlinks_out_of_the_root(client, worker, jail):
    found = await one_call(client, "glob_files", {"pattern": "**/*.txt"})
    assert found.result["matches"] == ["ok.txt"]
    searched = await one_call(client, "search_files", {"text": "secret"})
    assert searched.result["matches"] == []
    listed = await one_call(client, "list_dir", {"path": "dir_link"})
    assert listed.is_error and "outside the files root" in listed.result["error"]


async def test_without_a_root_or_when_read_only_the_file_tools_refuse(client, worker, jail, monkeypatch):
    monkeypatch.setenv("LMTHING_FILES_READ_ONLY", "true")
    result = await one_call(client, "write_file", {"path": "new.txt", "content": "x"})
    assert result.is_error and "read-only on this worker (LMTHING_FILES_READ_ONLY)" in result.result["error"]
    monkeypatch.delenv("LMTHING_FILES_ROOT")
    result = await one_call(client, "read_file", {"path": "ok.txt"})
    assert result.is_error and "set LMTHING_FILES_ROOT" in result.result["error"]


# ------------------------------------------------------------------------- HTTP
@pytest.fixture
async def local_site():
    async def page(request):
        return web.Response(text="internal admin page")

    async def big(request):  # declares its length
        return web.Response(body=b"x" * 3_000)

    async def stream(request):  # chunked: no length, cut while reading
        reply = web.StreamResponse()
        await reply.prepare(request)
        for _ in range(10):
            await reply.write(b"y" * 1_000)
        await reply.write_eof()
        return reply

    async def slow(request):
        await asyncio.sleep(5)
        return web.Response(text="late")

    server = web.Application()
    server.add_routes([web.get("/", page), web.get("/big", big), web.get("/stream", stream), web.get("/slow", slow)])
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


async def test_a_loopback_address_is_refused_by_default_and_allowed_by_the_worker_setting(client, worker, local_site, monkeypatch):
    for url in [f"http://127.0.0.1:{local_site}/", f"http://localhost:{local_site}/"]:
        result = await one_call(client, "http_fetch", {"url": url})
        assert result.is_error and "loopback address" in result.result["error"], result.result
        assert "LMTHING_HTTP_ALLOW_PRIVATE=true" in result.result["error"]
    monkeypatch.setenv("LMTHING_HTTP_ALLOW_PRIVATE", "true")
    allowed = await one_call(client, "http_fetch", {"url": f"http://localhost:{local_site}/"})
    assert not allowed.is_error and allowed.result["text"] == "internal admin page"


@pytest.mark.parametrize("url, why", [
    ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
    ("http://10.1.2.3/", "private"), ("http://192.168.0.1/", "private"),
    ("http://[::1]/", "loopback"), ("http://[::ffff:127.0.0.1]/", "loopback"), ("http://0.0.0.0/", "unspecified"),
])
async def test_private_and_metadata_addresses_are_refused_before_connecting(url, why):
    with pytest.raises(ToolRefused, match=f" {why.replace('(', '.').replace(')', '.')} address"):
        await webtools.http_fetch.fn(url, CTX)
    assert webtools.blocked_reason("93.184.216.34") is None and webtools.blocked_reason("2606:4700::1") is None


@pytest.mark.parametrize("route", ["big", "stream"])
async def test_an_oversized_response_is_cut_with_a_clear_error(client, worker, local_site, monkeypatch, route):
    monkeypatch.setenv("LMTHING_HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("LMTHING_HTTP_MAX_BYTES", "2000")
    result = await one_call(client, "http_fetch", {"url": f"http://127.0.0.1:{local_site}/{route}"})
    assert result.is_error and "over the limit of 2,000 bytes (LMTHING_HTTP_MAX_BYTES)" in result.result["error"]
    assert "cut off" in result.result["error"] or "nothing was read" in result.result["error"]


async def test_a_slow_response_hits_the_time_limit(client, worker, local_site, monkeypatch):
    monkeypatch.setenv("LMTHING_HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("LMTHING_HTTP_TIMEOUT", "0.5")
    result = await one_call(client, "http_fetch", {"url": f"http://127.0.0.1:{local_site}/slow"})
    assert result.is_error and "took longer than 0.5 s (LMTHING_HTTP_TIMEOUT)" in result.result["error"]


# ------------------------------------------------------------------------- shell
async def _shell_run(client, tmp_path, decision: str):
    marker = tmp_path / "ran.txt"
    handle = await start(client, app.builtins_shell,
                         Calls(calls=[{"tool": "shell_run", "args": {"command": f"echo hi > {marker} && echo done-it$LMTHING_PROBE_SECRET"}}]))
    [item] = await pending_of(handle)
    assert item.tool == "shell_run" and item.message == "Run this command?"
    await asyncio.sleep(0.3)
    assert not marker.exists()  # waiting for a person: nothing ran
    await handle.decide(item.id, decision, by="ops")
    assert (await handle.result()).text == "done"
    return (await handle.steps())[0].tool_results[0], marker


async def test_the_shell_is_refused_unless_the_worker_enables_it_even_when_approved(client, worker, tmp_path, monkeypatch):
    monkeypatch.delenv("LMTHING_SHELL_ENABLED", raising=False)
    result, marker = await _shell_run(client, tmp_path, "approve")
    assert result.is_error and "shell commands are off on this worker" in result.result["error"]
    assert "LMTHING_SHELL_ENABLED=true" in result.result["error"] and not marker.exists()


async def test_an_enabled_shell_runs_a_command_once_a_person_approves_it(client, worker, tmp_path, monkeypatch):
    monkeypatch.setenv("LMTHING_SHELL_ENABLED", "true")
    monkeypatch.setenv("LMTHING_PROBE_SECRET", "leaked")  # the worker's environment stays the worker's
    result, marker = await _shell_run(client, tmp_path, "approve")
    assert not result.is_error and result.result["exit_code"] == 0 and result.result["stdout"] == "done-it\n"
    assert marker.read_text() == "hi\n"


async def test_a_denied_command_does_not_run(client, worker, tmp_path, monkeypatch):
    monkeypatch.setenv("LMTHING_SHELL_ENABLED", "true")
    result, marker = await _shell_run(client, tmp_path, "deny")
    assert result.is_error and not marker.exists()


async def test_the_shell_cannot_be_shown_without_an_approval():
    p = StatefulPrompt()
    with pytest.raises(TypeError, match="always runs behind an approval"):
        p.def_tool(shell.shell_run, approval=None)


# ------------------------------------------------------------------------- SQL
async def test_sql_writes_are_refused_in_read_only_mode_and_run_when_allowed(client, worker, jail, monkeypatch):
    root, _ = jail
    with sqlite3.connect(root / "app.db") as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ann')")
    for sql in ["INSERT INTO users VALUES ('mallory')", "DROP TABLE users", "UPDATE users SET name = 'x'"]:
        result = await one_call(client, "sql_query", {"database": "app.db", "sql": sql})
        assert result.is_error and "the database is read-only on this worker" in result.result["error"], result.result
        assert "LMTHING_SQL_ALLOW_WRITE=true" in result.result["error"]
    with sqlite3.connect(root / "app.db") as db:
        assert db.execute("SELECT name FROM users").fetchall() == [("ann",)]
    attached = await one_call(client, "sql_query", {"database": "app.db", "sql": f"ATTACH '{root.parent / 'other.db'}' AS o"})
    assert attached.is_error and "Refused: not authorized" in attached.result["error"]
    assert not (root.parent / "other.db").exists()
    outside = await one_call(client, "sql_query", {"database": "dir_link/../../outside/x.db", "sql": "SELECT 1"})
    assert outside.is_error and "outside the files root" in outside.result["error"]
    monkeypatch.setenv("LMTHING_SQL_ALLOW_WRITE", "true")
    written = await one_call(client, "sql_query", {"database": "app.db", "sql": "INSERT INTO users VALUES (?)", "params": ["bo"]})
    assert not written.is_error and written.result["changed"] == 1
    with sqlite3.connect(root / "app.db") as db:
        assert db.execute("SELECT name FROM users ORDER BY name").fetchall() == [("ann",), ("bo",)]
