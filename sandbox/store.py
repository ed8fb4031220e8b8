"""One SQLite file as every sandbox store keeps it (the bank's ledger, a carrier's numbers, a
regulator's file): one connection, opened lazily under a lock, transactions it begins itself."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path


def utc_text(at: datetime) -> str:
    """Fixed-width UTC text, so SQL string comparison orders times correctly. The year is padded
    by hand: strftime's %Y gives "999", not "0999", and "999-..." would sort after "2026-..."."""
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone: sandbox times are UTC")
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at:%m-%dT%H:%M:%S.%f}Z"


def utc_time(text: str) -> datetime:
    """The time utc_text wrote."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utc_time_or_none(text: str | None) -> datetime | None:
    return utc_time(text) if text is not None else None


class SqliteStore:
    def __init__(self, path: Path, schema: str):
        self.path = Path(path)
        self._schema = schema
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connection()  # create the file and schema now, so a bad path fails early

    def _connection(self) -> sqlite3.Connection:
        """Open lazily (under the lock): after close() the store reopens the same file on next
        use, which is what a restarted institution does."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so each transaction is exactly the
            # statements we mean. check_same_thread=False: to_thread uses pool threads; the lock
            # serialises them.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: what an answer reports (a hold, a block, a receipt) must survive a power cut,
            # not just a crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")  # another process on the same file waits
            conn.executescript(self._schema)
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
