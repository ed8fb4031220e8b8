"""The activities that talk to banks and payment companies, one outside effect each:
request_stop_payment (hold the disputed amount), request_account_query (who holds the
account, its balance, and where money went from it), request_freeze, request_release and
request_return_funds (pay frozen money back to a victim). Each sends one signed request to the
institution that keeps the account, verifies its signed answer, and hands the workflow only what
verified; every envelope either way, and every refusal, goes into the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from temporalio import activity

from activities.convert import (
    account_of,
    account_pb,
    amount_of,
    duration_pb,
    foreign_destination_of,
    freeze_result_of,
    money_pb,
    return_result_of,
    time_of,
    timestamp_pb,
)
from activities.exchange import HEALABLE_ATTEMPTS, ExchangeActivities, _echoes
from adapters.bank import BankClient
from audit.log import AuditLog
from audit.record import decision_entry
from stopline.caseindex import CaseIndex, account_key
from stopline.domain import (
    RECORD_DECISION,
    REQUEST_ACCOUNT_QUERY,
    REQUEST_FREEZE,
    REQUEST_RELEASE,
    REQUEST_RETURN_FUNDS,
    REQUEST_STOP_PAYMENT,
    AccountQueryInput,
    AccountQueryResult,
    Amount,
    Channel,
    DecisionRecord,
    FreezeInput,
    FreezeResult,
    OnwardTransfer,
    ReleaseInput,
    ReleaseResult,
    ReturnInput,
    ReturnOutcome,
    ReturnResult,
    StopOutcome,
    StopPaymentInput,
    StopPaymentResult,
)
from stopline.v1 import bank_pb2
from trust.keys import KeySource
from trust.registry import Registry
from trust.replay import NonceCache

log = structlog.get_logger("activities.institutions")

__all__ = ["HEALABLE_ATTEMPTS", "InstitutionActivities"]

_OUTCOMES = {
    bank_pb2.STOP_PAYMENT_OUTCOME_HELD: StopOutcome.HELD,
    bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD: StopOutcome.PARTIALLY_HELD,
    bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED: StopOutcome.REFUSED,
}


def _short_reason(value: int) -> str:
    """REFUSAL_REASON_UNKNOWN_ACCOUNT -> "unknown account"."""
    name = bank_pb2.RefusalReason.Name(value) if value in bank_pb2.RefusalReason.values() else str(value)
    return name.removeprefix("REFUSAL_REASON_").replace("_", " ").lower()


class InstitutionActivities(ExchangeActivities):
    _log = log

    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        banks: BankClient,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
        case_index: CaseIndex | None = None,
    ):
        super().__init__(hub_key, registry, audit, replay)
        self._banks = banks
        # Every account the chase stops is recorded against the case, so a later report that
        # names it links to this case and operators find the case from the account.
        self._case_index = case_index

    @activity.defn(name=REQUEST_STOP_PAYMENT)
    async def request_stop_payment(self, req: StopPaymentInput) -> StopPaymentResult:
        order = bank_pb2.StopPaymentOrder(
            idempotency_key=req.idempotency_key,
            case_id=req.case_id,
            account=account_pb(req.account),
            account_holder_name=req.holder_name,
            amount=money_pb(req.amount),
            transfer_time=timestamp_pb(req.transfer_time),
            requested_by=req.requested_by,
            hold_duration=duration_pb(timedelta(seconds=req.hold_seconds)),
            extends_hold_id=req.extends_hold_id,
        )
        result, bound = await self._exchange(
            order, self._banks.stop_payment, bank_pb2.StopPaymentAnswer,
            lambda answer, attempt: _check_answer(req, answer, attempt=attempt),
            case_id=req.case_id, institution=req.account.institution, what="stop-payment",
            attempt=activity.info().attempt + req.prior_attempts,
        )  # fmt: skip
        if self._case_index is not None:
            try:
                await asyncio.to_thread(self._case_index.touch, req.case_id, [account_key(req.account)], at=datetime.now(UTC))
            except ValueError as e:  # a case the index never saw (reported before it existed)
                bound.warning("case index not updated", error=str(e))
        bound.info(
            "stop-payment answered",
            outcome=result.outcome.value,
            held_minor=result.held.minor_units,
            currency=result.held.currency,
            hold_id=result.hold_id,
        )
        return result

    @activity.defn(name=RECORD_DECISION)
    async def record_decision(self, record: DecisionRecord) -> None:
        """Append a workflow decision that moved money to the audit log (safe to retry: a repeat
        is a second, identical record of the same decision, never a second decision)."""
        info = activity.info()
        await self._record(
            decision_entry(case_id=record.case_id, institution=record.institution, decision=record.decision,
                           details={**record.details, "workflow_id": info.workflow_id})
        )  # fmt: skip
        log.info("decision recorded", case_id=record.case_id, workflow_id=info.workflow_id, decision=record.decision)

    @activity.defn(name=REQUEST_FREEZE)
    async def request_freeze(self, req: FreezeInput) -> FreezeResult:
        approval = bank_pb2.FreezeApproval(
            approved_by=req.approved_by, officer=req.officer, document_ref=req.document_ref,
            approved_at=timestamp_pb(req.approved_at),
        )  # fmt: skip
        order = bank_pb2.FreezeOrder(
            idempotency_key=req.idempotency_key,
            case_id=req.case_id,
            account=account_pb(req.account),
            amount=money_pb(req.amount),
            hold_id=req.hold_id,
            renews_freeze_id=req.renews_freeze_id,
            freeze_duration=duration_pb(timedelta(seconds=req.duration_seconds)),
            approval=approval,
        )
        result, bound = await self._exchange(
            order, self._banks.freeze, bank_pb2.FreezeAnswer,
            lambda answer, attempt: _check_freeze(req, answer),
            case_id=req.case_id, institution=req.account.institution, what="freeze",
        )  # fmt: skip
        bound.info("freeze answered", frozen=result.frozen, amount_minor=result.amount.minor_units, freeze_id=result.freeze_id)
        return result

    @activity.defn(name=REQUEST_RELEASE)
    async def request_release(self, req: ReleaseInput) -> ReleaseResult:
        order = bank_pb2.ReleaseOrder(
            idempotency_key=req.idempotency_key, case_id=req.case_id, account=account_pb(req.account),
            hold_id=req.hold_id, freeze_id=req.freeze_id, reason=req.reason, decided_by=req.decided_by,
        )  # fmt: skip
        result, bound = await self._exchange(
            order, self._banks.release, bank_pb2.ReleaseAnswer,
            lambda answer, attempt: _check_release(req, answer),
            case_id=req.case_id, institution=req.account.institution, what="release",
        )  # fmt: skip
        bound.info("release answered", released_minor=result.released.minor_units)
        return result

    @activity.defn(name=REQUEST_RETURN_FUNDS)
    async def request_return_funds(self, req: ReturnInput) -> ReturnResult:
        """Order the institution that keeps the frozen account to pay `req.amount` out of freeze
        `req.freeze_id` to the victim's account. The verified receipt says RETURNED (exactly the
        amount, with the institution's return id and time), REFUSED (nothing paid; the detail
        says why), or ACCEPTED (nothing paid yet: the receipt follows by
        HubService.ReportReturnResult). Safe to retry: the key makes the institution pay once."""
        order = bank_pb2.ReturnOrder(
            idempotency_key=req.idempotency_key, case_id=req.case_id, account=account_pb(req.account),
            freeze_id=req.freeze_id, to_account=account_pb(req.to_account), amount=money_pb(req.amount),
            due_by=timestamp_pb(req.due_by), decided_by=req.decided_by, officer=req.officer,
            document_ref=req.document_ref,
        )  # fmt: skip
        result, bound = await self._exchange(
            order, self._banks.return_funds, bank_pb2.ReturnReceipt,
            lambda receipt, attempt: _check_return(req, receipt),
            case_id=req.case_id, institution=req.account.institution, what="return of funds",
        )  # fmt: skip
        bound.info("return of funds answered", outcome=result.outcome.value,
                   returned_minor=result.returned.minor_units, return_id=result.return_id)  # fmt: skip
        return result

    @activity.defn(name=REQUEST_ACCOUNT_QUERY)
    async def request_account_query(self, req: AccountQueryInput) -> AccountQueryResult:
        query = bank_pb2.AccountQuery(
            idempotency_key=req.idempotency_key,
            case_id=req.case_id,
            account=account_pb(req.account),
            transfers_since=timestamp_pb(req.transfers_since),
        )
        registry = self._registry()
        result, bound = await self._exchange(
            query, self._banks.query_account, bank_pb2.AccountReport,
            lambda report, attempt: _check_report(req, report, registry, attempt=attempt),
            case_id=req.case_id, institution=req.account.institution, what="account query",
            attempt=activity.info().attempt + req.prior_attempts,
        )  # fmt: skip
        bound.info("account query answered", found=result.found, transfers=len(result.transfers))
        return result


def _check_answer(req: StopPaymentInput, answer: bank_pb2.StopPaymentAnswer, *, attempt: int) -> StopPaymentResult:
    """Refuse an answer that does not fit the order (ValueError says how)."""
    _echoes(req, answer)
    if amount_of(answer.requested) != req.amount:
        raise ValueError(f"answer echoes an order of {amount_of(answer.requested)}, not {req.amount}")
    outcome = _OUTCOMES.get(answer.outcome)
    if outcome is None:
        raise ValueError(f"answer has no valid outcome ({answer.outcome})")
    held = amount_of(answer.held)
    if not held.currency and held.minor_units == 0:
        held = Amount.zero(req.amount.currency)  # an unset Money: nothing held
    if held.currency != req.amount.currency:
        raise ValueError(f"answer holds {held.currency}, the order was in {req.amount.currency}")
    if not 0 <= held.minor_units <= req.amount.minor_units:
        raise ValueError(f"answer holds {held.minor_units}, outside 0..{req.amount.minor_units}")
    if outcome is StopOutcome.HELD and held.minor_units != req.amount.minor_units:
        raise ValueError("answer says held but holds less than ordered")
    if outcome is StopOutcome.PARTIALLY_HELD and not 0 < held.minor_units < req.amount.minor_units:
        raise ValueError("answer says partially held but the held amount is not a part")
    if outcome is StopOutcome.REFUSED and held.minor_units != 0:
        raise ValueError("answer says refused but holds money")
    return StopPaymentResult(
        outcome=outcome,
        held=held,
        refusal_reason=_short_reason(answer.refusal_reason) if outcome is StopOutcome.REFUSED else "",
        detail=answer.detail,
        hold_id=answer.hold_id,
        answered_at=time_of(answer.held_at),
        hold_expires_at=time_of(answer.hold_expires_at),
        attempts=attempt,
    )


# ISO 9362: bank (4 letters), country (2 letters), location (2), optional branch (3).


_CHANNELS = {
    bank_pb2.TRANSFER_CHANNEL_TRANSFER: Channel.TRANSFER,
    bank_pb2.TRANSFER_CHANNEL_CASH: Channel.CASH,
    bank_pb2.TRANSFER_CHANNEL_ABROAD: Channel.ABROAD,
}


def _check_report(req: AccountQueryInput, report: bank_pb2.AccountReport, registry: Registry, *, attempt: int) -> AccountQueryResult:
    """Refuse a report that does not fit the query (ValueError says how); mark which onward
    transfers went to an institution on the platform, which the chase can ask next."""
    if report.idempotency_key != req.idempotency_key:
        raise ValueError(f"report is for request {report.idempotency_key!r}, not {req.idempotency_key!r}")
    if account_of(report.account) != req.account:
        raise ValueError(f"report is about account {account_of(report.account)}, not {req.account}")
    if not report.found:
        return AccountQueryResult(found=False, attempts=attempt)
    transfers = []
    for i, t in enumerate(report.transfers):
        channel = _CHANNELS.get(t.channel)
        if channel is None:
            raise ValueError(f"transfers[{i}].channel: not a known channel ({t.channel})")
        amount = amount_of(t.amount)
        if amount.minor_units <= 0 or not amount.currency:
            raise ValueError(f"transfers[{i}].amount: must be a positive amount with a currency")
        moved_at = time_of(t.transferred_at)
        if moved_at is None:
            raise ValueError(f"transfers[{i}].transferred_at: required")
        to_account = account_of(t.to_account) if t.HasField("to_account") and t.to_account.account_number else None
        if channel is Channel.TRANSFER and to_account is None:
            raise ValueError(f"transfers[{i}].to_account: a transfer must name the receiving account")
        receiver = registry.get(to_account.institution) if to_account is not None else None
        abroad = None
        if t.HasField("abroad"):
            if channel is not Channel.ABROAD:
                raise ValueError(f"transfers[{i}].abroad: only a transfer abroad has a foreign destination")
            abroad = foreign_destination_of(t.abroad, f"transfers[{i}].abroad")
        transfers.append(
            OnwardTransfer(
                amount=amount,
                transferred_at=moved_at,
                channel=channel,
                to_account=to_account,
                on_platform=receiver is not None and receiver.keeps_accounts,
                abroad=abroad,
            )
        )
    return AccountQueryResult(
        found=True,
        holder_name=report.holder_name,
        balance=amount_of(report.balance),
        held=amount_of(report.held),
        transfers=transfers,
        attempts=attempt,
    )


def _check_freeze(req: FreezeInput, answer: bank_pb2.FreezeAnswer) -> FreezeResult:
    _echoes(req, answer)
    if answer.outcome == bank_pb2.FREEZE_OUTCOME_ACCEPTED:
        return FreezeResult(frozen=False, amount=Amount.zero(req.amount.currency), pending=True, detail=answer.detail)
    return freeze_result_of(answer, req.amount)


def _check_release(req: ReleaseInput, answer: bank_pb2.ReleaseAnswer) -> ReleaseResult:
    _echoes(req, answer)
    released = amount_of(answer.released)
    if released.minor_units < 0:
        raise ValueError(f"answer releases a negative amount ({released.minor_units})")
    return ReleaseResult(released=released, released_at=time_of(answer.released_at), detail=answer.detail)


def _check_return(req: ReturnInput, receipt: bank_pb2.ReturnReceipt) -> ReturnResult:
    """Refuse a receipt that does not fit the order (ValueError says how): it must echo the key,
    case, frozen account and victim's account; RETURNED pays exactly the amount ordered; ACCEPTED
    and REFUSED pay nothing."""
    _echoes(req, receipt)
    if account_of(receipt.to_account) != req.to_account:
        raise ValueError(f"receipt pays account {account_of(receipt.to_account)}, not {req.to_account}")
    if receipt.outcome == bank_pb2.RETURN_OUTCOME_ACCEPTED:
        returned = amount_of(receipt.returned)
        if returned.minor_units != 0 or returned.currency not in ("", req.amount.currency):
            raise ValueError(f"receipt says accepted but returns {returned}")
        return ReturnResult(outcome=ReturnOutcome.ACCEPTED, returned=Amount.zero(req.amount.currency),
                            detail=receipt.detail)  # fmt: skip
    return return_result_of(receipt, req.amount)
