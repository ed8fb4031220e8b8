"""A case as a JSON file (what `stopline report FILE` sends), turned into a CaseReport.

    {"case_id": "BX-2026-0001", "reporting_unit": "police-boxing",
     "reported_at": "2026-11-25T01:10:00Z", "summary": "...",
     "transfers": [{"from": {"institution": "boxing-rcb", "account_number": "..."},
                    "to": {"institution": "qilu-bank", "account_number": "..."},
                    "to_holder_name": "...",
                    "amount": {"minor_units": 80000000, "currency": "CNY"},
                    "transferred_at": "2026-11-25T00:41:00Z"}],
     "suspect_phone_numbers": ["+8617012345678"]}

Only JSON's shape is checked here (types, required keys, integers for amounts, UTC times); what
the values mean (known institution, valid currency, E.164) is the gateway's to judge, so every
client gets the same answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from stopline.v1 import common_pb2, hub_pb2


class CaseFileError(ValueError):
    pass


def _get(obj: dict, key: str, kind: type | tuple, where: str, *, required: bool = True):
    if not isinstance(obj, dict):
        raise CaseFileError(f"{where}: must be an object")
    if key not in obj:
        if required:
            raise CaseFileError(f"{where}.{key}: required" if where else f"{key}: required")
        return None
    value = obj[key]
    # bool is an int in Python; an amount of `true` is not a number of fen.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise CaseFileError(f"{where}.{key}: must be {_kind_name(kind)}, got {value!r}".lstrip("."))
    if not isinstance(value, kind):
        raise CaseFileError(f"{where}.{key}: must be {_kind_name(kind)}, got {value!r}".lstrip("."))
    return value


def _kind_name(kind) -> str:
    names = {str: "a string", int: "a whole number", list: "a list", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _timestamp(text: str, where: str) -> Timestamp:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CaseFileError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise CaseFileError(f"{where}: {text!r} has no UTC offset (write e.g. 2026-11-25T01:10:00Z)")
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def _account(obj, where: str) -> common_pb2.AccountRef:
    return common_pb2.AccountRef(
        institution=_get(obj, "institution", str, where),
        account_number=_get(obj, "account_number", str, where),
    )


def report_from_dict(data: dict) -> hub_pb2.CaseReport:
    if not isinstance(data, dict):
        raise CaseFileError("the case file must hold one JSON object")
    report = hub_pb2.CaseReport(
        case_id=_get(data, "case_id", str, ""),
        reporting_unit=_get(data, "reporting_unit", str, ""),
        summary=_get(data, "summary", str, "", required=False) or "",
    )
    report.reported_at.CopyFrom(_timestamp(_get(data, "reported_at", str, ""), "reported_at"))
    for i, t in enumerate(_get(data, "transfers", list, "")):
        where = f"transfers[{i}]"
        amount = _get(t, "amount", dict, where)
        transfer = report.transfers.add(
            from_account=_account(_get(t, "from", dict, where), f"{where}.from"),
            to_account_holder_name=_get(t, "to_holder_name", str, where, required=False) or "",
            amount=common_pb2.Money(
                minor_units=_get(amount, "minor_units", int, f"{where}.amount"),
                currency=_get(amount, "currency", str, f"{where}.amount"),
            ),
        )
        abroad = _get(t, "abroad", dict, where, required=False)
        if abroad is not None:  # sent abroad by the victim's own bank: no receiving account here
            if t.get("to") is not None:
                raise CaseFileError(f"{where}.to: a transfer abroad names its destination in 'abroad', not 'to'")
            transfer.abroad.CopyFrom(common_pb2.ForeignDestination(
                bic=_get(abroad, "bic", str, f"{where}.abroad"), account=_get(abroad, "account", str, f"{where}.abroad"),
                payment_reference=_get(abroad, "payment_reference", str, f"{where}.abroad"),
            ))  # fmt: skip
        else:
            transfer.to_account.CopyFrom(_account(_get(t, "to", dict, where), f"{where}.to"))
        transfer.transferred_at.CopyFrom(
            _timestamp(_get(t, "transferred_at", str, where), f"{where}.transferred_at")
        )
    for i, number in enumerate(_get(data, "suspect_phone_numbers", list, "", required=False) or []):
        if not isinstance(number, str):
            raise CaseFileError(f"suspect_phone_numbers[{i}]: must be a string, got {number!r}")
        report.suspect_phone_numbers.append(number)
    return report


def load_case_file(path: Path) -> hub_pb2.CaseReport:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise CaseFileError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise CaseFileError(f"{path}: not valid JSON ({e})") from None
    return report_from_dict(data)


def rebase_report(report: hub_pb2.CaseReport, now: datetime, case_id: str) -> hub_pb2.CaseReport:
    """A copy of `report` as if reported `now` under `case_id`: every transfer keeps its distance
    to the report time. Used to replay a scenario's case (the demo, tests) as a fresh case."""
    rebased = hub_pb2.CaseReport()
    rebased.CopyFrom(report)
    shift = now - report.reported_at.ToDatetime(tzinfo=UTC)
    rebased.case_id = case_id
    rebased.reported_at.FromDatetime(now)
    for t in rebased.transfers:
        t.transferred_at.FromDatetime(t.transferred_at.ToDatetime(tzinfo=UTC) + shift)
    return rebased
