"""The real Temporal UI (served by `temporal server start-dev`, UI 2.54.1) in headless
Chromium, pointed at ``lmthing codec-server`` through the UI's own Codec Server dialog.

What the UI can do here, and so what these tests prove:

* The UI forwards an access token ("Pass the user access token") only to an ``https://``
  endpoint and only when it has a logged-in user: the token comes from the UI server's OIDC
  login. The dev server's embedded UI server has no login (no auth settings at all), and the
  UI drops any user it finds when auth is off (``clearAuthUser()`` in its app layout), even
  one handed to it in the ``user0`` cookie the UI server sets after a real login. So with
  this UI the authenticated codec server gets no token, refuses with 401, and the UI shows
  ciphertext only: asserted below, with the audit log naming the UI's refused requests.
* The same UI through a codec server started with ``--no-auth`` shows the plaintext: the
  control that proves the page would show decrypted payloads if they were decoded.

Missing for the positive case with a token: a Temporal UI server with OIDC login enabled
(the standalone ``temporalio/ui-server`` with ``auth.enabled``), which no package here ships.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import json_format
from temporalio.client import Client

from lmthing.client import start_prompt
from lmthing.client.connect import data_converter
from lmthing.codec import generate_key
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server
from tests.codec_process import CodecServer, codec_server, self_signed_cert
from tests.oidc_issuer import Issuer, start_issuer
from tests.support import free_port
from tests.test_ui import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, screenshot_on_failure, wait_for_http

KEY, KEY_ID = generate_key(), "ui-key"
PAYLOAD_ENV = {"LMTHING_PAYLOAD_KEY": KEY, "LMTHING_PAYLOAD_KEY_ID": KEY_ID}
AUDIENCE = "lmthing-codec"
PLAINTEXT = "Hello, Ann!"  # the run's result, encrypted in history


@dataclass
class Stack:
    ui_url: str
    workflow_id: str
    issuer: Issuer
    secured: CodecServer  # OIDC JWTs only, https
    open: CodecServer  # --no-auth, https
    sealed_result: dict  # the run's encrypted result payload, as the UI sends it to /decode


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `.ci/run` installs it (`apt-get install -y chromium`)")
    folder = tmp_path_factory.mktemp("codec-ui")
    cert, key = self_signed_cert(folder)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    issuer = await start_issuer()
    ui_port = free_port()
    env = await start_dev_server(port=free_port(), ui=True, ui_port=ui_port)
    ui_url = f"http://127.0.0.1:{ui_port}"
    common = ("--cors-origin", ui_url, "--log-format", "json", *tls)
    try:
        async with (
            codec_server("--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE, *common, env=PAYLOAD_ENV, log_dir=folder, scheme="https") as secured,
            codec_server("--no-auth", *common, env=PAYLOAD_ENV, log_dir=folder, scheme="https") as opened,
        ):
            mp = pytest.MonkeyPatch()
            for name, value in PAYLOAD_ENV.items():
                mp.setenv(name, value)
            try:
                config = env.client.config()
                config["data_converter"] = data_converter()
                secure = Client(**config)
                queue = f"codec-ui-{uuid.uuid4().hex[:8]}"
                async with create_worker(secure, app="tests.apps.basics", task_queue=queue):
                    handle = await start_prompt(secure, "hello", id=f"codec-ui-{uuid.uuid4().hex[:8]}", task_queue=queue)
                    assert (await handle.result()).text == PLAINTEXT
            finally:
                mp.undo()
            history = await env.client.get_workflow_handle(handle.handle.id).fetch_history()
            result = history.events[-1].workflow_execution_completed_event_attributes.result.payloads[0]
            await wait_for_http(ui_url)
            yield Stack(ui_url, handle.handle.id, issuer, secured, opened, json_format.MessageToDict(result))
    finally:
        await env.shutdown()
        await issuer.close()


async def show_workflow_through(stack: Stack, endpoint: str, tmp_path: Path, *, pass_token: str | None = None) -> tuple[str, str | None]:
    """Open the run in the UI, set the codec endpoint in the UI's Codec Server dialog (and
    "Pass the user access token" with the ``user0`` login cookie the UI server would set
    when ``pass_token`` is given), reload, and return the page's text and the UI's stored user."""
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})
            if pass_token is not None:
                user = {"AccessToken": pass_token, "IDToken": "", "Name": "UI User", "Email": "ui@example.com", "Picture": ""}
                await context.add_cookies([{"name": "user0", "value": base64.b64encode(json.dumps(user).encode()).decode(), "url": stack.ui_url}])
            page = await context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            async with screenshot_on_failure(page, tmp_path / "codec-ui.png"):
                await page.goto(f"{stack.ui_url}/namespaces/default/workflows/{stack.workflow_id}")
                await expect(page.get_by_role("heading", name=stack.workflow_id)).to_be_visible()
                await page.locator('[data-testid^="data-encoder-status"]').first.click()
                dialog = page.locator("#data-encoder-settings")
                await expect(dialog.get_by_test_id("data-encoder-title")).to_be_visible()
                await dialog.get_by_test_id("use-local-endpoint-input").click()
                await dialog.locator("#data-encoder-endpoint-input").fill(endpoint)
                if pass_token is not None:
                    await dialog.get_by_text("Pass the user access token").click()
                    await expect(dialog.get_by_label("Pass the user access token")).to_be_checked()
                await dialog.get_by_role("button", name="Apply").click()
                await expect(dialog.get_by_test_id("data-encoder-title")).to_be_hidden()
                await page.reload()
                await expect(page.get_by_role("heading", name=stack.workflow_id)).to_be_visible()
                # Settled: the codec answered (success) or refused (error) the UI's decode calls.
                await expect(page.locator('[data-testid="data-encoder-status-success"], [data-testid="data-encoder-status-error"]').first).to_be_visible()
                await expect(page.get_by_text("Result", exact=True).first).to_be_visible()
                await page.wait_for_timeout(1000)  # let every payload of the page come back
                text = await page.inner_text("body")
                stored_user = await page.evaluate("localStorage.getItem('AuthUser')")
        finally:
            await browser.close()
    return text, stored_user


async def test_the_ui_shows_plaintext_through_a_codec_server_that_admits_it(stack: Stack, tmp_path: Path):
    """The control: decoded payloads do reach the page when the codec server answers."""
    text, _ = await show_workflow_through(stack, stack.open.url, tmp_path)
    assert PLAINTEXT in text
    admitted = [x for x in stack.open.audit() if x["origin"] == stack.ui_url]
    assert admitted and all(x["status"] == 200 and x["subject"] == "anonymous" and x["namespace"] == "default" for x in admitted)


async def test_the_dev_server_ui_forwards_no_token_so_the_authenticated_codec_server_shows_it_nothing(stack: Stack, tmp_path: Path):
    token = stack.issuer.sign(sub="ui-user@example.com", aud=AUDIENCE)
    text, stored_user = await show_workflow_through(stack, stack.secured.url, tmp_path, pass_token=token)

    assert PLAINTEXT not in text and "Codec Server could not connect" in text
    # The UI called the codec server, for its namespace, without an Authorization header...
    from_ui = [x for x in stack.secured.audit() if x["origin"] == stack.ui_url]
    assert from_ui and all(x["status"] == 401 and x["reason"] == "no_token" and x["namespace"] == "default" for x in from_ui)
    # ...because its auth is off: it dropped the user (and token) the login cookie handed it.
    assert json.loads(stored_user or "{}") == {}

    # The token itself is good: sent as the UI would send it, the same server decrypts.
    async with aiohttp.ClientSession() as http, http.post(
        f"{stack.secured.url}/decode", json={"payloads": [stack.sealed_result]}, ssl=False,
        headers={"Authorization": f"Bearer {token}", "X-Namespace": "default", "Origin": stack.ui_url},
    ) as r:
        assert r.status == 200
        decoded = (await r.json())["payloads"][0]
    assert PLAINTEXT in base64.b64decode(decoded["data"]).decode()
