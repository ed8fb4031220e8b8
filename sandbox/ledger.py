"""One sandbox institution's books: accounts, holds, answered orders and onward transfers, in one
SQLite file per institution.

Every stop-payment order is applied in a single BEGIN IMMEDIATE transaction that checks the
idempotency key, decides, writes the hold and stores the answer together: a retried or concurrent
duplicate finds the stored answer and is never applied twice, and a crash leaves either all of it
or none of it. The methods block (SQLite does I/O): async callers run them via asyncio.to_thread;
a lock makes the one connection safe across those threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.stops import AccountState, decide, order_fingerprint
from sandbox.wire import to_timedelta
from stopline.v1 import bank_pb2, common_pb2

# An emergency stop-payment lasts 48 hours unless the order says otherwise.
DEFAULT_HOLD_DURATION = timedelta(hours=48)
CHANNELS = ("transfer", "cash", "abroad")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    number        TEXT PRIMARY KEY,
    holder_name   TEXT NOT NULL,
    currency      TEXT NOT NULL,
    balance_minor INTEGER NOT NULL,
    held_minor    INTEGER NOT NULL DEFAULT 0 CHECK (held_minor >= 0),
    status        TEXT NOT NULL CHECK (status IN ('open', 'closed'))
);
CREATE TABLE IF NOT EXISTS holds (
    -- AUTOINCREMENT: a hold id is never reused, even if rows were ever removed.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hold_id         TEXT UNIQUE,
    account         TEXT NOT NULL REFERENCES accounts (number),
    case_id         TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_by_account_case ON holds (account, case_id);
CREATE TABLE IF NOT EXISTS idempotency (
    key               TEXT PRIMARY KEY,
    order_fingerprint TEXT NOT NULL,
    -- The serialised StopPaymentAnswer exactly as first produced: a repeat is re-sealed from
    -- these bytes, so every copy of the answer carries the same payload.
    answer_payload    BLOB NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers_out (
    id             INTEGER PRIMARY KEY,
    account        TEXT NOT NULL REFERENCES accounts (number),
    to_institution TEXT NOT NULL DEFAULT '',   -- empty for cash
    to_account     TEXT NOT NULL DEFAULT '',
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    currency       TEXT NOT NULL,
    transferred_at TEXT NOT NULL,
    channel        TEXT NOT NULL CHECK (channel IN ('transfer', 'cash', 'abroad')),
    -- Seeding the same scenario twice must not double the history.
    UNIQUE (account, to_institution, to_account, amount_minor, currency, transferred_at, channel)
);
CREATE INDEX IF NOT EXISTS transfers_by_account_time ON transfers_out (account, transferred_at);
"""


def _ts(at: datetime) -> str:
    """Fixed-width UTC text, so SQL string comparison orders times correctly. The year is padded
    by hand: strftime's %Y gives "999", not "0999", and "999-..." would sort after "2026-..."."""
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone: ledger times are UTC")
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at:%m-%dT%H:%M:%S.%f}Z"


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Account:
    number: str
    holder_name: str
    currency: str
    balance_minor: int
    status: str = "open"
    held_minor: int = 0


@dataclass(frozen=True)
class Transfer:
    """Money that left an account (what an immediate query reports)."""

    account: str
    to_institution: str
    to_account: str
    amount_minor: int
    currency: str
    transferred_at: datetime
    channel: str  # one of CHANNELS


@dataclass(frozen=True)
class Hold:
    hold_id: str
    account: str
    case_id: str
    amount_minor: int
    currency: str
    idempotency_key: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class StopResult:
    answer_payload: bytes  # serialised StopPaymentAnswer, byte-identical on every repeat
    answer: bank_pb2.StopPaymentAnswer
    replayed: bool  # True when the key was seen before and nothing was applied now


class IdempotencyConflict(Exception):
    """The idempotency key was already used for an order with different content."""


class Ledger:
    def __init__(self, path: Path, institution_id: str):
        self.path = Path(path)
        self.institution_id = institution_id
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connection()  # create the file and schema now, so a bad path fails early

    # --- connection ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """Open lazily (under the lock): after close() the ledger reopens the same file on next
        use, which is what a restarted bank does."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so each transaction is exactly the
            # statements we mean. check_same_thread=False: to_thread uses pool threads; the lock
            # serialises them.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a hold the answer reports must survive a power cut, not just a crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")  # another process on the same file waits
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write(self, work):
        """Run work(conn) in one BEGIN IMMEDIATE transaction: the write lock is taken up front,
        so no other writer (thread or process) can decide on the same rows in between."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def _read(self, work):
        """Run work(conn) in one read transaction: a consistent snapshot across its queries."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")

    # --- seeding -------------------------------------------------------------------------

    def seed(self, accounts: Iterable[Account], transfers: Iterable[Transfer] = ()) -> int:
        """Insert the scenario's accounts and past transfers that are not there yet; return how
        many accounts were added. Existing accounts keep their balances and holds: re-seeding a
        ledger after a restart must not undo what the hub did."""
        accounts = list(accounts)
        transfers = list(transfers)

        def work(conn: sqlite3.Connection) -> int:
            added = 0
            for a in accounts:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO accounts (number, holder_name, currency, balance_minor,"
                    " held_minor, status) VALUES (?, ?, ?, ?, ?, ?)",
                    (a.number, a.holder_name, a.currency, a.balance_minor, a.held_minor, a.status),
                )
                added += cur.rowcount
            for t in transfers:
                conn.execute(
                    "INSERT OR IGNORE INTO transfers_out (account, to_institution, to_account,"
                    " amount_minor, currency, transferred_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        t.account,
                        t.to_institution,
                        t.to_account,
                        t.amount_minor,
                        t.currency,
                        _ts(t.transferred_at),
                        t.channel,
                    ),
                )
            return added

        return self._write(work)

    # --- stop-payment ----------------------------------------------------------------------

    def apply_stop(self, order: bank_pb2.StopPaymentOrder, now: datetime) -> StopResult:
        """Apply a (validated) order at most once per idempotency key and return the answer.

        Raises IdempotencyConflict when the key was used for an order with other content, and
        sandbox.wire.InvalidField when hold_duration is out of range; then nothing changes."""
        fingerprint = order_fingerprint(order)

        def work(conn: sqlite3.Connection) -> StopResult:
            row = conn.execute(
                "SELECT order_fingerprint, answer_payload FROM idempotency WHERE key = ?",
                (order.idempotency_key,),
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise IdempotencyConflict(
                        f"idempotency key {order.idempotency_key!r} was used for a different order"
                    )
                payload = bytes(row[1])
                return StopResult(payload, bank_pb2.StopPaymentAnswer.FromString(payload), replayed=True)

            number = order.account.account_number
            state = self._account_state(conn, number)
            (stops,) = conn.execute(
                "SELECT COUNT(*) FROM holds WHERE account = ? AND case_id = ?", (number, order.case_id)
            ).fetchone()
            decision = decide(order, state, stops, self.institution_id)

            answer = bank_pb2.StopPaymentAnswer(
                idempotency_key=order.idempotency_key,
                case_id=order.case_id,
                account=order.account,
                outcome=decision.outcome,
                held=common_pb2.Money(minor_units=decision.held_minor, currency=order.amount.currency),
                requested=order.amount,
                refusal_reason=decision.refusal_reason,
                detail=decision.detail,
            )
            if decision.held_minor > 0:
                duration = (
                    to_timedelta(order.hold_duration, "hold_duration")
                    if order.HasField("hold_duration")
                    else DEFAULT_HOLD_DURATION
                )
                expires = now + duration
                cur = conn.execute(
                    "INSERT INTO holds (account, case_id, amount_minor, currency, idempotency_key,"
                    " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        number,
                        order.case_id,
                        decision.held_minor,
                        order.amount.currency,
                        order.idempotency_key,
                        _ts(now),
                        _ts(expires),
                    ),
                )
                hold_id = f"{self.institution_id}-H{cur.lastrowid:06d}"
                conn.execute("UPDATE holds SET hold_id = ? WHERE id = ?", (hold_id, cur.lastrowid))
                conn.execute(
                    "UPDATE accounts SET held_minor = held_minor + ? WHERE number = ?",
                    (decision.held_minor, number),
                )
                answer.hold_id = hold_id
                answer.held_at.FromDatetime(now)
                answer.hold_expires_at.FromDatetime(expires)

            payload = answer.SerializeToString(deterministic=True)
            conn.execute(
                "INSERT INTO idempotency (key, order_fingerprint, answer_payload, created_at)"
                " VALUES (?, ?, ?, ?)",
                (order.idempotency_key, fingerprint, payload, _ts(now)),
            )
            return StopResult(payload, answer, replayed=False)

        return self._write(work)

    # --- reading -------------------------------------------------------------------------

    @staticmethod
    def _account_state(conn: sqlite3.Connection, number: str) -> AccountState | None:
        row = conn.execute(
            "SELECT currency, holder_name, balance_minor, held_minor, status FROM accounts WHERE number = ?",
            (number,),
        ).fetchone()
        return AccountState(*row) if row else None

    @staticmethod
    def _account(conn: sqlite3.Connection, number: str) -> Account | None:
        row = conn.execute(
            "SELECT number, holder_name, currency, balance_minor, status, held_minor FROM accounts"
            " WHERE number = ?",
            (number,),
        ).fetchone()
        return Account(*row) if row else None

    @staticmethod
    def _transfers(conn: sqlite3.Connection, number: str, since: datetime | None) -> list[Transfer]:
        rows = conn.execute(
            "SELECT account, to_institution, to_account, amount_minor, currency, transferred_at, channel"
            " FROM transfers_out WHERE account = ? AND transferred_at >= ? ORDER BY transferred_at, id",
            (number, _ts(since) if since else ""),
        ).fetchall()
        return [Transfer(*r[:5], _dt(r[5]), r[6]) for r in rows]

    def account(self, number: str) -> Account | None:
        return self._read(lambda conn: self._account(conn, number))

    def transfers(self, number: str, since: datetime | None = None) -> list[Transfer]:
        """Transfers out of `number` at or after `since` (all when None), oldest first."""
        return self._read(lambda conn: self._transfers(conn, number, since))

    def account_report(self, number: str, since: datetime | None) -> tuple[Account | None, list[Transfer]]:
        """The account and its transfers since `since`, read in one snapshot."""
        return self._read(lambda conn: (self._account(conn, number), self._transfers(conn, number, since)))

    def holds(self, account: str | None = None) -> list[Hold]:
        """Holds, oldest first; only those on `account` when given."""
        query = (
            "SELECT hold_id, account, case_id, amount_minor, currency, idempotency_key, created_at,"
            " expires_at FROM holds"
        )
        params: tuple = ()
        if account is not None:
            query += " WHERE account = ?"
            params = (account,)
        query += " ORDER BY id"
        rows = self._read(lambda conn: conn.execute(query, params).fetchall())
        return [Hold(*r[:6], _dt(r[6]), _dt(r[7])) for r in rows]
