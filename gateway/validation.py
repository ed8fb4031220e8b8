"""Validation of a police unit's CaseReport. Every refusal names the field that is wrong, so the
reporting officer can fix it in one go; nothing is started for a report that fails."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import iso4217
import phonenumbers

from activities.convert import foreign_destination_of
from stopline.domain import Account, Amount, CaseInput, ReportedTransfer
from stopline.v1 import common_pb2, hub_pb2
from trust.registry import Registry

CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ACCOUNT_NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
INSTITUTION_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A report is a human act: 1,000 transfers or 100 numbers is far past any real victim's list,
# and the bounds keep one request from filling a workflow history.
MAX_TRANSFERS = 1000
MAX_PHONE_NUMBERS = 100
MAX_SUMMARY_CHARS = 500
MAX_HOLDER_NAME_CHARS = 200
MAX_REPORT_BYTES = 256 * 1024
INT64_MAX = 2**63 - 1
# Clock skew tolerated between a police unit's clock and ours.
FUTURE_TOLERANCE = timedelta(minutes=5)


class InvalidReport(ValueError):
    def __init__(self, field: str, problem: str):
        self.field = field
        if len(problem) > 300:  # a hostile value quoted whole would make the answer itself too big
            problem = problem[:300] + "... (cut)"
        super().__init__(f"{field[:120]}: {problem}")


def _time(ts, field: str, now: datetime) -> datetime:
    if ts.seconds == 0 and ts.nanos == 0:
        raise InvalidReport(field, "required (UTC time)")
    try:
        when = ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidReport(field, f"seconds={ts.seconds} nanos={ts.nanos} is not a valid time") from None
    if when > now + FUTURE_TOLERANCE:
        raise InvalidReport(field, f"{when.isoformat()} is in the future")
    return when


def _account_shape(ref: common_pb2.AccountRef, field: str) -> Account:
    """Any account, on the platform or not (a victim's bank need not be a partner)."""
    if not INSTITUTION_PATTERN.match(ref.institution):
        raise InvalidReport(f"{field}.institution", f"{ref.institution!r} is not an institution code")
    if not ACCOUNT_NUMBER_PATTERN.match(ref.account_number):
        raise InvalidReport(f"{field}.account_number", f"{ref.account_number!r} is not 1-64 letters, digits or '-'")
    return Account(ref.institution, ref.account_number)


def _account(ref: common_pb2.AccountRef, field: str, registry: Registry) -> Account:
    """An account the hub can ask to stop: kept by a bank or payment company in the registry."""
    if not ref.institution:
        raise InvalidReport(f"{field}.institution", "required")
    inst = registry.get(ref.institution)
    if inst is None:
        raise InvalidReport(f"{field}.institution", f"unknown institution {ref.institution!r}")
    if not inst.keeps_accounts:
        raise InvalidReport(
            f"{field}.institution", f"{ref.institution!r} is a {inst.kind.value}, not a bank or payment company"
        )
    if not ACCOUNT_NUMBER_PATTERN.match(ref.account_number):
        raise InvalidReport(f"{field}.account_number", f"{ref.account_number!r} is not 1-64 letters, digits or '-'")
    return Account(ref.institution, ref.account_number)


def _amount(money: common_pb2.Money, field: str) -> Amount:
    if money.minor_units <= 0:
        raise InvalidReport(f"{field}.minor_units", f"must be a positive whole number of minor units, got {money.minor_units}")
    try:
        currency = iso4217.Currency(money.currency)
    except ValueError:
        raise InvalidReport(f"{field}.currency", f"{money.currency!r} is not an ISO 4217 currency code") from None
    if currency.exponent is None:
        # XAU, XXX, XTS...: codes without a minor unit cannot carry an amount in minor units.
        raise InvalidReport(f"{field}.currency", f"{money.currency!r} has no minor unit; it cannot be an amount of money")
    return Amount(money.minor_units, money.currency)


def _phone(number: str, field: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as e:
        raise InvalidReport(field, f"{number!r} is not an E.164 number ({e})") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 != number:
        raise InvalidReport(field, f"{number!r} is not in E.164 form (expected {e164!r})")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidReport(field, f"{number!r} is not a valid phone number")
    return e164


def validate_report(
    report: hub_pb2.CaseReport, registry: Registry, *, signer: str, now: datetime | None = None
) -> CaseInput:
    now = now or datetime.now(UTC)
    if not CASE_ID_PATTERN.match(report.case_id):
        raise InvalidReport("case_id", f"{report.case_id!r} is not 1-64 characters of A-Z a-z 0-9 . _ -")
    if report.reporting_unit != signer:
        raise InvalidReport(
            "reporting_unit", f"{report.reporting_unit!r} is not the unit that signed the report ({signer!r})"
        )
    reported_at = _time(report.reported_at, "reported_at", now)
    if len(report.summary) > MAX_SUMMARY_CHARS:
        raise InvalidReport("summary", f"{len(report.summary)} characters, at most {MAX_SUMMARY_CHARS}")
    if not report.transfers:
        raise InvalidReport("transfers", "at least one transfer is required")
    if len(report.transfers) > MAX_TRANSFERS:
        raise InvalidReport("transfers", f"{len(report.transfers)} transfers, at most {MAX_TRANSFERS} per report")

    transfers: list[ReportedTransfer] = []
    currency = None
    total = 0
    for i, t in enumerate(report.transfers):
        f = f"transfers[{i}]"
        if not t.HasField("from_account"):
            raise InvalidReport(f"{f}.from_account", "required")
        abroad = None
        if t.HasField("abroad"):
            # Sent abroad by the victim's own institution: recalled, not stopped at home.
            if t.HasField("to_account"):
                raise InvalidReport(f"{f}.to_account", "a transfer abroad names its destination in abroad, not to_account")
            try:
                abroad = foreign_destination_of(t.abroad, f"{f}.abroad")
            except ValueError as e:
                field, _, problem = str(e).partition(": ")
                raise InvalidReport(field, problem) from None
            if abroad.amount is not None:
                raise InvalidReport(f"{f}.abroad.amount", "the transfer's own amount is what was sent: leave this unset")
        elif not t.HasField("to_account"):
            raise InvalidReport(f"{f}.to_account", "required (or abroad, for a transfer sent abroad)")
        if not t.HasField("amount"):
            raise InvalidReport(f"{f}.amount", "required")
        src = _account_shape(t.from_account, f"{f}.from_account")
        dst = _account(t.to_account, f"{f}.to_account", registry) if abroad is None else None
        if src == dst:
            raise InvalidReport(f"{f}.to_account", "is the same account as from_account")
        amount = _amount(t.amount, f"{f}.amount")
        if currency is None:
            currency = amount.currency
        elif amount.currency != currency:
            raise InvalidReport(
                f"{f}.amount.currency",
                f"{amount.currency} differs from {currency} in transfers[0]; one currency per report",
            )
        total += amount.minor_units
        if total > INT64_MAX:
            raise InvalidReport(f"{f}.amount.minor_units", "the report's total overflows a 64-bit amount")
        if len(t.to_account_holder_name) > MAX_HOLDER_NAME_CHARS:
            raise InvalidReport(f"{f}.to_account_holder_name", f"at most {MAX_HOLDER_NAME_CHARS} characters")
        transfers.append(
            ReportedTransfer(
                from_account=src,
                to_account=dst,
                amount=amount,
                transferred_at=_time(t.transferred_at, f"{f}.transferred_at", now),
                to_holder_name=t.to_account_holder_name.strip(),
                abroad=abroad,
            )
        )

    if len(report.suspect_phone_numbers) > MAX_PHONE_NUMBERS:
        raise InvalidReport(
            "suspect_phone_numbers", f"{len(report.suspect_phone_numbers)} numbers, at most {MAX_PHONE_NUMBERS}"
        )
    phones: list[str] = []
    for i, number in enumerate(report.suspect_phone_numbers):
        e164 = _phone(number, f"suspect_phone_numbers[{i}]")
        if e164 not in phones:
            phones.append(e164)
    devices = validate_device_ids(report.device_ids)

    return CaseInput(
        case_id=report.case_id,
        reporting_unit=report.reporting_unit,
        reported_at=reported_at,
        transfers=transfers,
        suspect_phone_numbers=phones,
        summary=report.summary.strip(),
        device_ids=devices,
    )


MAX_DEVICE_IDS = 20
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$")


def validate_device_ids(device_ids) -> list[str]:
    """Device identifiers (an IMEI, an app install id): printable ASCII ids, de-duplicated."""
    if len(device_ids) > MAX_DEVICE_IDS:
        raise InvalidReport("device_ids", f"{len(device_ids)} devices, at most {MAX_DEVICE_IDS}")
    devices: list[str] = []
    for i, device in enumerate(device_ids):
        if not DEVICE_ID_PATTERN.match(device):
            raise InvalidReport(f"device_ids[{i}]", f"{device[:80]!r} is not 1-128 characters of A-Z a-z 0-9 : . _ -")
        if device not in devices:
            devices.append(device)
    return devices


def validate_account_shape(ref: common_pb2.AccountRef, field: str) -> Account:
    """Any account's institution code and number, or InvalidReport naming `field`'s part."""
    return _account_shape(ref, field)


def validate_phone(number: str, field: str) -> str:
    """An E.164 number, or InvalidReport naming `field`."""
    return _phone(number, field)
