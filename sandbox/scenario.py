"""Scenario files: which sandbox institutions run, with which accounts, past transfers, mule moves
and faults, which police units exist, and the demo case to report. The format is described in
sandbox/scenarios/README.md.

A scenario is validated as a whole on load; an error names the field ("institutions[1]
(qilu-bank).accounts[0].currency: ..."), so a typo never starts half a sandbox.

Times. A scenario's times (`transferred_at` of the history, the case's `reported_at`) are written
as absolute UTC times, but they mean "this long before the report". The demo and the tests replay
the case as if reported now (stopline.casefile.rebase_report), so a sandbox seeds its history
shifted by the same amount: `seed_shift(reported_at, anchor)`.

Moves (`moves`, per institution) are what the mules do after the report: send money on after a
delay unless it is held. `after_seconds` counts from the start of the race (Sandbox.start);
sandbox.mules runs them.

Besides banks and payment companies, a scenario runs telecom carriers (`number_prefixes`: the
ranges they hold; `subscribers`: the numbers they serve; `ported_out`: numbers of their ranges now
served by another carrier), regulators (kinds `telecom_regulator`, `bank_regulator`), which keep
no accounts, and cross-border recall channels (kinds `correspondent_channel`,
`central_bank_channel`, `police_channel`), whose `recalls` script what the foreign side answers
about a payment (sandbox.crossborder plays the script).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import iso4217

from sandbox.faults import Faults, FaultsError
from sandbox.ledger import CHANNELS, Abroad, Account, Transfer
from sandbox.wire import InvalidField, check_phone
from trust.registry import (
    ACCOUNT_KEEPERS,
    NUMBER_PREFIX_PATTERN,
    RECALL_CHANNELS,
    REGULATORS,
    InstitutionKind,
)

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_RESERVED_IDS = frozenset({"hub"})
# The kinds a scenario runs: account keepers (BankService), carriers (TelecomService), regulators
# (RegulatorService) and recall channels (CrossBorderService).
SANDBOX_KINDS = ACCOUNT_KEEPERS | {InstitutionKind.CARRIER} | REGULATORS | frozenset(RECALL_CHANNELS)
# ISO 9362: 4 letters (bank), 2 letters (country), 2 letters or digits (location), optional branch.
# Public: the recall channels check the BICs of the hub's orders with it too.
BIC_PATTERN = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")
# What a recall channel can learn (sandbox.crossborder sends it as RecallUpdate.status), and which
# of it ends the channel's part: nothing follows a refusal or a channel giving up.
RECALL_STATUSES = ("located", "held", "returned", "refused", "no_answer")
FINAL_RECALL_STATUSES = frozenset({"refused", "no_answer"})


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the file and field."""


@dataclass(frozen=True)
class Move:
    """Money a mule sends on `after_seconds` after the race starts, unless it is held: only
    min(amount, balance - held) leaves, and nothing when nothing is available."""

    id: str  # "<institution>/moves[<index>]": the key that makes a move run once per ledger file
    institution: str
    account: str
    amount_minor: int
    currency: str
    after_seconds: float
    channel: str  # one of CHANNELS
    to_institution: str = ""  # for channel "transfer": a sandbox or off-platform institution
    to_account: str = ""
    abroad: Abroad | None = None  # for channel "abroad"

    def transfer(self, at: datetime) -> Transfer:
        """The transfer this move asks the ledger for (the ledger sends what is available)."""
        return Transfer(self.account, self.to_institution, self.to_account, self.amount_minor, self.currency, at,
                        self.channel, self.abroad)  # fmt: skip


@dataclass(frozen=True)
class ForeignPlace:
    """A foreign bank, an account there and the payment's reference: where a channel located or
    holds the money (a RecallUpdate's location)."""

    bic: str
    account: str
    payment_reference: str


@dataclass(frozen=True)
class ScriptedUpdate:
    """One thing the foreign side tells a channel, `after_seconds` after the channel acknowledged
    the recall. Which fields a status needs is checked on load: located a location (and, when the
    channel knows it, the amount that moved on there); held a location and the amount held;
    returned the amount and the return payment's reference; refused and no_answer a reason."""

    after_seconds: float
    status: str  # one of RECALL_STATUSES
    location: ForeignPlace | None = None
    amount_minor: int | None = None
    currency: str | None = None
    return_reference: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RecallScript:
    """What a channel's foreign side answers about one payment, found by the payment reference
    the recall order's destination quotes (e.g. a UETR). Played once per recovery, from its first
    order; reminders and follow-up orders do not restart it."""

    payment_reference: str
    updates: tuple[ScriptedUpdate, ...]


@dataclass(frozen=True)
class ScenarioInstitution:
    id: str
    name: str
    kind: InstitutionKind  # one of SANDBOX_KINDS
    port: int | None  # fixed port for `stopline up`; None lets the OS pick
    accounts: tuple[Account, ...]  # banks and payment companies only, as are transfers and moves
    transfers_out: tuple[Transfer, ...] = ()
    faults: Faults = field(default_factory=Faults)  # template: each running institution gets a copy
    moves: tuple[Move, ...] = ()
    # Carriers only: the E.164 prefixes of the ranges it holds (for the registry), the numbers it
    # serves now, and numbers of its ranges ported to another carrier (number -> carrier id).
    number_prefixes: tuple[str, ...] = ()
    subscribers: tuple[str, ...] = ()
    ported_out: dict[str, str] = field(default_factory=dict)
    # Recall channels only: the foreign side's scripted answers, one script per payment reference.
    recalls: tuple[RecallScript, ...] = ()

    @property
    def keeps_accounts(self) -> bool:
        return self.kind in ACCOUNT_KEEPERS


@dataclass(frozen=True)
class PoliceUnit:
    id: str
    name: str


@dataclass(frozen=True)
class OffPlatformInstitution:
    """An institution that exists but is not on the platform: money sent there is out of reach
    (no sandbox server, no ledger), so a transfer to it is only a debit."""

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
    off_platform: tuple[OffPlatformInstitution, ...] = ()
    # Bookkeeping the scenario's author expects, checked against sandbox.money.scenario_money_map:
    # {"disputed_minor": N, "ends_minor": {"balance": .., "cash": .., "abroad": .., "off_platform": ..}}
    expected: dict | None = None

    def institution(self, institution_id: str) -> ScenarioInstitution:
        for inst in self.institutions:
            if inst.id == institution_id:
                return inst
        raise KeyError(institution_id)

    @property
    def reported_at(self) -> datetime | None:
        """When the scenario's case was reported (None without a case)."""
        return datetime.fromisoformat(self.case["reported_at"]) if self.case else None

    def seed_shift(self, anchor: datetime | None) -> timedelta:
        """How far to move the seeded history so the case reads as reported at `anchor`."""
        return seed_shift(self.reported_at, anchor)

    @property
    def moves(self) -> tuple[Move, ...]:
        """Every move, in the order the race runs them: by after_seconds, then as written."""
        return tuple(
            sorted((m for inst in self.institutions for m in inst.moves), key=lambda m: m.after_seconds)
        )


def seed_shift(reported_at: datetime | None, anchor: datetime | None) -> timedelta:
    """anchor - reported_at: what to add to every time in a scenario so its case reads as reported
    at `anchor` (the same shift stopline.casefile.rebase_report gives the case). Zero when there is
    no anchor (the file's times as written) or no case to anchor to."""
    if anchor is None or reported_at is None:
        return timedelta(0)
    if anchor.tzinfo is None or reported_at.tzinfo is None:
        raise ValueError("seed_shift: both times must carry a time zone (UTC)")
    return anchor - reported_at


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


def _seconds(data: dict, key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN != NaN
        raise ScenarioError(f"{where}.{key}: must be a number of seconds, got {value!r}")
    if value < 0 or value == float("inf"):
        raise ScenarioError(f"{where}.{key}: must be >= 0 and finite, got {value!r}")
    return float(value)


def _bic(data: dict, where: str) -> str:
    bic = _str(data, "bic", where)
    if not BIC_PATTERN.fullmatch(bic):
        raise ScenarioError(
            f"{where}.bic: {bic!r} is not a BIC (8 or 11 letters and digits, e.g. FICTKHPPXXX)"
        )
    return bic


def _amount(data: dict, where: str, *, required: bool) -> tuple[int | None, str | None]:
    """`amount_minor` and `currency` together (an amount in its own currency), or neither when
    not required."""
    if not required and data.get("amount_minor") is None and data.get("currency") is None:
        return None, None
    for key in ("amount_minor", "currency"):
        if data.get(key) is None:
            other = "currency" if key == "amount_minor" else "amount_minor"
            raise ScenarioError(
                f"{where}.{key}: required" + ("" if required else f" with {other} (an amount names its currency)")
            )
    return _int(data, "amount_minor", where, minimum=1), _currency(data, "currency", where)


def _abroad(value, where: str) -> Abroad:
    """A transfer abroad's details: bic, account, reference, and optionally the amount as sent
    abroad in its own currency (amount_minor and currency, e.g. EUR for a CNY debit)."""
    details = _obj(value, where)
    bic = _bic(details, where)
    amount_minor, currency = _amount(details, where, required=False)
    return Abroad(
        bic=bic, account=_str(details, "account", where), reference=_str(details, "reference", where),
        amount_minor=amount_minor, currency=currency,
    )  # fmt: skip


def _place(value, where: str) -> ForeignPlace:
    """A foreign bank, account and payment reference (a located payment, a case's transfer
    abroad): the names ForeignDestination gives them."""
    place = _obj(value, where)
    bic = _bic(place, where)
    return ForeignPlace(bic, _str(place, "account", where), _str(place, "payment_reference", where))


@dataclass(frozen=True)
class _Destination:
    """A receiving account named by a transfer or move, checked once every institution is known."""

    where: str  # "...transfers_out[0].to" or "...moves[2].to"
    institution: str
    account: str
    currency: str
    source: tuple[str, str]  # (institution, account) the money leaves


def _onward(t: dict, where: str, channel: str, *, history: bool) -> tuple[str, str, Abroad | None]:
    """Where money leaving by `channel` goes: (to_institution, to_account, abroad details).

    transfer: `to` (an account) and no `abroad`. cash: neither (the money is gone). abroad: the
    `abroad` details and, for moves, no `to`; history written before abroad details existed may
    name a `to` account instead of (or besides) them."""
    if channel not in CHANNELS:
        raise ScenarioError(f"{where}.channel: {channel!r} is not one of {', '.join(CHANNELS)}")
    has_to, has_abroad = t.get("to") is not None, t.get("abroad") is not None
    if channel == "transfer":
        if has_abroad:
            raise ScenarioError(
                f"{where}.abroad: only a transfer abroad (channel 'abroad') has abroad details"
            )
        return (*_account_ref(t.get("to"), f"{where}.to"), None)
    if channel == "cash":
        for key, present in (("to", has_to), ("abroad", has_abroad)):
            if present:
                raise ScenarioError(f"{where}.{key}: a cash withdrawal has no receiving account")
        return "", "", None
    if has_to and not history:
        raise ScenarioError(f"{where}.to: a transfer abroad names its destination in 'abroad', not 'to'")
    if not has_abroad and not (history and has_to):
        raise ScenarioError(f"{where}.abroad: a transfer abroad needs its details (bic, account, reference)")
    to_institution, to_account = _account_ref(t["to"], f"{where}.to") if has_to else ("", "")
    return to_institution, to_account, _abroad(t["abroad"], f"{where}.abroad") if has_abroad else None


# --- the parts ---------------------------------------------------------------------------------


def _institution(entry, where: str) -> tuple[ScenarioInstitution, list[_Destination]]:
    entry = _obj(entry, where)
    inst_id = _str(entry, "id", where)
    where = f"{where} ({inst_id})"
    try:
        kind = InstitutionKind(entry.get("kind"))
    except ValueError:
        kind = None
    if kind not in SANDBOX_KINDS:
        allowed = ", ".join(sorted(k.value for k in SANDBOX_KINDS))
        raise ScenarioError(f"{where}.kind: {entry.get('kind')!r} is not one of {allowed}")
    # What each kind may carry: a carrier's numbers are not a bank's, nor a bank's accounts a regulator's.
    own = {"accounts", "transfers_out", "moves"} if kind in ACCOUNT_KEEPERS else set()
    own |= {"number_prefixes", "subscribers", "ported_out"} if kind is InstitutionKind.CARRIER else set()
    own |= {"recalls"} if kind in RECALL_CHANNELS else set()
    for key in ("accounts", "transfers_out", "moves", "number_prefixes", "subscribers", "ported_out", "recalls"):
        if key in entry and key not in own:
            raise ScenarioError(f"{where}.{key}: a {kind.value} has no {key}")
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

    currency_of = {a.number: a.currency for a in accounts}
    destinations: list[_Destination] = []

    def source(t: dict, twhere: str) -> tuple[str, str, int]:
        """The sending account, the currency (the account's own) and the amount."""
        account = _str(t, "account", twhere)
        if account not in currency_of:
            raise ScenarioError(f"{twhere}.account: {account!r} is not one of this institution's accounts")
        amount = _int(t, "amount_minor", twhere, minimum=1)
        currency = _currency(t, "currency", twhere)
        if currency != currency_of[account]:
            raise ScenarioError(
                f"{twhere}.currency: {currency} but account {account} is kept in {currency_of[account]}"
            )
        return account, currency, amount

    transfers: list[Transfer] = []
    for i, t in enumerate(_list(entry.get("transfers_out", []), f"{where}.transfers_out")):
        twhere = f"{where}.transfers_out[{i}]"
        t = _obj(t, twhere)
        account, currency, amount = source(t, twhere)
        channel = t.get("channel", "transfer")
        to_institution, to_account, abroad = _onward(t, twhere, channel, history=True)
        if channel == "transfer":
            destinations.append(
                _Destination(f"{twhere}.to", to_institution, to_account, currency, (inst_id, account))
            )
        transfers.append(
            Transfer(
                account=account,
                to_institution=to_institution,
                to_account=to_account,
                amount_minor=amount,
                currency=currency,
                transferred_at=_time(t, "transferred_at", twhere),
                channel=channel,
                abroad=abroad,
            )
        )

    moves: list[Move] = []
    for i, m in enumerate(_list(entry.get("moves", []), f"{where}.moves")):
        mwhere = f"{where}.moves[{i}]"
        m = _obj(m, mwhere)
        account, currency, amount = source(m, mwhere)
        channel = m.get("channel", "transfer")
        to_institution, to_account, abroad = _onward(m, mwhere, channel, history=False)
        if channel == "transfer":
            destinations.append(
                _Destination(f"{mwhere}.to", to_institution, to_account, currency, (inst_id, account))
            )
        moves.append(
            Move(
                id=f"{inst_id}/moves[{i}]",
                institution=inst_id,
                account=account,
                amount_minor=amount,
                currency=currency,
                after_seconds=_seconds(m, "after_seconds", mwhere),
                channel=channel,
                to_institution=to_institution,
                to_account=to_account,
                abroad=abroad,
            )
        )

    try:
        faults = Faults.from_dict(entry.get("faults", {}), f"{where}.faults")
    except FaultsError as e:
        raise ScenarioError(str(e)) from None
    prefixes, subscribers, ported_out = _numbers(entry, where) if kind is InstitutionKind.CARRIER else ((), (), {})
    recalls = _recalls(entry.get("recalls", []), f"{where}.recalls") if kind in RECALL_CHANNELS else ()
    institution = ScenarioInstitution(
        id=inst_id,
        name=_str(entry, "name", where, required=False, default=inst_id),
        kind=kind,
        port=port,
        accounts=tuple(accounts),
        transfers_out=tuple(transfers),
        faults=faults,
        moves=tuple(moves),
        number_prefixes=prefixes,
        subscribers=subscribers,
        ported_out=ported_out,
        recalls=recalls,
    )
    return institution, destinations


def _recalls(value, where: str) -> tuple[RecallScript, ...]:
    """A channel's scripts: one per payment reference, each a list of updates in the order the
    foreign side tells them (after_seconds never decreasing, nothing after a final status)."""
    scripts: list[RecallScript] = []
    for i, entry in enumerate(_list(value, where)):
        swhere = f"{where}[{i}]"
        entry = _obj(entry, swhere)
        unknown = sorted(set(entry) - {"payment_reference", "updates"})
        if unknown:
            raise ScenarioError(f"{swhere}.{unknown[0]}: unknown key (known: payment_reference, updates)")
        reference = _str(entry, "payment_reference", swhere)
        if any(s.payment_reference == reference for s in scripts):
            raise ScenarioError(f"{swhere}.payment_reference: {reference!r} has a script already")
        updates: list[ScriptedUpdate] = []
        for j, u in enumerate(_list(entry.get("updates"), f"{swhere}.updates", non_empty=True)):
            uwhere = f"{swhere}.updates[{j}]"
            update = _scripted_update(u, uwhere)
            if updates and update.after_seconds < updates[-1].after_seconds:
                raise ScenarioError(
                    f"{uwhere}.after_seconds: {update.after_seconds:g} is before the update above it"
                    f" ({updates[-1].after_seconds:g}): a channel reports in the order it learns"
                )
            if updates and updates[-1].status in FINAL_RECALL_STATUSES:
                raise ScenarioError(
                    f"{uwhere}.status: nothing follows {updates[-1].status!r}, which ends the channel's part"
                )
            updates.append(update)
        scripts.append(RecallScript(reference, tuple(updates)))
    return tuple(scripts)


# Per status: the fields it needs, and the fields it may carry besides.
_UPDATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "located": (frozenset({"location"}), frozenset({"amount_minor", "currency"})),
    "held": (frozenset({"location", "amount_minor", "currency"}), frozenset()),
    "returned": (frozenset({"amount_minor", "currency", "return_reference"}), frozenset({"location"})),
    "refused": (frozenset({"reason"}), frozenset()),
    "no_answer": (frozenset({"reason"}), frozenset()),
}


def _scripted_update(value, where: str) -> ScriptedUpdate:
    u = _obj(value, where)
    status = u.get("status")
    if status not in RECALL_STATUSES:
        raise ScenarioError(f"{where}.status: {status!r} is not one of {', '.join(RECALL_STATUSES)}")
    after = _seconds(u, "after_seconds", where)
    needed, optional = _UPDATE_FIELDS[status]
    for key in sorted(set(u) - needed - optional - {"after_seconds", "status"}):
        known = {"location", "amount_minor", "currency", "return_reference", "reason"}
        problem = f"a {status!r} update has no {key}" if key in known else "unknown key"
        raise ScenarioError(f"{where}.{key}: {problem}")
    for key in sorted(needed):
        if u.get(key) is None:
            raise ScenarioError(f"{where}.{key}: required for a {status!r} update")
    location = _place(u["location"], f"{where}.location") if u.get("location") is not None else None
    amount_minor, currency = _amount(u, where, required="amount_minor" in needed)
    return ScriptedUpdate(
        after_seconds=after,
        status=status,
        location=location,
        amount_minor=amount_minor,
        currency=currency,
        return_reference=_str(u, "return_reference", where) if "return_reference" in needed else "",
        reason=_str(u, "reason", where) if "reason" in needed else "",
    )


def _phone(value, where: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: {value!r} is not an E.164 number")
    try:
        return check_phone(value, where)
    except InvalidField as e:
        raise ScenarioError(str(e)) from None


def _numbers(entry: dict, where: str) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """A carrier's number_prefixes, subscribers and ported_out, each checked on its own."""
    prefixes: list[str] = []
    for i, prefix in enumerate(_list(entry.get("number_prefixes", []), f"{where}.number_prefixes")):
        pwhere = f"{where}.number_prefixes[{i}]"
        if not isinstance(prefix, str) or not NUMBER_PREFIX_PATTERN.match(prefix):
            raise ScenarioError(f"{pwhere}: {prefix!r} is not \"+\" and 1-15 digits (an E.164 number prefix)")
        if prefix in prefixes:
            raise ScenarioError(f"{pwhere}: {prefix!r} is listed twice")
        prefixes.append(prefix)
    subscribers: list[str] = []
    for i, number in enumerate(_list(entry.get("subscribers", []), f"{where}.subscribers")):
        number = _phone(number, f"{where}.subscribers[{i}]")
        if number in subscribers:
            raise ScenarioError(f"{where}.subscribers[{i}]: {number} is listed twice")
        subscribers.append(number)
    ported_out: dict[str, str] = {}
    for number, carrier in _obj(entry.get("ported_out", {}), f"{where}.ported_out").items():
        pwhere = f"{where}.ported_out[{number!r}]"
        _phone(number, pwhere)
        if not isinstance(carrier, str) or not carrier:
            raise ScenarioError(f"{pwhere}: must name the carrier that serves the number now")
        if number in subscribers:
            raise ScenarioError(f"{pwhere}: {number} is also one of this carrier's subscribers")
        if not any(number.startswith(p) for p in prefixes):
            raise ScenarioError(f"{pwhere}: {number} is in none of this carrier's number_prefixes (only a range holder ports out)")
        ported_out[number] = carrier
    return tuple(prefixes), tuple(subscribers), ported_out


def _check_numbers(institutions: dict[str, ScenarioInstitution], off_platform: set[str]) -> None:
    """Across carriers: one range holder per prefix, one carrier serving each number, and a number
    ported to a sandbox carrier is one of its subscribers (to another: a carrier off the platform)."""
    carriers = [i for i in institutions.values() if i.kind is InstitutionKind.CARRIER]
    holders: dict[str, str] = {}
    served: dict[str, str] = {}
    for carrier in carriers:
        where = f"institution {carrier.id}"
        for prefix in carrier.number_prefixes:
            if prefix in holders:
                raise ScenarioError(f"{where}.number_prefixes: {prefix!r} is also held by {holders[prefix]}")
            holders[prefix] = carrier.id
        for number in carrier.subscribers:
            if number in served:
                raise ScenarioError(f"{where}.subscribers: {number} is also served by {served[number]}")
            served[number] = carrier.id
    for carrier in carriers:
        for number, to in carrier.ported_out.items():
            where = f"institution {carrier.id}.ported_out[{number!r}]"
            if to in off_platform:
                continue
            target = institutions.get(to)
            if target is None or target.kind is not InstitutionKind.CARRIER or to == carrier.id:
                raise ScenarioError(f"{where}: {to!r} is not another carrier of the scenario nor off the platform")
            if number not in target.subscribers:
                raise ScenarioError(f"{where}: ported to {to}, which does not list it among its subscribers")


def _check_destinations(
    destinations: list[_Destination], institutions: dict[str, ScenarioInstitution], off_platform: set[str]
) -> None:
    """A transfer goes to an account of a sandbox institution, in that account's currency, or to
    an institution declared off-platform (whose accounts the sandbox does not know)."""
    for d in destinations:
        if d.institution in off_platform:
            continue
        if d.institution not in institutions:
            raise ScenarioError(
                f"{d.where}.institution: {d.institution!r} is neither one of the scenario's institutions nor"
                " one of its off_platform_institutions"
            )
        account = next((a for a in institutions[d.institution].accounts if a.number == d.account), None)
        if account is None:
            raise ScenarioError(f"{d.where}.account_number: {d.institution} has no account {d.account!r}")
        if account.currency != d.currency:
            raise ScenarioError(
                f"{d.where}.account_number: {d.institution} keeps {d.account} in {account.currency},"
                f" the transfer is in {d.currency}"
            )
        if (d.institution, d.account) == d.source:
            raise ScenarioError(f"{d.where}: an account cannot send money to itself")


def _check_expected(expected, case: dict | None) -> dict:
    where = "expected"
    expected = _obj(expected, where)
    unknown = sorted(set(expected) - {"disputed_minor", "ends_minor", "note"})
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}: unknown key (known: disputed_minor, ends_minor, note)")
    disputed = _int(expected, "disputed_minor", where, minimum=1)
    ends = _obj(expected.get("ends_minor"), f"{where}.ends_minor")
    kinds = ("balance", "cash", "abroad", "off_platform")
    for key in sorted(set(ends) - set(kinds)):
        raise ScenarioError(f"{where}.ends_minor.{key}: unknown end (known: {', '.join(kinds)})")
    total = sum(_int(ends, k, f"{where}.ends_minor", minimum=0) for k in kinds if k in ends)
    if total != disputed:
        raise ScenarioError(f"{where}.ends_minor: adds up to {total}, not disputed_minor {disputed}")
    if case is not None:
        reported = sum(t["amount"]["minor_units"] for t in case["transfers"])
        if reported != disputed:
            raise ScenarioError(
                f"{where}.disputed_minor: {disputed}, but the case's transfers add up to {reported}"
            )
    return expected


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
        if t.get("abroad") is not None:
            # The victim's own bank sent it abroad (a tampered invoice): no receiving account here.
            if t.get("to") is not None:
                raise ScenarioError(f"{twhere}.to: a transfer abroad names its destination in 'abroad', not 'to'")
            _place(t["abroad"], f"{twhere}.abroad")
        else:
            to_inst, _ = _account_ref(t.get("to"), f"{twhere}.to")
            if to_inst not in institutions or not institutions[to_inst].keeps_accounts:
                raise ScenarioError(
                    f"{twhere}.to.institution: {to_inst!r} is not one of the scenario's banks or payment companies"
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
    destinations: list[_Destination] = []
    ports: dict[int, str] = {}
    for i, entry in enumerate(_list(data.get("institutions"), "institutions", non_empty=True)):
        inst, named = _institution(entry, f"institutions[{i}]")
        destinations += named
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
    off_platform: list[OffPlatformInstitution] = []
    key = "off_platform_institutions"
    for i, o in enumerate(_list(data.get(key, []), key)):
        owhere = f"{key}[{i}]"
        o = _obj(o, owhere)
        other = OffPlatformInstitution(_str(o, "id", owhere), _str(o, "name", owhere, required=False))
        taken = {*institutions, *_RESERVED_IDS, *(u.id for u in units), *(x.id for x in off_platform)}
        if other.id in taken:
            raise ScenarioError(f"{owhere}.id: {other.id!r} is listed twice or reserved")
        off_platform.append(other if other.name else OffPlatformInstitution(other.id, other.id))
    _check_destinations(destinations, institutions, {o.id for o in off_platform})
    _check_numbers(institutions, {o.id for o in off_platform})
    case = None
    if data.get("case") is not None:
        case = _check_case(data["case"], institutions, {u.id for u in units})
    expected = _check_expected(data["expected"], case) if data.get("expected") is not None else None
    return Scenario(
        name=name,
        description=_str(data, "description", "scenario", required=False),
        institutions=tuple(institutions.values()),
        police_units=tuple(units),
        case=case,
        off_platform=tuple(off_platform),
        expected=expected,
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
