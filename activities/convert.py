"""Between the hub's dataclasses and the wire messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import iso4217
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from stopline.domain import Account, Amount, ForeignDestination, FreezeResult, ReturnOutcome, ReturnResult
from stopline.v1 import bank_pb2, common_pb2


def money_pb(amount: Amount) -> common_pb2.Money:
    return common_pb2.Money(minor_units=amount.minor_units, currency=amount.currency)


def amount_of(money: common_pb2.Money) -> Amount:
    return Amount(money.minor_units, money.currency)


# ISO 9362: 4 letters (bank), 2 letters (country), 2 letters or digits (location), and an
# optional branch of 3.
BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def is_currency(code: str) -> bool:
    """An ISO 4217 code of money with a minor unit (not XAU, XXX, XTS...): what an amount in
    minor units can be in. A made-up code would fail wherever the amount is shown."""
    if not CURRENCY.match(code):
        return False
    try:
        return iso4217.Currency(code).exponent is not None
    except ValueError:
        return False


def foreign_destination_of(msg: common_pb2.ForeignDestination, field: str) -> ForeignDestination:
    """A foreign destination as reported, checked enough that a recall can quote it
    (ValueError names the field)."""
    if not BIC.match(msg.bic):
        raise ValueError(f"{field}.bic: {msg.bic[:20]!r} is not a BIC (8 or 11 characters, e.g. DEUTDEFFXXX)")
    if not msg.account.strip() or len(msg.account) > 64:
        raise ValueError(f"{field}.account: 1-64 characters required")
    if not msg.payment_reference.strip() or len(msg.payment_reference) > 64:
        raise ValueError(f"{field}.payment_reference: 1-64 characters required (e.g. the UETR)")
    amount = None
    if msg.HasField("amount"):
        if msg.amount.minor_units <= 0 or not is_currency(msg.amount.currency):
            raise ValueError(f"{field}.amount: a positive amount with an ISO 4217 currency code is required")
        amount = amount_of(msg.amount)
    return ForeignDestination(msg.bic, msg.account.strip(), msg.payment_reference.strip(), amount)


def account_pb(account: Account) -> common_pb2.AccountRef:
    return common_pb2.AccountRef(institution=account.institution, account_number=account.number)


def account_of(ref: common_pb2.AccountRef) -> Account:
    return Account(ref.institution, ref.account_number)


def timestamp_pb(when: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def time_of(ts: Timestamp) -> datetime | None:
    """None for an unset timestamp, an aware UTC datetime otherwise."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def duration_pb(delta: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(delta)
    return d


def freeze_result_of(answer: bank_pb2.FreezeAnswer, ordered: Amount | None) -> FreezeResult:
    """A final FreezeAnswer (now, or later by callback) as the workflow sees it; ValueError for
    one that does not fit an order of `ordered` (None: the caller does not know the order; the
    hold's workflow checks the amount against it before accepting the result)."""
    frozen = amount_of(answer.frozen)
    if answer.outcome == bank_pb2.FREEZE_OUTCOME_REFUSED:
        if frozen.minor_units != 0:
            raise ValueError("answer says refused but freezes money")
        currency = ordered.currency if ordered is not None else frozen.currency
        return FreezeResult(frozen=False, amount=Amount.zero(currency), detail=answer.detail)
    if answer.outcome != bank_pb2.FREEZE_OUTCOME_FROZEN:
        raise ValueError(f"answer has no valid outcome ({answer.outcome})")
    if frozen.minor_units <= 0 or not frozen.currency:
        raise ValueError(f"answer says frozen but freezes {frozen}")
    if ordered is not None and (frozen.currency != ordered.currency or frozen.minor_units > ordered.minor_units):
        raise ValueError(f"answer freezes {frozen}, the order was for {ordered}")
    expires = time_of(answer.freeze_expires_at)
    if not answer.freeze_id or expires is None:
        raise ValueError("answer says frozen but names no freeze id or expiry")
    return FreezeResult(frozen=True, amount=frozen, freeze_id=answer.freeze_id, frozen_at=time_of(answer.frozen_at),
                        expires_at=expires, detail=answer.detail)  # fmt: skip


def return_result_of(receipt: bank_pb2.ReturnReceipt, order_amount: Amount | None) -> ReturnResult:
    """A final ReturnReceipt (the answer to a ReturnOrder, or later by callback) as the workflow
    sees it; ValueError for one that does not fit an order of `order_amount` (None: the caller does
    not know the order, as the gateway taking a callback; the hold's workflow knows it).

    RETURNED must pay exactly the amount ordered (a positive amount with a currency when the
    order is not known), with a return id and the time it was paid. REFUSED pays nothing (an
    unset `returned` counts as nothing). ACCEPTED is no receipt: it only says one will follow."""
    returned = amount_of(receipt.returned)
    if receipt.outcome == bank_pb2.RETURN_OUTCOME_REFUSED:
        if returned.minor_units != 0:
            raise ValueError(f"receipt says refused but returns {returned}")
        if order_amount is not None and returned.currency not in ("", order_amount.currency):
            raise ValueError(f"receipt returns {returned.currency}, the order was in {order_amount.currency}")
        currency = order_amount.currency if order_amount is not None else returned.currency
        return ReturnResult(outcome=ReturnOutcome.REFUSED, returned=Amount.zero(currency), detail=receipt.detail)
    if receipt.outcome == bank_pb2.RETURN_OUTCOME_ACCEPTED:
        raise ValueError("receipt says accepted, which is not a final outcome")
    if receipt.outcome != bank_pb2.RETURN_OUTCOME_RETURNED:
        raise ValueError(f"receipt has no valid outcome ({receipt.outcome})")
    if order_amount is not None and returned != order_amount:
        raise ValueError(f"receipt returns {returned}, the order was for exactly {order_amount}")
    if returned.minor_units <= 0 or not returned.currency:
        raise ValueError(f"receipt says returned but returns {returned}")
    returned_at = time_of(receipt.returned_at)
    if not receipt.return_id or returned_at is None:
        raise ValueError("receipt says returned but names no return id or time")
    return ReturnResult(outcome=ReturnOutcome.RETURNED, returned=returned, return_id=receipt.return_id,
                        returned_at=returned_at, detail=receipt.detail)  # fmt: skip
