"""The stop-payment decision, as a bank's back office would take it: pure functions, no I/O.

The ledger calls `decide` inside the transaction that writes the hold, so the balance it decides
on is the balance it changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import iso4217

from stopline.v1 import bank_pb2

# The legal limit: one account may be stopped at most twice for one case.
MAX_STOPS_PER_CASE = 2

Outcome = bank_pb2.StopPaymentOutcome
Reason = bank_pb2.RefusalReason


@dataclass(frozen=True)
class AccountState:
    """What the decision needs to know about one account."""

    currency: str
    holder_name: str
    balance_minor: int
    held_minor: int
    status: str  # "open" | "closed"


@dataclass(frozen=True)
class Decision:
    outcome: int  # StopPaymentOutcome
    held_minor: int = 0
    refusal_reason: int = Reason.REFUSAL_REASON_UNSPECIFIED
    detail: str = ""


def format_money(minor_units: int, currency: str) -> str:
    """12345600, "CNY" -> "123,456.00", with the currency's ISO 4217 exponent; never a float."""
    try:
        exponent = iso4217.Currency(currency).exponent or 0
    except ValueError:
        exponent = 2  # not an ISO code: only reached for detail text, so a readable guess will do
    sign = "-" if minor_units < 0 else ""
    whole, frac = divmod(abs(minor_units), 10**exponent)
    return f"{sign}{whole:,}.{frac:0{exponent}d}" if exponent else f"{sign}{whole:,}"


def normalise_name(name: str) -> str:
    """Compare names as people write them: surrounding and repeated whitespace does not count."""
    return " ".join(name.split())


def order_fingerprint(order: bank_pb2.StopPaymentOrder) -> str:
    """What makes two orders "the same order" for idempotency: the content the bank acts on, not
    the envelope (whose signature, time and nonce differ on every retry). JSON of a list, so the
    encoding is unambiguous."""
    return fingerprint(
        [
            order.case_id,
            order.account.institution,
            order.account.account_number,
            order.amount.minor_units,
            order.amount.currency,
            normalise_name(order.account_holder_name),
        ]
    )


def fingerprint(content: list) -> str:
    """SHA-256 of the JSON of `content` (strings, ints, lists): an unambiguous encoding of what an
    order asks for, stored beside its idempotency key."""
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()


def _refuse(reason: int, detail: str) -> Decision:
    return Decision(Outcome.STOP_PAYMENT_OUTCOME_REFUSED, 0, reason, detail)


def decide(
    order: bank_pb2.StopPaymentOrder, account: AccountState | None, stops_for_case: int, institution: str
) -> Decision:
    """Check in the order a bank would: does the account exist and is it open, is it the named
    person's, is it in the order's currency, is the legal limit reached, is there money; then hold
    what the balance allows, never more than ordered. `detail` never carries customer data."""
    if account is None:
        return _refuse(Reason.REFUSAL_REASON_UNKNOWN_ACCOUNT, f"no such account at {institution}")
    if account.status != "open":
        return _refuse(Reason.REFUSAL_REASON_ACCOUNT_CLOSED, "the account is closed")
    if order.account_holder_name and normalise_name(order.account_holder_name) != normalise_name(
        account.holder_name
    ):
        return _refuse(Reason.REFUSAL_REASON_NAME_MISMATCH, "the holder name does not match the account")
    currency = order.amount.currency
    if account.currency != currency:
        return _refuse(
            Reason.REFUSAL_REASON_CURRENCY_MISMATCH,
            f"the account is kept in {account.currency}, the order is in {currency}",
        )
    if stops_for_case >= MAX_STOPS_PER_CASE:
        return _refuse(
            Reason.REFUSAL_REASON_STOP_LIMIT_REACHED,
            f"the account was already stopped {stops_for_case} times for case {order.case_id} "
            f"(the limit is {MAX_STOPS_PER_CASE})",
        )
    available = account.balance_minor - account.held_minor
    if available <= 0:
        return _refuse(Reason.REFUSAL_REASON_NO_FUNDS, "no available balance: nothing could be held")
    requested = order.amount.minor_units
    if available >= requested:
        return Decision(
            Outcome.STOP_PAYMENT_OUTCOME_HELD,
            requested,
            detail=f"held {format_money(requested, currency)} {currency}",
        )
    return Decision(
        Outcome.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD,
        available,
        detail=(
            f"only {format_money(available, currency)} of {format_money(requested, currency)} "
            f"{currency} available"
        ),
    )
