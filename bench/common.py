"""What every benchmark shares: the embedded dev server with the hub's settings, the bare-Temporal
baseline workflows, latency statistics, the machine's description, and a clock on the audit log
that says when the hub recorded a bank's signed answer.

The baseline is plain Temporal with nothing of Stopline in it: workflows whose activities do
nothing but return, run by a worker with default settings on the same dev server, in the same
process and run as the hub's numbers. Stopline is reported as ratios to it, so a slower or busier
machine moves both and the ratio stays meaningful."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from audit.entry import AuditEntry, Direction, EntryKind
from audit.log import AuditLog
from bench.bare import BARE_ACTIVITIES, BARE_WORKFLOWS, BareFanOut, BareSequence, bare_worker, noop  # noqa: F401
from stopline.domain import SEARCH_ATTRIBUTES
from stopline.embedded import FAST_SQLITE_ARGS, temporal_cli

RESULTS = Path(__file__).parent / "results"


# --- the dev server --------------------------------------------------------------------------


@asynccontextmanager
async def dev_server(data: Path) -> AsyncIterator[WorkflowEnvironment]:
    """The embedded dev server exactly as `stopline up` runs it (SQLite file, fast pragmas)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(data / "temporal.db"),
        dev_server_extra_args=list(FAST_SQLITE_ARGS),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield env
    finally:
        await env.shutdown()


# --- statistics ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))]


def summary(values_ms: list[float]) -> dict:
    """Median and tail with their spread: p25-p75 and min/max, in ms."""
    return {
        "n": len(values_ms),
        "p50_ms": round(statistics.median(values_ms), 1),
        "p95_ms": round(percentile(values_ms, 95), 1),
        "p99_ms": round(percentile(values_ms, 99), 1),
        "p25_ms": round(percentile(values_ms, 25), 1),
        "p75_ms": round(percentile(values_ms, 75), 1),
        "min_ms": round(min(values_ms), 1),
        "max_ms": round(max(values_ms), 1),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cpu": cpu,
        "memory_gb": memory_gb,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


# --- when the hub recorded an answer -----------------------------------------------------------


@dataclass
class _CaseClock:
    answers: dict[str, list[float]] = field(default_factory=dict)  # step kind -> perf_counter of each
    waiters: list[tuple[str, int, asyncio.Future]] = field(default_factory=list)


class AnswerClock:
    """Notes the moment the hub's audit log durably records each signed answer to a stop-payment
    ("stop") or an account query ("query"), and each order about to leave ("stop-sent",
    "query-sent": recorded just before it is sent), per case: direction IN, indexed under the request's
    idempotency key, whose step names the kind. A recorded stop answer is the point at which the
    hub knows money is held. Installed on the AuditLog instance the worker's activities write
    through, so it measures the real path, fsync included."""

    KINDS = ("stop", "query")

    def __init__(self, audit: AuditLog, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._cases: dict[str, _CaseClock] = {}
        real_append = audit.append

        def append(*entries: AuditEntry, idempotency_key: str | None = None) -> int:
            index = real_append(*entries, idempotency_key=idempotency_key)
            at = time.perf_counter()
            kind = next((k for k in self.KINDS if idempotency_key and f"/{k}/" in idempotency_key), None)
            if kind is not None:
                for entry in entries:
                    if entry.kind is EntryKind.ENVELOPE and entry.direction is Direction.IN:
                        self._answered(entry.case_id, kind, at)
                    elif entry.kind is EntryKind.ENVELOPE and entry.direction is Direction.OUT:
                        self._answered(entry.case_id, f"{kind}-sent", at)  # about to leave
            return index

        audit.append = append  # type: ignore[method-assign]

    def _answered(self, case_id: str, kind: str, at: float) -> None:
        with self._lock:
            clock = self._cases.setdefault(case_id, _CaseClock())
            answers = clock.answers.setdefault(kind, [])
            answers.append(at)
            ready = [f for k, n, f in clock.waiters if k == kind and len(answers) >= n]
            clock.waiters = [(k, n, f) for k, n, f in clock.waiters if not (k == kind and len(answers) >= n)]
        for future in ready:
            self._loop.call_soon_threadsafe(lambda f=future: f.done() or f.set_result(None))

    async def nth(self, case_id: str, n: int, kind: str = "stop", within: float = 30.0) -> float:
        """When the case's `n`-th answer of `kind` was recorded (waits for it)."""
        with self._lock:
            clock = self._cases.setdefault(case_id, _CaseClock())
            answers = clock.answers.get(kind, [])
            if len(answers) >= n:
                return sorted(answers)[n - 1]
            future = self._loop.create_future()
            clock.waiters.append((kind, n, future))
        await asyncio.wait_for(future, within)
        with self._lock:
            return sorted(self._cases[case_id].answers[kind])[n - 1]

    def at_the_banks(self, case_id: str, until: float) -> float:
        """Seconds the case's calls spent with the banks before `until`: for each stop and query
        answered by then, from its order being recorded (just before it leaves) to its answer
        being recorded. In a chase the calls run one after another, so this is the part of the
        chase's time the hub waited for banks (network, their checks, their ledger, signing)."""
        with self._lock:
            times = self._cases.get(case_id, _CaseClock()).answers
            total = 0.0
            for kind in self.KINDS:
                sent, answered = sorted(times.get(f"{kind}-sent", [])), sorted(times.get(kind, []))
                for out, back in zip(sent, answered, strict=False):
                    if back <= until:
                        total += back - out
            return total
