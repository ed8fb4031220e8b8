"""request_stop_payment: send one signed stop-payment order to the institution that keeps the
account, verify its signed answer, and hand the workflow only what verified."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import grpc
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import account_of, account_pb, amount_of, duration_pb, money_pb, time_of, timestamp_pb
from adapters.bank import BankClient
from adapters.errors import NON_RETRYABLE_CODES, InstitutionError
from audit.entry import AuditEntry, Direction
from audit.log import AuditLog
from audit.record import envelope_entry, refusal_entry
from stopline.domain import (
    ERR_ANSWER_REJECTED,
    ERR_ANSWER_UNVERIFIED,
    ERR_REQUEST_REJECTED,
    REQUEST_STOP_PAYMENT,
    Amount,
    StopOutcome,
    StopPaymentInput,
    StopPaymentResult,
)
from stopline.v1 import bank_pb2
from trust.envelope import open_envelope, seal
from trust.errors import KeyNotValid, ReplayedEnvelope, StaleEnvelope, TrustError, UnknownSigner
from trust.keys import KeySource, key_source
from trust.registry import Registry
from trust.replay import MemoryNonceCache, NonceCache

log = structlog.get_logger("activities.stop_payment")

# Failures that can heal by themselves: one side's registry lags a key rotation, clocks have
# drifted, or an answer was replayed (an honest bank's next answer carries a fresh nonce). A retry is safe (the bank replays its stored answer), but not for ever: after this
# many calls the stop is marked for an operator.
HEALABLE_ATTEMPTS = 10

_OUTCOMES = {
    bank_pb2.STOP_PAYMENT_OUTCOME_HELD: StopOutcome.HELD,
    bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD: StopOutcome.PARTIALLY_HELD,
    bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED: StopOutcome.REFUSED,
}


def _short_reason(value: int) -> str:
    """REFUSAL_REASON_UNKNOWN_ACCOUNT -> "unknown account"."""
    name = bank_pb2.RefusalReason.Name(value) if value in bank_pb2.RefusalReason.values() else str(value)
    return name.removeprefix("REFUSAL_REASON_").replace("_", " ").lower()


class StopPaymentActivities:
    def __init__(
        self,
        hub_key: KeySource,
        registry: Callable[[], Registry],
        banks: BankClient,
        audit: AuditLog | None = None,
        replay: NonceCache | None = None,
    ):
        self._hub_key = key_source(hub_key)
        self._replay = replay or MemoryNonceCache()
        self._registry = registry
        self._banks = banks
        self._audit = audit

    async def _record(self, entry: AuditEntry) -> None:
        """Append to the audit log (a durable local write, off the event loop)."""
        if self._audit is not None:
            await asyncio.to_thread(self._audit.append, entry)

    @activity.defn(name=REQUEST_STOP_PAYMENT)
    async def request_stop_payment(self, req: StopPaymentInput) -> StopPaymentResult:
        info = activity.info()
        institution = req.account.institution
        bound = log.bind(
            case_id=req.case_id,
            workflow_id=info.workflow_id,
            institution=institution,
            step=info.activity_id,
            attempt=info.attempt,
        )
        order = bank_pb2.StopPaymentOrder(
            idempotency_key=req.idempotency_key,
            case_id=req.case_id,
            account=account_pb(req.account),
            account_holder_name=req.holder_name,
            amount=money_pb(req.amount),
            transfer_time=timestamp_pb(req.transfer_time),
            requested_by=req.requested_by,
            hold_duration=duration_pb(timedelta(seconds=req.hold_seconds)),
        )
        healable = info.attempt < HEALABLE_ATTEMPTS
        order_envelope = seal(order, self._hub_key())
        where = {"case_id": req.case_id, "institution": institution}
        # Recorded before it leaves: the log never lacks a message an institution received.
        await self._record(envelope_entry(order_envelope, direction=Direction.OUT, **where))
        try:
            answer_envelope = await self._banks.stop_payment(institution, order_envelope)
        except InstitutionError as err:
            bound.warning("stop-payment call failed", code=err.code.name if err.code else None, error=err.message)
            if err.code in NON_RETRYABLE_CODES:  # the institution refused our message itself
                await self._record(refusal_entry(order_envelope, direction=Direction.OUT, reason=str(err), **where))
            if err.retryable or (err.code == grpc.StatusCode.UNAUTHENTICATED and healable):
                raise  # Temporal retries with the workflow's policy
            raise _final(str(err), ERR_REQUEST_REJECTED, info.attempt) from None

        # The answer counts only if the institution that keeps the account signed it, about
        # this very order. Anything else is refused and not acted on.
        try:
            answer = open_envelope(
                answer_envelope,
                bank_pb2.StopPaymentAnswer,
                self._registry(),
                expected_signer=institution,
                replay=self._replay,
            )
            result = _check_answer(req, answer, attempt=info.attempt)
        except (UnknownSigner, KeyNotValid, StaleEnvelope, ReplayedEnvelope) as err:
            bound.error("stop-payment answer not verifiable", reason=str(err), will_retry=healable)
            await self._record(refusal_entry(answer_envelope, direction=Direction.IN, reason=str(err), **where))
            message = f"answer from {institution} not verifiable: {err}"
            if healable:
                raise ApplicationError(message, type=ERR_ANSWER_UNVERIFIED) from None
            raise _final(message, ERR_ANSWER_REJECTED, info.attempt) from None
        except (TrustError, ValueError) as err:
            bound.error("stop-payment answer refused", reason=str(err))
            await self._record(refusal_entry(answer_envelope, direction=Direction.IN, reason=str(err), **where))
            raise _final(f"answer from {institution} refused: {err}", ERR_ANSWER_REJECTED, info.attempt) from None
        await self._record(envelope_entry(answer_envelope, direction=Direction.IN, **where))
        bound.info(
            "stop-payment answered",
            outcome=result.outcome.value,
            held_minor=result.held.minor_units,
            currency=result.held.currency,
            hold_id=result.hold_id,
        )
        return result


def _final(message: str, error_type: str, attempt: int) -> ApplicationError:
    """A failure no retry can mend; carries how many calls it took, for operators."""
    return ApplicationError(message, {"attempts": attempt}, type=error_type, non_retryable=True)


def _check_answer(req: StopPaymentInput, answer: bank_pb2.StopPaymentAnswer, *, attempt: int) -> StopPaymentResult:
    """Refuse an answer that does not fit the order (ValueError says how)."""
    if answer.idempotency_key != req.idempotency_key:
        raise ValueError(f"answer is for request {answer.idempotency_key!r}, not {req.idempotency_key!r}")
    if account_of(answer.account) != req.account:
        raise ValueError(f"answer is about account {account_of(answer.account)}, not {req.account}")
    if answer.case_id != req.case_id:
        raise ValueError(f"answer is for case {answer.case_id!r}, not {req.case_id!r}")
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
