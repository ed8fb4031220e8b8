"""Fast freeze (快速冻结) and release orders, as a bank's back office checks them: pure functions,
no I/O. The ledger (sandbox.ledger.Ledger.apply_freeze / apply_release) decides on its books.

What a field check here refuses is a malformed order (INVALID_ARGUMENT naming the field); what
only the books can tell (the hold has lapsed, the freeze was released) is a signed answer.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.stops import fingerprint
from sandbox.wire import check_duration, check_money, require, to_datetime
from stopline.v1 import bank_pb2

# A freeze lasts six months by the rules; anything past a year is a malformed order (and would
# overflow the expiry time for absurd values). The same bound as a stop-payment's hold_duration.
MAX_FREEZE_DURATION = timedelta(days=366)


def check_freeze(order: bank_pb2.FreezeOrder) -> timedelta:
    """Check a FreezeOrder's own fields (not idempotency_key, case_id, account: the servicer's
    common checks) and return its freeze_duration. Raises InvalidField for the first bad field:

    - amount: positive, an ISO 4217-shaped currency;
    - exactly one of hold_id (a first freeze) and renews_freeze_id (a renewal);
    - freeze_duration: set, positive, at most MAX_FREEZE_DURATION;
    - approval: approved_by, officer, document_ref non-empty, approved_at set and a real time.
    """
    check_money(order.amount, "amount")
    require(
        "hold_id",
        bool(order.hold_id) or bool(order.renews_freeze_id),
        "must name the hold to freeze (or renews_freeze_id the freeze to renew)",
    )
    require(
        "renews_freeze_id",
        not (order.hold_id and order.renews_freeze_id),
        "must be empty when hold_id is set (a first freeze renews nothing)",
    )
    require("freeze_duration", order.HasField("freeze_duration"), "missing")
    duration = check_duration(order.freeze_duration, "freeze_duration", MAX_FREEZE_DURATION)
    require("approval", order.HasField("approval"), "missing: a freeze rests on an officer's approval")
    approval = order.approval
    require("approval.approved_by", bool(approval.approved_by), "must not be empty")
    require("approval.officer", bool(approval.officer), "must not be empty")
    require("approval.document_ref", bool(approval.document_ref), "must not be empty")
    require("approval.approved_at", approval.HasField("approved_at"), "missing")
    to_datetime(approval.approved_at, "approval.approved_at")
    return duration


def check_release(order: bank_pb2.ReleaseOrder) -> None:
    """Check a ReleaseOrder's own fields: exactly one of hold_id and freeze_id; reason and
    decided_by non-empty. Raises InvalidField for the first bad field."""
    require(
        "hold_id", bool(order.hold_id) or bool(order.freeze_id), "one of hold_id and freeze_id must be set"
    )
    require(
        "freeze_id",
        not (order.hold_id and order.freeze_id),
        "must be empty when hold_id is set (one order releases one thing)",
    )
    require("reason", bool(order.reason), "must not be empty: a release is recorded with its reason")
    require("decided_by", bool(order.decided_by), "must not be empty")


def freeze_fingerprint(order: bank_pb2.FreezeOrder) -> str:
    """Everything a FreezeOrder asks for, tagged with its type so that the key of a stop-payment
    or a release reused for a freeze is a different order."""
    a = order.approval
    return fingerprint(
        [
            order.DESCRIPTOR.full_name,
            order.case_id,
            order.account.institution,
            order.account.account_number,
            order.amount.minor_units,
            order.amount.currency,
            order.hold_id,
            order.renews_freeze_id,
            [order.freeze_duration.seconds, order.freeze_duration.nanos],
            [a.approved_by, a.officer, a.document_ref, a.approved_at.seconds, a.approved_at.nanos],
        ]
    )


def release_fingerprint(order: bank_pb2.ReleaseOrder) -> str:
    """Everything a ReleaseOrder asks for, tagged with its type (see freeze_fingerprint)."""
    return fingerprint(
        [
            order.DESCRIPTOR.full_name,
            order.case_id,
            order.account.institution,
            order.account.account_number,
            order.hold_id,
            order.freeze_id,
            order.reason,
            order.decided_by,
        ]
    )
