"""Scenario files: which sandbox institutions run, with which accounts, past transfers and faults,
which police units exist, and the demo case to report.

A scenario is validated as a whole on load; an error names the field ("institutions[1]
(qilu-bank).accounts[0].currency: ..."), so a typo never starts half a sandbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

import iso4217

from sandbox.faults import Faults, FaultsError
from sandbox.ledger import CHANNELS, Account, Transfer
from trust.registry import ACCOUNT_KEEPERS, InstitutionKind

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_RESERVED_IDS = frozenset({"hub"})


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the file and field."""


@dataclass(frozen=True)
class ScenarioInstitution:
    id: str
    name: str
    kind: InstitutionKind  # a bank or payment company: something that keeps accounts
    port: int | None  # fixed port for `stopline up`; None lets the OS pick
    accounts: tuple[Account, ...]
    transfers_out: tuple[Transfer, ...] = ()
    faults: Faults = field(default_factory=Faults)  # template: each running institution gets a copy


@dataclass(frozen=True)
class PoliceUnit:
    id: str
    name: str


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    institutions: tuple[ScenarioInstitution, ...]
    police_units: tuple[PoliceUnit, ...]
    # The demo case in the `stopline report FILE` format, as loaded (its shape checked here).
    case: dict | None = None

    def institution(self, institution_id: str) -> ScenarioInstitution:
        for inst in self.institutions:
            if inst.id == institution_id:
                return inst
        raise KeyError(institution_id)


# --- small checkers; each raises ScenarioError naming `where` ----------------------------------


def _obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: must be an object")
    return value


def _list(value, where: str, *, non_empty: bool = False) -> list:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: must be a list")
    if non_empty and not value:
        raise ScenarioError(f"{where}: must not be empty")
    return value


def _str(data: dict, key: str, where: str, *, required: bool = True, default: str = "") -> str:
    value = data.get(key)
    if value is None and not required:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where}.{key}: must be a non-empty string")
    return value


def _int(data: dict, key: str, where: str, *, minimum: int) -> int:
    value = data.get(key)
    # bool is an int in Python, and a float like 1.5 is not money: both refused.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where}.{key}: must be an integer, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{where}.{key}: must be >= {minimum}, got {value}")
    return value


def _currency(data: dict, key: str, where: str) -> str:
    code = _str(data, key, where)
    if code != code.upper():
        raise ScenarioError(f"{where}.{key}: {code!r} must be upper case")
    try:
        iso4217.Currency(code)
    except ValueError:
        raise ScenarioError(f"{where}.{key}: {code!r} is not an ISO 4217 currency code") from None
    return code


def _time(data: dict, key: str, where: str) -> datetime:
    text = _str(data, key, where)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ScenarioError(f"{where}.{key}: {text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ScenarioError(f"{where}.{key}: {text!r} has no UTC offset (write e.g. 2026-11-25T00:41:00Z)")
    return at


def _account_ref(value, where: str) -> tuple[str, str]:
    ref = _obj(value, where)
    return _str(ref, "institution", where), _str(ref, "account_number", where)


# --- the parts ---------------------------------------------------------------------------------


def _institution(entry, where: str) -> ScenarioInstitution:
    entry = _obj(entry, where)
    inst_id = _str(entry, "id", where)
    where = f"{where} ({inst_id})"
    try:
        kind = InstitutionKind(entry.get("kind"))
    except ValueError:
        kind = None
    if kind not in ACCOUNT_KEEPERS:
        allowed = ", ".join(sorted(k.value for k in ACCOUNT_KEEPERS))
        raise ScenarioError(f"{where}.kind: {entry.get('kind')!r} is not one of {allowed}")
    port = entry.get("port")
    if port is not None:
        port = _int(entry, "port", where, minimum=1)
        if port > 65535:
            raise ScenarioError(f"{where}.port: {port} is not a TCP port")

    accounts: list[Account] = []
    for i, a in enumerate(_list(entry.get("accounts", []), f"{where}.accounts")):
        awhere = f"{where}.accounts[{i}]"
        a = _obj(a, awhere)
        number = _str(a, "number", awhere)
        if any(x.number == number for x in accounts):
            raise ScenarioError(f"{awhere}.number: {number!r} is listed twice")
        status = a.get("status", "open")
        if status not in ("open", "closed"):
            raise ScenarioError(f"{awhere}.status: {status!r} is not 'open' or 'closed'")
        accounts.append(
            Account(
                number=number,
                holder_name=_str(a, "holder", awhere),
                currency=_currency(a, "currency", awhere),
                balance_minor=_int(a, "balance_minor", awhere, minimum=0),
                status=status,
            )
        )

    transfers: list[Transfer] = []
    numbers = {a.number for a in accounts}
    for i, t in enumerate(_list(entry.get("transfers_out", []), f"{where}.transfers_out")):
        twhere = f"{where}.transfers_out[{i}]"
        t = _obj(t, twhere)
        account = _str(t, "account", twhere)
        if account not in numbers:
            raise ScenarioError(f"{twhere}.account: {account!r} is not one of this institution's accounts")
        channel = t.get("channel", "transfer")
        if channel not in CHANNELS:
            raise ScenarioError(f"{twhere}.channel: {channel!r} is not one of {', '.join(CHANNELS)}")
        to_institution, to_account = ("", "")
        if channel != "cash":  # cash has no receiving account: the money is gone
            to_institution, to_account = _account_ref(t.get("to"), f"{twhere}.to")
        transfers.append(
            Transfer(
                account=account,
                to_institution=to_institution,
                to_account=to_account,
                amount_minor=_int(t, "amount_minor", twhere, minimum=1),
                currency=_currency(t, "currency", twhere),
                transferred_at=_time(t, "transferred_at", twhere),
                channel=channel,
            )
        )

    try:
        faults = Faults.from_dict(entry.get("faults", {}), f"{where}.faults")
    except FaultsError as e:
        raise ScenarioError(str(e)) from None
    return ScenarioInstitution(
        id=inst_id,
        name=_str(entry, "name", where, required=False, default=inst_id),
        kind=kind,
        port=port,
        accounts=tuple(accounts),
        transfers_out=tuple(transfers),
        faults=faults,
    )


def _check_case(case, institutions: dict[str, ScenarioInstitution], units: set[str]) -> dict:
    """Check the demo case's shape and references; the hub validates it again when reported."""
    where = "case"
    case = _obj(case, where)
    _str(case, "case_id", where)
    unit = _str(case, "reporting_unit", where)
    if unit not in units:
        raise ScenarioError(f"{where}.reporting_unit: {unit!r} is not one of the scenario's police_units")
    _time(case, "reported_at", where)
    _str(case, "summary", where, required=False)
    currencies = set()
    for i, t in enumerate(_list(case.get("transfers"), f"{where}.transfers", non_empty=True)):
        twhere = f"{where}.transfers[{i}]"
        t = _obj(t, twhere)
        _account_ref(t.get("from"), f"{twhere}.from")
        to_inst, _ = _account_ref(t.get("to"), f"{twhere}.to")
        if to_inst not in institutions:
            raise ScenarioError(
                f"{twhere}.to.institution: {to_inst!r} is not one of the scenario's institutions"
            )
        if "to_holder_name" in t:
            _str(t, "to_holder_name", twhere)
        amount = _obj(t.get("amount"), f"{twhere}.amount")
        _int(amount, "minor_units", f"{twhere}.amount", minimum=1)
        currencies.add(_currency(amount, "currency", f"{twhere}.amount"))
        _time(t, "transferred_at", twhere)
    if len(currencies) > 1:
        raise ScenarioError(f"{where}.transfers: one currency per case, got {', '.join(sorted(currencies))}")
    for i, phone in enumerate(_list(case.get("suspect_phone_numbers", []), f"{where}.suspect_phone_numbers")):
        if not isinstance(phone, str) or not _E164.fullmatch(phone):
            raise ScenarioError(f"{where}.suspect_phone_numbers[{i}]: {phone!r} is not an E.164 number")
    return case


def parse_scenario(data) -> Scenario:
    data = _obj(data, "scenario")
    name = _str(data, "name", "scenario")
    institutions: dict[str, ScenarioInstitution] = {}
    ports: dict[int, str] = {}
    for i, entry in enumerate(_list(data.get("institutions"), "institutions", non_empty=True)):
        inst = _institution(entry, f"institutions[{i}]")
        if inst.id in institutions or inst.id in _RESERVED_IDS:
            raise ScenarioError(f"institutions[{i}].id: {inst.id!r} is listed twice or reserved")
        if inst.port is not None and inst.port in ports:
            raise ScenarioError(
                f"institutions[{i}] ({inst.id}).port: {inst.port} is also {ports[inst.port]}'s"
            )
        if inst.port is not None:
            ports[inst.port] = inst.id
        institutions[inst.id] = inst
    units: list[PoliceUnit] = []
    for i, u in enumerate(_list(data.get("police_units", []), "police_units")):
        uwhere = f"police_units[{i}]"
        u = _obj(u, uwhere)
        unit = PoliceUnit(_str(u, "id", uwhere), _str(u, "name", uwhere, required=False))
        if unit.id in institutions or unit.id in _RESERVED_IDS or any(x.id == unit.id for x in units):
            raise ScenarioError(f"{uwhere}.id: {unit.id!r} is listed twice or reserved")
        units.append(unit if unit.name else PoliceUnit(unit.id, unit.id))
    case = None
    if data.get("case") is not None:
        case = _check_case(data["case"], institutions, {u.id for u in units})
    return Scenario(
        name=name,
        description=_str(data, "description", "scenario", required=False),
        institutions=tuple(institutions.values()),
        police_units=tuple(units),
        case=case,
    )


def scenario_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a scenario shipped in sandbox/scenarios."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = resources.files("sandbox") / "scenarios" / f"{name_or_path}.json"
    if shipped.is_file():
        return Path(str(shipped))
    available = sorted(
        p.name.removesuffix(".json")
        for p in (resources.files("sandbox") / "scenarios").iterdir()
        if p.name.endswith(".json")
    )
    raise ScenarioError(f"no scenario file {name_or_path!r} (shipped scenarios: {', '.join(available)})")


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (or a shipped scenario by name, e.g. "boxing")."""
    path = scenario_path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: not valid JSON ({e})") from None
    try:
        return parse_scenario(data)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None
