"""Shared fixtures: one real Temporal dev server per session, and one worker that knows
every prompt and tool under tests/apps. Nothing here mocks Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server

from tests.pg import postgres_server
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
def memory_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session worker's memory store: a SQLite file of this test session's own."""
    return f"sqlite:///{tmp_path_factory.mktemp('memory') / 'memory.db'}"


@pytest.fixture(scope="session")
async def worker(client: Client, memory_url: str) -> AsyncIterator[None]:
    """A worker for all test apps on TEST_TASK_QUEUE, running for the whole session."""
    w = create_worker(client, app=app_modules(), task_queue=TEST_TASK_QUEUE, memory_store=memory_url)
    async with w:
        yield


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server (with pgvector) for the session (tests/pg.py); tests make
    their own database on it with ``tests.pg.new_database(postgres_url)``."""
    with postgres_server() as url:
        yield url


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown, after pytest has reported everything.

    The Temporal SDK's Rust threads can abort CPython while it finalizes ("PyGILState_Release
    ... finalizing", temporalio/sdk-python#300), turning a green run into exit code 134.
    """
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
