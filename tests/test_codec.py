"""Optional payload encryption (lmthing.codec): AES-GCM round trips, key ids and rotation,
history holding ciphertext only on a real dev server, and the codec server over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client

from lmthing.client import start_prompt
from lmthing.client.connect import data_converter
from lmthing.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadKeyConfigError,
    PayloadKeyError,
    codec_server_app,
    generate_key,
)
from lmthing.codec_auth import CodecAuth
from lmthing.workers import create_worker

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY_A, KEY_B = generate_key(), generate_key()


def codec(current: str = "a", **keys: str) -> EncryptionCodec:
    keys = keys or {"a": KEY_A}
    return EncryptionCodec({k: base64.b64decode(v) for k, v in keys.items()}, current)


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())




# ------------------------------------------------------------------------------ unit
async def test_round_trip_keeps_data_and_metadata_and_hides_them():
    c = codec()
    original = [json_payload({"secret": "the launch code is 1234"}), Payload(metadata={"encoding": b"binary/null"})]
    sealed = await c.encode(original)
    for p in sealed:
        assert p.metadata["encoding"] == ENCODING
        assert p.metadata[KEY_ID_METADATA] == b"a"
        assert b"launch" not in p.data and b"json/plain" not in p.data
    assert sealed[0].data != (await c.encode(original[:1]))[0].data  # random nonce
    assert await c.decode(sealed) == original


async def test_decode_passes_unencrypted_payloads_through():
    plain = [json_payload(1)]
    assert await codec().decode(plain) == plain


async def test_unknown_key_id_is_refused_with_the_fix():
    sealed = await codec("b", b=KEY_B).encode([json_payload("x")])
    with pytest.raises(PayloadKeyError, match=r"key id 'b'.*does not have \(it has: a\).*LMTHING_PAYLOAD_KEYS=b:"):
        await codec().decode(sealed)


async def test_same_id_with_another_key_or_tampered_data_fails_clearly():
    sealed = await codec().encode([json_payload("x")])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec(a=KEY_B).decode(sealed)
    tampered = Payload()
    tampered.CopyFrom(sealed[0])
    tampered.metadata[KEY_ID_METADATA] = b"b"  # the key id is authenticated too
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await codec("a", a=KEY_A, b=KEY_A).decode([tampered])


async def test_rotation_encrypts_with_the_current_key_and_decrypts_old_ones():
    env = {"LMTHING_PAYLOAD_KEY": KEY_B, "LMTHING_PAYLOAD_KEY_ID": "2026-11", "LMTHING_PAYLOAD_KEYS": f"2026-10:{KEY_A}"}
    old = await codec("2026-10", **{"2026-10": KEY_A}).encode([json_payload("old")])
    rotated = EncryptionCodec.from_env(env)
    assert rotated.current == "2026-11" and sorted(rotated.key_ids) == ["2026-10", "2026-11"]
    new = await rotated.encode([json_payload("new")])
    assert new[0].metadata[KEY_ID_METADATA] == b"2026-11"
    assert [p.data for p in await rotated.decode(old + new)] == [b'"old"', b'"new"']
    only_keys = EncryptionCodec.from_env({"LMTHING_PAYLOAD_KEYS": f"x:{KEY_A},y:{KEY_B}", "LMTHING_PAYLOAD_KEY_ID": "y"})
    assert only_keys.current == "y"
    assert EncryptionCodec.from_env({"LMTHING_PAYLOAD_KEYS": f"x:{KEY_A},y:{KEY_B}"}).current == "x"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LMTHING_PAYLOAD_KEY": "not base64!"}, "LMTHING_PAYLOAD_KEY is not valid base64"),
        ({"LMTHING_PAYLOAD_KEY": base64.b64encode(b"short").decode()}, "must be 32 bytes"),
        ({"LMTHING_PAYLOAD_KEY_ID": "k"}, "neither LMTHING_PAYLOAD_KEY nor"),
        ({"LMTHING_PAYLOAD_KEYS": "nocolon"}, "not id:base64"),
        ({"LMTHING_PAYLOAD_KEYS": f"x:{KEY_A}", "LMTHING_PAYLOAD_KEY_ID": "z"}, "'z' is not among"),
        ({"LMTHING_PAYLOAD_KEY": KEY_A, "LMTHING_PAYLOAD_KEYS": f"default:{KEY_B}"}, "different key"),
    ],
)
def test_bad_key_settings_fail_clearly(env, message):
    with pytest.raises(PayloadKeyConfigError, match=message):
        EncryptionCodec.from_env(env)


def test_data_converter_encrypts_only_when_the_env_asks(monkeypatch):
    for name in ("LMTHING_PAYLOAD_KEY", "LMTHING_PAYLOAD_KEY_ID", "LMTHING_PAYLOAD_KEYS"):
        monkeypatch.delenv(name, raising=False)
    assert data_converter().payload_codec is None
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY", KEY_A)
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY_ID", "k1")
    converter = data_converter()
    assert isinstance(converter.payload_codec, EncryptionCodec) and converter.payload_codec.current == "k1"
    assert data_converter() is converter
    assert type(converter.payload_converter) is type(data_converter.__globals__["_DATA_CONVERTER"].payload_converter)


# ---------------------------------------------------------------- on a real dev server
async def test_history_holds_ciphertext_only_and_the_codec_client_reads_results(client: Client, monkeypatch):
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY", KEY_A)
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY_ID", "test-key")
    config = client.config()
    config["data_converter"] = data_converter()  # what every lmthing client and worker now builds
    secure = Client(**config)
    assert isinstance(secure.data_converter.payload_codec, EncryptionCodec)
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    async with create_worker(secure, app="tests.apps.basics", task_queue=queue):
        handle = await start_prompt(secure, "hello", id=f"codec-{uuid.uuid4().hex[:8]}", task_queue=queue)
        result = await handle.result()
    assert result.text == "Hello, Ann!"

    # A client without the codec sees only what the server stores.
    history = await client.get_workflow_handle(handle.handle.id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    # Search attributes are indexed by the server, so never encoded (docs/operations.md):
    # LmthingAgent, the prompt's name, is as readable as the workflow type.
    assert started.search_attributes.indexed_fields["LmthingAgent"].data == b'"hello"'
    started.ClearField("search_attributes")
    raw = History(events=history.events).SerializeToString()
    for secret in (b"Ann", b"helpful assistant", b"basics-hello", b"json/plain"):
        assert secret not in raw
    payloads = [p for e in history.events for p in _payloads_of(e)]
    assert len(payloads) >= 4  # workflow input, activity input and result, workflow result
    assert {p.metadata["encoding"] for p in payloads} == {ENCODING}
    assert {p.metadata[KEY_ID_METADATA] for p in payloads} == {b"test-key"}
    # ... and the codec decodes them.
    decoded = await secure.data_converter.payload_codec.decode(payloads)
    assert any(b"Say hello to Ann." in p.data for p in decoded)


def _payloads_of(message) -> list[Payload]:
    """Every Payload inside a protobuf message (history event), found by walking its fields."""
    found: list[Payload] = []
    if isinstance(message, Payload):
        return [message]
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = [value] if hasattr(value, "ListFields") else list(value)
        for item in items:
            if hasattr(item, "ListFields"):
                found += _payloads_of(item)
    return found


# -------------------------------------------------------------------- codec server, HTTP
async def test_codec_server_command_speaks_the_ui_protocol_with_cors():
    port = free_port()
    env = {**os.environ, "LMTHING_PAYLOAD_KEY": KEY_A, "LMTHING_PAYLOAD_KEY_ID": "ui"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "codec-server", "--port", str(port), "--cors-origin", "http://localhost:8233",
        "--no-auth",  # this test is about the protocol; tests/test_codec_auth.py is about who may call it
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        banner = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"Codec server" in banner, banner + await proc.stderr.read()
        url, origin = f"http://127.0.0.1:{port}", {"Origin": "http://localhost:8233"}
        body = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                              "data": base64.b64encode(b'{"text": "top secret"}').decode()}]}
        async with aiohttp.ClientSession() as http:
            async with http.options(f"{url}/decode", headers={
                **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"
            }) as pre:
                assert pre.status == 200
                assert pre.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
                assert "x-namespace" in pre.headers["Access-Control-Allow-Headers"]
            async with http.post(f"{url}/encode", json=body, headers={**origin, "X-Namespace": "default"}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
                encoded = await r.json()
            sealed = encoded["payloads"][0]
            assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
            assert base64.b64decode(sealed["metadata"][KEY_ID_METADATA]) == b"ui"
            assert b"top secret" not in base64.b64decode(sealed["data"])
            async with http.post(f"{url}/decode", json=encoded, headers={"Origin": "http://evil.example"}) as r:
                assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
                assert await r.json() == body
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def test_codec_server_refuses_an_unknown_key_id_with_http_400():
    from aiohttp import web

    runner = web.AppRunner(codec_server_app(codec(), auth=CodecAuth.disabled()))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        sealed = (await codec("b", b=KEY_B).encode([json_payload("x")]))[0]
        body = {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                              "data": base64.b64encode(sealed.data).decode()}]}
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/decode", json=body) as r:
            assert r.status == 400
            assert "key id 'b'" in (await r.json())["error"]
    finally:
        await runner.cleanup()


def test_codec_server_without_a_key_says_what_to_set():
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LMTHING_PAYLOAD")}
    done = subprocess.run([sys.executable, "-m", "lmthing", "codec-server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "LMTHING_PAYLOAD_KEY" in done.stderr
