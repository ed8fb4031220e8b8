"""One sandbox institution's books: accounts, holds, answered orders and onward transfers, in one
SQLite file per institution.

Every stop-payment order is applied in a single BEGIN IMMEDIATE transaction that checks the
idempotency key, decides, writes the hold and stores the answer together: a retried or concurrent
duplicate finds the stored answer and is never applied twice, and a crash leaves either all of it
or none of it. The methods block (SQLite does I/O): async callers run them via asyncio.to_thread;
a lock makes the one connection safe across those threads.

Freeze and release orders (apply_freeze, apply_release) go the same way: one transaction checks
the key, lapses what ran out, decides on the books, writes and stores the answer. Holds and
freezes lapse by themselves at their expiry (`lapse_expired`, also run inside every order), each
releasing its money once.

A return of funds (apply_return) is one transaction too: it takes its part of a freeze in force
out of the frozen account and pays it to the victim (credited here, or recorded as an outgoing
return transfer to another institution), at most once per key; the return that takes the last of
a freeze ends it.

A mule's move (sandbox.mules) is one transaction here too: `send_on` records the move id, debits
what is available (never held money) and writes the transfers_out row together, so a move runs at
most once per ledger file. The receiving institution's `credit` is keyed by the same move id, so
delivering it again (after a crash or a restart) never credits twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from google.protobuf.message import Message

from sandbox.freezes import check_freeze, check_release, freeze_fingerprint, release_fingerprint
from sandbox.returns import check_return, return_fingerprint
from sandbox.stops import MAX_STOPS_PER_CASE, AccountState, decide, format_money, order_fingerprint
from sandbox.store import SqliteStore, utc_text, utc_time, utc_time_or_none
from sandbox.wire import InvalidField, require, to_datetime, to_timedelta
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
-- Where an "abroad" transfer went: kept beside transfers_out (whose shape older ledger files fix)
-- until AccountReport can carry it. amount_minor and currency: the payment as sent abroad in its
-- own currency (e.g. EUR for a CNY debit), NULL when the scenario did not say (as debited); files
-- made before these columns existed get them on open (_ABROAD_COLUMNS).
CREATE TABLE IF NOT EXISTS abroad_transfers (
    transfer_id  INTEGER PRIMARY KEY REFERENCES transfers_out (id),
    bic          TEXT NOT NULL,
    account      TEXT NOT NULL,
    reference    TEXT NOT NULL,
    amount_minor INTEGER CHECK (amount_minor > 0),
    currency     TEXT
);
-- Every scenario move this ledger has run (sent, partly sent or skipped), keyed by the move id:
-- a move is run once per ledger file, whatever restarts follow.
CREATE TABLE IF NOT EXISTS moves_done (
    move_id      TEXT PRIMARY KEY,
    account      TEXT NOT NULL REFERENCES accounts (number),
    wanted_minor INTEGER NOT NULL CHECK (wanted_minor > 0),
    sent_minor   INTEGER NOT NULL CHECK (sent_minor >= 0),
    transfer_id  INTEGER REFERENCES transfers_out (id),  -- NULL when nothing was sent
    done_at      TEXT NOT NULL
);
-- Money received from another sandbox institution's move, keyed by that move's id.
CREATE TABLE IF NOT EXISTS credits_in (
    move_id          TEXT PRIMARY KEY,
    from_institution TEXT NOT NULL,
    from_account     TEXT NOT NULL,
    account          TEXT NOT NULL REFERENCES accounts (number),
    amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    credited_at      TEXT NOT NULL
);
-- The second stop-payment of an account for a case extends the first hold instead of holding
-- new money: one row per extension (it counts toward the two stops the rules allow).
CREATE TABLE IF NOT EXISTS hold_extensions (
    idempotency_key TEXT PRIMARY KEY,
    hold_id         TEXT NOT NULL REFERENCES holds (hold_id),
    old_expires_at  TEXT NOT NULL,
    new_expires_at  TEXT NOT NULL,
    extended_at     TEXT NOT NULL
);
-- Holds that lapsed (expired unfrozen): their money was released back to the account.
CREATE TABLE IF NOT EXISTS holds_lapsed (
    hold_id   TEXT PRIMARY KEY REFERENCES holds (hold_id),
    lapsed_at TEXT NOT NULL
);
-- Fast freezes (快速冻结): a stop-payment's hold turned into a freeze on an officer's approval.
-- amount_minor and expires_at are the freeze's terms now (a renewal moves the expiry on and may
-- lower the amount). hold_id is UNIQUE: a hold is frozen at most once, and a frozen ("converted")
-- hold no longer lapses at its own expiry.
CREATE TABLE IF NOT EXISTS freezes (
    -- AUTOINCREMENT: a freeze id is never reused.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    freeze_id       TEXT UNIQUE,
    account         TEXT NOT NULL REFERENCES accounts (number),
    case_id         TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    hold_id         TEXT NOT NULL UNIQUE REFERENCES holds (hold_id),
    document_ref    TEXT NOT NULL,
    approved_by     TEXT NOT NULL,
    officer         TEXT NOT NULL,
    approved_at     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    frozen_at       TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS freezes_by_account_case ON freezes (account, case_id);
-- Every renewal of a freeze, with the approval it rests on.
CREATE TABLE IF NOT EXISTS freeze_renewals (
    idempotency_key  TEXT PRIMARY KEY,
    freeze_id        TEXT NOT NULL REFERENCES freezes (freeze_id),
    old_amount_minor INTEGER NOT NULL,
    new_amount_minor INTEGER NOT NULL,
    old_expires_at   TEXT NOT NULL,
    new_expires_at   TEXT NOT NULL,
    document_ref     TEXT NOT NULL,
    approved_by      TEXT NOT NULL,
    officer          TEXT NOT NULL,
    approved_at      TEXT NOT NULL,
    renewed_at       TEXT NOT NULL
);
-- Freezes that lapsed (expired unrenewed): their money was released back to the account.
CREATE TABLE IF NOT EXISTS freezes_lapsed (
    freeze_id TEXT PRIMARY KEY REFERENCES freezes (freeze_id),
    lapsed_at TEXT NOT NULL
);
-- Holds and freezes released by order (a wrongly held account, a case decision), with why.
CREATE TABLE IF NOT EXISTS hold_releases (
    hold_id         TEXT PRIMARY KEY REFERENCES holds (hold_id),
    amount_minor    INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    released_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS freeze_releases (
    freeze_id       TEXT PRIMARY KEY REFERENCES freezes (freeze_id),
    amount_minor    INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    released_at     TEXT NOT NULL
);
-- Returns of frozen money to victims (资金返还), one row per order that paid. paid_by: "credit" when
-- the victim's account is kept here (its balance was credited), "transfer" when the money left as
-- an outgoing return transfer to the victim's institution.
CREATE TABLE IF NOT EXISTS freeze_returns (
    -- AUTOINCREMENT: a return id is never reused.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    return_id       TEXT UNIQUE,
    freeze_id       TEXT NOT NULL REFERENCES freezes (freeze_id),
    account         TEXT NOT NULL REFERENCES accounts (number),
    case_id         TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    to_institution  TEXT NOT NULL,
    to_account      TEXT NOT NULL,
    paid_by         TEXT NOT NULL CHECK (paid_by IN ('credit', 'transfer')),
    decided_by      TEXT NOT NULL,
    officer         TEXT NOT NULL,
    document_ref    TEXT NOT NULL,
    due_by          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    returned_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS freeze_returns_by_freeze ON freeze_returns (freeze_id);
-- Freezes whose money all went back to victims: they ended then (freezes.amount_minor keeps what
-- the last return took, as a released or lapsed freeze keeps what it kept when it ended).
CREATE TABLE IF NOT EXISTS freezes_returned (
    freeze_id   TEXT PRIMARY KEY REFERENCES freezes (freeze_id),
    returned_at TEXT NOT NULL
);
-- seed_shift_us: how far the seeded history was moved in time (microseconds), fixed at first seed.
CREATE TABLE IF NOT EXISTS seed_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# Columns added to abroad_transfers after ledger files were first written: ALTER TABLE adds them
# to an older file when it is opened (CREATE TABLE IF NOT EXISTS leaves an existing table as it is).
_ABROAD_COLUMNS = {
    "amount_minor": "INTEGER CHECK (amount_minor > 0)",
    "currency": "TEXT",
}


def _abroad_row(abroad: Abroad) -> tuple:
    """An abroad_transfers row's values after transfer_id."""
    return (abroad.bic, abroad.account, abroad.reference, abroad.amount_minor, abroad.currency)


@dataclass(frozen=True)
class Account:
    number: str
    holder_name: str
    currency: str
    balance_minor: int
    status: str = "open"
    held_minor: int = 0


@dataclass(frozen=True)
class Abroad:
    """Where a transfer abroad went: the foreign bank, the account there, the payment reference
    (e.g. a SWIFT gpi UETR) a recall would quote; and, when known, the payment as sent abroad in
    its own currency (a CNY debit may have left as EUR). None: as debited."""

    bic: str
    account: str
    reference: str
    amount_minor: int | None = None
    currency: str | None = None


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
    abroad: Abroad | None = None  # for channel "abroad"


@dataclass(frozen=True)
class MoveRecord:
    """What one scenario move did on its source ledger."""

    move_id: str
    account: str
    wanted_minor: int
    sent_minor: int  # what was available of wanted_minor: 0 when the move was skipped
    done_at: datetime  # when it ran; also the transfer's transferred_at when something was sent
    replayed: bool  # True when the move had run before (this call changed nothing)

    @property
    def skipped(self) -> bool:
        return self.sent_minor == 0

    @property
    def kept_minor(self) -> int:
        """What the move wanted to send but could not: held or simply not there."""
        return self.wanted_minor - self.sent_minor


@dataclass(frozen=True)
class Hold:
    """A stop-payment hold and what became of it, as recorded. A hold past its expiry still reads
    "held" until the ledger lapses it (on the next order or query, or lapse_expired)."""

    hold_id: str
    account: str
    case_id: str
    amount_minor: int
    currency: str
    idempotency_key: str
    created_at: datetime
    expires_at: datetime
    lapsed_at: datetime | None = None  # expired unfrozen: its money was released then
    released_at: datetime | None = None  # released by a ReleaseOrder
    frozen_as: str | None = None  # the freeze it was converted into (it no longer lapses)

    @property
    def state(self) -> str:
        """ "held" (in force), "converted" (frozen as `frozen_as`), "released" or "lapsed"."""
        if self.frozen_as is not None:
            return "converted"
        if self.released_at is not None:
            return "released"
        if self.lapsed_at is not None:
            return "lapsed"
        return "held"

    @property
    def in_force(self) -> bool:
        return self.state == "held"


@dataclass(frozen=True)
class Freeze:
    """A fast freeze, as recorded (see Hold for "as recorded")."""

    freeze_id: str
    account: str
    case_id: str
    # Frozen now: a renewal may have lowered it, each return to a victim takes its part. Once
    # the freeze ended: what it kept then (for one returned in full, what the last return took).
    amount_minor: int
    currency: str
    hold_id: str  # the stop-payment hold it replaced
    expires_at: datetime  # now: a renewal moves it on
    released_at: datetime | None  # released by a ReleaseOrder
    lapsed_at: datetime | None  # expired unrenewed: its money was released then
    frozen_at: datetime
    document_ref: str  # the approval of the first freeze (renewals: freeze_renewals)
    approved_by: str
    officer: str
    returned_at: datetime | None = None  # all of its money went back to victims then

    @property
    def state(self) -> str:
        """ "frozen" (in force), "released", "lapsed" or "returned" (all of it to victims)."""
        if self.released_at is not None:
            return "released"
        if self.lapsed_at is not None:
            return "lapsed"
        if self.returned_at is not None:
            return "returned"
        return "frozen"

    @property
    def in_force(self) -> bool:
        return self.state == "frozen"

    @property
    def remaining_minor(self) -> int:
        """What it still keeps: amount_minor while in force, nothing once it ended."""
        return self.amount_minor if self.in_force else 0


@dataclass(frozen=True)
class FundsReturn:
    """Frozen money paid back to a victim, as recorded."""

    return_id: str
    freeze_id: str
    account: str  # the frozen account it came out of
    case_id: str
    amount_minor: int
    currency: str
    to_institution: str  # the victim's account
    to_account: str
    paid_by: str  # "credit" (the victim's account is kept here) or "transfer" (sent out)
    idempotency_key: str
    due_by: datetime
    returned_at: datetime


@dataclass(frozen=True)
class OrderResult:
    """An order's answer: StopPaymentAnswer, FreezeAnswer, ReleaseAnswer or ReturnReceipt."""

    answer_payload: bytes  # the serialised answer, byte-identical on every repeat
    answer: Message
    replayed: bool  # True when the key was seen before and nothing was applied now


_HOLDS = (
    "SELECT h.hold_id, h.account, h.case_id, h.amount_minor, h.currency, h.idempotency_key, h.created_at,"
    " h.expires_at, l.lapsed_at, r.released_at, f.freeze_id FROM holds h"
    " LEFT JOIN holds_lapsed l ON l.hold_id = h.hold_id"
    " LEFT JOIN hold_releases r ON r.hold_id = h.hold_id"
    " LEFT JOIN freezes f ON f.hold_id = h.hold_id"
)
_FREEZES = (
    "SELECT z.freeze_id, z.account, z.case_id, z.amount_minor, z.currency, z.hold_id, z.expires_at,"
    " r.released_at, l.lapsed_at, z.frozen_at, z.document_ref, z.approved_by, z.officer, q.returned_at"
    " FROM freezes z"
    " LEFT JOIN freeze_releases r ON r.freeze_id = z.freeze_id"
    " LEFT JOIN freezes_lapsed l ON l.freeze_id = z.freeze_id"
    " LEFT JOIN freezes_returned q ON q.freeze_id = z.freeze_id"
)
_RETURNS = (
    "SELECT return_id, freeze_id, account, case_id, amount_minor, currency, to_institution, to_account,"
    " paid_by, idempotency_key, due_by, returned_at FROM freeze_returns"
)


def _hold_row(r) -> Hold:
    return Hold(*r[:6], utc_time(r[6]), utc_time(r[7]), utc_time_or_none(r[8]), utc_time_or_none(r[9]), r[10])


def _freeze_row(r) -> Freeze:
    return Freeze(*r[:6], utc_time(r[6]), utc_time_or_none(r[7]), utc_time_or_none(r[8]), utc_time(r[9]), *r[10:13], utc_time_or_none(r[13]))


def _return_row(r) -> FundsReturn:
    return FundsReturn(*r[:10], utc_time(r[10]), utc_time(r[11]))


def _money(minor_units: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(minor_units=minor_units, currency=currency)


def _amount_text(minor_units: int, currency: str) -> str:
    return f"{format_money(minor_units, currency)} {currency}"


def _require_own(field: str, thing: Hold | Freeze | None, order) -> None:
    """InvalidField naming `field` unless the hold or freeze it names exists and is the order's
    account's, for the order's case."""
    what = "hold" if "hold" in field else "freeze"
    require(
        field,
        thing is not None
        and thing.account == order.account.account_number
        and thing.case_id == order.case_id,
        f"{getattr(order, field)!r} is not a {what} on this account for case {order.case_id!r}",
    )


def _check_amount(amount: common_pb2.Money, kept_minor: int, currency: str, what: str) -> None:
    """A freeze may keep at most what its hold (or, renewed, the freeze) keeps, in its currency."""
    require(
        "amount.currency",
        amount.currency == currency,
        f"{what} is kept in {currency}, the order is in {amount.currency}",
    )
    require(
        "amount.minor_units",
        amount.minor_units <= kept_minor,
        f"{_amount_text(amount.minor_units, currency)} is more than the "
        f"{_amount_text(kept_minor, currency)} {what} keeps",
    )


def _refuse_freeze(answer: bank_pb2.FreezeAnswer, currency: str, detail: str) -> None:
    answer.outcome = bank_pb2.FREEZE_OUTCOME_REFUSED
    answer.frozen.CopyFrom(_money(0, currency))
    answer.detail = detail


def _frozen(
    answer: bank_pb2.FreezeAnswer, freeze_id: str, amount_minor: int, currency: str, at: datetime,
    expires: datetime, detail: str,
) -> None:  # fmt: skip
    answer.outcome = bank_pb2.FREEZE_OUTCOME_FROZEN
    answer.frozen.CopyFrom(_money(amount_minor, currency))
    answer.freeze_id = freeze_id
    answer.frozen_at.FromDatetime(at)
    answer.freeze_expires_at.FromDatetime(expires)
    answer.detail = detail


def _gone(thing: Hold | Freeze) -> str:
    """Why a hold or freeze no longer keeps money (for a refusal's or release's detail)."""
    if isinstance(thing, Hold):
        what = f"hold {thing.hold_id}"
        if thing.frozen_as is not None:
            return f"{what} was frozen as {thing.frozen_as}"
    else:
        what = f"freeze {thing.freeze_id}"
        if thing.returned_at is not None:
            return f"{what} was returned in full at {utc_text(thing.returned_at)}"
    if thing.released_at is not None:
        return f"{what} was released at {utc_text(thing.released_at)}"
    return f"{what} lapsed at {utc_text(thing.lapsed_at)}"


class IdempotencyConflict(Exception):
    """The idempotency key was already used for an order with different content."""


class Ledger(SqliteStore):
    def __init__(self, path: Path, institution_id: str):
        self.institution_id = institution_id
        super().__init__(path, _SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """The store's connection; on opening, add the columns an older ledger file lacks."""
        opening = self._conn is None
        conn = super()._connection()
        if opening:
            have = {row[1] for row in conn.execute("PRAGMA table_info(abroad_transfers)")}
            for name, decl in _ABROAD_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE abroad_transfers ADD COLUMN {name} {decl}")
        return conn

    # --- seeding -------------------------------------------------------------------------

    def seed(
        self,
        accounts: Iterable[Account],
        transfers: Iterable[Transfer] = (),
        *,
        shift: timedelta = timedelta(0),
    ) -> int:
        """Insert the scenario's accounts and past transfers that are not there yet; return how
        many accounts were added. Existing accounts keep their balances and holds: re-seeding a
        ledger after a restart must not undo what the hub did.

        Every transfer's time is moved by exactly `shift` (see sandbox.scenario.seed_shift). The
        first seed of a ledger file records its shift (`seed_shift()`), so whoever re-seeds the
        same scenario (Sandbox, after a restart) can place the history where it already is
        instead of writing it twice at two different times."""
        accounts = list(accounts)
        transfers = list(transfers)

        def work(conn: sqlite3.Connection) -> int:
            self._record_shift(conn, shift)
            added = 0
            for a in accounts:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO accounts (number, holder_name, currency, balance_minor,"
                    " held_minor, status) VALUES (?, ?, ?, ?, ?, ?)",
                    (a.number, a.holder_name, a.currency, a.balance_minor, a.held_minor, a.status),
                )
                added += cur.rowcount
            for t in transfers:
                row = (t.account, t.to_institution, t.to_account, t.amount_minor, t.currency,
                       utc_text(t.transferred_at + shift), t.channel)  # fmt: skip
                conn.execute(
                    "INSERT OR IGNORE INTO transfers_out (account, to_institution, to_account,"
                    " amount_minor, currency, transferred_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                if t.abroad is not None:
                    (transfer_id,) = conn.execute(
                        "SELECT id FROM transfers_out WHERE account = ? AND to_institution = ? AND"
                        " to_account = ? AND amount_minor = ? AND currency = ? AND transferred_at = ?"
                        " AND channel = ?",
                        row,
                    ).fetchone()
                    conn.execute(
                        "INSERT OR IGNORE INTO abroad_transfers (transfer_id, bic, account, reference,"
                        " amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?)",
                        (transfer_id, *_abroad_row(t.abroad)),
                    )
            return added

        return self._write(work)

    @staticmethod
    def _record_shift(conn: sqlite3.Connection, shift: timedelta) -> None:
        """Record the first seed's shift (later seeds change nothing here)."""
        if conn.execute("SELECT 1 FROM seed_info WHERE key = 'seed_shift_us'").fetchone():
            return
        # A ledger file seeded before shifts existed has its history at the file's own times.
        (seeded,) = conn.execute("SELECT COUNT(*) FROM accounts").fetchone()
        first = timedelta(0) if seeded else shift
        conn.execute(
            "INSERT INTO seed_info (key, value) VALUES ('seed_shift_us', ?)",
            (str(first // timedelta(microseconds=1)),),
        )

    def seed_shift(self) -> timedelta | None:
        """The shift the ledger's first seed placed its history with; None before any seed (a
        ledger seeded before shifts were recorded counts as 0)."""

        def work(conn: sqlite3.Connection) -> timedelta | None:
            row = conn.execute("SELECT value FROM seed_info WHERE key = 'seed_shift_us'").fetchone()
            if row is not None:
                return timedelta(microseconds=int(row[0]))
            (seeded,) = conn.execute("SELECT COUNT(*) FROM accounts").fetchone()
            return timedelta(0) if seeded else None

        return self._read(work)

    # --- mule moves ------------------------------------------------------------------------

    def send_on(self, move_id: str, transfer: Transfer) -> MoveRecord:
        """Run one mule move at most once: send min(wanted, balance - held) out of
        `transfer.account` (nothing from a closed account), at `transfer.transferred_at`, by
        `transfer.channel`. Held money never moves. Debit, transfers_out row and the record of
        the move are one transaction; a move id seen before returns its record, changing nothing.

        Raises LookupError for an unknown account and ValueError for a currency the account is not
        kept in (a scenario file checks both on load)."""
        wanted = transfer.amount_minor
        if wanted <= 0:
            raise ValueError(f"move {move_id}: amount must be positive, got {wanted}")

        def work(conn: sqlite3.Connection) -> MoveRecord:
            done = self._move_record(conn, move_id)
            if done is not None:
                return done
            row = conn.execute(
                "SELECT currency, balance_minor, held_minor, status FROM accounts WHERE number = ?",
                (transfer.account,),
            ).fetchone()
            if row is None:
                raise LookupError(f"move {move_id}: no account {transfer.account!r} at {self.institution_id}")
            currency, balance, held, status = row
            if currency != transfer.currency:
                raise ValueError(
                    f"move {move_id}: the account is kept in {currency}, the move is in {transfer.currency}"
                )
            available = max(0, balance - held) if status == "open" else 0
            sent = min(wanted, available)
            at = utc_text(transfer.transferred_at)
            transfer_id = None
            if sent > 0:
                conn.execute(
                    "UPDATE accounts SET balance_minor = balance_minor - ? WHERE number = ?",
                    (sent, transfer.account),
                )
                cur = conn.execute(
                    "INSERT INTO transfers_out (account, to_institution, to_account, amount_minor, currency,"
                    " transferred_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (transfer.account, transfer.to_institution, transfer.to_account, sent, currency, at,
                     transfer.channel),
                )  # fmt: skip
                transfer_id = cur.lastrowid
                if transfer.abroad is not None:
                    conn.execute(
                        "INSERT INTO abroad_transfers (transfer_id, bic, account, reference, amount_minor,"
                        " currency) VALUES (?, ?, ?, ?, ?, ?)",
                        (transfer_id, *_abroad_row(transfer.abroad)),
                    )
            conn.execute(
                "INSERT INTO moves_done (move_id, account, wanted_minor, sent_minor, transfer_id, done_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (move_id, transfer.account, wanted, sent, transfer_id, at),
            )
            return MoveRecord(move_id, transfer.account, wanted, sent, utc_time(at), replayed=False)

        return self._write(work)

    @staticmethod
    def _move_record(conn: sqlite3.Connection, move_id: str) -> MoveRecord | None:
        row = conn.execute(
            "SELECT move_id, account, wanted_minor, sent_minor, done_at FROM moves_done WHERE move_id = ?",
            (move_id,),
        ).fetchone()
        return MoveRecord(*row[:4], utc_time(row[4]), replayed=True) if row else None

    def move_record(self, move_id: str) -> MoveRecord | None:
        """The move's record if it has run on this ledger (replayed=True), else None."""
        return self._read(lambda conn: self._move_record(conn, move_id))

    def credit(
        self, move_id: str, account: str, amount_minor: int, currency: str, at: datetime,
        from_institution: str, from_account: str,
    ) -> bool:  # fmt: skip
        """Credit money sent by another institution's move, at most once per move id. Returns
        True when credited now, False when it was credited before."""
        if amount_minor <= 0:
            raise ValueError(f"credit for move {move_id}: amount must be positive, got {amount_minor}")

        def work(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM credits_in WHERE move_id = ?", (move_id,)).fetchone():
                return False
            row = conn.execute("SELECT currency FROM accounts WHERE number = ?", (account,)).fetchone()
            if row is None:
                raise LookupError(
                    f"credit for move {move_id}: no account {account!r} at {self.institution_id}"
                )
            if row[0] != currency:
                raise ValueError(
                    f"credit for move {move_id}: the account is kept in {row[0]}, not {currency}"
                )
            conn.execute(
                "UPDATE accounts SET balance_minor = balance_minor + ? WHERE number = ?",
                (amount_minor, account),
            )
            conn.execute(
                "INSERT INTO credits_in (move_id, from_institution, from_account, account, amount_minor, currency,"
                " credited_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (move_id, from_institution, from_account, account, amount_minor, currency, utc_text(at)),
            )
            return True

        return self._write(work)

    # --- idempotency: one stored answer per key, for every kind of order ---------------------

    @staticmethod
    def _answered(
        conn: sqlite3.Connection, key: str, fingerprint: str, answer_type: type[Message]
    ) -> OrderResult | None:
        """The stored answer when `key` was seen before for the same order; None for a new key.
        IdempotencyConflict when the key was used for another order (of any kind)."""
        row = conn.execute(
            "SELECT order_fingerprint, answer_payload FROM idempotency WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        if row[0] != fingerprint:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for a different order")
        payload = bytes(row[1])
        return OrderResult(payload, answer_type.FromString(payload), replayed=True)

    @staticmethod
    def _store_answer(
        conn: sqlite3.Connection, key: str, fingerprint: str, answer: Message, now: datetime
    ) -> OrderResult:
        """Serialise the answer once and keep those bytes: every repeat is sealed from them."""
        payload = answer.SerializeToString(deterministic=True)
        conn.execute(
            "INSERT INTO idempotency (key, order_fingerprint, answer_payload, created_at) VALUES (?, ?, ?, ?)",
            (key, fingerprint, payload, utc_text(now)),
        )
        return OrderResult(payload, answer, replayed=False)

    # --- stop-payment ----------------------------------------------------------------------

    def apply_stop(self, order: bank_pb2.StopPaymentOrder, now: datetime) -> OrderResult:
        """Apply a (validated) order at most once per idempotency key and return the answer.

        Raises IdempotencyConflict when the key was used for an order with other content, and
        sandbox.wire.InvalidField when hold_duration is out of range; then nothing changes."""
        fingerprint = order_fingerprint(order)

        def work(conn: sqlite3.Connection) -> OrderResult:
            done = self._answered(conn, order.idempotency_key, fingerprint, bank_pb2.StopPaymentAnswer)
            if done is not None:
                return done

            number = order.account.account_number
            self._lapse_expired(conn, now)
            (stops,) = conn.execute(
                "SELECT (SELECT COUNT(*) FROM holds WHERE account = ?1 AND case_id = ?2)"
                " + (SELECT COUNT(*) FROM hold_extensions e JOIN holds h ON h.hold_id = e.hold_id"
                "    WHERE h.account = ?1 AND h.case_id = ?2)",
                (number, order.case_id),
            ).fetchone()
            if order.extends_hold_id:
                extended = self._extend(conn, order, stops, now)
                if extended is not None:
                    return self._store_answer(conn, order.idempotency_key, fingerprint, extended, now)
            state = self._account_state(conn, number)
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
                        utc_text(now),
                        utc_text(expires),
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

            return self._store_answer(conn, order.idempotency_key, fingerprint, answer, now)

        return self._write(work)

    def _extend(
        self, conn: sqlite3.Connection, order, stops: int, now: datetime
    ) -> bank_pb2.StopPaymentAnswer | None:
        """The second stop-payment on a hold still in force: keep it, move its expiry on by the
        order's duration, hold nothing new. None when that hold is no longer in force (lapsed,
        released, or frozen): the order is then a new stop like any other. InvalidField for a
        hold of another account or case."""
        hold = self._hold(conn, order.extends_hold_id)
        _require_own("extends_hold_id", hold, order)
        if not hold.in_force:
            return None
        answer = bank_pb2.StopPaymentAnswer(
            idempotency_key=order.idempotency_key, case_id=order.case_id, account=order.account,
            requested=order.amount,
        )  # fmt: skip
        if stops >= MAX_STOPS_PER_CASE:
            answer.outcome = bank_pb2.STOP_PAYMENT_OUTCOME_REFUSED
            answer.refusal_reason = bank_pb2.REFUSAL_REASON_STOP_LIMIT_REACHED
            answer.detail = f"the account was already stopped {stops} times for case {hold.case_id}"
            answer.held.CopyFrom(common_pb2.Money(minor_units=0, currency=order.amount.currency))
            return answer
        duration = (
            to_timedelta(order.hold_duration, "hold_duration")
            if order.HasField("hold_duration")
            else DEFAULT_HOLD_DURATION
        )
        new_expires = hold.expires_at + duration
        conn.execute(
            "UPDATE holds SET expires_at = ? WHERE hold_id = ?", (utc_text(new_expires), order.extends_hold_id)
        )
        conn.execute(
            "INSERT INTO hold_extensions (idempotency_key, hold_id, old_expires_at, new_expires_at, extended_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (order.idempotency_key, order.extends_hold_id, utc_text(hold.expires_at), utc_text(new_expires), utc_text(now)),
        )
        held = min(hold.amount_minor, order.amount.minor_units)
        full = held == order.amount.minor_units
        answer.outcome = (
            bank_pb2.STOP_PAYMENT_OUTCOME_HELD if full else bank_pb2.STOP_PAYMENT_OUTCOME_PARTIALLY_HELD
        )
        answer.held.CopyFrom(common_pb2.Money(minor_units=held, currency=hold.currency))
        answer.detail = f"hold {order.extends_hold_id} extended to {utc_text(new_expires)}"
        answer.hold_id = order.extends_hold_id
        answer.held_at.FromDatetime(now)
        answer.hold_expires_at.FromDatetime(new_expires)
        return answer

    @staticmethod
    def _lapse_expired(conn: sqlite3.Connection, now: datetime) -> None:
        """Release the money of every hold and freeze whose time ran out (a bank does this by
        itself), once each. A hold in force is one neither lapsed, released nor frozen (a frozen
        hold's money is the freeze's now); a freeze in force is one neither lapsed, released nor
        returned in full."""
        at = utc_text(now)
        holds = conn.execute(
            "SELECT h.hold_id, h.account, h.amount_minor FROM holds h WHERE h.expires_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM holds_lapsed l WHERE l.hold_id = h.hold_id)"
            " AND NOT EXISTS (SELECT 1 FROM hold_releases r WHERE r.hold_id = h.hold_id)"
            " AND NOT EXISTS (SELECT 1 FROM freezes f WHERE f.hold_id = h.hold_id)",
            (at,),
        ).fetchall()
        for hold_id, account, amount in holds:
            conn.execute("INSERT INTO holds_lapsed (hold_id, lapsed_at) VALUES (?, ?)", (hold_id, at))
            conn.execute(
                "UPDATE accounts SET held_minor = held_minor - ? WHERE number = ?", (amount, account)
            )
        freezes = conn.execute(
            "SELECT z.freeze_id, z.account, z.amount_minor FROM freezes z WHERE z.expires_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM freezes_lapsed l WHERE l.freeze_id = z.freeze_id)"
            " AND NOT EXISTS (SELECT 1 FROM freeze_releases r WHERE r.freeze_id = z.freeze_id)"
            " AND NOT EXISTS (SELECT 1 FROM freezes_returned q WHERE q.freeze_id = z.freeze_id)",
            (at,),
        ).fetchall()
        for freeze_id, account, amount in freezes:
            conn.execute("INSERT INTO freezes_lapsed (freeze_id, lapsed_at) VALUES (?, ?)", (freeze_id, at))
            conn.execute(
                "UPDATE accounts SET held_minor = held_minor - ? WHERE number = ?", (amount, account)
            )

    def lapse_expired(self, now: datetime) -> None:
        """Release every hold and freeze that has expired by `now`, once each (every order does
        this first; the servicer also does it before answering a query)."""
        self._write(lambda conn: self._lapse_expired(conn, now))

    # --- fast freeze -----------------------------------------------------------------------

    def apply_freeze(self, order: bank_pb2.FreezeOrder, now: datetime) -> OrderResult:
        """Apply a FreezeOrder at most once per idempotency key and return the FreezeAnswer, in one
        transaction (after lapsing whatever expired by `now`).

        First freeze (hold_id set): the hold must be this account's, for this case (else
        InvalidField naming hold_id), the amount in its currency and at most what it holds (else
        InvalidField naming amount.currency / amount.minor_units). When the hold is still in force
        a freezes row is written (freeze_id "<institution>-F000001", expiring at now +
        freeze_duration), the hold becomes "converted" (it no longer lapses at its own expiry) and
        the account's held money changes by (amount - hold amount): freezing less than was held
        releases the rest at once. Answer FROZEN. A hold that lapsed, was released or was frozen
        already is a REFUSED answer with a detail, and nothing changes.

        Renewal (renews_freeze_id set): the freeze must be this account's, for this case (else
        InvalidField naming renews_freeze_id), the amount at most what it freezes now. When it is
        still in force its expiry moves to the old expiry + freeze_duration (continuous) and a
        smaller amount releases the difference; the answer is FROZEN with the same freeze_id. A
        lapsed or released freeze is a REFUSED answer.

        A REFUSED answer carries frozen = 0 in the hold's (freeze's) currency and a detail; no
        freeze_id and no times.

        Also raises InvalidField for a malformed order (sandbox.freezes.check_freeze) and
        IdempotencyConflict for a key used for another order; then nothing changes and the key
        stays unused."""
        duration = check_freeze(order)
        fingerprint = freeze_fingerprint(order)

        def work(conn: sqlite3.Connection) -> OrderResult:
            done = self._answered(conn, order.idempotency_key, fingerprint, bank_pb2.FreezeAnswer)
            if done is not None:
                return done
            self._lapse_expired(conn, now)
            answer = bank_pb2.FreezeAnswer(
                idempotency_key=order.idempotency_key, case_id=order.case_id, account=order.account
            )
            if order.renews_freeze_id:
                self._renew(conn, order, duration, now, answer)
            else:
                self._freeze_hold(conn, order, duration, now, answer)
            return self._store_answer(conn, order.idempotency_key, fingerprint, answer, now)

        return self._write(work)

    def _freeze_hold(
        self, conn: sqlite3.Connection, order: bank_pb2.FreezeOrder, duration: timedelta, now: datetime,
        answer: bank_pb2.FreezeAnswer,
    ) -> None:  # fmt: skip
        number = order.account.account_number
        hold = self._hold(conn, order.hold_id)
        _require_own("hold_id", hold, order)
        _check_amount(order.amount, hold.amount_minor, hold.currency, f"hold {hold.hold_id}")
        if not hold.in_force:
            _refuse_freeze(answer, hold.currency, f"{_gone(hold)}: nothing is held to freeze")
            return
        amount = order.amount.minor_units
        expires = now + duration
        approval = order.approval
        approved_at = utc_text(to_datetime(approval.approved_at, "approval.approved_at"))
        cur = conn.execute(
            "INSERT INTO freezes (account, case_id, amount_minor, currency, hold_id, document_ref, approved_by,"
            " officer, approved_at, idempotency_key, frozen_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, order.case_id, amount, hold.currency, hold.hold_id, approval.document_ref,
             approval.approved_by, approval.officer, approved_at, order.idempotency_key, utc_text(now), utc_text(expires)),
        )  # fmt: skip
        freeze_id = f"{self.institution_id}-F{cur.lastrowid:06d}"
        conn.execute("UPDATE freezes SET freeze_id = ? WHERE id = ?", (freeze_id, cur.lastrowid))
        let_go = hold.amount_minor - amount
        if let_go:
            conn.execute("UPDATE accounts SET held_minor = held_minor - ? WHERE number = ?", (let_go, number))
        detail = f"hold {hold.hold_id} frozen as {freeze_id}: {_amount_text(amount, hold.currency)}"
        if let_go:
            detail += f"; the other {_amount_text(let_go, hold.currency)} held is released"
        _frozen(answer, freeze_id, amount, hold.currency, now, expires, detail)

    def _renew(
        self, conn: sqlite3.Connection, order: bank_pb2.FreezeOrder, duration: timedelta, now: datetime,
        answer: bank_pb2.FreezeAnswer,
    ) -> None:  # fmt: skip
        number = order.account.account_number
        freeze = self._freeze(conn, order.renews_freeze_id)
        _require_own("renews_freeze_id", freeze, order)
        _check_amount(order.amount, freeze.amount_minor, freeze.currency, f"freeze {freeze.freeze_id}")
        if not freeze.in_force:
            _refuse_freeze(answer, freeze.currency, f"{_gone(freeze)}: nothing is frozen to renew")
            return
        try:
            new_expires = freeze.expires_at + duration
            new_text = utc_text(new_expires)
        except OverflowError:
            raise InvalidField("freeze_duration", "the renewed expiry would be past 9999-12-31") from None
        amount = order.amount.minor_units
        approval = order.approval
        approved_at = utc_text(to_datetime(approval.approved_at, "approval.approved_at"))
        conn.execute(
            "UPDATE freezes SET amount_minor = ?, expires_at = ? WHERE freeze_id = ?",
            (amount, new_text, freeze.freeze_id),
        )
        let_go = freeze.amount_minor - amount
        if let_go:
            conn.execute("UPDATE accounts SET held_minor = held_minor - ? WHERE number = ?", (let_go, number))
        conn.execute(
            "INSERT INTO freeze_renewals (idempotency_key, freeze_id, old_amount_minor, new_amount_minor,"
            " old_expires_at, new_expires_at, document_ref, approved_by, officer, approved_at, renewed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order.idempotency_key, freeze.freeze_id, freeze.amount_minor, amount, utc_text(freeze.expires_at),
             new_text, approval.document_ref, approval.approved_by, approval.officer,
             approved_at, utc_text(now)),
        )  # fmt: skip
        detail = (
            f"freeze {freeze.freeze_id} renewed until {new_text}: {_amount_text(amount, freeze.currency)}"
        )
        if let_go:
            detail += f"; the other {_amount_text(let_go, freeze.currency)} frozen is released"
        _frozen(answer, freeze.freeze_id, amount, freeze.currency, now, new_expires, detail)

    # --- release ---------------------------------------------------------------------------

    def apply_release(self, order: bank_pb2.ReleaseOrder, now: datetime) -> OrderResult:
        """Apply a ReleaseOrder at most once per idempotency key and return the ReleaseAnswer, in
        one transaction (after lapsing whatever expired by `now`).

        The order names exactly one hold (hold_id) or freeze (freeze_id) of this account, for
        this case (else InvalidField naming that field). One still in force is released now: the
        account's held money drops by its amount, and the reason, decided_by and time are
        recorded; the answer's `released` is that amount, `released_at` now. One already lapsed
        or released answers released = 0 with a detail, `released_at` the time its money was
        freed then: nothing changes (idempotent in effect). A hold that was frozen answers
        released = 0 too (no released_at): its money is the freeze's, released by freeze_id.

        Also raises InvalidField for a malformed order (sandbox.freezes.check_release) and
        IdempotencyConflict for a key used for another order; then nothing changes."""
        check_release(order)
        fingerprint = release_fingerprint(order)

        def work(conn: sqlite3.Connection) -> OrderResult:
            done = self._answered(conn, order.idempotency_key, fingerprint, bank_pb2.ReleaseAnswer)
            if done is not None:
                return done
            self._lapse_expired(conn, now)
            answer = bank_pb2.ReleaseAnswer(
                idempotency_key=order.idempotency_key, case_id=order.case_id, account=order.account
            )
            if order.hold_id:
                thing: Hold | Freeze | None = self._hold(conn, order.hold_id)
                field, table, what = "hold_id", "hold_releases", "hold"
            else:
                thing = self._freeze(conn, order.freeze_id)
                field, table, what = "freeze_id", "freeze_releases", "freeze"
            _require_own(field, thing, order)
            wanted = getattr(order, field)
            if not thing.in_force:
                answer.released.CopyFrom(_money(0, thing.currency))
                freed = thing.released_at or thing.lapsed_at
                if freed is not None:
                    answer.released_at.FromDatetime(freed)
                answer.detail = f"{_gone(thing)}: nothing released now"
            else:
                conn.execute(
                    f"INSERT INTO {table} ({field}, amount_minor, reason, decided_by, idempotency_key,"
                    " released_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        wanted,
                        thing.amount_minor,
                        order.reason,
                        order.decided_by,
                        order.idempotency_key,
                        utc_text(now),
                    ),
                )
                conn.execute(
                    "UPDATE accounts SET held_minor = held_minor - ? WHERE number = ?",
                    (thing.amount_minor, thing.account),
                )
                answer.released.CopyFrom(_money(thing.amount_minor, thing.currency))
                answer.released_at.FromDatetime(now)
                answer.detail = (
                    f"{what} {wanted} released: {_amount_text(thing.amount_minor, thing.currency)}"
                )
            return self._store_answer(conn, order.idempotency_key, fingerprint, answer, now)

        return self._write(work)

    # --- return of funds -------------------------------------------------------------------

    def apply_return(self, order: bank_pb2.ReturnOrder, now: datetime) -> OrderResult:
        """Apply a ReturnOrder at most once per idempotency key and return the ReturnReceipt, in
        one transaction (after lapsing whatever expired by `now`).

        The order must name a freeze in force of this account, for this case, in the order's
        currency, keeping at least the amount. Then, with no rounding anywhere (integer minor
        units): the frozen account's balance and held money drop by exactly the amount; the
        freeze keeps that much less, and the return that takes the rest ends it ("returned"); the
        victim's account is credited when it is kept here, otherwise the money is recorded as an
        outgoing return transfer to the victim's institution (`returns()`, paid_by "transfer").
        The receipt is RETURNED with the amount, a return id ("<institution>-R000001") and
        returned_at = now. Several returns from one freeze (pro rata to several victims) each take
        their part.

        A REFUSED receipt (returned = 0 in the order's currency, a detail, no return id) and
        nothing changes when: the freeze is unknown, of another account or case; it lapsed, was
        released or was returned in full already; the amount is more than it still keeps; or the
        victim's account, kept here, is unknown, closed or in another currency.

        Raises InvalidField for a malformed order (sandbox.returns.check_return) or an amount in
        another currency than the freeze's (amount.currency), and IdempotencyConflict for a key
        used for another order; then nothing changes and the key stays unused."""
        due_by = check_return(order)
        fingerprint = return_fingerprint(order)

        def work(conn: sqlite3.Connection) -> OrderResult:
            done = self._answered(conn, order.idempotency_key, fingerprint, bank_pb2.ReturnReceipt)
            if done is not None:
                return done
            self._lapse_expired(conn, now)
            receipt = bank_pb2.ReturnReceipt(
                idempotency_key=order.idempotency_key, case_id=order.case_id, account=order.account,
                to_account=order.to_account,
            )  # fmt: skip
            self._return(conn, order, due_by, now, receipt)
            return self._store_answer(conn, order.idempotency_key, fingerprint, receipt, now)

        return self._write(work)

    def _return(
        self, conn: sqlite3.Connection, order: bank_pb2.ReturnOrder, due_by: datetime, now: datetime,
        receipt: bank_pb2.ReturnReceipt,
    ) -> None:  # fmt: skip
        number = order.account.account_number
        currency = order.amount.currency

        def refuse(detail: str) -> None:
            receipt.outcome = bank_pb2.RETURN_OUTCOME_REFUSED
            receipt.returned.CopyFrom(_money(0, currency))
            receipt.detail = f"{detail}: nothing returned"

        freeze = self._freeze(conn, order.freeze_id)
        if freeze is None or freeze.account != number or freeze.case_id != order.case_id:
            refuse(f"no freeze {order.freeze_id!r} on this account for case {order.case_id!r}")
            return
        require(
            "amount.currency",
            currency == freeze.currency,
            f"freeze {freeze.freeze_id} is kept in {freeze.currency}, the order is in {currency}",
        )
        if not freeze.in_force:
            refuse(_gone(freeze))
            return
        amount = order.amount.minor_units
        if amount > freeze.amount_minor:
            refuse(
                f"{_amount_text(amount, currency)} is more than the "
                f"{_amount_text(freeze.amount_minor, currency)} freeze {freeze.freeze_id} still keeps"
            )
            return
        to = order.to_account
        in_house = to.institution == self.institution_id
        if in_house:
            victim = self._account_state(conn, to.account_number)
            if victim is None:
                refuse(f"the victim's account is not kept at {self.institution_id}")
                return
            if victim.status != "open":
                refuse("the victim's account is closed")
                return
            if victim.currency != currency:
                refuse(f"the victim's account is kept in {victim.currency}, the freeze in {currency}")
                return
        cur = conn.execute(
            "INSERT INTO freeze_returns (freeze_id, account, case_id, amount_minor, currency, to_institution,"
            " to_account, paid_by, decided_by, officer, document_ref, due_by, idempotency_key, returned_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (freeze.freeze_id, number, order.case_id, amount, currency, to.institution, to.account_number,
             "credit" if in_house else "transfer", order.decided_by, order.officer, order.document_ref,
             utc_text(due_by), order.idempotency_key, utc_text(now)),
        )  # fmt: skip
        return_id = f"{self.institution_id}-R{cur.lastrowid:06d}"
        conn.execute("UPDATE freeze_returns SET return_id = ? WHERE id = ?", (return_id, cur.lastrowid))
        conn.execute(
            "UPDATE accounts SET balance_minor = balance_minor - ?, held_minor = held_minor - ? WHERE number = ?",
            (amount, amount, number),
        )
        if in_house:
            conn.execute(
                "UPDATE accounts SET balance_minor = balance_minor + ? WHERE number = ?",
                (amount, to.account_number),
            )
        left = freeze.amount_minor - amount
        if left:
            conn.execute("UPDATE freezes SET amount_minor = ? WHERE freeze_id = ?", (left, freeze.freeze_id))
        else:  # the last of it: the freeze ends (its amount_minor keeps what this return took)
            conn.execute(
                "INSERT INTO freezes_returned (freeze_id, returned_at) VALUES (?, ?)", (freeze.freeze_id, utc_text(now))
            )
        paid = (
            "paid into the victim's account here"
            if in_house
            else f"sent to the victim's account at {to.institution} (return transfer)"
        )
        still = (
            f"{_amount_text(left, currency)} still frozen"
            if left
            else f"freeze {freeze.freeze_id} is returned in full and ends"
        )
        receipt.outcome = bank_pb2.RETURN_OUTCOME_RETURNED
        receipt.returned.CopyFrom(_money(amount, currency))
        receipt.return_id = return_id
        receipt.returned_at.FromDatetime(now)
        receipt.detail = (
            f"{_amount_text(amount, currency)} out of freeze {freeze.freeze_id} {paid}; {still}"
        )

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
            "SELECT t.account, t.to_institution, t.to_account, t.amount_minor, t.currency, t.transferred_at,"
            " t.channel, a.bic, a.account, a.reference, a.amount_minor, a.currency FROM transfers_out t"
            " LEFT JOIN abroad_transfers a ON a.transfer_id = t.id"
            " WHERE t.account = ? AND t.transferred_at >= ? ORDER BY t.transferred_at, t.id",
            (number, utc_text(since) if since else ""),
        ).fetchall()
        return [
            Transfer(*r[:5], utc_time(r[5]), r[6], Abroad(*r[7:12]) if r[7] is not None else None) for r in rows
        ]

    def account(self, number: str) -> Account | None:
        return self._read(lambda conn: self._account(conn, number))

    def accounts(self) -> list[Account]:
        """Every account, by number."""
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT number, holder_name, currency, balance_minor, status, held_minor FROM accounts ORDER BY number"
            ).fetchall()
        )
        return [Account(*r) for r in rows]

    def transfers(self, number: str, since: datetime | None = None) -> list[Transfer]:
        """Transfers out of `number` at or after `since` (all when None), oldest first."""
        return self._read(lambda conn: self._transfers(conn, number, since))

    def account_report(self, number: str, since: datetime | None) -> tuple[Account | None, list[Transfer]]:
        """The account and its transfers since `since`, read in one snapshot."""
        return self._read(lambda conn: (self._account(conn, number), self._transfers(conn, number, since)))

    @staticmethod
    def _hold(conn: sqlite3.Connection, hold_id: str) -> Hold | None:
        row = conn.execute(f"{_HOLDS} WHERE h.hold_id = ?", (hold_id,)).fetchone()
        return _hold_row(row) if row else None

    @staticmethod
    def _freeze(conn: sqlite3.Connection, freeze_id: str) -> Freeze | None:
        row = conn.execute(f"{_FREEZES} WHERE z.freeze_id = ?", (freeze_id,)).fetchone()
        return _freeze_row(row) if row else None

    def holds(self, account: str | None = None) -> list[Hold]:
        """Holds, oldest first; only those on `account` when given. Each says what became of it
        (Hold.state: held, converted, released, lapsed)."""
        query, params = _HOLDS, ()
        if account is not None:
            query, params = f"{query} WHERE h.account = ?", (account,)
        rows = self._read(lambda conn: conn.execute(f"{query} ORDER BY h.id", params).fetchall())
        return [_hold_row(r) for r in rows]

    def hold(self, hold_id: str) -> Hold | None:
        return self._read(lambda conn: self._hold(conn, hold_id))

    def freezes(self, account: str | None = None) -> list[Freeze]:
        """Freezes, oldest first; only those on `account` when given (Freeze.state: frozen,
        released, lapsed)."""
        query, params = _FREEZES, ()
        if account is not None:
            query, params = f"{query} WHERE z.account = ?", (account,)
        rows = self._read(lambda conn: conn.execute(f"{query} ORDER BY z.id", params).fetchall())
        return [_freeze_row(r) for r in rows]

    def freeze(self, freeze_id: str) -> Freeze | None:
        return self._read(lambda conn: self._freeze(conn, freeze_id))

    def returns(self, account: str | None = None) -> list[FundsReturn]:
        """Returns of frozen money to victims, oldest first; only those out of `account` when
        given. paid_by "transfer" ones are the outgoing return transfers."""
        query, params = _RETURNS, ()
        if account is not None:
            query, params = f"{query} WHERE account = ?", (account,)
        rows = self._read(lambda conn: conn.execute(f"{query} ORDER BY id", params).fetchall())
        return [_return_row(r) for r in rows]
