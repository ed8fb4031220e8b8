"""Audit log speed (issue #3 targets: appending adds under 1 ms to a stop-payment; a 1,000,000-entry
log verifies in under 60 s on a 2-core machine), and envelope signing cost.

    .venv/bin/python -m bench.audit          # writes bench/results/audit.json

AUDIT_BENCH_ENTRIES (default 1,000,000) sets the size of the log verified.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.entry import AuditEntry, Direction, EntryKind
from audit.log import AuditLog, verify_log
from audit.note import NoteSigner
from audit.store import SqliteAuditStore
from bench.run import machine
from stopline.v1 import bank_pb2, common_pb2
from trust.envelope import open_envelope, seal
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

ORIGIN = "stopline.bench/audit"
ENTRIES = int(os.environ.get("AUDIT_BENCH_ENTRIES", 1_000_000))
RESULTS = Path(__file__).parent / "results"


def sample_envelope() -> tuple[bytes, SigningKey, Registry]:
    hub = SigningKey.generate("hub")
    registry = Registry([Institution("hub", "hub", InstitutionKind.HUB,
                                     keys=(registered_key(hub.public_key, hub.key_id, datetime(2026, 1, 1, tzinfo=UTC)),))])  # fmt: skip
    order = bank_pb2.StopPaymentOrder(
        idempotency_key="case-BX-1/stop/qilu-bank/6229110000800001/1", case_id="BX-1",
        account=common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000800001"),
        amount=common_pb2.Money(minor_units=80_000_000, currency="CNY"), requested_by="police-boxing",
    )  # fmt: skip
    return seal(order, hub).SerializeToString(), hub, registry


def entry(payload: bytes, i: int = 0) -> AuditEntry:
    return AuditEntry(EntryKind.ENVELOPE, f"BX-{i % 1000}", "qilu-bank", Direction.OUT, datetime.now(UTC), payload)


WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.store import SqliteAuditStore
    store = SqliteAuditStore(sys.argv[1]); n = int(sys.argv[2]); payload = b"x" * 300
    start = float(sys.argv[3])
    while time.time() < start: time.sleep(0.001)
    for i in range(n):
        store.append([AuditEntry(EntryKind.ENVELOPE, "BX", "qilu-bank", Direction.OUT, datetime.now(UTC), payload).encode()])
    """
)


def appends_per_second(tmp: Path, writers: int, per_writer: int = 1000) -> float:
    path = tmp / f"append-{writers}.db"
    SqliteAuditStore(path).close()
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(per_writer), str(start)]) for _ in range(writers)]
    for p in procs:
        assert p.wait() == 0
    elapsed = time.time() - start
    assert SqliteAuditStore(path).size() == writers * per_writer
    return writers * per_writer / elapsed


def main() -> None:
    payload, hub, registry = sample_envelope()
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    result: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        # One append as a stop-payment activity makes it (durable: synchronous=FULL).
        log = AuditLog(SqliteAuditStore(tmp / "latency.db"), signer, ORIGIN, checkpoint_every=10**9)
        latencies = []
        for i in range(500):
            started = time.perf_counter()
            log.append(entry(payload, i))
            latencies.append((time.perf_counter() - started) * 1000)
        result["append_ms"] = {"p50": round(statistics.median(latencies), 3),
                               "p95": round(sorted(latencies)[int(0.95 * len(latencies))], 3)}  # fmt: skip
        result["appends_per_second"] = {
            "1_writer_process": round(appends_per_second(tmp, 1)),
            "2_writer_processes": round(appends_per_second(tmp, 2)),
        }

        # Envelope cost: seal (serialise + sign) and open (verify + parse).
        order = bank_pb2.StopPaymentOrder.FromString(bank_pb2.StopPaymentOrder().SerializeToString())
        envelope = seal(order, hub)
        n = 2000
        started = time.perf_counter()
        for _ in range(n):
            envelope = seal(order, hub)
        sign_us = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for _ in range(n):
            open_envelope(envelope, bank_pb2.StopPaymentOrder, registry)
        verify_us = (time.perf_counter() - started) / n * 1e6
        result["envelope_us"] = {"seal": round(sign_us, 1), "open": round(verify_us, 1)}

        # A large log, built in batches, then verified from scratch.
        big = AuditLog(SqliteAuditStore(tmp / "big.db"), signer, ORIGIN, checkpoint_every=10**12)
        started = time.perf_counter()
        batch = [entry(payload, i).encode() for i in range(10_000)]
        for _ in range(ENTRIES // len(batch)):
            big.store.append(batch)
            if big.store.size() % 100_000 == 0:
                big.checkpoint()
        big.checkpoint()
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_log(SqliteAuditStore(tmp / "big.db"), [signer.verifier], ORIGIN)
        verify_s = time.perf_counter() - started
        assert report.ok, report.problem
        result["verify"] = {
            "entries": report.entries,
            "checkpoints": report.checkpoints,
            "seconds": round(verify_s, 1),
            "entries_per_second": round(report.entries / verify_s),
            "build_seconds": round(build_s, 1),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
