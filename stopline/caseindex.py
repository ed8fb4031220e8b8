"""The hub's case index: which cases share an account, a phone number or a device (研判串并).

Cases that share any of these are linked: one chase serves all their victims. The index records,
for each case, the keys it touches ("reported": named in the report; "chased": the chase reached
it) and the group it belongs to: the lead case whose chase it joined (itself when it leads).

- `claim` records a newly reported case. In one IMMEDIATE transaction (so two gateways reporting
  linked cases at the same moment cannot both lead) it looks for an *open* group that any of the
  case's keys already touches and records the case under that group's lead; with none, the case
  leads a new group. If the keys touch several open groups, the case joins the group whose lead
  was opened first (the earliest `at` of its claim; then the earlier recorded): groups are never
  merged here. Claiming a case already recorded returns the lead recorded for it (a repeated
  report), and records any key it adds, as "reported", under that lead.
- `touch` records keys the chase reached for a recorded case, as "chased".
- `close_group` closes a group (its chase is over): it is never joined again; its rows stay and
  `find` still returns them.

Keys are strings made by `account_key`, `phone_key` and `device_key`, e.g.
"account:icbc/6222000000000001", "phone:+8613800138000", "device:860000000000001"; matching is
exact, so callers pass numbers in E.164 and device ids as the gateway validated them.

Storage sits behind the small `CaseIndex` interface; `SqliteCaseIndex` keeps it in one SQLite file
(WAL, synchronous=FULL: a claim acknowledged survives the process being killed right after), safe
for several threads and several processes at once. A PostgreSQL version would implement the same
methods, with SELECT ... FOR UPDATE (or SERIALIZABLE) in place of BEGIN IMMEDIATE.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from stopline.domain import Account

REPORTED = "reported"
CHASED = "chased"

ACCOUNT_PREFIX = "account:"
PHONE_PREFIX = "phone:"
DEVICE_PREFIX = "device:"
PAYMENT_PREFIX = "payment:"
_PREFIXES = (ACCOUNT_PREFIX, PHONE_PREFIX, DEVICE_PREFIX, PAYMENT_PREFIX)
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_PRINTABLE = re.compile(r"^[!-~]+$")  # visible ASCII, no spaces: ids, codes and numbers
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_REFERENCE = re.compile(r"^[ -~]{1,64}$")  # a payment reference may hold spaces ("UETR 7d3f...")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# --- keys --------------------------------------------------------------------------------------


def account_key(account: Account) -> str:
    """'account:<institution>/<number>'."""
    institution, number = account.institution, account.number
    if not institution or not _PRINTABLE.match(institution) or "/" in institution:
        raise ValueError(f"account institution {institution!r} is not a code without spaces or '/'")
    if not number or not _PRINTABLE.match(number):
        raise ValueError(f"account number {number!r} is empty or has spaces or control characters")
    return f"{ACCOUNT_PREFIX}{institution}/{number}"


def phone_key(e164: str) -> str:
    """'phone:+<digits>'; the number must already be in E.164 form (the gateway normalises it)."""
    if not isinstance(e164, str) or not _E164.match(e164):
        raise ValueError(f"phone number {e164!r} is not in E.164 form (+ and up to 15 digits)")
    return f"{PHONE_PREFIX}{e164}"


def device_key(device_id: str) -> str:
    """'device:<id>' for an IMEI, an app install id, ...; at most 128 visible characters."""
    if not isinstance(device_id, str) or not _PRINTABLE.match(device_id) or len(device_id) > 128:
        raise ValueError(f"device id {device_id!r} is not 1-128 visible characters without spaces")
    return f"{DEVICE_PREFIX}{device_id}"


def payment_key(bic: str, payment_reference: str) -> str:
    """'payment:<BIC>/<reference>' for a payment sent abroad (its UETR, say): two reports of the
    same payment are one case's, and one recall."""
    if not _BIC.match(bic):
        raise ValueError(f"{bic!r} is not a BIC")
    if not isinstance(payment_reference, str) or not _REFERENCE.match(payment_reference):
        raise ValueError(f"payment reference {payment_reference!r} is not 1-64 printable characters")
    return f"{PAYMENT_PREFIX}{bic}/{payment_reference}"


# --- the interface -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseLink:
    """One case touching a key: `how` is "reported" or "chased", `since` when it was recorded."""

    case_id: str
    lead_case_id: str
    how: str
    since: datetime


class CaseIndex(Protocol):
    def claim(self, case_id: str, keys: Sequence[str], *, at: datetime) -> str:
        """Record a reported case under the lead of an open group its keys touch (or as a new
        lead); return the lead. Atomic; a repeated claim returns the recorded lead."""

    def touch(self, case_id: str, keys: Sequence[str], *, at: datetime) -> None:
        """Record keys the chase of a recorded case reached ("chased"); repeats change nothing."""

    def find(self, key: str) -> list[CaseLink]:
        """Every case touching `key`: oldest first, "reported" before "chased" for one case."""

    def lead_of(self, case_id: str) -> str | None:
        """The lead recorded for the case (itself when it leads); None if not recorded."""

    def members(self, lead_case_id: str) -> list[str]:
        """The cases of a group: the lead first, then in the order they joined."""

    def close_group(self, lead_case_id: str) -> None:
        """Close a group: never joined again; its rows stay findable. Closing twice is fine;
        an id that leads no group is a ValueError."""

    def is_open(self, lead_case_id: str) -> bool:
        """Whether `lead_case_id` leads a group still open (False for an id that leads none)."""


# --- SQLite ------------------------------------------------------------------------------------


class SqliteCaseIndex:
    """The case index in one SQLite file; see the module docstring. `close()` when done."""

    SCHEMA_VERSION = 1

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the writing connection's
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
        with self._transaction():  # two processes opening a new file at once
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            if version > self.SCHEMA_VERSION:
                raise ValueError(f"{self.path}: case index schema {version} is newer than this code's")
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")
        # Reads get a connection and lock of their own: under WAL a reader never waits for a writer.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)

    @contextmanager
    def _transaction(self):
        """One write transaction: BEGIN IMMEDIATE takes the file's write lock at once, so two
        gateways (processes) claiming linked cases together run one after the other."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()

    # --- writes ---

    def claim(self, case_id: str, keys: Sequence[str], *, at: datetime, alone: bool = False) -> str:
        """(See CaseIndex.claim.) `alone`: a case not yet recorded leads its own group whatever it
        shares (with `reassign`, for a case its lead refused, e.g. a report in another currency)."""
        _check_case_id(case_id)
        keys = _check_keys(keys)
        at_us = _micros(at)
        with self._transaction():  # one writer at a time, across processes
            row = self._conn.execute(
                "SELECT lead_case_id FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
            if row is not None:
                lead = row[0]
            else:
                lead = case_id if alone else self._open_lead_touching(keys)
                if lead is None or lead == case_id:
                    lead = case_id
                    self._conn.execute(
                        "INSERT INTO groups (lead_case_id, opened_us) VALUES (?, ?)", (case_id, at_us)
                    )
                self._conn.execute(
                    "INSERT INTO cases (case_id, lead_case_id, joined_us) VALUES (?, ?, ?)",
                    (case_id, lead, at_us),
                )
            self._insert_links(case_id, keys, REPORTED, at_us)
        return lead

    def reassign(self, case_id: str, keys: Sequence[str], *, at: datetime, alone: bool = False) -> str:
        """A recorded case never joined its lead after all (the lead closed first, or refused it):
        record it under the open group its keys touch, or as its own lead (always with `alone`).
        Its links stay. Returns the new lead."""
        _check_case_id(case_id)
        keys = _check_keys(keys)
        at_us = _micros(at)
        with self._transaction():
            self._require_case(case_id)
            lead = case_id if alone else (self._open_lead_touching(keys, besides=case_id) or case_id)
            self._conn.execute("UPDATE cases SET lead_case_id = ? WHERE case_id = ?", (lead, case_id))
            if lead == case_id:
                self._conn.execute(
                    "INSERT OR IGNORE INTO groups (lead_case_id, opened_us) VALUES (?, ?)", (case_id, at_us)
                )
        return lead

    def touch(self, case_id: str, keys: Sequence[str], *, at: datetime) -> None:
        _check_case_id(case_id)
        keys = _check_keys(keys)
        at_us = _micros(at)
        with self._transaction():
            self._require_case(case_id)
            self._insert_links(case_id, keys, CHASED, at_us)

    def _require_case(self, case_id: str) -> None:
        if self._conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
            raise ValueError(f"case {case_id!r} is not in the case index: claim it first")

    def close_group(self, lead_case_id: str) -> None:
        _check_case_id(lead_case_id)
        with self._transaction():
            found = self._conn.execute(
                "UPDATE groups SET closed = 1 WHERE lead_case_id = ?", (lead_case_id,)
            ).rowcount
            if not found:
                row = self._conn.execute(
                    "SELECT lead_case_id FROM cases WHERE case_id = ?", (lead_case_id,)
                ).fetchone()
                if row is None:
                    raise ValueError(f"case {lead_case_id!r} is not in the case index")
                raise ValueError(f"case {lead_case_id!r} does not lead a group: its lead is {row[0]!r}")

    # --- reads ---

    def find(self, key: str) -> list[CaseLink]:
        _check_keys([key])
        with self._read_lock:
            rows = self._reader.execute(
                """
                SELECT l.case_id, c.lead_case_id, l.how, l.since_us, c.seq
                FROM links l JOIN cases c ON c.case_id = l.case_id
                WHERE l.key = ?
                """,
                (key,),
            ).fetchall()
        first_seen: dict[str, int] = {}
        for case_id, _, _, since_us, _ in rows:
            first_seen[case_id] = min(since_us, first_seen.get(case_id, since_us))
        rows.sort(key=lambda r: (first_seen[r[0]], r[4], r[2] != REPORTED, r[3]))
        return [
            CaseLink(case_id, lead, how, _from_micros(since_us)) for case_id, lead, how, since_us, _ in rows
        ]

    def lead_of(self, case_id: str) -> str | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT lead_case_id FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
        return None if row is None else row[0]

    def members(self, lead_case_id: str) -> list[str]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT case_id FROM cases WHERE lead_case_id = ? ORDER BY seq", (lead_case_id,)
            ).fetchall()
        return [case_id for (case_id,) in rows]

    def is_open(self, lead_case_id: str) -> bool:
        """Whether `lead_case_id` leads a group that is still open (False for unknown ids)."""
        with self._read_lock:
            row = self._reader.execute(
                "SELECT closed FROM groups WHERE lead_case_id = ?", (lead_case_id,)
            ).fetchone()
        return row is not None and not row[0]

    # --- inside a write transaction ---

    def _open_lead_touching(self, keys: list[str], besides: str = "") -> str | None:
        """The oldest open group touching any key, through cases other than `besides`."""
        if not keys:
            return None
        row = self._conn.execute(
            """
            SELECT g.lead_case_id
            FROM links l
            JOIN cases c ON c.case_id = l.case_id
            JOIN groups g ON g.lead_case_id = c.lead_case_id
            WHERE l.key IN (SELECT value FROM json_each(?)) AND g.closed = 0 AND l.case_id != ?
            ORDER BY g.opened_us, g.seq
            LIMIT 1
            """,
            (_json_list(keys), besides),
        ).fetchone()
        return None if row is None else row[0]

    def _insert_links(self, case_id: str, keys: list[str], how: str, at_us: int) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO links (key, case_id, how, since_us) VALUES (?, ?, ?, ?)",
            [(key, case_id, how, at_us) for key in keys],
        )


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS groups (
        seq INTEGER PRIMARY KEY,            -- order recorded: breaks ties of opened_us
        lead_case_id TEXT NOT NULL UNIQUE,
        opened_us INTEGER NOT NULL,         -- the lead's claim, microseconds since 1970 UTC
        closed INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS cases (
        seq INTEGER PRIMARY KEY,            -- order joined
        case_id TEXT NOT NULL UNIQUE,
        lead_case_id TEXT NOT NULL REFERENCES groups (lead_case_id),
        joined_us INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS cases_by_lead ON cases (lead_case_id)",
    """CREATE TABLE IF NOT EXISTS links (
        seq INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        how TEXT NOT NULL CHECK (how IN ('reported', 'chased')),
        since_us INTEGER NOT NULL,          -- microseconds since 1970 UTC
        UNIQUE (key, case_id, how)
    )""",
    "CREATE INDEX IF NOT EXISTS links_by_case ON links (case_id)",
)


def _check_case_id(case_id: str) -> None:
    if not isinstance(case_id, str) or not case_id or not _PRINTABLE.match(case_id):
        raise ValueError(f"case id {case_id!r} is empty or has spaces or control characters")


def _check_keys(keys: Sequence[str]) -> list[str]:
    if isinstance(keys, str):
        raise ValueError(f"keys must be a sequence of keys, not one string ({keys!r})")
    for key in keys:
        if (
            not isinstance(key, str)
            or not key.startswith(_PREFIXES)
            or len(key) <= len(key.split(":", 1)[0]) + 1
        ):
            raise ValueError(f"{key!r} is not a key made by account_key, phone_key or device_key")
    return list(dict.fromkeys(keys))


def _micros(at: datetime) -> int:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError(f"at must be an aware datetime, not {at!r}")
    return (at - _EPOCH) // _MICROSECOND


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _json_list(values: list[str]) -> str:
    return json.dumps(values)
