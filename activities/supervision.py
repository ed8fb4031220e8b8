"""Supervision of institutions: `report_breach` tells an institution's regulator that it left a
request unanswered past its deadline. The evidence is the hub's signed audit log: every signed
attempt of that request the hub sent the institution, found by the request's idempotency key
(audit.log.AuditLog.entries_for_key) and cited as (index, leaf hash), with the log's size, so a
regulator holding the log (or a checkpoint at or after that size) checks each one itself.

One report per request: the report's idempotency key comes from the workflow, and the regulator
answers a repeat (a retry after a lost answer) with the first receipt, stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import time_of, timestamp_pb
from activities.exchange import ExchangeActivities
from adapters.regulator import RegulatorClient
from audit.entry import Direction, EntryKind
from audit.log import AuditLog
from stopline.domain import REPORT_BREACH, BreachInput, BreachResult, RegulatorReceiptResult, RequestType
from stopline.v1 import regulator_pb2
from trust.errors import RegistryError
from trust.keys import KeySource
from trust.registry import Registry
from trust.replay import NonceCache

log = structlog.get_logger("activities.supervision")

# ApplicationError types of these activities (beside stopline.domain's ERR_*):
# the registry names no regulator for the institution (retryable: an operator can add one)...
ERR_NO_REGULATOR = "NoRegulator"
# ...and the audit log holds no signed request to cite (final: entries are recorded before a
# request leaves, so what is not there now never will be).
ERR_NO_EVIDENCE = "NoEvidence"


def request_type_pb(request_type: RequestType) -> int:
    """RequestType.BLOCK_NUMBERS -> REQUEST_TYPE_BLOCK_NUMBERS."""
    return regulator_pb2.RequestType.Value(f"REQUEST_TYPE_{request_type.name}")


def check_receipt(regulator: str, key: str, receipt: regulator_pb2.RegulatorReceipt) -> RegulatorReceiptResult:
    """A receipt counts only if it acknowledges this very report (ValueError says how not)."""
    if receipt.idempotency_key != key:
        raise ValueError(f"receipt is for {receipt.idempotency_key!r}, not {key!r}")
    if not receipt.reference:
        raise ValueError("receipt carries no reference")
    return RegulatorReceiptResult(regulator=regulator, reference=receipt.reference, received_at=time_of(receipt.received_at))


def regulator_or_retry(find: Callable[[], str], what: str) -> str:
    """The registry's answer, or a retryable ApplicationError an operator can mend."""
    try:
        return find()
    except RegistryError as e:
        raise ApplicationError(f"no regulator to tell {what}: {e}", type=ERR_NO_REGULATOR) from None


class SupervisionActivities(ExchangeActivities):
    _log = log

    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        regulators: RegulatorClient,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        super().__init__(hub_key, registry, audit, replay)
        self._regulators = regulators

    @activity.defn(name=REPORT_BREACH)
    async def report_breach(self, req: BreachInput) -> BreachResult:
        regulator = regulator_or_retry(lambda: self._registry().regulator_of(req.institution),
                                       f"of {req.institution}'s breach")  # fmt: skip
        evidence, log_size = await asyncio.to_thread(self._evidence, req)
        report = regulator_pb2.BreachReport(
            idempotency_key=req.idempotency_key,
            case_id=req.case_id,
            institution=req.institution,
            request_type=request_type_pb(req.request_type),
            request_idempotency_key=req.request_idempotency_key,
            asked_at=timestamp_pb(req.asked_at),
            answer_due_at=timestamp_pb(req.answer_due_at),
            evidence=evidence,
            log_size=log_size,
            detail=req.detail,
        )
        receipt, bound = await self._exchange(
            report, self._regulators.report_breach, regulator_pb2.RegulatorReceipt,
            lambda answer, attempt: check_receipt(regulator, req.idempotency_key, answer),
            case_id=req.case_id, institution=regulator, what="breach report",
        )  # fmt: skip
        bound.info("breach reported", reported=req.institution, reference=receipt.reference, evidence=len(evidence))
        return BreachResult(
            regulator=regulator,
            reference=receipt.reference,
            reported_at=receipt.received_at or datetime.now(UTC),
            evidence_entries=len(evidence),
        )

    def _evidence(self, req: BreachInput) -> tuple[list[regulator_pb2.LogEntryRef], int]:
        """Every signed request envelope the hub sent `req.institution` under the request's key,
        and the log's size now (which covers them all). Blocking: run in a thread."""
        if self._audit is None:
            raise ApplicationError("no audit log to cite: a breach is reported with its evidence",
                                   type=ERR_NO_EVIDENCE, non_retryable=True)  # fmt: skip
        size = self._audit.store.size()
        refs = [
            regulator_pb2.LogEntryRef(index=found.index, leaf_hash=found.leaf_hash)
            for found in self._audit.entries_for_key(req.request_idempotency_key)
            if found.entry.kind is EntryKind.ENVELOPE
            and found.entry.direction is Direction.OUT
            and found.entry.institution == req.institution
            and found.index < size
        ]
        if not refs:
            raise ApplicationError(
                f"the audit log holds no request {req.request_idempotency_key!r} sent to {req.institution}",
                type=ERR_NO_EVIDENCE, non_retryable=True,
            )  # fmt: skip
        return refs, size
