"""The built-in tools (lmthing.tools) and the tool registry: through real runs on the session
worker where the behaviour is the run's (activities, settings read on the worker, results
back to the model), and called directly where the tool is pure."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
import textwrap
import uuid

import pytest
from aiohttp import web

import lmthing.tools as builtins
from lmthing.prompt.tools import ActivityTool, ToolContext
from lmthing.tools import ToolInputError, ToolRegistry, calc, data, text, time as ttime
from lmthing.workers import create_worker
from tests.apps import builtin_tools_app as app
from tests.apps.builtin_tools_app import Calls
from tests.support import free_port, scheduled_activities, history, start

CTX = ToolContext(workflow_id="w", run_id="r", tool_call_id="c", idempotency_key="w:c")


async def results(client, calls: list[dict], prompt=app.builtins_calls, **kw):
    """Run ``prompt`` with the model calling ``calls`` in one step: the tool results, by tool."""
    handle = await start(client, prompt, Calls(calls=calls), **kw)
    assert (await handle.result()).text == "done"
    [first, _] = await handle.steps()
    return {r.name: r for r in first.tool_results}, handle


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "root"
    folder.mkdir()
    monkeypatch.setenv("LMTHING_FILES_ROOT", str(folder))
    return folder


# ------------------------------------------------------------------------- catalogue
def test_at_least_thirty_built_ins_by_category_each_an_activity_with_a_description():
    assert len(builtins.ALL) >= 30
    assert builtins.CATEGORIES == ["calc", "code", "data", "files", "shell", "sql", "text", "time", "web"]
    assert all(isinstance(t, ActivityTool) and t.description for t in builtins.ALL)
    assert len({t.name for t in builtins.ALL}) == len(builtins.ALL)
    assert {t.name for t in builtins.category("files")} >= {"read_file", "write_file", "list_dir", "glob_files",
                                                            "search_files", "file_stat"}
    assert builtins.web.http_fetch in builtins.category("web")
    assert [t.name for t in builtins.ALL if t not in builtins.safe()] == ["shell_run"]
    with pytest.raises(KeyError, match="categories: calc, code"):
        builtins.category("nope")


def test_docs_tools_md_lists_every_built_in_and_every_setting():
    from lmthing.tools.settings import ENV
    from tests.support import REPO_ROOT

    page = (REPO_ROOT / "docs" / "tools.md").read_text()
    assert [t.name for t in builtins.ALL if f"| `{t.name}(" not in page] == []
    assert [v for v in ENV.values() if f"`{v}`" not in page] == []


async def test_a_run_calls_pure_built_ins_as_activities_and_the_model_gets_their_results(client, worker):
    calls = [
        {"tool": "calculate", "args": {"expression": "(3 + 4) * 2 ** 10 / sqrt(16)"}},
        {"tool": "time_add", "args": {"time": "2026-03-01T10:00:00+00:00", "duration": "1d 2h"}},
        {"tool": "data_query", "args": {"data": {"orders": [{"total": 5}, {"total": 7}]}, "query": "orders.*.total"}},
        {"tool": "slugify", "args": {"text": "Héllo, Wörld!"}},
        {"tool": "run_python", "args": {"code": "x = [n * n for n in range(4)]\nprint(sum(x))\nx"}},
        {"tool": "csv_parse", "args": {"text": "a,b\n1,2\n"}},
    ]
    got, handle = await results(client, calls)
    assert got["calculate"].result["result"] == 1792.0
    assert got["time_add"].result["iso"] == "2026-03-02T12:00:00+00:00"
    assert got["data_query"].result == {"result": [5, 7]}
    assert got["slugify"].result == {"slug": "hello-world"}
    assert got["run_python"].result["success"] and got["run_python"].result["result"] == [0, 1, 4, 9]
    assert got["run_python"].result["output"].strip() == "14"
    assert got["csv_parse"].result["rows"] == [{"a": "1", "b": "2"}]
    scheduled = scheduled_activities(await history(handle))
    assert {f"lmthing.tool.{c['tool']}" for c in calls} <= set(scheduled)


async def test_bad_input_comes_back_to_the_model_as_an_error_without_retries(client, worker):
    got, handle = await results(client, [{"tool": "calculate", "args": {"expression": "__import__('os')"}},
                                         {"tool": "time_now", "args": {"tz": "Mars/Olympus"}}])
    assert got["calculate"].is_error and "Unknown function '__import__'" in got["calculate"].result["error"]
    assert got["time_now"].is_error and "Unknown timezone 'Mars/Olympus'" in got["time_now"].result["error"]
    events = await history(handle)
    assert max(e.activity_task_started_event_attributes.attempt for e in events
               if e.HasField("activity_task_started_event_attributes")) == 1


async def test_file_tools_work_inside_the_root_read_from_the_worker_environment(client, worker, root):
    (root / "notes").mkdir()
    (root / "notes" / "a.md").write_text("alpha\nthe needle here\n")
    (root / "notes" / "b.txt").write_text("beta\n")
    got, _ = await results(client, [
        {"tool": "read_file", "args": {"path": "notes/a.md"}},
        {"tool": "list_dir", "args": {"path": "notes"}},
        {"tool": "glob_files", "args": {"pattern": "**/*.md"}},
        {"tool": "search_files", "args": {"text": "NEEDLE", "ignore_case": True}},
        {"tool": "file_stat", "args": {"path": "notes/b.txt"}},
        {"tool": "write_file", "args": {"path": "out/new.txt", "content": "written"}},
    ])
    assert got["read_file"].result["content"] == "alpha\nthe needle here\n"
    assert [e["name"] for e in got["list_dir"].result["entries"]] == ["a.md", "b.txt"]
    assert got["glob_files"].result["matches"] == ["notes/a.md"]
    assert got["search_files"].result["matches"] == [{"path": "notes/a.md", "line": 2, "text": "the needle here"}]
    assert got["file_stat"].result["exists"] and got["file_stat"].result["size"] == 5
    assert got["write_file"].result["path"] == "out/new.txt" and (root / "out" / "new.txt").read_text() == "written"


async def test_sql_tools_read_a_sqlite_file_in_the_root(client, worker, root):
    with sqlite3.connect(root / "shop.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        db.executemany("INSERT INTO orders (total) VALUES (?)", [(5.0,), (7.5,)])
    got, _ = await results(client, [
        {"tool": "sql_tables", "args": {"database": "shop.db"}},
        {"tool": "sql_query", "args": {"database": "shop.db", "sql": "SELECT id, total FROM orders WHERE total > ?",
                                       "params": [6]}},
    ])
    [table] = got["sql_tables"].result["tables"]
    assert table["name"] == "orders" and [c["name"] for c in table["columns"]] == ["id", "total"]
    assert got["sql_query"].result["columns"] == ["id", "total"] and got["sql_query"].result["rows"] == [[2, 7.5]]


@pytest.fixture
async def site():
    """A real HTTP server on 127.0.0.1: /json, /big (2 MB), /slow."""
    import asyncio

    async def as_json(request):
        return web.json_response({"hello": "world"})

    async def big(request):
        return web.Response(body=b"x" * 2_000_000)

    async def slow(request):
        await asyncio.sleep(3)
        return web.Response(text="late")

    server = web.Application()
    server.add_routes([web.get("/json", as_json), web.get("/big", big), web.get("/slow", slow)])
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_http_fetch_gets_a_page_when_the_worker_allows_local_addresses(client, worker, site, monkeypatch):
    monkeypatch.setenv("LMTHING_HTTP_ALLOW_PRIVATE", "true")
    got, _ = await results(client, [{"tool": "http_fetch", "args": {"url": f"{site}/json"}}])
    fetched = got["http_fetch"].result
    assert fetched["status"] == 200 and fetched["json"] == {"hello": "world"}
    assert fetched["content_type"].startswith("application/json")


async def test_settings_declared_on_the_worker_win_over_the_environment(client, tmp_path, monkeypatch, memory_url):
    """def_tool_settings(...) on a worker of its own: its files root, not the environment's."""
    (tmp_path / "declared").mkdir()
    (tmp_path / "declared" / "hi.txt").write_text("from the declared root")
    monkeypatch.setenv("LMTHING_FILES_ROOT", str(tmp_path))
    queue = f"builtins-settings-{uuid.uuid4().hex[:6]}"
    settings = builtins.def_tool_settings(files_root=str(tmp_path / "declared"))
    async with create_worker(client, app="tests.apps.builtin_tools_app", task_queue=queue, resources=[settings],
                             memory_store=memory_url):
        got, _ = await results(client, [{"tool": "read_file", "args": {"path": "hi.txt"}}], task_queue=queue)
    assert got["read_file"].result["content"] == "from the declared root"
    with pytest.raises(ValueError, match="LMTHING_HTTP_MAX_BYTES"):
        builtins.def_tool_settings(http_max_bytes=0)
    with pytest.raises(ValueError, match="LMTHING_SHELL_ENABLED='maybe': give true or false"):
        builtins.ToolSettings.from_env({"LMTHING_SHELL_ENABLED": "maybe"})


# ------------------------------------------------------------------------- pure tools, directly
def test_the_calculator_evaluates_arithmetic_and_refuses_everything_else():
    assert calc.evaluate("2 ^ 10 + 1") == 1025
    assert calc.evaluate("max(3, 9) % 4 == 1") is True
    assert calc.evaluate("round(pi, 3)") == 3.142
    for bad, why in [("().__class__", "Attribute is not allowed"), ("open('x')", "Unknown function 'open'"),
                     ("9 ** 9 ** 9", "too large"), ("1 / 0", "Division by zero"), ("x + 1", "Unknown name 'x'"),
                     ("lambda: 1", "Lambda is not allowed"), ("1 +", "Not an arithmetic expression")]:
        with pytest.raises(ToolInputError, match=why):
            calc.evaluate(bad)
    assert calc.number_stats.fn([1, 2, 3, 4])["median"] == 2.5


def test_time_tools_parse_add_diff_format_and_convert():
    assert ttime.time_diff.fn("2026-03-01T00:00:00Z", "2026-03-02T01:30:00Z")["text"] == "1d 1h 30m 0s"
    assert ttime.time_add.fn("2026-03-01T10:00:00+00:00", "-P1DT1H")["iso"] == "2026-02-28T09:00:00+00:00"
    assert ttime.time_convert.fn("2026-07-01T12:00:00Z", "Europe/Paris")["iso"] == "2026-07-01T14:00:00+02:00"
    assert ttime.time_format.fn("2026-03-01T10:00:00Z", "%A %d %B %Y")["text"] == "Sunday 01 March 2026"
    assert ttime.time_parse.fn("2026-03-01 09:30", "Asia/Tokyo")["iso"] == "2026-03-01T09:30:00+09:00"
    with pytest.raises(ToolInputError, match="as a duration"):
        ttime.time_add.fn("2026-03-01", "soon")


def test_data_tools_parse_and_query():
    value = data.yaml_parse.fn("a: 1\nlist: [x, y]\n")["value"]
    assert value == {"a": 1, "list": ["x", "y"]}
    with pytest.raises(ToolInputError, match="Not valid YAML"):
        data.yaml_parse.fn("!!python/object/apply:os.system ['echo hi']")
    with pytest.raises(ToolInputError, match="line 1 column 2"):
        data.json_parse.fn("{oops}")
    doc = {"orders": [{"id": "a", "total": 5}, {"id": "b", "total": 12}]}
    assert data.data_query.fn(doc, "orders.-1.id") == {"result": "b"}
    assert data.data_query.fn(json.dumps(doc), "orders[?total > `10`].id", "jmespath") == {"result": ["b"]}
    with pytest.raises(ToolInputError, match="no key 'order'"):
        data.data_query.fn(doc, "order.0")
    csv_text = data.csv_format.fn([{"a": 1, "b": "x,y"}])["text"]
    assert csv_text == 'a,b\n1,"x,y"\n' and data.csv_parse.fn(csv_text)["rows"] == [{"a": "1", "b": "x,y"}]


async def test_text_tools():
    assert text.text_stats.fn("One two. Three!\n\nFour")["words"] == 4
    assert text.truncate_text.fn("the quick brown fox", 12)["text"] == "the quick…"
    assert text.text_split.fn("a,b,c", ",")["parts"] == ["a", "b", "c"]
    found = await text.regex_find.fn(r"(?P<n>\d+)", "a1 b22", CTX)
    assert [m["named"]["n"] for m in found["matches"]] == ["1", "22"]
    assert (await text.regex_replace.fn(r"(\w+)@", r"<\1>@", "bob@x", CTX))["text"] == "<bob>@x"
    diff = text.text_diff.fn("a\nb\n", "a\nc\n")["diff"]
    assert "-b\n" in diff and "+c\n" in diff


async def test_a_runaway_regular_expression_is_stopped_by_its_time_limit(monkeypatch):
    monkeypatch.setenv("LMTHING_REGEX_TIMEOUT", "0.2")
    with pytest.raises(builtins.ToolLimitExceeded, match="longer than 0.2 s"):
        await text.regex_find.fn(r"(x+x+)+y", "x" * 5000, CTX)


# ------------------------------------------------------------------------- the registry
def test_the_registry_registers_looks_up_and_searches_by_name_and_tag():
    reg = ToolRegistry(builtins.ALL)
    assert reg.get("http_fetch") is builtins.web.http_fetch
    assert [t.name for t in reg.search(tag="regex")] == ["regex_find", "regex_replace"]
    assert [t.name for t in reg.search("sqlite")] == ["sql_query", "sql_tables"]
    assert [t.name for t in reg.search("append", tag="write")] == ["write_file"]
    with pytest.raises(KeyError, match="did you mean read_file"):
        reg.get("read_fil")
    other = dataclasses.replace(builtins.web.url_parse, fn=lambda url: {})
    with pytest.raises(ValueError, match="already registered as 'url_parse'"):
        reg.register(other)


def _package(tmp_path, name: str, body: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text(textwrap.dedent(body))
    return folder


def _installed(site, pkg: str, entry: str, tool_name: str) -> None:
    """A package ``pkg`` in the folder ``site`` with one @tool and a prompt ``<pkg>_agent``
    calling it, and a distribution beside it that publishes the package in the entry-point
    group lmthing.tools (found by importlib.metadata once ``site`` is on sys.path)."""
    _package(site, pkg, f'''
        from lmthing import prompt, tool
        from lmthing.testing import scripted_model, text, tool_call

        @tool
        def {tool_name}(name: str) -> dict:
            """A tool of an installed package."""
            return {{"{tool_name}": name}}

        @prompt(model=scripted_model("{pkg}", [tool_call("{tool_name}", {{"name": "Ann"}}), text("done")]))
        def {pkg}_agent(p):
            p.def_tool({tool_name})
            p.user("Go.")
    ''')
    dist = site / f"{pkg}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[lmthing.tools]\n{entry} = {pkg}\n")


async def test_tools_load_from_a_folder_and_from_an_entry_point_and_a_worker_runs_them(client, tmp_path, monkeypatch,
                                                                                       memory_url):
    tools_dir = tmp_path / "folder_tools"
    tools_dir.mkdir()
    (tools_dir / "greetings.py").write_text(textwrap.dedent('''
        from lmthing import tool
        from lmthing.tools import tagged

        @tagged("people", "greeting")
        @tool
        def greet(name: str) -> dict:
            """Greet someone."""
            return {"greeting": f"hello {name}"}
    '''))
    (tools_dir / "_private.py").write_text("raise RuntimeError('skipped')\n")
    reg = ToolRegistry()
    assert [t.name for t in reg.load_folder(tools_dir)] == ["greet"]
    assert reg.entry("greet").category == "people" and reg.search(tag="greeting")[0].name == "greet"

    # An installed package publishing tools in the entry-point group lmthing.tools (a real
    # distribution on sys.path, found by importlib.metadata), with a prompt using its tool.
    pkg = f"weather_{uuid.uuid4().hex[:6]}"
    site = tmp_path / "site"
    site.mkdir()
    _installed(site, pkg, "weather", "forecast")
    monkeypatch.syspath_prepend(str(site))
    loaded = reg.load_entry_points()
    assert [t.name for t in loaded] == ["forecast"] and reg.entry("forecast").source == "entry point weather"

    # The worker is given the prompt alone; the tool comes from the registry.
    module = sys.modules[pkg]
    queue = f"registry-{pkg}"
    async with create_worker(client, prompts=[getattr(module, f"{pkg}_agent")], tools=reg.all(), task_queue=queue,
                             memory_store=memory_url):
        handle = await start(client, getattr(module, f"{pkg}_agent"), task_queue=queue)
        assert (await handle.result()).text == "done"
        [first, _] = await handle.steps()
    assert first.tool_results[0].result == {"forecast": "Ann"}


async def test_lmthing_worker_runs_the_tools_of_installed_packages_with_tools_entry_points(dev_env, client, tmp_path):
    """The app binds a prompt only; its tool comes from a package's lmthing.tools entry point."""
    from tests.support import cli_worker

    pkg = f"greeter_{uuid.uuid4().hex[:6]}"
    _installed(tmp_path, pkg, "greeter", "say_hello")
    # The app file's folder goes first on the worker's sys.path, so the package and its
    # distribution beside it are found there (as an installed one would be).
    app_file = tmp_path / f"{pkg}_app.py"
    app_file.write_text(f"from {pkg} import {pkg}_agent  # the prompt only: no @tool in this module\n")
    address = dev_env.client.service_client.config.target_host
    queue = f"entry-points-{pkg}"
    async with cli_worker(address, "--app", str(app_file), "--task-queue", queue, "--tools-entry-points",
                          log_dir=tmp_path) as w:
        assert "tools:   say_hello" in w.banner
        handle = await start(client, f"{pkg}_agent", task_queue=queue)
        assert (await handle.result()).text == "done"
        [first, _] = await handle.steps()
    assert first.tool_results[0].result == {"say_hello": "Ann"}
