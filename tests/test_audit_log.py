"""The audit log as an auditor meets it: it verifies from the stored bytes and the hub's
checkpoint key alone, every entry can be proved, and any change to the file is caught and located."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.entry import AuditEntry, Direction, EntryKind
from audit.log import AuditLog, verify_log
from audit.merkle import hash_leaf, verify_consistency, verify_inclusion
from audit.note import NoteSigner, open_checkpoint
from audit.store import SqliteAuditStore

ORIGIN = "stopline.test/audit"


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        kind=EntryKind.ENVELOPE,
        case_id=f"BX-{i % 3}",
        institution="qilu-bank",
        direction=Direction.OUT if i % 2 else Direction.IN,
        recorded_at=datetime(2026, 11, 25, 1, 10, i % 60, tzinfo=UTC),
        payload=f"envelope {i}".encode(),
    )


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def log(tmp_path, signer) -> AuditLog:
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), signer, ORIGIN, checkpoint_every=10)
    for i in range(37):
        audit.append(entry(i))
    audit.checkpoint()  # as on shutdown: the last 7 entries are covered too
    return audit


def verify(log: AuditLog, signer: NoteSigner):
    return verify_log(SqliteAuditStore(log.store.path), [signer.verifier], ORIGIN)


def tamper(log: AuditLog, sql: str, *args) -> None:
    conn = sqlite3.connect(log.store.path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_entries_round_trip_exactly():
    for i in range(5):
        assert AuditEntry.decode(entry(i).encode()) == entry(i)


def test_an_untouched_log_verifies_with_every_checkpoint(log, signer):
    report = verify(log, signer)
    assert report.ok, report.problem
    assert report.entries == 37
    assert [size for size, _ in log.store.checkpoints()] == [10, 20, 30, 37]


def test_every_entry_has_an_inclusion_proof_to_the_signed_head(log, signer):
    size, note = log.store.checkpoints()[-1]
    checkpoint = open_checkpoint(note, [signer.verifier], origin=ORIGIN)
    for index in (0, 17, 36):
        proof_size, proof = log.prove_inclusion(index, size)
        assert proof_size == checkpoint.size
        verify_inclusion(index, size, hash_leaf(entry(index).encode()), proof, checkpoint.root_hash)


def test_old_checkpoints_are_prefixes_of_new_ones(log, signer):
    heads = {size: open_checkpoint(note, [signer.verifier]) for size, note in log.store.checkpoints()}
    for old, new in [(10, 20), (10, 37), (30, 37)]:
        verify_consistency(old, new, heads[old].root_hash, heads[new].root_hash, log.prove_consistency(old, new))


def test_one_flipped_byte_is_found_and_named(log, signer):
    leaf = bytearray(entry(23).encode())
    leaf[-3] ^= 0x20
    tamper(log, "UPDATE entries SET leaf = ? WHERE idx = 23", bytes(leaf))
    report = verify(log, signer)
    assert not report.ok and report.problem.startswith("entry 23:")


def test_a_rewritten_entry_with_a_matching_hash_breaks_the_next_checkpoint(log, signer):
    forged = AuditEntry(EntryKind.ENVELOPE, "BX-1", "qilu-bank", Direction.IN, datetime.now(UTC), b"forged").encode()
    tamper(log, "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 12", forged, hash_leaf(forged))
    report = verify(log, signer)
    assert not report.ok and "checkpoint at size 20" in report.problem


def test_reordered_entries_are_caught(log, signer):
    rows = dict(sqlite3.connect(log.store.path).execute("SELECT idx, leaf FROM entries WHERE idx IN (3, 4)").fetchall())
    tamper(log, "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 3", rows[4], hash_leaf(rows[4]))
    tamper(log, "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 4", rows[3], hash_leaf(rows[3]))
    report = verify(log, signer)
    assert not report.ok and "checkpoint at size 10" in report.problem


def test_a_dropped_entry_is_named(log, signer):
    tamper(log, "DELETE FROM entries WHERE idx = 15")
    report = verify(log, signer)
    assert not report.ok and report.problem.startswith("entry 15 is missing")


def test_a_truncated_log_is_caught(log, signer):
    tamper(log, "DELETE FROM entries WHERE idx >= 30")
    report = verify(log, signer)
    assert not report.ok and "checkpoint at size 37 covers entries the log no longer has" in report.problem


def test_a_forged_checkpoint_is_caught(log, signer):
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    size, note = log.store.checkpoints()[-1]
    tamper(log, "UPDATE checkpoints SET note = ? WHERE size = ?", note.split("\n\n")[0] + "\n\n" + impostor.signature_line(note.split("\n\n")[0] + "\n"), size)
    report = verify(log, signer)
    assert not report.ok and f"checkpoint at size {size}" in report.problem and "no signature by a known key" in report.problem


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.log import AuditLog
    from audit.note import NoteSigner
    from audit.store import SqliteAuditStore

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = AuditLog(SqliteAuditStore(path), NoteSigner("stopline.test/audit", Ed25519PrivateKey.generate()),
                   "stopline.test/audit", checkpoint_every=10**9)
    for i in range(count):
        index = log.append(AuditEntry(EntryKind.DECISION, "BX-W", name, Direction.INTERNAL,
                                      datetime.now(UTC), f"{name} {i}".encode()))
        print(index, f"{name} {i}", flush=True)  # acknowledged
    """
)


def start_writer(path, name, count) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count)], stdout=subprocess.PIPE, text=True)


def test_two_writer_processes_share_one_log(tmp_path, signer):
    path = tmp_path / "audit.db"
    SqliteAuditStore(path).close()
    writers = [start_writer(path, name, 200) for name in ("worker-a", "worker-b")]
    acked = {}
    for w in writers:
        out, _ = w.communicate(timeout=60)
        assert w.returncode == 0
        for line in out.splitlines():
            index, text = line.split(" ", 1)
            acked[int(index)] = text
    assert sorted(acked) == list(range(400))
    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN)
    log.checkpoint()
    assert verify(log, signer).ok
    stored = {i: AuditEntry.decode(leaf).payload.decode() for i, leaf, _ in log.store.leaves()}
    assert stored == acked


def test_a_writer_killed_mid_write_loses_no_acknowledged_entry(tmp_path, signer):
    path = tmp_path / "audit.db"
    SqliteAuditStore(path).close()
    writer = start_writer(path, "worker-k", 100_000)
    acked = {}
    for line in writer.stdout:
        index, text = line.strip().split(" ", 1)
        acked[int(index)] = text
        if len(acked) == 300:
            writer.kill()  # SIGKILL: no clean-up, maybe mid-transaction
            break
    writer.wait(timeout=30)
    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN)
    stored = {i: AuditEntry.decode(leaf).payload.decode() for i, leaf, _ in log.store.leaves()}
    assert all(stored.get(i) == text for i, text in acked.items())
    log.checkpoint()
    assert verify(log, signer).ok


def test_the_hub_refuses_to_sign_a_head_that_contradicts_an_earlier_checkpoint(log, signer):
    from audit.log import AuditIntegrityError

    forged = AuditEntry(EntryKind.DECISION, "BX-1", "hub", Direction.INTERNAL, datetime.now(UTC), b"{}").encode()
    tamper(log, "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 12", forged, hash_leaf(forged))
    restarted = AuditLog(SqliteAuditStore(log.store.path), signer, ORIGIN)  # a process reading it afresh
    restarted.append(entry(99))
    with pytest.raises(AuditIntegrityError, match="first 20 entries no longer match"):
        restarted.checkpoint()
    assert [size for size, _ in restarted.store.checkpoints()] == [10, 20, 30, 37]


def test_a_flipped_byte_stops_the_hub_signing(log, signer):
    from audit.log import AuditIntegrityError

    leaf = bytearray(entry(3).encode())
    leaf[-1] ^= 1
    tamper(log, "UPDATE entries SET leaf = ? WHERE idx = 3", bytes(leaf))
    with pytest.raises(AuditIntegrityError, match="entry 3"):
        AuditLog(SqliteAuditStore(log.store.path), signer, ORIGIN).checkpoint()
