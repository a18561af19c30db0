"""Who may decrypt (issue 16): ``lmthing codec-server`` started as the CLI starts it, in
front of a real local OIDC issuer (tests/oidc_issuer.py), admits a shared bearer token or a
JWT of that issuer, refuses everything else with 401/403 and a reason, answers CORS
preflights without a token, audit-logs every request without the plaintext, and the real
``temporal workflow show --codec-endpoint --codec-auth`` reads decrypted payloads through it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from lmthing.client import start_prompt
from lmthing.client.connect import data_converter
from lmthing.codec import EncryptionCodec, generate_key
from lmthing.workers import create_worker
from tests.codec_process import CodecServer, codec_server, run_codec_server_cli
from tests.oidc_issuer import Issuer, new_rsa_key, start_issuer
from tests.support import temporal_cli

KEY = generate_key()
KEY_ID = "k-2026"
PAYLOAD_ENV = {"LMTHING_PAYLOAD_KEY": KEY, "LMTHING_PAYLOAD_KEY_ID": KEY_ID}
SHARED_TOKEN = "shared-" + uuid.uuid4().hex
AUDIENCE = "lmthing-codec"
SECRET = "the launch code is 1234"
UI_ORIGIN = "http://localhost:8233"


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    found = await start_issuer()
    yield found
    await found.close()


@pytest.fixture(scope="module")
async def server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CodecServer]:
    folder = tmp_path_factory.mktemp("codec-auth")
    token_file = folder / "token"
    token_file.write_text(SHARED_TOKEN + "\n")
    async with codec_server(
        "--token-file", str(token_file), "--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE,
        "--namespace", "default", "--namespace", "team-a", "--cors-origin", UI_ORIGIN, "--log-format", "json",
        env=PAYLOAD_ENV, log_dir=folder,
    ) as started:
        yield started


def sealed_body() -> dict[str, Any]:
    """A /decode request body: one payload encrypted with the server's key."""
    codec = EncryptionCodec({KEY_ID: base64.b64decode(KEY)}, KEY_ID)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(SECRET).encode())
    sealed = codec.encrypt(plain)
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                          "data": base64.b64encode(sealed.data).decode()}]}


async def decode(server: CodecServer, token: str | None, namespace: str | None = "default") -> tuple[int, dict[str, str], Any]:
    headers = {"Origin": UI_ORIGIN}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if namespace is not None:
        headers["X-Namespace"] = namespace
    async with aiohttp.ClientSession() as http, http.post(f"{server.url}/decode", json=sealed_body(), headers=headers) as r:
        return r.status, dict(r.headers), await r.json()


def plaintext_of(body: dict[str, Any]) -> str:
    [payload] = body["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    return json.loads(base64.b64decode(payload["data"]))


# ------------------------------------------------------------------------ who may decrypt
async def test_no_token_is_401_with_a_bearer_challenge_and_a_json_reason(server: CodecServer):
    status, headers, body = await decode(server, None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert body["error"] == "no_token" and "Authorization: Bearer" in body["message"]
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN  # the UI can read why


async def test_a_wrong_shared_token_is_401(server: CodecServer):
    status, headers, body = await decode(server, "not-the-token-" + uuid.uuid4().hex)
    assert status == 401 and body["error"] == "bad_token"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert "Traceback" not in json.dumps(body)


async def test_the_shared_token_decodes(server: CodecServer):
    status, _, body = await decode(server, SHARED_TOKEN)
    assert status == 200 and plaintext_of(body) == SECRET


async def test_a_jwt_of_the_issuer_decodes(server: CodecServer, issuer: Issuer):
    status, _, body = await decode(server, issuer.sign(sub="alice@example.com", aud=AUDIENCE))
    assert status == 200 and plaintext_of(body) == SECRET


@pytest.mark.parametrize(
    "case, reason, words",
    [
        ("expired", "expired", "expired"),
        ("wrong issuer", "wrong_issuer", "http://evil.example"),
        ("wrong audience", "wrong_audience", AUDIENCE),
        ("no audience", "wrong_audience", AUDIENCE),
        ("foreign key", "bad_token", "no key of the issuer"),
        ("no subject", "bad_token", "'sub'"),
    ],
)
async def test_a_bad_jwt_is_401_with_its_reason(server: CodecServer, issuer: Issuer, case: str, reason: str, words: str):
    claims: dict[str, Any] = {"sub": "mallory", "aud": AUDIENCE}
    signing: dict[str, Any] = {}
    if case == "expired":
        claims.update(iat=int(time.time()) - 3600, exp=int(time.time()) - 600)
    elif case == "wrong issuer":
        claims["iss"] = "http://evil.example"
    elif case == "wrong audience":
        claims["aud"] = "some-other-api"
    elif case == "no audience":
        del claims["aud"]
    elif case == "foreign key":  # signed by a key the issuer never published
        signing = {"key": new_rsa_key(), "kid": "forged"}
    elif case == "no subject":
        del claims["sub"]
    status, headers, body = await decode(server, issuer.sign(**signing, **claims))
    assert status == 401, body
    assert body["error"] == reason and words in body["message"], body
    assert headers["WWW-Authenticate"].startswith("Bearer ")


async def test_a_namespace_off_the_allow_list_is_403_even_with_a_good_token(server: CodecServer, issuer: Issuer):
    token = issuer.sign(sub="alice@example.com", aud=AUDIENCE)
    status, _, body = await decode(server, token, namespace="payments")
    assert status == 403 and body["error"] == "namespace_not_allowed"
    assert "'payments'" in body["message"] and "default, team-a" in body["message"]
    status, _, body = await decode(server, SHARED_TOKEN, namespace=None)
    assert status == 403 and "X-Namespace" in body["message"]
    status, _, body = await decode(server, token, namespace="team-a")
    assert status == 200 and plaintext_of(body) == SECRET


async def test_a_cors_preflight_needs_no_token_and_allows_the_auth_headers(server: CodecServer):
    ask = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    async with aiohttp.ClientSession() as http, http.options(f"{server.url}/decode", headers=ask) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        allowed = {h.strip() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "x-namespace", "content-type"} <= allowed


async def test_the_audit_log_names_who_and_where_and_never_the_plaintext(server: CodecServer, issuer: Issuer):
    token = issuer.sign(sub="auditor-7", aud=AUDIENCE)
    assert (await decode(server, token, namespace="team-a"))[0] == 200
    assert (await decode(server, SHARED_TOKEN))[0] == 200
    assert (await decode(server, token, namespace="payments"))[0] == 403
    expired = issuer.sign(sub="auditor-7", aud=AUDIENCE, exp=int(time.time()) - 600)
    assert (await decode(server, expired))[0] == 401

    lines = server.audit()
    ok = [x for x in lines if x["subject"] == "auditor-7" and x["status"] == 200]
    assert ok, lines
    assert ok[-1]["namespace"] == "team-a" and ok[-1]["endpoint"] == "/decode"
    assert ok[-1]["payload_count"] == 1 and ok[-1]["key_ids"] == [KEY_ID] and ok[-1]["auth_method"] == "jwt"
    assert "auditor-7" in ok[-1]["message"] and "team-a" in ok[-1]["message"]
    assert any(x["subject"] == "shared-token" and x["namespace"] == "default" and x["status"] == 200 for x in lines)
    assert any(x["status"] == 403 and x["namespace"] == "payments" and x["reason"] == "namespace_not_allowed" for x in lines)
    assert any(x["status"] == 401 and x["reason"] == "expired" and x["subject"] == "unauthenticated" for x in lines)
    everything = server.log.read_text()
    assert SECRET not in everything and "launch code" not in everything
    assert SHARED_TOKEN not in everything and token not in everything


# ----------------------------------------------------------------- refused configurations
@pytest.mark.parametrize(
    "args, words",
    [
        ((), ["--token-file", "--oidc-issuer", "--no-auth"]),
        (("--token-file", "/nonexistent/codec-token"), ["cannot read the token file /nonexistent/codec-token", "No such file"]),
        (("--oidc-issuer", "http://127.0.0.1:9/"), ["http://127.0.0.1:9/.well-known/openid-configuration", "--oidc-issuer"]),
        (("--no-auth", "--namespace", " "), ["namespace allow-list is empty", "--namespace"]),
        (("--no-auth", "--oidc-issuer", "http://127.0.0.1:9/"), ["--no-auth contradicts --oidc-issuer"]),
        (("--oidc-audience", "x"), ["--oidc-audience needs --oidc-issuer"]),
        (("--no-auth", "--tls-cert", "/nonexistent/cert.pem"), ["--tls-cert and --tls-key go together"]),
    ],
)
async def test_a_bad_configuration_stops_it_with_what_to_fix(args: tuple[str, ...], words: list[str]):
    code, out = await run_codec_server_cli(*args, env=PAYLOAD_ENV)
    assert code == 2, out
    for word in words:
        assert word in out, out
    assert "Traceback" not in out


async def test_an_issuer_that_names_another_issuer_is_refused_at_start(issuer: Issuer):
    code, out = await run_codec_server_cli("--oidc-issuer", issuer.url + "/", env=PAYLOAD_ENV)  # not its iss
    assert code == 2 and f"names the issuer '{issuer.url}'" in out, out


async def test_a_short_shared_token_is_refused(tmp_path: Path):
    code, out = await run_codec_server_cli(env={**PAYLOAD_ENV, "LMTHING_CODEC_TOKEN": "abc"})
    assert code == 2 and "LMTHING_CODEC_TOKEN holds a token of 3 characters" in out, out


# ------------------------------------------------------------------- the real temporal CLI
async def test_temporal_workflow_show_decrypts_with_the_token_and_not_without(client: Client, server: CodecServer, monkeypatch):
    for name, value in PAYLOAD_ENV.items():
        monkeypatch.setenv(name, value)
    config = client.config()
    config["data_converter"] = data_converter()
    secure = Client(**config)
    queue = f"codec-auth-{uuid.uuid4().hex[:8]}"
    async with create_worker(secure, app="tests.apps.basics", task_queue=queue):
        handle = await start_prompt(secure, "hello", id=f"codec-auth-{uuid.uuid4().hex[:8]}", task_queue=queue)
        assert (await handle.result()).text == "Hello, Ann!"
    wid = handle.handle.id

    code, out = await temporal_cli(client, "workflow", "show", "-w", wid, "--output", "json")
    assert code == 0 and "Say hello to Ann." not in out  # the server holds ciphertext only

    code, out = await temporal_cli(
        client, "workflow", "show", "-w", wid,
        "--codec-endpoint", server.url, "--codec-auth", f"Bearer {SHARED_TOKEN}",
    )
    assert code == 0, out
    assert '"text":"Hello, Ann!"' in out and "json/plain" in out  # the decrypted result

    before = len(server.audit())
    code, out = await temporal_cli(client, "workflow", "show", "-w", wid, "--codec-endpoint", server.url)
    assert code != 0 and "Hello, Ann!" not in out, out  # the CLI retries the refused decode, then gives up
    refused = server.audit()[before:]
    assert refused and all(x["status"] == 401 and x["reason"] == "no_token" for x in refused), refused
    assert {x["namespace"] for x in refused} == {"default"}  # the CLI sends X-Namespace

    shown = [x for x in server.audit()[:before] if x["subject"] == "shared-token" and x["namespace"] == "default"]
    assert shown and all(x["status"] == 200 for x in shown) and KEY_ID in {k for x in shown for k in x["key_ids"]}
