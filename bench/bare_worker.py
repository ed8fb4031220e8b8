"""The bare-Temporal baseline's worker as a process of its own, as `stopline worker` is for the hub:
bench.common's no-op workflows and activity, and bench.bare_shape's workflows of a case's shape, on
a task queue, with the SDK's default settings, until SIGTERM or SIGINT.

    .venv/bin/python -m bench.bare_worker TEMPORAL_ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_shape import SHAPE_WORKFLOWS
from bench.common import BARE_ACTIVITIES, BARE_WORKFLOWS


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=task_queue, workflows=[*BARE_WORKFLOWS, *SHAPE_WORKFLOWS],
                    activities=BARE_ACTIVITIES)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(worker.run())
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task not in done:
        await worker.shutdown()
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    sys.stdout.flush()
    os._exit(0)  # as stopline/cli.py: skip the Temporal bridge's teardown crash
