"""Between the hub's dataclasses and the wire messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from stopline.domain import Account, Amount
from stopline.v1 import common_pb2


def money_pb(amount: Amount) -> common_pb2.Money:
    return common_pb2.Money(minor_units=amount.minor_units, currency=amount.currency)


def amount_of(money: common_pb2.Money) -> Amount:
    return Amount(money.minor_units, money.currency)


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
