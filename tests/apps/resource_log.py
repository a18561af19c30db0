"""What the resources of tests/apps/resources_app.py did on the worker: inits, cleanups and
how many pool objects were out at once, for tests/test_resources.py to read. Imported
passed through the workflow sandbox, so the test and every copy of the app share it."""

import threading
from collections import Counter

INITS: Counter[str] = Counter()  # resource name -> objects made
CLEANED: list[str] = []  # ids of the objects cleaned up, in order
OUT: Counter[str] = Counter()  # pool name -> objects lent right now (measured inside the tool)
PEAK: Counter[str] = Counter()  # pool name -> most objects lent at once


def made(name: str) -> dict:
    INITS[name] += 1
    return {"id": f"{name}#{INITS[name]}", "ok": True}


_LOCK = threading.Lock()  # plain def tools count from their threads


def lent(name: str, delta: int) -> None:
    with _LOCK:
        OUT[name] += delta
        PEAK[name] = max(PEAK[name], OUT[name])
