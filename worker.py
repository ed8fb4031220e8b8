"""The Stopline worker: runs CaseWorkflow and the activities that call institutions.

Run it alone with `stopline worker` (as many as needed against one Temporal cluster: they share
the task queue), or inside `stopline up`.
"""

from __future__ import annotations

import compileall
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from activities.crossborder import CrossBorderActivities
from activities.institutions import InstitutionActivities
from activities.supervision import SupervisionActivities
from activities.telecom import TelecomActivities
from adapters import regulator as regulator_adapter
from adapters import telecom as telecom_adapter
from adapters.bank import DEFAULT_TIMEOUT_SECONDS, BankClient
from adapters.channels import ChannelPool
from adapters.crossborder import CrossBorderClient
from adapters.regulator import RegulatorClient
from adapters.telecom import TelecomClient
from audit.log import AuditLog
from stopline.caseindex import CaseIndex
from trust.keys import KeySource
from trust.registry import Registry
from trust.replay import NonceCache
from workflows.case import CaseWorkflow
from workflows.crossborder import CrossBorderRecoveryWorkflow
from workflows.hold import HoldWorkflow
from workflows.number import NumberWorkflow

WORKFLOWS = [CaseWorkflow, HoldWorkflow, NumberWorkflow, CrossBorderRecoveryWorkflow]

log = structlog.get_logger("worker")


def compile_workflow_modules() -> None:
    """Write the workflow modules' bytecode once. Temporal's sandbox imports a workflow's module
    afresh for every new workflow run; without a .pyc (PYTHONDONTWRITEBYTECODE, a read-only
    checkout that was never imported) each case and each hold recompiles its module from source:
    about 8 ms of CPU per case and 7 per hold under load (docs/benchmarks.md). compileall writes
    what Python's own import would have, and reports a folder it cannot write to (read-only
    deployment) as a failure rather than raising."""
    folder = Path(workflows.__file__).parent
    if not compileall.compile_dir(str(folder), maxlevels=0, quiet=2):
        log.warning("workflow modules not compiled: each new workflow run compiles its module", folder=str(folder))


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
    telecom_timeout_seconds: float | None = None,
    regulator_timeout_seconds: float | None = None,
    case_index: CaseIndex | None = None,
) -> Worker:
    compile_workflow_modules()
    banks = BankClient(channels, registry, timeout_seconds=bank_timeout_seconds or DEFAULT_TIMEOUT_SECONDS)
    institutions = InstitutionActivities(hub_key, registry, banks, audit, replay, case_index)
    carriers = TelecomClient(channels, registry, telecom_timeout_seconds or telecom_adapter.DEFAULT_TIMEOUT_SECONDS)
    regulators = RegulatorClient(
        channels, registry, regulator_timeout_seconds or regulator_adapter.DEFAULT_TIMEOUT_SECONDS
    )
    telecom = TelecomActivities(hub_key, registry, carriers, regulators, audit, replay)
    supervision = SupervisionActivities(hub_key, registry, regulators, audit, replay)
    crossborder = CrossBorderActivities(hub_key, registry, CrossBorderClient(channels, registry), audit, replay)
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
            telecom.locate_number,
            telecom.request_number_block,
            telecom.request_number_unblock,
            telecom.notify_telecom_regulator,
            supervision.report_breach,
            crossborder.list_recall_channels,
            crossborder.request_recall,
        ],
        # A call still waiting heartbeats every 2 s; the SDK sends at most one per 3 s (its
        # default, 80% of the 10 s heartbeat timeout, would leave 2 s of margin on a busy server).
        max_heartbeat_throttle_interval=timedelta(seconds=3),
    )


if __name__ == "__main__":
    from stopline.cli import main

    main(["worker"])
