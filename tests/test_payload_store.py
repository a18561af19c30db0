"""Payloads of any size (issue 12): with LMTHING_PAYLOAD_STORE, a 5 MB prompt argument and
a 3 MB tool result round-trip through Temporal's External Storage, and history holds only
references to them, encrypted like the rest when the codec is on."""

from __future__ import annotations

import asyncio

from temporalio.api.history.v1 import History
from temporalio.client import Client

from lmthing.client import data_converter
from lmthing.workers import create_worker
from tests.apps import payloads_app
from tests.support import new_id, start
from tests.test_codec import KEY_A

DOCUMENT = "d" * 5_000_000


async def _run_big_payloads(client: Client, monkeypatch, store: str) -> str:
    """Run the big prompt through a client and worker whose converter has ``store`` and the
    encryption codec; check the answer and that history holds references only."""
    monkeypatch.setenv("LMTHING_PAYLOAD_STORE", store)
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY", KEY_A)
    monkeypatch.setenv("LMTHING_PAYLOAD_KEY_ID", "k1")
    config = client.config()
    config["data_converter"] = data_converter()
    stored = Client(**config)
    queue = new_id("payload-store")
    async with create_worker(stored, app="tests.apps.payloads_app", task_queue=queue):
        handle = await start(stored, payloads_app.big_payloads, {"text": DOCUMENT}, task_queue=queue)
        result = await asyncio.wait_for(handle.result(), 60)
    assert result.text == "The document has 5,000,000 characters. The page had 3,000,000 characters."
    # History holds references: the whole of it is smaller than either payload.
    history = await client.get_workflow_handle(handle.id).fetch_history()
    size = len(History(events=history.events).SerializeToString())
    assert size < 100_000, size
    return handle.id


async def test_a_5_mb_argument_and_a_3_mb_tool_result_go_through_a_folder_store(client: Client, tmp_path, monkeypatch) -> None:
    store = tmp_path / "payloads"
    await _run_big_payloads(client, monkeypatch, str(store))
    # The store holds them, encrypted (no plain text of the document or the page in any file).
    files = list(store.iterdir())
    assert sum(f.stat().st_size for f in files) > 8_000_000
    for f in files:
        data = f.read_bytes()
        assert b"ddddddddddddddddddddddddddddddd" not in data and b"ppppppppppppppppppppppppppppp" not in data


async def test_without_a_store_a_tool_result_over_the_limit_says_how_to_get_one(client: Client, worker) -> None:
    from tests.apps import first_contact_app as app

    handle = await start(client, app.bad_tool_results)
    await asyncio.wait_for(handle.result(), 60)
    huge = (await handle.steps())[0].tool_results[1]
    assert "or set LMTHING_PAYLOAD_STORE on every client and worker to keep large payloads out of history" in huge.result["error"]


async def test_the_same_through_s3_on_a_local_s3_server(client: Client, tmp_path, monkeypatch) -> None:
    """A real S3-compatible server (moto's, as a process); the SDK's S3 driver over aioboto3."""
    import socket
    import subprocess
    import sys

    import aioboto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        session = aioboto3.Session()
        for _ in range(100):
            try:
                async with session.client("s3") as s3:
                    await s3.create_bucket(Bucket="lmthing-payloads")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                await asyncio.sleep(0.1)
        workflow_id = await _run_big_payloads(client, monkeypatch, "s3://lmthing-payloads")
        async with session.client("s3") as s3:
            listed = await s3.list_objects_v2(Bucket="lmthing-payloads")
            keys = [o["Key"] for o in listed.get("Contents", [])]
            assert any(f"/wi/{workflow_id}/" in k for k in keys), keys
            blobs = [await (await s3.get_object(Bucket="lmthing-payloads", Key=k))["Body"].read() for k in keys]
        assert sum(map(len, blobs)) > 8_000_000
        assert all(b"ddddddddddddddddddddddddddddd" not in b and b"ppppppppppppppppppppppp" not in b for b in blobs)
    finally:
        server.terminate()
        server.wait(10)
