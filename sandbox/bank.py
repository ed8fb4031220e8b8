"""BankService as one sandbox institution runs it: verify the hub's envelope, validate the order,
apply it to the ledger at most once, answer with a signed envelope.

The four orders (StopPayment, Freeze, Release, ReturnFunds) take the same steps (`_order`): the
configured faults, the hub's signature and TLS peer, the field checks, one ledger transaction in a
thread (idempotency key, decision and stored answer together), then the stored answer bytes sealed
with the institution's key. A repeated key with the same order gets the byte-identical answer; the same
key with another order (of any kind) is FAILED_PRECONDITION.

Freeze (快速冻结) turns a stop-payment's hold still in force into a freeze on an officer's
approval, or renews a freeze; Release releases a hold or freeze now. Their rules are on
sandbox.ledger.Ledger.apply_freeze / apply_release; the field checks are sandbox.freezes.
ReturnFunds (资金返还) pays frozen money back to a victim (Ledger.apply_return; field checks in
sandbox.returns).

A bank whose back office answers later (the faults freeze_result_after_seconds and
return_receipt_after_seconds) acknowledges now and calls the hub back with its signed result
through `call_hub_back`, which the running institution sets (sandbox.server).

Protocol problems are gRPC errors (the status names what was wrong); business refusals are signed
answers. The servicer imports only the contract and the trust code, as a real bank's would.

A validly signed request can still carry nonsense (an out-of-range time, a negative amount): every
field check raises InvalidField, which each RPC answers with INVALID_ARGUMENT naming the field,
before anything is applied. Every Timestamp and Duration is converted through sandbox.wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import grpc
import structlog
from google.protobuf.message import Message

from sandbox.faults import Faults
from sandbox.freezes import check_freeze, check_release
from sandbox.ledger import IdempotencyConflict, Ledger, OrderResult
from sandbox.returns import check_return
from sandbox.signed import SignedServicer
from sandbox.wire import InvalidField, check_duration, check_money, require, to_datetime
from stopline.v1 import bank_pb2, bank_pb2_grpc, common_pb2, envelope_pb2
from trust.envelope import seal, seal_bytes
from trust.keys import SigningKey
from trust.registry import Registry

# A stop lasts 48 h: anything past a year is a malformed order (and would overflow the expiry time
# for absurd values). Freezes have their own bound (sandbox.freezes.MAX_FREEZE_DURATION).
MAX_HOLD_DURATION = timedelta(days=366)

log = structlog.get_logger("sandbox")

_CHANNELS = {
    "transfer": bank_pb2.TRANSFER_CHANNEL_TRANSFER,
    "cash": bank_pb2.TRANSFER_CHANNEL_CASH,
    "abroad": bank_pb2.TRANSFER_CHANNEL_ABROAD,
}


class BankServicer(SignedServicer, bank_pb2_grpc.BankServiceServicer):
    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: Callable[[], Registry],
        ledger: Ledger,
        faults: Faults,
        on_request: Callable[[], None] = lambda: None,
    ):
        super().__init__(institution_id, signing_key, registry, faults, on_request)
        # Set by the running institution: call_hub_back(rpc, envelope) sends a signed result to the
        # hub's callback RPC ("ReportFreezeResult", "ReportReturnResult"), retrying while the hub
        # is unreachable. What became of it (sandbox.server.CallbackOutcome) is logged there and
        # not needed here: a back office's answer is also stored, so a repeated order gets it.
        self.call_hub_back: Callable[[str, envelope_pb2.Envelope], Awaitable[object]] | None = None
        self._callbacks: set[asyncio.Task] = set()
        self._ledger = ledger

    # --- RPCs ----------------------------------------------------------------------------

    async def StopPayment(
        self, request: bank_pb2.StopPaymentRequest, context
    ) -> bank_pb2.StopPaymentResponse:
        envelope = await self._order(
            request, context, bank_pb2.StopPaymentOrder, "stop_payment", self._validate_order,
            self._ledger.apply_stop, _stop_summary,
        )  # fmt: skip
        return bank_pb2.StopPaymentResponse(envelope=envelope)

    async def Freeze(self, request: bank_pb2.FreezeRequest, context) -> bank_pb2.FreezeResponse:
        """Fast freeze: a first freeze of a hold still in force, or a renewal (rules on
        Ledger.apply_freeze). Malformed orders, and a hold or freeze of another account or case,
        or an amount above what is held, are INVALID_ARGUMENT naming the field; a hold that lapsed
        or was released (a freeze that lapsed or was released) is a signed REFUSED answer."""
        envelope = await self._order(
            request, context, bank_pb2.FreezeOrder, "freeze", self._validate_freeze,
            self._ledger.apply_freeze, _freeze_summary,
        )  # fmt: skip
        later = self.faults.freeze_result_after_seconds
        if later is None or self.call_hub_back is None:
            return bank_pb2.FreezeResponse(envelope=envelope)
        # A back office: the freeze is applied (and its answer stored, so a repeated order gets
        # the result itself), but the hub hears "acknowledged" now and the result by callback.
        final = bank_pb2.FreezeAnswer.FromString(envelope.payload)
        acknowledged = bank_pb2.FreezeAnswer(
            idempotency_key=final.idempotency_key, case_id=final.case_id, account=final.account,
            outcome=bank_pb2.FREEZE_OUTCOME_ACCEPTED, detail="acknowledged: the result follows by callback",
        )  # fmt: skip
        self._call_back_later(later, "ReportFreezeResult", envelope)
        return bank_pb2.FreezeResponse(envelope=seal(acknowledged, self._answer_key()))

    def _call_back_later(self, delay: float, rpc: str, envelope: envelope_pb2.Envelope) -> None:
        """In `delay` seconds, send the answer `envelope` carries (its stored payload, in a fresh
        envelope signed then) to the hub's callback `rpc`. The task runs on its own: the answer
        to the order does not wait for it."""

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.call_hub_back(rpc, seal_bytes(envelope.payload, envelope.payload_type, self._answer_key()))

        task = asyncio.create_task(later(), name=f"{self.institution_id}-{rpc}")
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def Release(self, request: bank_pb2.ReleaseRequest, context) -> bank_pb2.ReleaseResponse:
        """Release one hold or freeze now (rules on Ledger.apply_release): exactly one of hold_id
        and freeze_id, reason and decided_by set, else INVALID_ARGUMENT naming the field. Releasing
        what already lapsed or was released answers released = 0 with a detail."""
        envelope = await self._order(
            request, context, bank_pb2.ReleaseOrder, "release", self._validate_release,
            self._ledger.apply_release, _release_summary,
        )  # fmt: skip
        return bank_pb2.ReleaseResponse(envelope=envelope)

    async def ReturnFunds(
        self, request: bank_pb2.ReturnFundsRequest, context
    ) -> bank_pb2.ReturnFundsResponse:
        """Pay frozen money back to a victim (rules on Ledger.apply_return): RETURNED with the
        return id and time, or a signed REFUSED receipt (unknown freeze, lapsed, released, more
        than it keeps). Malformed orders, and an amount in another currency than the freeze's,
        are INVALID_ARGUMENT naming the field. Under return_receipt_after_seconds the hub hears
        ACCEPTED now and gets the receipt by HubService.ReportReturnResult later."""
        envelope = await self._order(
            request, context, bank_pb2.ReturnOrder, "return_funds", self._validate_return,
            self._ledger.apply_return, _return_summary,
        )  # fmt: skip
        later = self.faults.return_receipt_after_seconds
        if later is None or self.call_hub_back is None:
            return bank_pb2.ReturnFundsResponse(envelope=envelope)
        # A back office, as for freezes: applied and stored now, acknowledged now, receipt later.
        final = bank_pb2.ReturnReceipt.FromString(envelope.payload)
        accepted = bank_pb2.ReturnReceipt(
            idempotency_key=final.idempotency_key, case_id=final.case_id, account=final.account,
            to_account=final.to_account, outcome=bank_pb2.RETURN_OUTCOME_ACCEPTED,
            returned=common_pb2.Money(minor_units=0, currency=final.returned.currency),
            detail="accepted: the receipt follows by callback",
        )  # fmt: skip
        self._call_back_later(later, "ReportReturnResult", envelope)
        return bank_pb2.ReturnFundsResponse(envelope=seal(accepted, self._answer_key()))

    async def QueryAccount(
        self, request: bank_pb2.QueryAccountRequest, context
    ) -> bank_pb2.QueryAccountResponse:
        await self._before(context)
        query = await self._open(request, bank_pb2.AccountQuery, context)
        bound = log.bind(
            institution=self.institution_id, case_id=query.case_id, idempotency_key=query.idempotency_key
        )
        try:
            since = self._validate_query(query)
        except InvalidField as e:
            await self._invalid(context, bound, "query_account", e)
        # Holds whose 48 hours ran out no longer hold anything: the balance shows it.
        await asyncio.to_thread(self._ledger.lapse_expired, datetime.now(UTC))
        account, transfers = await asyncio.to_thread(
            self._ledger.account_report, query.account.account_number, since
        )
        report = bank_pb2.AccountReport(
            idempotency_key=query.idempotency_key, account=query.account, found=account is not None
        )
        if account is not None:
            report.holder_name = account.holder_name
            report.balance.CopyFrom(
                common_pb2.Money(minor_units=account.balance_minor, currency=account.currency)
            )
            report.held.CopyFrom(common_pb2.Money(minor_units=account.held_minor, currency=account.currency))
            for t in transfers:
                out = report.transfers.add(
                    amount=common_pb2.Money(minor_units=t.amount_minor, currency=t.currency),
                    channel=_CHANNELS.get(t.channel, bank_pb2.TRANSFER_CHANNEL_UNSPECIFIED),
                )
                if t.to_account:
                    out.to_account.CopyFrom(
                        common_pb2.AccountRef(institution=t.to_institution, account_number=t.to_account)
                    )
                out.transferred_at.FromDatetime(t.transferred_at)
                if t.abroad is not None:
                    out.abroad.CopyFrom(common_pb2.ForeignDestination(
                        bic=t.abroad.bic, account=t.abroad.account, payment_reference=t.abroad.reference,
                    ))  # fmt: skip
                    if t.abroad.amount_minor is not None:
                        # As sent abroad, in its own currency (the transfer's amount is the debit).
                        out.abroad.amount.CopyFrom(
                            common_pb2.Money(minor_units=t.abroad.amount_minor, currency=t.abroad.currency)
                        )
        bound.info("query_account.answered", found=report.found, transfers=len(report.transfers))
        return bank_pb2.QueryAccountResponse(envelope=seal(report, self._answer_key()))

    # --- steps shared by the RPCs --------------------------------------------------------

    async def _order(
        self,
        request,
        context,
        message_type: type[Message],
        rpc: str,
        validate: Callable[[Message], None],
        apply: Callable[[Message, datetime], OrderResult],
        summary: Callable[[Message], dict],
    ) -> envelope_pb2.Envelope:
        """Every order RPC: play the faults, open the hub's envelope, validate, apply on the ledger
        at most once, log, play the lost-answer fault, and seal the stored answer bytes."""
        await self._before(context)
        order = await self._open(request, message_type, context)
        bound = log.bind(
            institution=self.institution_id, case_id=order.case_id, idempotency_key=order.idempotency_key
        )
        try:
            validate(order)
            # The ledger checks what only its books can tell (and converts durations through
            # sandbox.wire too): an InvalidField raised there rolls its transaction back, so
            # nothing is applied either way.
            result = await asyncio.to_thread(apply, order, datetime.now(UTC))
        except InvalidField as e:
            await self._invalid(context, bound, rpc, e)
        except IdempotencyConflict as e:
            bound.warning(f"{rpc}.idempotency_conflict")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        bound.info(f"{rpc}.answered", **summary(result.answer), replayed=result.replayed)
        await self._lose_answer_after_apply(context, bound)
        return self._seal_stored(result.answer_payload, type(result.answer))

    def _validate_order(self, order: bank_pb2.StopPaymentOrder) -> None:
        """Raise InvalidField for the first field that is missing, malformed or out of range."""
        self._validate_common(order)
        check_money(order.amount, "amount")
        if order.HasField("transfer_time"):
            to_datetime(order.transfer_time, "transfer_time")  # unused here, but must be a real time
        if order.HasField("hold_duration"):
            check_duration(order.hold_duration, "hold_duration", MAX_HOLD_DURATION)

    def _validate_freeze(self, order: bank_pb2.FreezeOrder) -> None:
        """As _validate_order, then sandbox.freezes.check_freeze (amount, hold_id or
        renews_freeze_id, freeze_duration, approval)."""
        self._validate_common(order)
        check_freeze(order)

    def _validate_release(self, order: bank_pb2.ReleaseOrder) -> None:
        """As _validate_order, then sandbox.freezes.check_release (hold_id or freeze_id, reason,
        decided_by)."""
        self._validate_common(order)
        check_release(order)

    def _validate_return(self, order: bank_pb2.ReturnOrder) -> None:
        """As _validate_order, then sandbox.returns.check_return (freeze_id, to_account, amount,
        due_by, decided_by, officer, document_ref)."""
        self._validate_common(order)
        check_return(order)

    def _validate_query(self, query: bank_pb2.AccountQuery) -> datetime | None:
        """Raise InvalidField as _validate_order does; return transfers_since (None when unset)."""
        self._validate_common(query)
        return (
            to_datetime(query.transfers_since, "transfers_since")
            if query.HasField("transfers_since")
            else None
        )

    def _validate_common(self, message) -> None:
        """idempotency_key, case_id and account: every order and query carries them."""
        require("idempotency_key", bool(message.idempotency_key), "must not be empty")
        require("case_id", bool(message.case_id), "must not be empty")
        account = message.account
        require(
            "account.institution",
            account.institution == self.institution_id,
            f"order is for institution {account.institution!r}, this is {self.institution_id!r}",
        )
        require("account.account_number", bool(account.account_number), "must not be empty")


# --- what each order's answer is logged with (no customer data) ---------------------------------


def _stop_summary(answer: bank_pb2.StopPaymentAnswer) -> dict:
    return {
        "outcome": bank_pb2.StopPaymentOutcome.Name(answer.outcome),
        "refusal_reason": bank_pb2.RefusalReason.Name(answer.refusal_reason),
        "held_minor": answer.held.minor_units,
        "requested_minor": answer.requested.minor_units,
        "currency": answer.requested.currency,
        "hold_id": answer.hold_id,
    }


def _freeze_summary(answer: bank_pb2.FreezeAnswer) -> dict:
    return {
        "outcome": bank_pb2.FreezeOutcome.Name(answer.outcome),
        "frozen_minor": answer.frozen.minor_units,
        "currency": answer.frozen.currency,
        "freeze_id": answer.freeze_id,
    }


def _release_summary(answer: bank_pb2.ReleaseAnswer) -> dict:
    return {"released_minor": answer.released.minor_units, "currency": answer.released.currency}


def _return_summary(receipt: bank_pb2.ReturnReceipt) -> dict:
    return {
        "outcome": bank_pb2.ReturnOutcome.Name(receipt.outcome),
        "returned_minor": receipt.returned.minor_units,
        "currency": receipt.returned.currency,
        "return_id": receipt.return_id,
    }
