"""Where the audit log lives: one small interface, a SQLite file by default.

A server database (PostgreSQL) can implement the same few operations for a multi-machine
deployment. The SQLite store takes entries from several processes at once (the index is assigned
inside an IMMEDIATE transaction) and commits with synchronous=FULL, so an entry acknowledged to a
caller survives the process being killed right after.

Beside the entries, an index from idempotency keys to entry indexes (`entry_keys`): which entries
carry the envelopes of one request to an institution, every attempt of it. It is written in the
same transaction as the entries it points at, so it never names an entry that is not stored nor
misses one that is; it is not part of the Merkle tree (the leaves, their hashes and the log's
verification are exactly as without it), and whoever doubts it can rebuild it from the leaves.
A log file made before the index existed opens as it is (the table is added, empty, and entries
appended from then on are indexed).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from audit.merkle import hash_leaf


class AuditStore(Protocol):
    def append(self, leaves: Sequence[bytes], keys: Sequence[str | None] | None = None) -> int:
        """Store the leaf data, in order; return the index of the first. Durable on return.
        keys[i], when given and not None, indexes leaves[i] under that idempotency key, in the
        same transaction."""

    def indexes_for_key(self, key: str) -> list[int]:
        """The indexes of the entries appended under idempotency key `key`, in order."""

    def size(self) -> int: ...

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, leaf data, stored leaf hash) in index order."""

    def add_checkpoint(self, size: int, note: str) -> None: ...

    def checkpoints(self) -> list[tuple[int, str]]:
        """(tree size, signed checkpoint note), oldest first."""


class SqliteAuditStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the writing connection's
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
        self._conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                idx INTEGER PRIMARY KEY,      -- 0-based leaf index
                leaf BLOB NOT NULL,           -- the exact leaf data (audit/entry.py)
                leaf_hash BLOB NOT NULL       -- RFC 6962 leaf hash, kept to make proofs cheap
            );
            CREATE TABLE IF NOT EXISTS checkpoints (
                size INTEGER PRIMARY KEY,
                note TEXT NOT NULL
            );
            -- Not part of the tree: which entries belong to one request (its idempotency key).
            CREATE TABLE IF NOT EXISTS entry_keys (
                idempotency_key TEXT NOT NULL,
                idx INTEGER NOT NULL REFERENCES entries (idx),
                PRIMARY KEY (idempotency_key, idx)
            ) WITHOUT ROWID;
            """
        )
        # Reads get a connection and lock of their own: under WAL a reader never waits for a
        # writer nor holds one up, so a checkpoint re-reading thousands of leaves on a background
        # thread does not make an append on another thread wait for the connection.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()

    def append(self, leaves: Sequence[bytes], keys: Sequence[str | None] | None = None) -> int:
        if keys is not None and len(keys) != len(leaves):
            raise ValueError(f"{len(keys)} idempotency keys for {len(leaves)} entries")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                (first,) = self._conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()
                self._conn.executemany(
                    "INSERT INTO entries (idx, leaf, leaf_hash) VALUES (?, ?, ?)",
                    [(first + i, leaf, hash_leaf(leaf)) for i, leaf in enumerate(leaves)],
                )
                if keys is not None:
                    self._conn.executemany(
                        "INSERT INTO entry_keys (idempotency_key, idx) VALUES (?, ?)",
                        [(key, first + i) for i, key in enumerate(keys) if key],
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return first

    def size(self) -> int:
        with self._read_lock:
            (n,) = self._reader.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()
        return n

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        end = self.size() if end is None else end
        batch = 10_000
        for lo in range(start, end, batch):
            with self._read_lock:
                rows = self._reader.execute(
                    "SELECT idx, leaf, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (lo, min(lo + batch, end)),
                ).fetchall()
            yield from rows

    def indexes_for_key(self, key: str) -> list[int]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT idx FROM entry_keys WHERE idempotency_key = ? ORDER BY idx", (key,)
            ).fetchall()
        return [idx for (idx,) in rows]

    def add_checkpoint(self, size: int, note: str) -> None:
        with self._lock:
            # Two processes may sign the same size at once; the first stays.
            self._conn.execute("INSERT OR IGNORE INTO checkpoints (size, note) VALUES (?, ?)", (size, note))

    def checkpoints(self) -> list[tuple[int, str]]:
        with self._read_lock:
            return self._reader.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()
