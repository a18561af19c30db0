"""The thread-CPU clock for bench/resilience_checks_app.py's in-workflow micro-benchmark. Its
own module, imported passed through the workflow sandbox, so the workflow gets the real
``time.thread_time_ns`` (the sandbox's ``time`` refuses it)."""

from __future__ import annotations

import time

clock = time.thread_time_ns
