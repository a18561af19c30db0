"""Heartbeats of long activities (model calls, moderation, memory): a worker that dies is
noticed within the activity's heartbeat timeout, not after its start-to-close timeout."""

from __future__ import annotations

import asyncio

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 1.0


async def heartbeat_forever() -> None:
    """Heartbeat every second until cancelled: a dead worker is noticed within the heartbeat timeout."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
