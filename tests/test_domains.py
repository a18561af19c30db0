"""Domain allowlists (``def_constraint(name, "domains", allow=[...])``, docs/resilience.md):
refused tool arguments, the tree inheriting its root's allowlist, and the activity-side
session that refuses a redirect, in real runs on the dev server against a local web server."""

from __future__ import annotations

import pytest
from aiohttp import web

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.resilience.domains import DomainAllowlist, hosts_in
from lmthing.resilience.plugin import resilience_plugin
from tests.apps import domains_app as app
from tests.support import history, run, scheduled_activities, start


@pytest.fixture(autouse=True)
def fresh_counts():
    app.CALLS.clear()
    app.URLS.clear()


def _results(steps, name):
    return [r for s in steps for r in s.tool_results if r.name == name]


async def test_a_tool_call_to_a_host_off_the_allowlist_does_not_run(client, worker):
    handle = await start(client, app.fetch_off_list)
    result = await handle.result()
    steps = await handle.steps()
    assert result.text == "done" and app.CALLS["fetch_page"] == 1  # only the docs.python.org call ran
    allowed, evil, lookalike = _results(steps, "fetch_page")
    assert allowed.result == {"url": "https://docs.python.org/3/library/asyncio.html", "text": "a page"}
    assert evil.is_error and evil.result == {"error": "Not run: 'evil.example' is not an allowed domain "
                                                       "(constraint 'web' allows: python.org, *.wikipedia.org)"}
    assert lookalike.is_error and "'docs.python.org.evil.example' is not an allowed domain" in lookalike.result["error"]
    notes = [n for n in steps[0].orchestration if n["kind"] == "domains"]
    assert [(n["tool"], n["host"], n["constraint"]) for n in notes] == [
        ("fetch_page", "evil.example", "web"), ("fetch_page", "docs.python.org.evil.example", "web")]
    assert scheduled_activities(await history(handle)).count("lmthing.tool.fetch_page") == 1


async def test_a_sub_agent_keeps_to_its_parents_allowlist_even_if_its_own_allows_more(client, worker):
    result, steps = await run(client, app.domain_tree)
    assert result.text == "the reader is done"
    assert app.CALLS["fetch_page"] == 1  # python.org ran; evil.example, allowed by the child only, did not
    reader = _results(steps, "reader")[0]
    assert "read one of two" in str(reader.result)


@pytest.fixture
async def web_server():
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="hello from the allowed host")

    async def jump(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://localhost:9/elsewhere")  # another host: refused before connecting

    site_app = web.Application()
    site_app.router.add_get("/ok", ok)
    site_app.router.add_get("/jump", jump)
    runner = web.AppRunner(site_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_tools_session_refuses_a_redirect_to_another_host_without_retrying(client, worker, web_server):
    app.URLS.update(ok=f"{web_server}/ok", jump=f"{web_server}/jump")
    handle = await start(client, app.redirected_fetch)
    result = await handle.result()
    ok, jumped = _results(await handle.steps(), "browse")
    assert ok.result == {"status": 200, "text": "hello from the allowed host"}
    assert jumped.is_error and "Refused: 'localhost' is not an allowed domain (constraint 'local'" in str(jumped.result)
    assert app.CALLS["browse"] == 2  # the refusal is not retried
    assert result.text == "done"


def test_hosts_are_found_in_urls_and_in_url_named_arguments():
    args = {"url": "Example.COM/page", "note": "see example.org", "links": ["https://a.test/x", "ftp://b.test"],
            "nested": {"endpoint": "c.test:8080"}, "body": "read https://d.test in the middle",
            "first": "https://e.test/y and more"}
    assert hosts_in(args) == ["example.com", "a.test", "b.test", "c.test", "e.test"]  # free text is not scanned
    web_list = DomainAllowlist(name="w", allow=("python.org", "*.wikipedia.org"))
    assert web_list.allows("docs.python.org") and web_list.allows("python.org") and web_list.allows("en.wikipedia.org")
    assert not web_list.allows("wikipedia.org") and not web_list.allows("notpython.org")


@pytest.mark.parametrize(("call", "needle"), [
    (lambda p: p.def_constraint("d", "domains"), "needs allow=[host, ...]"),
    (lambda p: p.def_constraint("d", "domains", allow="python.org"), "needs allow=[host, ...]"),
    (lambda p: p.def_constraint("d", "domains", allow=["https://python.org/docs"]), "use 'python.org' instead"),
    (lambda p: p.def_constraint("d", "domains", allow=["py*thon.org"]), "is not a host name"),
    (lambda p: p.def_constraint("d", "tokens", max=10, allow=["python.org"]), "allow= is for type='domains'"),
])
def test_bad_allowlists_are_refused_where_they_are_written(call, needle):
    with pytest.raises(PromptError) as info:
        call(StatefulPrompt(plugins=[resilience_plugin]))
    assert needle in str(info.value)
