"""One HTTP port for operating a worker: ``/metrics``, ``/healthz`` and ``/readyz``.

Prometheus scrapes and Kubernetes probes hit the same port (``--metrics-port``, 9464 in the
manifests, port name ``metrics``), so a pod exposes one port and one Service.

* ``/metrics``: :data:`lmthing.observability.metrics.REGISTRY` (lmthing's metrics and the
  Temporal SDK's), in the Prometheus or OpenMetrics text format the scraper asks for.
* ``/healthz`` (liveness): 200 while the process serves HTTP and its worker has not
  stopped on its own (a fatal worker error); 503 otherwise, so Kubernetes restarts it.
* ``/readyz`` (readiness): 200 while the worker polls its task queue and Temporal answers;
  503 before that, while Temporal is unreachable, and from the moment shutdown begins
  (SIGTERM), so the pod stops counting as available while it drains.

Both answer with a short plain-text reason. They are served by aiohttp on the worker's own
event loop, on purpose: a loop too blocked to answer a probe is too blocked to poll, and
liveness should say so. What "live" and "ready" mean is decided by a :class:`HealthSource`
(the worker process's :class:`lmthing.workers.health.WorkerHealth`); without one, both
answer 200 as long as the process serves HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from lmthing.observability import metrics


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


class HealthSource(Protocol):
    async def live(self) -> Check: ...

    async def ready(self) -> Check: ...


class _AlwaysUp:
    async def live(self) -> Check:
        return Check(True, "ok")

    async def ready(self) -> Check:
        return Check(True, "ok")


def ops_app(health: HealthSource | None = None) -> web.Application:
    """The aiohttp application serving the three paths."""
    source = health or _AlwaysUp()

    async def serve_metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        # Collecting drains the SDK's metric buffer: keep it off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, encoder, metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": content_type})

    def probe(check: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            try:
                result: Check = await check()
            except Exception as err:  # a probe that fails to answer is a failed probe  # noqa: BLE001
                result = Check(False, f"health check failed: {type(err).__name__}: {err}")
            return web.Response(status=200 if result.ok else 503, text=result.detail + "\n")

        return handler

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", probe(source.live))
    app.router.add_get("/readyz", probe(source.ready))
    return app


class OpsServer:
    """The running endpoint; ``await close()`` stops it and its background tasks."""

    def __init__(self, runner: web.AppRunner, port: int, tasks: list[asyncio.Task[None]]) -> None:
        self._runner, self.port, self._tasks = runner, port, tasks

    def watch_runs(self, client: Any, task_queue: str, poll_interval: float = 5.0) -> None:
        """Poll the visibility store for ``lmthing_active_runs`` / ``lmthing_approvals_pending``
        on ``task_queue`` (started once the process is connected)."""
        self._tasks.append(asyncio.create_task(metrics.poll_run_gauges(client, task_queue, poll_interval)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._runner.cleanup()


async def start_ops_server(
    port: int,
    *,
    health: HealthSource | None = None,
    addr: str = "0.0.0.0",
    client: Any | None = None,
    task_queue: str | None = None,
    poll_interval: float = 5.0,
) -> OpsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``addr:port`` (port 0: any free port).

    Also drains the SDK's metric buffer every second (so it never overflows between
    scrapes) and, with a ``client`` and ``task_queue``, polls the visibility store for
    ``lmthing_active_runs`` / ``lmthing_approvals_pending`` on that queue. Raises OSError
    when the port cannot be bound."""
    runner = web.AppRunner(ops_app(health), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, addr, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port  # type: ignore[union-attr]
    ops = OpsServer(runner, bound, [asyncio.create_task(_drain_sdk_metrics_forever())])
    if client is not None and task_queue is not None:
        ops.watch_runs(client, task_queue, poll_interval)
    return ops


async def _drain_sdk_metrics_forever() -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(1.0)
        with contextlib.suppress(Exception):
            await loop.run_in_executor(None, metrics.drain_sdk_metrics)
