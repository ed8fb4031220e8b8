"""The Stopline worker: runs CaseWorkflow and the activities that call institutions.

Run it alone with `stopline worker` (as many as needed against one Temporal cluster: they share
the task queue), or inside `stopline up`.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import Worker

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
    )


if __name__ == "__main__":
    from stopline.cli import main

    main(["worker"])
