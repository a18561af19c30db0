"""JSON logs: the run's identity on lines logged from workflows and activities, and
secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from temporalio import activity, workflow

from lmthing.observability.logging import configure_json_logging
from tests.apps import humans_app
from tests.apps.logging_app import SECRET, logs_from_a_tool
from tests.support import start


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
    assert SECRET not in buf.getvalue()

    [warning] = [r for r in records if "Ignored decision" in r["message"]]
    assert warning["level"] == "WARNING"
    assert warning["workflow_id"] == pay.id and warning["run_id"] and warning["prompt"] == "pay"
    assert "({'attempt'" not in warning["message"]  # the run's details are fields, not message text
