"""A token bucket per caller: one police unit flooding ReportCase cannot crowd out the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Callers are registry identities (a TLS certificate from our CA), so the table stays small; on a
# plaintext debugging server the key is the claimed signer, so idle (full) buckets are dropped
# past this many rather than letting made-up names grow the table without end.
MAX_CALLERS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class CallerRateLimit:
    """`rate_per_second` requests per caller on average, `burst` at once. `take(caller)` spends a
    token and returns 0.0, or returns how many seconds until one is free (nothing spent)."""

    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate_per_second > 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, caller: str) -> float:
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= MAX_CALLERS:
                self._forget_idle(now)
            bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        for caller in [c for c, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[caller]
