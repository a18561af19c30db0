"""Liveness and readiness of a worker process, as ``/healthz`` and ``/readyz`` report them
(:mod:`lmthing.observability.endpoints`), and the graceful shutdown that flips readiness.

* live: the worker has not stopped on its own. The SDK ends ``Worker.run()`` on a fatal
  error (e.g. the namespace is gone); a worker that was asked to shut down is still live
  while it drains.
* ready: the worker has started (its namespace check passed and its pollers run), it is
  not shutting down, and the Temporal frontend answers a cheap RPC within a few seconds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import timedelta

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import Worker

from lmthing.observability.endpoints import Check


class WorkerHealth:
    """What the probes of one worker process report."""

    def __init__(self, client: Client | None, worker: Worker | None = None, *, rpc_timeout: float = 3.0) -> None:
        self.client = client
        self.worker = worker
        self.rpc_timeout = rpc_timeout
        self.draining = False
        # While the process waits for Temporal (client None): why it is not connected yet.
        self.connecting = "not connected to Temporal yet"

    def begin_shutdown(self) -> None:
        """From now on not ready: the pod leaves Service endpoints while it drains."""
        self.draining = True

    async def live(self) -> Check:
        w = self.worker
        if w is not None and w.is_shutdown and not self.draining:
            return Check(False, "the worker stopped without being asked to (fatal error; see the logs)")
        return Check(True, "draining" if self.draining else "ok")

    async def ready(self) -> Check:
        if self.draining:
            return Check(False, "shutting down: draining running activities")
        if self.client is None:
            return Check(False, self.connecting)
        if self.worker is None or not self.worker.is_running:
            return Check(False, "the worker is not polling (yet)")
        try:
            await self.client.workflow_service.get_system_info(
                GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=self.rpc_timeout)
            )
        except Exception as err:  # noqa: BLE001
            target = self.client.service_client.config.target_host
            return Check(False, f"Temporal at {target} does not answer: {getattr(err, 'message', None) or err}")
        return Check(True, "ok")


async def run_until_signal(
    worker: Worker, health: WorkerHealth | None = None, on_stop: Callable[[], None] | None = None
) -> BaseException | None:
    """Run ``worker`` until SIGINT/SIGTERM, then shut it down gracefully.

    On the signal, readiness turns 503 at once, the worker stops polling, and running
    activities get the worker's ``graceful_shutdown_timeout`` to finish; those still running
    then are cancelled (and retried by Temporal on another worker). Returns the error the
    worker stopped with on its own, or None after a requested shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    run_task = asyncio.create_task(worker.run())
    stop_task = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if run_task in done:
            return run_task.exception() or RuntimeError("the worker stopped")
        if health is not None:
            health.begin_shutdown()
        if on_stop is not None:
            on_stop()
        await worker.shutdown()
        await run_task
        return None
    finally:
        stop_task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
