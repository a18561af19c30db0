"""Shared fixtures: one real Temporal dev server per session, and one worker that knows
every prompt and tool under tests/apps. Nothing here mocks Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server

from tests.support import TEST_TASK_QUEUE


def app_modules() -> list[str]:
    import pkgutil

    import tests.apps as apps

    return [f"tests.apps.{m.name}" for m in pkgutil.iter_modules(apps.__path__)]


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


@pytest.fixture(scope="session")
async def worker(client: Client) -> AsyncIterator[None]:
    """A worker for all test apps on TEST_TASK_QUEUE, running for the whole session."""
    w = create_worker(client, app=app_modules(), task_queue=TEST_TASK_QUEUE)
    async with w:
        yield


