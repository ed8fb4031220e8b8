"""The activities that intercept fraudsters' numbers, one outside effect each:

- locate_number: which carrier serves a number now. The registry names the range holder (the
  carrier holding the longest prefix of the number); it is asked (QueryNumber), and when the
  number was ported away, the carrier it names is the one, if it is on the platform.
- request_number_block / request_number_unblock: the carrier blocks (lifts the block on) calls
  and SMS of the numbers; its signed answer must echo the order's key and case and give exactly
  one result per number ordered, in order.
- notify_telecom_regulator: the registry's telecom regulator is told what was blocked or lifted.

Each signs its request with the hub's key, records it in the audit log before it leaves, accepts
only an answer signed by the institution asked, and records that too (activities.exchange).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from temporalio import activity

from activities.convert import time_of, timestamp_pb
from activities.exchange import ExchangeActivities
from activities.supervision import check_receipt, regulator_or_retry
from adapters.regulator import RegulatorClient
from adapters.telecom import TelecomClient
from audit.log import AuditLog
from stopline.domain import (
    LOCATE_NUMBER,
    NOTIFY_TELECOM_REGULATOR,
    REQUEST_NUMBER_BLOCK,
    REQUEST_NUMBER_UNBLOCK,
    InterceptionKind,
    InterceptionNoticeInput,
    LocateNumberInput,
    LocateNumberResult,
    NumberBlockInput,
    NumberBlockResult,
    NumberOutcome,
    NumberResult,
    NumberUnblockInput,
    RegulatorReceiptResult,
)
from stopline.v1 import regulator_pb2, telecom_pb2
from trust.keys import KeySource
from trust.registry import InstitutionKind, Registry
from trust.replay import NonceCache

log = structlog.get_logger("activities.telecom")

_OUTCOMES = {
    telecom_pb2.NUMBER_OUTCOME_BLOCKED: NumberOutcome.BLOCKED,
    telecom_pb2.NUMBER_OUTCOME_ALREADY_BLOCKED: NumberOutcome.ALREADY_BLOCKED,
    telecom_pb2.NUMBER_OUTCOME_NOT_SERVED: NumberOutcome.NOT_SERVED,
    telecom_pb2.NUMBER_OUTCOME_REFUSED: NumberOutcome.REFUSED,
    telecom_pb2.NUMBER_OUTCOME_UNBLOCKED: NumberOutcome.UNBLOCKED,
    telecom_pb2.NUMBER_OUTCOME_NOT_BLOCKED: NumberOutcome.NOT_BLOCKED,
}
# What an answer to each order may say about a number.
BLOCK_OUTCOMES = frozenset({NumberOutcome.BLOCKED, NumberOutcome.ALREADY_BLOCKED, NumberOutcome.NOT_SERVED,
                            NumberOutcome.REFUSED})  # fmt: skip
UNBLOCK_OUTCOMES = frozenset({NumberOutcome.UNBLOCKED, NumberOutcome.NOT_BLOCKED, NumberOutcome.NOT_SERVED,
                              NumberOutcome.REFUSED})  # fmt: skip
# Outcomes that name the carrier's block.
_WITH_BLOCK_ID = frozenset({NumberOutcome.BLOCKED, NumberOutcome.ALREADY_BLOCKED, NumberOutcome.UNBLOCKED})
_KINDS = {
    InterceptionKind.BLOCKED: regulator_pb2.INTERCEPTION_KIND_BLOCKED,
    InterceptionKind.UNBLOCKED: regulator_pb2.INTERCEPTION_KIND_UNBLOCKED,
}


class TelecomActivities(ExchangeActivities):
    _log = log

    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        carriers: TelecomClient,
        regulators: RegulatorClient,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        super().__init__(hub_key, registry, audit, replay)
        self._carriers = carriers
        self._regulators = regulators

    @activity.defn(name=LOCATE_NUMBER)
    async def locate_number(self, req: LocateNumberInput) -> LocateNumberResult:
        number = req.phone_number
        holder = self._registry().carrier_for_number(number)
        if holder is None:
            log.info("number located", case_id=req.case_id, range_holder="", carrier="")
            return LocateNumberResult(number, carrier="", detail="no carrier on the platform holds this number's range")
        query = telecom_pb2.NumberQuery(idempotency_key=req.idempotency_key, case_id=req.case_id, phone_number=number)
        report, bound = await self._exchange(
            query, self._carriers.query_number, telecom_pb2.NumberReport,
            lambda answer, attempt: _check_report(req, answer),
            case_id=req.case_id, institution=holder, what="number query",
        )  # fmt: skip
        if report.served:
            result = LocateNumberResult(number, carrier=holder, range_holder=holder)
        elif report.served_by and self._is_carrier(report.served_by):
            result = LocateNumberResult(number, carrier=report.served_by, range_holder=holder,
                                        detail=f"ported from {holder} to {report.served_by}")  # fmt: skip
        elif report.served_by:
            result = LocateNumberResult(number, carrier="", range_holder=holder,
                                        detail=f"ported from {holder} to {report.served_by}, which is not on the platform")  # fmt: skip
        else:
            result = LocateNumberResult(number, carrier="", range_holder=holder,
                                        detail=f"{holder} holds the range but does not serve the number")  # fmt: skip
        bound.info("number located", range_holder=holder, carrier=result.carrier, served_by=report.served_by)
        return result

    def _is_carrier(self, institution_id: str) -> bool:
        inst = self._registry().get(institution_id)
        return inst is not None and inst.kind is InstitutionKind.CARRIER

    @activity.defn(name=REQUEST_NUMBER_BLOCK)
    async def request_number_block(self, req: NumberBlockInput) -> NumberBlockResult:
        order = telecom_pb2.NumberBlockOrder(
            idempotency_key=req.idempotency_key, case_id=req.case_id, requested_by=req.requested_by,
            phone_numbers=req.phone_numbers, reason=req.reason,
        )  # fmt: skip
        result, bound = await self._exchange(
            order, self._carriers.block_numbers, telecom_pb2.NumberBlockAnswer,
            lambda answer, attempt: _check_answer(req, answer, BLOCK_OUTCOMES),
            case_id=req.case_id, institution=req.carrier, what="number block",
        )  # fmt: skip
        bound.info("number block answered", outcomes=[r.outcome.value for r in result.results])
        return result

    @activity.defn(name=REQUEST_NUMBER_UNBLOCK)
    async def request_number_unblock(self, req: NumberUnblockInput) -> NumberBlockResult:
        order = telecom_pb2.NumberUnblockOrder(
            idempotency_key=req.idempotency_key, case_id=req.case_id, phone_numbers=req.phone_numbers,
            reason=req.reason, decided_by=req.decided_by, officer=req.officer,
        )  # fmt: skip
        result, bound = await self._exchange(
            order, self._carriers.unblock_numbers, telecom_pb2.NumberBlockAnswer,
            lambda answer, attempt: _check_answer(req, answer, UNBLOCK_OUTCOMES),
            case_id=req.case_id, institution=req.carrier, what="number unblock",
        )  # fmt: skip
        bound.info("number unblock answered", outcomes=[r.outcome.value for r in result.results])
        return result

    @activity.defn(name=NOTIFY_TELECOM_REGULATOR)
    async def notify_telecom_regulator(self, req: InterceptionNoticeInput) -> RegulatorReceiptResult:
        regulator = regulator_or_retry(lambda: self._registry().telecom_regulator(), "of the interception")
        notice = regulator_pb2.InterceptionNotice(
            idempotency_key=req.idempotency_key, case_id=req.case_id, carrier=req.carrier,
            phone_numbers=req.phone_numbers, kind=_KINDS[InterceptionKind(req.kind)], reason=req.reason,
            acted_at=timestamp_pb(req.acted_at),
        )  # fmt: skip
        receipt, bound = await self._exchange(
            notice, self._regulators.notify_interception, regulator_pb2.RegulatorReceipt,
            lambda answer, attempt: check_receipt(regulator, req.idempotency_key, answer),
            case_id=req.case_id, institution=regulator, what="interception notice",
        )  # fmt: skip
        bound.info("telecom regulator told", kind=InterceptionKind(req.kind).value, reference=receipt.reference)
        return receipt


def _check_report(req: LocateNumberInput, report: telecom_pb2.NumberReport) -> telecom_pb2.NumberReport:
    """The report is about this very query (ValueError says how not)."""
    if report.idempotency_key != req.idempotency_key:
        raise ValueError(f"report is for request {report.idempotency_key!r}, not {req.idempotency_key!r}")
    if report.phone_number != req.phone_number:
        raise ValueError(f"report is about {report.phone_number!r}, not {req.phone_number!r}")
    if report.served and report.served_by:
        raise ValueError(f"report says the number is served here and by {report.served_by!r}")
    return report


def _check_answer(
    req: NumberBlockInput | NumberUnblockInput, answer: telecom_pb2.NumberBlockAnswer, allowed: frozenset[NumberOutcome]
) -> NumberBlockResult:
    """Refuse an answer that does not fit the order (ValueError says how): it must echo the key
    and case, and give one result per number ordered, in order, each with an outcome that answers
    this kind of order (and the block id where the outcome names a block)."""
    if answer.idempotency_key != req.idempotency_key:
        raise ValueError(f"answer is for request {answer.idempotency_key!r}, not {req.idempotency_key!r}")
    if answer.case_id != req.case_id:
        raise ValueError(f"answer is for case {answer.case_id!r}, not {req.case_id!r}")
    if len(answer.results) != len(req.phone_numbers):
        raise ValueError(f"answer has {len(answer.results)} results for {len(req.phone_numbers)} numbers ordered")
    results = []
    for i, (number, r) in enumerate(zip(req.phone_numbers, answer.results, strict=True)):
        if r.phone_number != number:
            raise ValueError(f"results[{i}] is about {r.phone_number!r}, the order's number {i} is {number!r}")
        outcome = _OUTCOMES.get(r.outcome)
        if outcome not in allowed:
            name = outcome.value if outcome is not None else str(r.outcome)
            raise ValueError(f"results[{i}].outcome: {name!r} does not answer this order")
        if outcome in _WITH_BLOCK_ID and not r.block_id:
            raise ValueError(f"results[{i}].block_id: {outcome.value} names no block")
        results.append(NumberResult(phone_number=number, outcome=outcome, block_id=r.block_id, detail=r.detail,
                                    served_by=r.served_by))  # fmt: skip
    return NumberBlockResult(results=results, answered_at=time_of(answer.answered_at))
