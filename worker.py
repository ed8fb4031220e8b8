"""The Stopline worker: runs CaseWorkflow and the activities that call institutions.

Run it alone with `stopline worker` (as many as needed against one Temporal cluster: they share
the task queue), or inside `stopline up`.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import Worker

from activities.institutions import InstitutionActivities
from adapters.bank import DEFAULT_TIMEOUT_SECONDS, BankClient
from adapters.channels import ChannelPool
from audit.log import AuditLog
from trust.keys import KeySource
from trust.registry import Registry
from trust.replay import NonceCache
from workflows.case import CaseWorkflow
from workflows.hold import HoldWorkflow
from workflows.number import NumberWorkflow

WORKFLOWS = [CaseWorkflow, HoldWorkflow, NumberWorkflow]


def build_worker(
    client: Client,
    task_queue: str,
    *,
    hub_key: KeySource,
    registry: Callable[[], Registry],
    channels: ChannelPool,
    bank_timeout_seconds: float | None = None,
    audit: AuditLog | None = None,
    replay: NonceCache | None = None,
) -> Worker:
    banks = BankClient(channels, registry, timeout_seconds=bank_timeout_seconds or DEFAULT_TIMEOUT_SECONDS)
    institutions = InstitutionActivities(hub_key, registry, banks, audit, replay)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            institutions.request_stop_payment,
            institutions.request_account_query,
            institutions.request_freeze,
            institutions.request_release,
            institutions.request_return_funds,
            institutions.record_decision,
        ],
    )


if __name__ == "__main__":
    from stopline.cli import main

    main(["worker"])
