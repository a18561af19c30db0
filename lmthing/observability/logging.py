"""Structured JSON logs: one JSON object per line, with the run's identity on every line
logged from a workflow (``workflow.logger``) or an activity (``activity.logger``), and
secrets redacted.

Fields: ``ts``, ``level``, ``logger``, ``message``; when known ``workflow_id``, ``run_id``,
``prompt`` (the workflow type, i.e. the prompt's name), ``activity_type``, ``activity_id``,
``attempt``, ``task_queue``, ``namespace``, ``step``; any other ``extra=`` fields as given;
``exc_info`` as ``exception``. The run's identity comes from the ``temporal_workflow`` /
``temporal_activity`` dicts the Temporal SDK loggers put in ``extra``. ``step`` comes from
``extra={"step": n}``, inside the model-call and tool activities from the request being
served, and in a prompt workflow from the run's current step.

Redaction: values of fields whose name is configured (default ``authorization``,
``api_key``, ``password``, ``secret``, ``token``, case-insensitive, ``-`` same as ``_``, at
any depth) and every occurrence of the value of an environment variable ending in
``_API_KEY`` (in messages and string values) become ``"[REDACTED]"``.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

REDACTED = "[REDACTED]"
DEFAULT_REDACT = ("authorization", "api_key", "apikey", "x_api_key", "password", "secret", "token", "access_token")

# The step being served in this task (set by the model-call and tool activities).
current_step: contextvars.ContextVar[int | None] = contextvars.ContextVar("lmthing_step", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` (and an
# ``extra`` key among these makes ``logging`` refuse the record).
LOG_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SDK_KEYS = {"temporal_workflow", "temporal_activity", "workflow_info", "activity_info"}


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Iterable[str] = DEFAULT_REDACT, env_suffixes: Iterable[str] = ("_API_KEY",)) -> None:
        super().__init__()
        self.redact_fields = {_norm(f) for f in redact}
        self.env_suffixes = tuple(env_suffixes)

    def _secrets(self) -> list[str]:
        # Read each time: keys set after logging was configured are redacted too.
        values = {v for k, v in os.environ.items() if k.upper().endswith(self.env_suffixes) and len(v) >= 4}
        return sorted(values, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            out["workflow_id"] = wf.get("workflow_id")
            out["run_id"] = wf.get("run_id")
            out["prompt"] = wf.get("workflow_type")
            for k in ("attempt", "task_queue", "namespace", "update_id", "update_name"):
                if k in wf:
                    out[k] = wf[k]
        act = getattr(record, "temporal_activity", None)
        if isinstance(act, dict):
            out["workflow_id"] = act.get("workflow_id")
            out["run_id"] = act.get("workflow_run_id")
            out["prompt"] = act.get("workflow_type")
            for k in ("activity_type", "activity_id", "attempt", "task_queue", "namespace"):
                if k in act:
                    out[k] = act[k]
        step = getattr(record, "step", None)
        if step is None:
            step = current_step.get()
        if step is None and isinstance(wf, dict):
            step = _workflow_step()
        if step is not None:
            out["step"] = step
        for key, value in vars(record).items():
            if key not in LOG_RECORD_ATTRIBUTES and key not in _SDK_KEYS and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(self._redact(out, self._secrets()), default=str, ensure_ascii=False)

    def _redact(self, value: Any, secrets: list[str], key: str | None = None) -> Any:
        if key is not None and _norm(key) in self.redact_fields:
            return REDACTED
        if isinstance(value, dict):
            return {k: self._redact(v, secrets, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact(v, secrets) for v in value]
        if isinstance(value, str):
            for s in secrets:
                if s in value:
                    value = value.replace(s, REDACTED)
            return value
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self._redact(str(value), secrets)


def _workflow_step() -> int | None:
    """The current step of the prompt workflow logging this line (any of its handlers:
    the main loop, a signal, an update), read from the running instance's ``log_step``."""
    from temporalio import workflow

    if not workflow.in_workflow():
        return None
    step = getattr(workflow.instance(), "log_step", None)
    return step if isinstance(step, int) else None


def configure_json_logging(
    redact: Iterable[str] = (),
    *,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Log JSON lines to ``stream`` (stderr) from ``logger`` (the root logger).

    ``redact`` adds field names to the defaults (:data:`DEFAULT_REDACT`). Replaces the
    logger's handlers, and stops the Temporal SDK loggers from also appending the run's
    details to the message text (they are fields now). Returns the handler."""
    from temporalio import activity, workflow

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter((*DEFAULT_REDACT, *redact)))
    target = logger or logging.getLogger()
    for old in list(target.handlers):
        target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(level)
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    return handler
