"""A prompt whose model calls run under a workflow-run retry policy (def_retry with linear
backoff and an allow-list: one activity per attempt), for tests/test_model_retry_durability.py."""

from __future__ import annotations

from lmthing import prompt


@prompt(model="openai:gpt-4o", retry="net", max_steps=2)
def retried_model(p):
    p.def_retry("net", max_attempts=2, backoff="linear", base_delay=0.2, retryable_errors=["ServerError"])
    p.user("Say something.")
