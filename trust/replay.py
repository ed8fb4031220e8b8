"""Replay protection: an envelope's nonce may be seen once per signer inside the clock-skew
window. Older envelopes are refused as stale anyway, so a nonce need only be kept that long.

Checked after the signature (an attacker cannot fill the cache with unsigned junk) and before
the payload is acted on. Two stores: in memory for one process (a bank's test server), and a
SQLite file the hub's processes share (gateway and workers see each other's nonces).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol


class NonceCache(Protocol):
    def first_sighting(self, signer: str, nonce: bytes, expires_at: float) -> bool:
        """Record (signer, nonce) until `expires_at` (Unix time); False if it was already there."""


class MemoryNonceCache:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, bytes], float] = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_sighting(self, signer: str, nonce: bytes, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            if now >= self._next_purge:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                self._next_purge = now + 60
            key = (signer, nonce)
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = expires_at
            return True


class SqliteNonceCache:
    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # A nonce lost to a power cut is stale within minutes anyway: no fsync per message.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS nonces (signer TEXT, nonce BLOB, expires_at REAL, PRIMARY KEY (signer, nonce))"
        )
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_sighting(self, signer: str, nonce: bytes, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            if now >= self._next_purge:
                self._conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
                self._next_purge = now + 60
            cursor = self._conn.execute(
                "INSERT INTO nonces (signer, nonce, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (signer, nonce) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE nonces.expires_at <= ?",
                (signer, nonce, expires_at, now),
            )
            return cursor.rowcount == 1
