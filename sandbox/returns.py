"""Return of funds (资金返还) orders, as a bank's back office checks them: pure functions, no I/O.
The ledger (sandbox.ledger.Ledger.apply_return) decides on its books.

What a field check here refuses is a malformed order (INVALID_ARGUMENT naming the field); what
only the books can tell (the freeze is unknown, has lapsed or was released, less is frozen than
ordered) is a signed REFUSED receipt. The one book check that is a field error is the currency:
an order in another currency than the freeze's is malformed (amount.currency).
"""

from __future__ import annotations

from datetime import datetime

from sandbox.stops import fingerprint
from sandbox.wire import check_money, require, to_datetime
from stopline.v1 import bank_pb2


def check_return(order: bank_pb2.ReturnOrder) -> datetime:
    """Check a ReturnOrder's own fields (not idempotency_key, case_id, account: the servicer's
    common checks) and return its due_by. Raises InvalidField for the first bad field:

    - freeze_id: non-empty (the freeze the money comes out of);
    - to_account: set, institution and account_number non-empty, not the frozen account itself;
    - amount: positive, an ISO 4217-shaped currency (the freeze's: checked on the books);
    - due_by: set and a real time;
    - decided_by, officer, document_ref: non-empty (a return rests on a recorded decision).
    """
    require("freeze_id", bool(order.freeze_id), "must name the freeze the money comes out of")
    require("to_account", order.HasField("to_account"), "missing: the victim's account to pay")
    to = order.to_account
    require("to_account.institution", bool(to.institution), "must not be empty")
    require("to_account.account_number", bool(to.account_number), "must not be empty")
    require(
        "to_account",
        (to.institution, to.account_number) != (order.account.institution, order.account.account_number),
        "is the frozen account itself: a return pays the victim's account",
    )
    check_money(order.amount, "amount")
    require("due_by", order.HasField("due_by"), "missing: a return has a deadline (3 working days)")
    due_by = to_datetime(order.due_by, "due_by")
    require("decided_by", bool(order.decided_by), "must not be empty")
    require("officer", bool(order.officer), "must not be empty")
    require("document_ref", bool(order.document_ref), "must not be empty: a return rests on a decision")
    return due_by


def return_fingerprint(order: bank_pb2.ReturnOrder) -> str:
    """Everything a ReturnOrder asks for, tagged with its type so that the key of another kind of
    order reused for a return is a different order (see sandbox.freezes.freeze_fingerprint)."""
    return fingerprint(
        [
            order.DESCRIPTOR.full_name,
            order.case_id,
            order.account.institution,
            order.account.account_number,
            order.freeze_id,
            order.to_account.institution,
            order.to_account.account_number,
            order.amount.minor_units,
            order.amount.currency,
            [order.due_by.seconds, order.due_by.nanos],
            order.decided_by,
            order.officer,
            order.document_ref,
        ]
    )
