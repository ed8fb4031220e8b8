"""One sandbox carrier's books: the numbers it serves, the numbers ported away from it (and to
whom), the blocks it placed for each case and the unblocks that lifted them, and the answered
orders, in one SQLite file per carrier.

Every block or unblock order is one BEGIN IMMEDIATE transaction that checks the idempotency key
(per order type), decides for each number, writes the blocks or unblocks and stores the answer
together: a retried or concurrent duplicate finds the stored answer and never blocks twice, and a
crash leaves all of it or none of it. The methods block (SQLite does I/O): async callers run them
via asyncio.to_thread; a lock makes the one connection safe across those threads.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from google.protobuf.message import Message

from sandbox.signed import IdempotencyConflict
from sandbox.store import SqliteStore, utc_text, utc_time_or_none
from stopline.v1 import telecom_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (
    number TEXT PRIMARY KEY          -- E.164: a number this carrier serves now
);
CREATE TABLE IF NOT EXISTS ported_out (
    number    TEXT PRIMARY KEY,      -- E.164: a number of this carrier's ranges served elsewhere now
    served_by TEXT NOT NULL          -- the carrier that serves it
);
CREATE TABLE IF NOT EXISTS blocks (
    -- AUTOINCREMENT: a block id is never reused.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    block_id        TEXT UNIQUE,
    case_id         TEXT NOT NULL,
    number          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    blocked_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_by_number_case ON blocks (number, case_id);
-- Blocks lifted on the hub's order, with why and who decided.
CREATE TABLE IF NOT EXISTS unblocks (
    block_id        TEXT PRIMARY KEY REFERENCES blocks (block_id),
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    officer         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    unblocked_at    TEXT NOT NULL
);
-- One stored answer per (order type, idempotency key).
CREATE TABLE IF NOT EXISTS answered (
    order_type        TEXT NOT NULL CHECK (order_type IN ('block', 'unblock')),
    idempotency_key   TEXT NOT NULL,
    order_fingerprint TEXT NOT NULL,
    -- The serialised NumberBlockAnswer exactly as first produced: a repeat is re-sealed from it.
    answer_payload    BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    PRIMARY KEY (order_type, idempotency_key)
);
"""

_ACTIVE = "SELECT block_id, blocked_at FROM blocks b WHERE number = ? AND case_id = ?" \
          " AND NOT EXISTS (SELECT 1 FROM unblocks u WHERE u.block_id = b.block_id)"  # fmt: skip


def fingerprint(content: list) -> str:
    """What makes two orders "the same order": SHA-256 of the JSON of their content (not of the
    envelope, whose time, nonce and signature differ on every retry)."""
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Block:
    """A block as recorded, and its unblock if it was lifted."""

    block_id: str
    case_id: str
    number: str
    reason: str
    requested_by: str
    idempotency_key: str
    blocked_at: datetime
    unblocked_at: datetime | None = None
    unblock_reason: str = ""
    unblocked_by: str = ""  # the police unit that decided
    unblock_officer: str = ""

    @property
    def in_force(self) -> bool:
        return self.unblocked_at is None


@dataclass(frozen=True)
class OrderResult:
    answer_payload: bytes  # the serialised NumberBlockAnswer, byte-identical on every repeat
    answer: telecom_pb2.NumberBlockAnswer
    replayed: bool  # the key was answered before: nothing was applied now


@dataclass(frozen=True)
class NumberStatus:
    """What QueryNumber reports about a number."""

    served: bool
    served_by: str  # not served here: who serves it (ported away), "" when unknown
    blocked: bool  # a block of any case is in force


class NumberStore(SqliteStore):
    def __init__(self, path: Path, carrier_id: str):
        self.carrier_id = carrier_id
        super().__init__(path, _SCHEMA)

    # --- seeding ---------------------------------------------------------------------------

    def seed(self, subscribers: Iterable[str], ported_out: Mapping[str, str] = {}) -> int:  # noqa: B006 - read only
        """Add the scenario's subscribers and ported numbers that are not there yet; return how
        many subscribers were added. Blocks placed before (a restart) stay as they are."""
        subscribers, ported_out = list(subscribers), dict(ported_out)

        def work(conn: sqlite3.Connection) -> int:
            added = 0
            for number in subscribers:
                added += conn.execute("INSERT OR IGNORE INTO subscribers (number) VALUES (?)", (number,)).rowcount
            for number, carrier in ported_out.items():
                conn.execute("INSERT OR IGNORE INTO ported_out (number, served_by) VALUES (?, ?)", (number, carrier))
            return added

        return self._write(work)

    # --- orders ----------------------------------------------------------------------------

    @staticmethod
    def _answered(conn: sqlite3.Connection, order_type: str, key: str, print_: str) -> OrderResult | None:
        row = conn.execute(
            "SELECT order_fingerprint, answer_payload FROM answered WHERE order_type = ? AND idempotency_key = ?",
            (order_type, key),
        ).fetchone()
        if row is None:
            return None
        if row[0] != print_:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for a different {order_type} order")
        payload = bytes(row[1])
        return OrderResult(payload, telecom_pb2.NumberBlockAnswer.FromString(payload), replayed=True)

    @staticmethod
    def _store(conn, order_type: str, key: str, print_: str, answer: Message, now: datetime) -> OrderResult:
        payload = answer.SerializeToString(deterministic=True)
        conn.execute(
            "INSERT INTO answered (order_type, idempotency_key, order_fingerprint, answer_payload, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (order_type, key, print_, payload, utc_text(now)),
        )
        return OrderResult(payload, answer, replayed=False)

    @staticmethod
    def _not_served(conn: sqlite3.Connection, number: str) -> telecom_pb2.NumberResult | None:
        """NOT_SERVED (with who serves it, when ported away) unless this carrier serves it."""
        if conn.execute("SELECT 1 FROM subscribers WHERE number = ?", (number,)).fetchone():
            return None
        row = conn.execute("SELECT served_by FROM ported_out WHERE number = ?", (number,)).fetchone()
        if row is not None:
            return telecom_pb2.NumberResult(phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_NOT_SERVED,
                                            served_by=row[0], detail=f"ported to {row[0]}")  # fmt: skip
        return telecom_pb2.NumberResult(phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_NOT_SERVED,
                                        detail="not a number this carrier serves")  # fmt: skip

    def _apply(self, order_type: str, order, print_: str, now: datetime, result_for) -> OrderResult:
        """One order in one transaction: the stored answer for a repeated key, else an answer with
        result_for(conn, number) for each number, stored with the key."""

        def work(conn: sqlite3.Connection) -> OrderResult:
            done = self._answered(conn, order_type, order.idempotency_key, print_)
            if done is not None:
                return done
            answer = telecom_pb2.NumberBlockAnswer(idempotency_key=order.idempotency_key, case_id=order.case_id)
            answer.answered_at.FromDatetime(now)
            for number in order.phone_numbers:
                answer.results.append(result_for(conn, number))
            return self._store(conn, order_type, order.idempotency_key, print_, answer, now)

        return self._write(work)

    def apply_block(self, order: telecom_pb2.NumberBlockOrder, now: datetime) -> OrderResult:
        """Block each (validated) number at most once per case: a number already blocked for the
        case answers ALREADY_BLOCKED with the same block id; a number served elsewhere answers
        NOT_SERVED. IdempotencyConflict for a key reused with another block order."""
        print_ = fingerprint([order.case_id, order.requested_by, list(order.phone_numbers), order.reason])

        def block(conn: sqlite3.Connection, number: str) -> telecom_pb2.NumberResult:
            active = conn.execute(_ACTIVE, (number, order.case_id)).fetchone()
            if active is not None:
                return telecom_pb2.NumberResult(
                    phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_ALREADY_BLOCKED, block_id=active[0],
                    detail=f"blocked for this case since {active[1]}",
                )  # fmt: skip
            not_served = self._not_served(conn, number)
            if not_served is not None:
                return not_served
            cur = conn.execute(
                "INSERT INTO blocks (case_id, number, reason, requested_by, idempotency_key, blocked_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (order.case_id, number, order.reason, order.requested_by, order.idempotency_key, utc_text(now)),
            )
            block_id = f"{self.carrier_id}-B{cur.lastrowid:06d}"
            conn.execute("UPDATE blocks SET block_id = ? WHERE id = ?", (block_id, cur.lastrowid))
            return telecom_pb2.NumberResult(phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_BLOCKED,
                                            block_id=block_id, detail="calls and SMS blocked")  # fmt: skip

        return self._apply("block", order, print_, now, block)

    def apply_unblock(self, order: telecom_pb2.NumberUnblockOrder, now: datetime) -> OrderResult:
        """Lift the case's block on each (validated) number, recording why and who decided:
        UNBLOCKED with the block id; NOT_BLOCKED when the case has no block in force on a number
        this carrier serves; NOT_SERVED for a number served elsewhere. IdempotencyConflict for a
        key reused with another unblock order."""
        print_ = fingerprint([order.case_id, list(order.phone_numbers), order.reason, order.decided_by, order.officer])

        def unblock(conn: sqlite3.Connection, number: str) -> telecom_pb2.NumberResult:
            active = conn.execute(_ACTIVE, (number, order.case_id)).fetchone()
            if active is None:
                return self._not_served(conn, number) or telecom_pb2.NumberResult(
                    phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_NOT_BLOCKED,
                    detail="no block of this case to lift")  # fmt: skip
            conn.execute(
                "INSERT INTO unblocks (block_id, reason, decided_by, officer, idempotency_key, unblocked_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (active[0], order.reason, order.decided_by, order.officer, order.idempotency_key, utc_text(now)),
            )
            return telecom_pb2.NumberResult(phone_number=number, outcome=telecom_pb2.NUMBER_OUTCOME_UNBLOCKED,
                                            block_id=active[0], detail="block lifted")  # fmt: skip

        return self._apply("unblock", order, print_, now, unblock)

    # --- reading ---------------------------------------------------------------------------

    def status(self, number: str) -> NumberStatus:
        def work(conn: sqlite3.Connection) -> NumberStatus:
            served = conn.execute("SELECT 1 FROM subscribers WHERE number = ?", (number,)).fetchone() is not None
            row = conn.execute("SELECT served_by FROM ported_out WHERE number = ?", (number,)).fetchone()
            blocked = conn.execute(
                "SELECT 1 FROM blocks b WHERE number = ?"
                " AND NOT EXISTS (SELECT 1 FROM unblocks u WHERE u.block_id = b.block_id)",
                (number,),
            ).fetchone()
            return NumberStatus(served, "" if served or row is None else row[0], blocked is not None)

        return self._read(work)

    def blocks(self, number: str | None = None, case_id: str | None = None) -> list[Block]:
        """Every block placed (in force or lifted), oldest first; filtered by number and case."""
        sql = (
            "SELECT b.block_id, b.case_id, b.number, b.reason, b.requested_by, b.idempotency_key, b.blocked_at,"
            " u.unblocked_at, u.reason, u.decided_by, u.officer FROM blocks b"
            " LEFT JOIN unblocks u ON u.block_id = b.block_id WHERE (?1 IS NULL OR b.number = ?1)"
            " AND (?2 IS NULL OR b.case_id = ?2) ORDER BY b.id"
        )
        rows = self._read(lambda conn: conn.execute(sql, (number, case_id)).fetchall())
        return [
            Block(*r[:6], utc_time_or_none(r[6]), utc_time_or_none(r[7]), r[8] or "", r[9] or "", r[10] or "")  # type: ignore[arg-type]
            for r in rows
        ]

    def subscribers(self) -> list[str]:
        return [n for (n,) in self._read(lambda conn: conn.execute("SELECT number FROM subscribers ORDER BY number").fetchall())]
