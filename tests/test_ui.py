"""The real Temporal UI, driven in headless Chromium, approves a payment (docs/people.md,
"Deciding": More Actions -> Send a Signal -> `decide` -> the JSON -> Submit) and the run
finishes with the approval applied.

The browser is Debian's `chromium` package (installed by scripts/ensure-chromium, which the README's test command runs), driven by the PyPI
`playwright` package; `playwright install` is never needed (ARCHITECTURE.md, "Browser checks").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lmthing.client import PromptHandle
from lmthing.prompt.humans import PendingRequest
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server
from tests.apps import humans_app
from tests.support import free_port, new_id, pending_of, start

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
UI_TIMEOUT_MS = 20_000  # the UI renders a few seconds after `load`; every wait is on text or a role


@contextlib.asynccontextmanager
async def screenshot_on_failure(page: Any, shot: Path) -> AsyncIterator[None]:
    """A failing browser check keeps a screenshot of the page, named in the error."""
    try:
        yield
    except BaseException as e:
        await page.screenshot(path=str(shot))
        e.add_note(f"screenshot of the UI: {shot}")
        raise


async def wait_for_http(url: str, timeout: float = 30.0) -> None:
    """The UI server starts with the dev server but may answer a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).close())
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)




@dataclass
class WaitingRun:
    ui_url: str
    handle: PromptHandle
    item: PendingRequest


@pytest.fixture(scope="module")
async def waiting_run() -> AsyncIterator[WaitingRun]:
    """Its own dev server with the UI, a worker for humans_app, and `pay` waiting on approval."""
    ui_port = free_port()
    env = await start_dev_server(port=free_port(), ui=True, ui_port=ui_port)
    try:
        task_queue = new_id("ui-tests")
        async with create_worker(env.client, app=["tests.apps.humans_app"], task_queue=task_queue):
            handle = await start(env.client, humans_app.pay, task_queue=task_queue)
            [item] = await pending_of(handle)
            ui_url = f"http://127.0.0.1:{ui_port}"
            await wait_for_http(ui_url)
            yield WaitingRun(ui_url, handle, item)
    finally:
        await env.shutdown()


async def test_the_temporal_ui_sends_the_approval_signal_and_the_run_finishes(waiting_run: WaitingRun, tmp_path: Path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: this test drives the Temporal UI in Debian's chromium. "
            "`scripts/ensure-chromium` installs it (the README's test command runs it first); run that, or install it yourself."
        )
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        pytest.fail("the `playwright` package is missing: `pip install -e '.[test]'` installs it")

    handle, item = waiting_run.handle, waiting_run.item
    assert item.kind == "approval" and item.tool == "send_money"
    decision = {"id": item.id, "action": "approve", "by": "ui-tester"}

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            async with screenshot_on_failure(page, tmp_path / "temporal-ui.png"):
                await page.goto(f"{waiting_run.ui_url}/namespaces/default/workflows/{handle.id}")
                await expect(page.get_by_role("heading", name=handle.id)).to_be_visible(timeout=UI_TIMEOUT_MS)

                # The page has a second, hidden "More Actions" (narrow layouts); roles skip it.
                await page.get_by_role("button", name="More Actions").click()
                await page.get_by_role("menuitem", name="Send a Signal").click()
                dialog = page.get_by_role("dialog", name="Send a Signal")
                await expect(dialog).to_be_visible(timeout=UI_TIMEOUT_MS)

                # The signal names come from the worker (the workflow's metadata query).
                await dialog.get_by_role("button", name="Select a signal").click()
                await dialog.get_by_role("option", name="decide", exact=True).click()
                await expect(dialog.get_by_role("button", name="decide")).to_be_visible(timeout=UI_TIMEOUT_MS)

                data = dialog.get_by_role("textbox", name="Data")  # a CodeMirror editor
                await data.fill(json.dumps(decision))
                # Leaving the editor reformats the JSON and the dialog grows; do it before the
                # click, or the Submit button moves between mouse-down and mouse-up.
                await data.evaluate("e => e.blur()")
                await expect(data).to_contain_text('"ui-tester"', timeout=UI_TIMEOUT_MS)
                submit = dialog.get_by_role("button", name="Submit")
                await expect(submit).to_be_enabled(timeout=UI_TIMEOUT_MS)
                await submit.click()
                await expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)

                result = await asyncio.wait_for(handle.result(), 30)

                # The page refreshes itself and shows the finished run.
                await expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        finally:
            await browser.close()

    assert result.state["sent"] == [{"to": "bob", "amount": 50}]
    [record] = result.decisions
    assert record.id == item.id and record.action == "approve" and record.by == "ui-tester"
    assert await handle.pending() == []
