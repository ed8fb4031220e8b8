"""Audit log speed (issue #3 targets: appending adds under 1 ms to a stop-payment; a 1,000,000-entry
log verifies in under 60 s on a 2-core machine), and envelope signing cost.

    .venv/bin/python -m bench.audit          # writes bench/results/audit.json

AUDIT_BENCH_ENTRIES (default 1,000,000) sets the size of the log verified; AUDIT_BENCH_ONE_PROCESS=0
skips timing the same verification in one process (about two minutes at the default size).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.entry import AuditEntry, Direction, EntryKind
from audit.log import AuditLog, available_cpus, verify_log
from audit.note import NoteSigner
from audit.store import SqliteAuditStore
from stopline.auditcli import EnvelopeSignatures
from stopline.v1 import bank_pb2, common_pb2
from trust.envelope import open_envelope, seal
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

ORIGIN = "stopline.bench/audit"
ENTRIES = int(os.environ.get("AUDIT_BENCH_ENTRIES", 1_000_000))
ONE_PROCESS = os.environ.get("AUDIT_BENCH_ONE_PROCESS", "1") != "0"
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


# A process appending as the hub does: the stop-payment activity hands the entry to a thread
# (`await asyncio.to_thread(audit.append, entry)`) while the hub's checkpointing runs, at the
# default checkpoint settings. Prints each append's latency as the activity sees it, in ms.
HUB_WRITER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from datetime import UTC, datetime
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.log import AuditLog
    from audit.note import NoteSigner
    from audit.store import SqliteAuditStore
    from stopline.config import Settings
    from stopline.stack import checkpointing

    path, origin, key, n, start = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    settings = Settings()
    log = AuditLog(SqliteAuditStore(path), NoteSigner(origin, Ed25519PrivateKey.from_private_bytes(key)), origin,
                   checkpoint_every=settings.audit_checkpoint_every)

    async def main():
        latencies = []
        async with checkpointing(log, settings.audit_checkpoint_seconds):
            while time.time() < start:
                await asyncio.sleep(0.001)
            for i in range(n):
                entry = AuditEntry(EntryKind.ENVELOPE, "BX", "qilu-bank", Direction.OUT, datetime.now(UTC), b"x" * 300)
                started = time.perf_counter()
                await asyncio.to_thread(log.append, entry)
                latencies.append((time.perf_counter() - started) * 1000)
        print(json.dumps(latencies))

    asyncio.run(main())
    """
)


def children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"p50": round(statistics.median(ordered), 3), "p99": round(ordered[int(0.99 * len(ordered))], 3),
            "max": round(ordered[-1], 3), "over_1ms": sum(1 for x in ordered if x > 1)}  # fmt: skip


def hub_append_latency(tmp: Path, signer: NoteSigner, writers: int, preload: int, per_writer: int = 3000) -> dict:
    """Each writer a freshly started hub process, on a log of `preload` entries already signed
    (a hub restarted with history: its first checkpoint re-hashes the whole log)."""
    path = tmp / f"hub-{writers}-{preload}.db"
    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN)
    batch = [AuditEntry(EntryKind.ENVELOPE, "BX", "qilu-bank", Direction.OUT, datetime.now(UTC), b"x" * 300).encode()] * 10_000
    for _ in range(preload // len(batch)):
        log.store.append(batch)
    log.checkpoint()
    key = signer.private_key.private_bytes_raw().hex()
    start = time.time() + 5.0  # every writer imported and checkpointing before the first append
    procs = [
        subprocess.Popen([sys.executable, "-c", HUB_WRITER, str(path), ORIGIN, key, str(per_writer), str(start)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
        for _ in range(writers)
    ]
    latencies: list[float] = []
    for p in procs:
        out, _ = p.communicate()
        assert p.returncode == 0
        latencies += json.loads(out)
    report = verify_log(SqliteAuditStore(path), [signer.verifier], ORIGIN)
    assert report.ok and report.latest_checkpoint == preload + writers * per_writer, report
    return percentiles(latencies)


def distinct_envelope_entries(task: tuple[int, int, list[tuple[str, str, bytes]]]) -> list[bytes]:
    """Entries first .. first + count - 1, each a freshly sealed envelope (no two alike), signed
    in turn by each key given. Module-level: the big log is sealed on a process pool."""
    first, count, keys = task
    signers = [SigningKey(inst, key_id, Ed25519PrivateKey.from_private_bytes(raw)) for inst, key_id, raw in keys]
    at = datetime(2026, 11, 25, tzinfo=UTC)
    out = []
    for i in range(first, first + count):
        key = signers[i % len(signers)]
        case = f"BX-{i // 8}"
        order = bank_pb2.StopPaymentOrder(
            idempotency_key=f"case-{case}/stop/qilu-bank/6229110000800001/{i}", case_id=case,
            account=common_pb2.AccountRef(institution="qilu-bank", account_number="6229110000800001"),
            amount=common_pb2.Money(minor_units=80_000_000 + i, currency="CNY"), requested_by="police-boxing",
        )  # fmt: skip
        now = at + timedelta(milliseconds=i)
        envelope = seal(order, key, now=now)
        direction = Direction.OUT if key.institution_id == "hub" else Direction.IN
        out.append(AuditEntry(EntryKind.ENVELOPE, case, "qilu-bank", direction, now, envelope.SerializeToString()).encode())
    return out


def build_big_log(path: Path, signer: NoteSigner, keys: list[SigningKey]) -> float:
    """ENTRIES envelopes, a checkpoint every 100,000; returns the seconds it took."""
    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN, checkpoint_every=10**12)
    raw = [(k.institution_id, k.key_id, k.private_key.private_bytes_raw()) for k in keys]
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        for batch in pool.map(distinct_envelope_entries, [(lo, min(10_000, ENTRIES - lo), raw) for lo in range(0, ENTRIES, 10_000)]):
            log.store.append(batch)
            if log.store.size() % 100_000 == 0:
                log.checkpoint()
    log.checkpoint()
    return time.perf_counter() - started


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
    # Here, not at the top: verify_log's worker processes import this module again (as spawned
    # processes import __main__), and bench.run pulls in the whole hub.
    from bench.run import machine

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

        # Appends as the hub makes them, its checkpointing running, at the default settings.
        result["hub_append_ms"] = {
            f"{writers}_writer_process{'es' if writers > 1 else ''}_{preload}_entries_before": hub_append_latency(
                tmp, signer, writers, preload
            )
            for writers in (1, 2)
            for preload in (0, 100_000)
        }

        # A large log of distinct envelopes, then verified from scratch: the tree and the entries'
        # format alone, then everything `stopline audit verify` checks (every envelope's
        # signature too) by the command itself, and the same in one process for comparison.
        data = tmp / "data"
        data.mkdir()
        bank = SigningKey.generate("qilu-bank")
        valid_from = datetime(2026, 1, 1, tzinfo=UTC)
        Registry([
            Institution("hub", "hub", InstitutionKind.HUB, keys=(registered_key(hub.public_key, hub.key_id, valid_from),)),
            Institution("qilu-bank", "qilu-bank", InstitutionKind.BANK, keys=(registered_key(bank.public_key, bank.key_id, valid_from),)),
        ]).save(data / "registry.json")  # fmt: skip
        build_s = build_big_log(data / "audit.db", signer, [hub, bank])
        started = time.perf_counter()
        report = verify_log(SqliteAuditStore(data / "audit.db"), [signer.verifier], ORIGIN)
        verify_s = time.perf_counter() - started
        assert report.ok, report.problem
        result["verify"] = {
            "entries": report.entries,
            "checkpoints": report.checkpoints,
            "seconds": round(verify_s, 1),
            "entries_per_second": round(report.entries / verify_s),
            "build_seconds": round(build_s, 1),
        }
        env = os.environ | {"STOPLINE_DATA_DIR": str(data), "STOPLINE_AUDIT_ORIGIN": ORIGIN}
        command = [str(Path(sys.executable).with_name("stopline")), "audit", "verify", "--hub-key", signer.verifier.vkey]
        # CPU seconds too: on a machine shared with other work the wall time grows, the CPU
        # time does not (CPU / cores is the wall time the command needs on an idle machine).
        cpu_before = children_cpu()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        command_s = time.perf_counter() - started
        assert done.returncode == 0 and f"OK: {ENTRIES} entries" in done.stdout, done.stdout + done.stderr
        result["audit_verify"] = {"entries": ENTRIES, "seconds": round(command_s, 1), "workers": available_cpus(),
                                  "cpu_seconds": round(children_cpu() - cpu_before, 1)}  # fmt: skip
        if ONE_PROCESS:
            registry = Registry.load(data / "registry.json")
            cpu_before = time.process_time()
            started = time.perf_counter()
            one = verify_log(SqliteAuditStore(data / "audit.db"), [signer.verifier], ORIGIN, EnvelopeSignatures(registry), workers=1)
            one_s = time.perf_counter() - started
            assert one.ok, one.problem
            result["audit_verify"] |= {"one_process_seconds": round(one_s, 1), "one_process_cpu_seconds": round(time.process_time() - cpu_before, 1),
                                       "speedup": round(one_s / command_s, 2)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
