"""When each message's processing reached an activity (bench/messaging.py). Its own module,
imported passed through the workflow sandbox, so every copy of bench/messaging_app.py (the
sandbox re-imports it per run, and the scripted model may call a copy's function) writes to
this one dict."""

from __future__ import annotations

import time

# message id -> the times its processing reached an activity (one per subscriber).
REACHED: dict[str, list[float]] = {}


def note(message_id: str) -> None:
    REACHED.setdefault(message_id, []).append(time.time())
