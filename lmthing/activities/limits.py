"""Sizes that must fit Temporal's payload limit.

The server refuses a payload over 2 MB by default (``limit.blobSize.error``), and an activity
result that big fails the activity's completion on every attempt. What an activity returns
is checked against this bound first, so the failure is one clear, non-retryable error.
"""

# Room is left for the rest of the workflow task the result travels in.
MAX_PAYLOAD_BYTES = 1_500_000
