"""Turning a verified request's values into Python values, refusing what is out of range.

A signature proves who sent a message, not that its values make sense. Every Timestamp and
Duration in a request goes through `to_datetime` / `to_timedelta`, which check the ranges the
protobuf well-known types define and raise InvalidField naming the field; the servicer answers
that with INVALID_ARGUMENT before anything is applied. (protobuf's own ToDatetime raises a bare
ValueError, and ToTimedelta checks nothing: nanos out of range are silently folded in, and huge
seconds overflow.)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import phonenumbers
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from stopline.v1 import common_pb2

# google/protobuf/timestamp.proto: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
# google/protobuf/duration.proto: about +-10,000 years.
DURATION_MAX_SECONDS = 315_576_000_000
NANOS_MAX = 999_999_999
_CURRENCY = re.compile(r"[A-Z]{3}")


class InvalidField(ValueError):
    """A request field that is malformed or out of range. Maps to INVALID_ARGUMENT."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def require(field: str, ok: bool, problem: str) -> None:
    if not ok:
        raise InvalidField(field, problem)


def to_datetime(ts: Timestamp, field: str) -> datetime:
    """The UTC datetime a Timestamp names (to the microsecond), or InvalidField."""
    require(
        field,
        TIMESTAMP_MIN_SECONDS <= ts.seconds <= TIMESTAMP_MAX_SECONDS,
        f"out of range: seconds {ts.seconds} must be in [{TIMESTAMP_MIN_SECONDS}, {TIMESTAMP_MAX_SECONDS}]"
        " (0001-01-01 to 9999-12-31 UTC)",
    )
    require(field, 0 <= ts.nanos <= NANOS_MAX, f"out of range: nanos {ts.nanos} must be in [0, {NANOS_MAX}]")
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as e:  # not expected after the checks above; still a clear status
        raise InvalidField(field, f"out of range: {e}") from None


def to_timedelta(d: Duration, field: str) -> timedelta:
    """The timedelta a Duration names (to the microsecond), or InvalidField."""
    require(
        field,
        -DURATION_MAX_SECONDS <= d.seconds <= DURATION_MAX_SECONDS,
        f"out of range: seconds {d.seconds} must be in [-{DURATION_MAX_SECONDS}, {DURATION_MAX_SECONDS}]",
    )
    require(
        field,
        -NANOS_MAX <= d.nanos <= NANOS_MAX,
        f"out of range: nanos {d.nanos} must be in [-{NANOS_MAX}, {NANOS_MAX}]",
    )
    require(
        field,
        not (d.seconds > 0 > d.nanos or d.seconds < 0 < d.nanos),
        f"out of range: seconds {d.seconds} and nanos {d.nanos} must not have opposite signs",
    )
    try:
        return d.ToTimedelta()
    except (ValueError, OverflowError) as e:
        raise InvalidField(field, f"out of range: {e}") from None


def check_money(money: common_pb2.Money, field: str) -> None:
    """An ordered amount: positive minor units in an ISO 4217-shaped currency, or InvalidField
    naming `<field>.minor_units` / `<field>.currency`."""
    require(
        f"{field}.minor_units",
        money.minor_units > 0,
        f"must be positive, got {money.minor_units}",
    )
    require(
        f"{field}.currency",
        bool(_CURRENCY.fullmatch(money.currency)),
        f"must be an ISO 4217 code (3 upper-case letters), got {money.currency!r}",
    )


def check_duration(d: Duration, field: str, longest: timedelta) -> timedelta:
    """A positive Duration of at most `longest`, as a timedelta; or InvalidField."""
    duration = to_timedelta(d, field)
    require(
        field,
        timedelta(0) < duration <= longest,
        f"must be positive and at most {longest.days} days, got {duration}",
    )
    return duration


# At most this many numbers in one order (the hub's own limit per report, see gateway.validation).
MAX_PHONE_NUMBERS = 100


def check_phone(number: str, field: str) -> str:
    """An E.164 number ("+8613812345678") that libphonenumber knows as valid, written exactly in
    E.164 form (no spaces, no national prefix); or InvalidField naming `field`."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as e:
        raise InvalidField(field, f"{number!r} is not an E.164 number ({e})") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    require(field, e164 == number, f"{number!r} is not in E.164 form (expected {e164!r})")
    require(field, phonenumbers.is_valid_number(parsed), f"{number!r} is not a valid phone number")
    return number


def check_phone_numbers(numbers, field: str) -> list[str]:
    """1 to MAX_PHONE_NUMBERS E.164 numbers, none repeated; InvalidField names `field` or the
    offending `field[i]`."""
    numbers = list(numbers)
    require(field, bool(numbers), "must name at least one number")
    require(field, len(numbers) <= MAX_PHONE_NUMBERS, f"{len(numbers)} numbers, at most {MAX_PHONE_NUMBERS}")
    seen: dict[str, int] = {}
    for i, number in enumerate(numbers):
        check_phone(number, f"{field}[{i}]")
        require(f"{field}[{i}]", number not in seen, f"{number} repeats {field}[{seen.get(number)}]")
        seen[number] = i
    return numbers
