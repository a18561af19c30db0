"""Sizes that must fit Temporal's payload limit.

The server refuses a payload over 2 MB by default (``limit.blobSize.error``), and an activity
result that big fails the activity's completion on every attempt. What an activity returns
is checked against this bound first, so the failure is one clear, non-retryable error.
"""

import os
from collections.abc import Callable

from temporalio.exceptions import ApplicationError

# Room is left for the rest of the workflow task the result travels in.
MAX_PAYLOAD_BYTES = 1_500_000
# With a payload store (LMTHING_PAYLOAD_STORE, lmthing/client/payload_store.py) a large
# payload stays out of history; this bound only keeps a runaway tool or model in check.
MAX_STORED_PAYLOAD_BYTES = 256 * 1024 * 1024
STORE_HINT = "or set LMTHING_PAYLOAD_STORE on every client and worker to keep large payloads out of history"


def payload_limit() -> int:
    """The size a result may have on this worker."""
    return MAX_STORED_PAYLOAD_BYTES if os.environ.get("LMTHING_PAYLOAD_STORE", "").strip() else MAX_PAYLOAD_BYTES


def check_size(size: int, error_type: str, message: Callable[[int], str]) -> None:
    """Fail at once (non-retryable: the same result would be too large again) when ``size``
    is over this worker's limit; ``message(limit)`` says what was too large and what to do,
    and the store is named as the other way out when there is none."""
    limit = payload_limit()
    if size > limit:
        hint = f"; {STORE_HINT}" if limit == MAX_PAYLOAD_BYTES else ""
        raise ApplicationError(f"{message(limit)}{hint}.", type=error_type, non_retryable=True)
