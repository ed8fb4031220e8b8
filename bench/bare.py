"""The bare-Temporal baseline: workflows whose activities do nothing but return, run by a worker
with default settings. Nothing of Stopline is imported here (the workflow sandbox re-imports this
module to validate the workflows, as it would a plain Temporal user's)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

ACTIVITY_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop(step: int) -> float:
    """Does nothing; says when it ran (perf_counter: comparable within one process)."""
    return time.perf_counter()


@workflow.defn(name="BareSequence")
class BareSequence:
    """`n` no-op activities one after the other; when each ran."""

    @workflow.run
    async def run(self, n: int) -> list[float]:
        return [
            await workflow.execute_activity(noop, i, start_to_close_timeout=ACTIVITY_TIMEOUT) for i in range(n)
        ]


@workflow.defn(name="BareFanOut")
class BareFanOut:
    """`n` no-op activities at once, as a case asks every reported account's bank at once."""

    @workflow.run
    async def run(self, n: int) -> list[float]:
        calls = [workflow.execute_activity(noop, i, start_to_close_timeout=ACTIVITY_TIMEOUT) for i in range(n)]
        return list(await asyncio.gather(*calls))


BARE_WORKFLOWS = [BareSequence, BareFanOut]
BARE_ACTIVITIES = [noop]


def bare_worker(client: Client, task_queue: str, **options) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=BARE_WORKFLOWS, activities=BARE_ACTIVITIES, **options)


