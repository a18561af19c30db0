"""JSON logs: the run's identity on lines logged from workflows and activities, and
secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

from temporalio import activity, workflow

from lmthing.observability.logging import configure_json_logging
from tests.apps import humans_app
from tests.apps.logging_app import SECRET, logs_from_a_tool
from tests.support import REPO_ROOT, cli_env, cli_worker, new_id, start


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


async def test_json_lines_carry_the_run_and_redact_secrets(client, worker, monkeypatch):
    monkeypatch.setenv("VENDOR_API_KEY", SECRET)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_flags = (workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message)
    buf = io.StringIO()
    configure_json_logging(redact=["vendor_token"], stream=buf)
    try:
        handle = await start(client, logs_from_a_tool)  # on the session worker (it knows tests.apps)
        await handle.result()
        # A workflow-side warning: a decide signal for an approval that does not exist.
        pay = await start(client, humans_app.pay)
        for _ in range(100):
            if await pay.pending():
                break
            await asyncio.sleep(0.1)
        await pay.handle.signal("decide", {"id": "nope", "action": "approve"})
        for _ in range(100):
            if any("Ignored decision" in r["message"] for r in lines(buf)):
                break
            await asyncio.sleep(0.1)
        [item] = await pay.pending()
        await pay.decide(item.id, "deny", by="test")
        await pay.result()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved_handlers:
            root.addHandler(h)
        root.setLevel(saved_level)
        workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message = saved_flags

    records = lines(buf)
    [tool_line] = [r for r in records if r["message"].startswith("calling vendor")]
    assert tool_line["workflow_id"] == handle.id and tool_line["run_id"]
    assert tool_line["prompt"] == "logs_from_a_tool"
    assert tool_line["activity_type"] == "lmthing.tool.call_vendor" and tool_line["attempt"] == 1
    assert tool_line["message"] == "calling vendor for Paris with key [REDACTED]"
    assert tool_line["authorization"] == "[REDACTED]" and tool_line["vendor_token"] == "[REDACTED]"
    assert tool_line["city"] == "Paris" and tool_line["level"] == "INFO"
    assert tool_line["step"] == 0  # the step whose model reply asked for the call
    assert SECRET not in buf.getvalue()

    [warning] = [r for r in records if "Ignored decision" in r["message"]]
    assert warning["level"] == "WARNING"
    assert warning["workflow_id"] == pay.id and warning["run_id"] and warning["prompt"] == "pay"
    assert warning["step"] == 0  # workflow-side lines carry the run's current step too
    assert "({'attempt'" not in warning["message"]  # the run's details are fields, not message text


async def test_lmthing_worker_logs_json_lines(dev_env, client, tmp_path, monkeypatch):
    """`lmthing worker --log-format json` (LMTHING_LOG_FORMAT in the manifests): every line
    on stderr is a JSON object, with the run's identity and step, secrets redacted."""
    monkeypatch.setenv("VENDOR_API_KEY", SECRET)  # the subprocess inherits it: its value is redacted
    queue = new_id("json-logs")
    address = dev_env.client.service_client.config.target_host
    async with cli_worker(
        address, "--app", "tests.apps.logging_app", "--task-queue", queue,
        "--log-format", "json", "--log-redact", "vendor_token", log_dir=tmp_path,
    ) as w:
        handle = await start(client, logs_from_a_tool, task_queue=queue)
        await handle.result()
        for _ in range(50):
            if "calling vendor" in w.log.read_text():
                break
            await asyncio.sleep(0.1)
        text = w.log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # each line is JSON
    [tool_line] = [r for r in records if r["message"].startswith("calling vendor")]
    assert tool_line["workflow_id"] == handle.id and tool_line["prompt"] == "logs_from_a_tool"
    assert tool_line["step"] == 0 and tool_line["attempt"] == 1
    assert tool_line["vendor_token"] == "[REDACTED]" and tool_line["authorization"] == "[REDACTED]"
    assert SECRET not in text


async def test_lmthing_worker_refuses_an_unknown_log_level(dev_env, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "worker", "--app", "tests.apps.logging_app", "--log-level", "loud",
        "--address", dev_env.client.service_client.config.target_host,
        cwd=REPO_ROOT, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "--log-level 'loud' is not a level" in err.decode()
    assert "Traceback" not in err.decode() + out.decode()
