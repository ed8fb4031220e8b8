"""The audit log as an auditor meets it: it verifies from the stored bytes and the hub's
checkpoint key alone, every entry can be proved, and any change to the file is caught and located."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpointer import Checkpointer
from audit.entry import AuditEntry, Direction, EntryFormatError, EntryKind
from audit.log import AuditLog, crosses_multiple, verify_log
from audit.merkle import hash_leaf, verify_consistency, verify_inclusion
from audit.note import NoteSigner, open_checkpoint
from audit.store import SqliteAuditStore
from stopline.auditcli import EnvelopeSignatures
from stopline.v1 import common_pb2, envelope_pb2
from trust.envelope import seal
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

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


def append_and_checkpoint(audit: AuditLog, entries) -> None:
    """Append, signing whenever an append says a checkpoint is due: what the background
    checkpointer (audit/checkpointer.py) does, without its thread."""
    for e in entries:
        audit.append(e)
        if audit.checkpoint_due.is_set():
            audit.checkpoint()


@pytest.fixture
def log(tmp_path, signer) -> AuditLog:
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), signer, ORIGIN, checkpoint_every=10)
    append_and_checkpoint(audit, (entry(i) for i in range(37)))
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
    from audit.checkpointer import Checkpointer
    from audit.entry import AuditEntry, Direction, EntryKind
    from audit.log import AuditLog
    from audit.note import NoteSigner
    from audit.store import SqliteAuditStore

    path, name, count, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
    log = AuditLog(SqliteAuditStore(path), NoteSigner("stopline.test/audit", Ed25519PrivateKey.from_private_bytes(key)),
                   "stopline.test/audit", checkpoint_every=25)
    with Checkpointer(log, every_seconds=3600):  # as the hub runs: each process that appends signs too
        for i in range(count):
            index = log.append(AuditEntry(EntryKind.DECISION, "BX-W", name, Direction.INTERNAL,
                                          datetime.now(UTC), f"{name} {i}".encode()))
            print(index, f"{name} {i}", flush=True)  # acknowledged
    """
)


def start_writer(path, name, count, signer: NoteSigner) -> subprocess.Popen:
    key = signer.private_key.private_bytes_raw().hex()
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count), key], stdout=subprocess.PIPE, text=True)


def test_two_writer_processes_share_one_log(tmp_path, signer):
    path = tmp_path / "audit.db"
    SqliteAuditStore(path).close()
    writers = [start_writer(path, name, 200, signer) for name in ("worker-a", "worker-b")]
    acked = {}
    for w in writers:
        out, _ = w.communicate(timeout=60)
        assert w.returncode == 0
        for line in out.splitlines():
            index, text = line.split(" ", 1)
            acked[int(index)] = text
    assert sorted(acked) == list(range(400))
    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN)
    # Both processes signed checkpoints of the shared log as they went, and on exit: every one
    # of them must match the tree recomputed from the entries.
    report = verify(log, signer)
    assert report.ok, report.problem
    assert report.checkpoints >= 2 and report.latest_checkpoint == 400
    stored = {i: AuditEntry.decode(leaf).payload.decode() for i, leaf, _ in log.store.leaves()}
    assert stored == acked


def test_a_writer_killed_mid_write_loses_no_acknowledged_entry(tmp_path, signer):
    path = tmp_path / "audit.db"
    SqliteAuditStore(path).close()
    writer = start_writer(path, "worker-k", 100_000, signer)
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
    report = verify(log, signer)
    assert report.ok, report.problem


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


def test_entry_times_decode_as_before():
    """Decoding reads the canonical time without strptime; anything else strptime still decides."""
    canonical = entry(5)
    assert AuditEntry.decode(canonical.encode()).recorded_at == canonical.recorded_at

    def with_time(text: bytes) -> bytes:
        leaf = canonical.encode()
        stamp = canonical.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        return leaf.replace(len(stamp).to_bytes(4, "big") + stamp, len(text).to_bytes(4, "big") + text)

    assert AuditEntry.decode(with_time(b"2026-1-5T01:10:00.5Z")).recorded_at == datetime(2026, 1, 5, 1, 10, 0, 500000, tzinfo=UTC)
    with pytest.raises(EntryFormatError, match="day is out of range for month"):
        AuditEntry.decode(with_time(b"2026-02-30T01:10:00.000000Z"))
    with pytest.raises(EntryFormatError, match="does not match format"):
        AuditEntry.decode(with_time(b"2026-11-25 01:10:00.000000Z"))


# --- checkpoints are signed off the append path ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpySigner(NoteSigner):
    """A NoteSigner that notes which thread asked for each signature."""

    threads: list[str] = dataclasses.field(default_factory=list, compare=False)

    def signature_line(self, text: str) -> str:
        self.threads.append(threading.current_thread().name)
        return super().signature_line(text)


class WatchedEvent(threading.Event):
    """`checkpoint_due` that tells when the checkpointer has gone back to waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited_on.set()
        return super().wait(timeout)


def wait_for(condition, what: str) -> None:
    """Poll briefly for something another thread does; a bound instead of a hang if it never does."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def test_crossing_a_checkpoint_boundary_is_only_flagged():
    assert crosses_multiple(9, 1, 10) and crosses_multiple(5, 20, 10) and crosses_multiple(0, 10, 10)
    assert not crosses_multiple(10, 1, 10) and not crosses_multiple(0, 9, 10)


def test_append_never_signs_the_background_checkpointer_does(tmp_path):
    spy = SpySigner(ORIGIN, Ed25519PrivateKey.generate())
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), spy, ORIGIN, checkpoint_every=10)
    for i in range(25):  # past two boundaries, and no checkpointer running
        audit.append(entry(i))
    assert spy.threads == [] and audit.store.checkpoints() == []
    assert audit.checkpoint_due.is_set()
    audit.checkpoint()
    assert not audit.checkpoint_due.is_set()

    audit.checkpoint_due = WatchedEvent()
    # The timer is an hour: only an append crossing a boundary can make it sign within the test.
    with Checkpointer(audit, every_seconds=3600):
        wait_for(audit.checkpoint_due.waited_on.is_set, "the checkpointer waits")
        for i in range(25, 30):
            audit.append(entry(i))
        wait_for(lambda: audit.store.checkpoints()[-1][0] == 30, "a checkpoint at 30")
        for i in range(30, 33):
            audit.append(entry(i))  # no boundary: signed on the way out
    assert [size for size, _ in audit.store.checkpoints()] == [25, 30, 33]
    # Signed by: the explicit checkpoint() above, the checkpointer's thread, stop() on the way out.
    assert spy.threads == ["MainThread", "audit-checkpointer", "MainThread"]


def test_the_timer_signs_a_tail_no_boundary_reaches(tmp_path, signer):
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), signer, ORIGIN, checkpoint_every=10**9)
    audit.checkpoint_due = WatchedEvent()
    with Checkpointer(audit, every_seconds=0.01):
        wait_for(audit.checkpoint_due.waited_on.is_set, "the checkpointer waits")
        audit.append(entry(0))
        wait_for(lambda: audit.store.checkpoints() != [], "a checkpoint")
    assert verify(audit, signer).latest_checkpoint == 1


def test_a_failed_checkpoint_is_reported_and_the_thread_goes_on(log, signer):
    from audit.log import AuditIntegrityError

    leaf = bytearray(entry(3).encode())
    leaf[-1] ^= 1
    tamper(log, "UPDATE entries SET leaf = ? WHERE idx = 3", bytes(leaf))
    restarted = AuditLog(SqliteAuditStore(log.store.path), signer, ORIGIN)
    restarted.append(entry(99))  # an unsigned tail: the first round tries at once
    errors: list[Exception] = []
    with Checkpointer(restarted, every_seconds=0.01, on_error=errors.append):
        wait_for(lambda: len(errors) >= 2, "two failed rounds")
    assert all(isinstance(e, AuditIntegrityError) for e in errors)


# --- parallel verification reports what a one-by-one pass would ------------------------------

BANK = "qilu-bank"


@pytest.fixture(scope="module")
def bank_key() -> SigningKey:
    return SigningKey.generate(BANK)


def registry_for(key: SigningKey) -> Registry:
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)
    keys = (registered_key(key.public_key, key.key_id, valid_from),)
    return Registry([Institution(BANK, BANK, InstitutionKind.BANK, keys=keys)])


@pytest.fixture
def envelope_log(tmp_path, signer, bank_key) -> AuditLog:
    """37 entries, each 7th a decision, the rest envelopes signed by the bank; checkpoints at 10,
    20, 30 and 37."""
    audit = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), signer, ORIGIN, checkpoint_every=10)
    entries = []
    for i in range(37):
        at = datetime(2026, 11, 25, 1, 10, i, tzinfo=UTC)
        if i % 7 == 6:
            entries.append(AuditEntry(EntryKind.DECISION, f"BX-{i}", "hub", Direction.INTERNAL, at, b"{}"))
        else:
            envelope = seal(common_pb2.Money(minor_units=i, currency="CNY"), bank_key, now=at)
            entries.append(AuditEntry(EntryKind.ENVELOPE, f"BX-{i}", BANK, Direction.IN, at, envelope.SerializeToString()))
    append_and_checkpoint(audit, entries)
    audit.checkpoint()
    return audit


def forge_signature(log: AuditLog, index: int) -> None:
    """Change one bit of an envelope's signature and store it with a matching leaf hash."""
    (_, leaf, _) = next(log.store.leaves(index, index + 1))
    recorded = AuditEntry.decode(leaf)
    envelope = envelope_pb2.Envelope.FromString(recorded.payload)
    envelope.signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    forged = dataclasses.replace(recorded, payload=envelope.SerializeToString()).encode()
    tamper(log, "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = ?", forged, hash_leaf(forged), index)


def damage(log: AuditLog, what: str, where: int) -> None:
    if what == "signature":
        forge_signature(log, where)
    elif what == "byte":
        (_, leaf, _) = next(log.store.leaves(where, where + 1))
        tamper(log, "UPDATE entries SET leaf = ? WHERE idx = ?", leaf[:-1] + bytes([leaf[-1] ^ 1]), where)
    elif what == "drop":
        tamper(log, "DELETE FROM entries WHERE idx = ?", where)
    elif what == "checkpoint":
        impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
        (note,) = [n for size, n in log.store.checkpoints() if size == where]
        text = note.split("\n\n")[0] + "\n"
        tamper(log, "UPDATE checkpoints SET note = ? WHERE size = ?", text + "\n" + impostor.signature_line(text), where)


@pytest.mark.parametrize(
    "damages, first_problem",
    [
        ([], None),
        # A forged signature high up, something else wrong further down: the lower one wins.
        ([("signature", 33), ("byte", 12)], "entry 12: its bytes do not match its recorded hash"),
        ([("signature", 33), ("drop", 15)], "entry 15 is missing"),
        ([("signature", 33), ("checkpoint", 10)], "checkpoint at size 10: "),
        # And the other way round, including the later checkpoint the forgery itself breaks.
        ([("signature", 12), ("byte", 33)], f"entry 12: envelope signature: signature by {BANK} key"),
        ([("signature", 12), ("signature", 3)], f"entry 3: envelope signature: signature by {BANK} key"),
    ],
)
def test_parallel_verification_reports_the_first_problem_in_index_order(envelope_log, signer, bank_key, damages, first_problem):
    for what, where in damages:
        damage(envelope_log, what, where)
    check = EnvelopeSignatures(registry_for(bank_key))
    store = SqliteAuditStore(envelope_log.store.path)
    one_by_one = verify_log(store, [signer.verifier], ORIGIN, check, workers=1)
    in_parallel = verify_log(store, [signer.verifier], ORIGIN, check, workers=2, chunk_entries=4)
    assert in_parallel == one_by_one
    if first_problem is None:
        assert one_by_one.ok and one_by_one.entries == 37 and one_by_one.checkpoints == 4
    else:
        assert one_by_one.problem.startswith(first_problem), one_by_one.problem


@dataclasses.dataclass(frozen=True)
class LowFinishesLast:
    """Flags entries `low` and `high`, and holds back the answer for `low` until `high` has been
    checked, so the chunk holding the higher problem is sure to finish first."""

    flag_file: Path
    low: int
    high: int

    def __call__(self, index: int, entry: AuditEntry) -> str | None:
        if index == self.high:
            self.flag_file.touch()
            return "the higher problem"
        if index == self.low:
            deadline = time.monotonic() + 10
            while not self.flag_file.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            return "the lower problem" if self.flag_file.exists() else "the higher chunk never ran"
        return None


@pytest.mark.parametrize("chunk_entries, high", [(4, 9), (10, 25)])
def test_the_lowest_problem_wins_whatever_order_chunks_finish_in(log, signer, tmp_path, chunk_entries, high):
    # On 2 workers entry 1's chunk (the first) waits while the other worker checks the next
    # chunks, `high` among them. Chunks of 4: ten chunks, more than are let in flight at once, so
    # results are collected while leaves are still handed out; of 10: all are collected at the end.
    check = LowFinishesLast(tmp_path / "high-checked", low=1, high=high)
    store = SqliteAuditStore(log.store.path)
    report = verify_log(store, [signer.verifier], ORIGIN, check, workers=2, chunk_entries=chunk_entries)
    assert (tmp_path / "high-checked").exists()
    assert report.problem == "entry 1: the lower problem" and report.entries == 1


# --- the index from idempotency keys to entries (not part of the tree) -------------------------


def test_entries_of_one_request_are_found_by_its_idempotency_key(tmp_path, signer):
    log = AuditLog(SqliteAuditStore(tmp_path / "audit.db"), signer, ORIGIN, checkpoint_every=10)
    key = "case-BX-1/number/+8617012345678/block/1"
    log.append(entry(0))
    first = log.append(entry(1), idempotency_key=key)  # attempt 1 out
    log.append(entry(2), idempotency_key="case-BX-1/other/1")
    log.append(entry(3))
    second = log.append(entry(5), entry(7), idempotency_key=key)  # attempt 2 out, and again

    found = log.entries_for_key(key)
    assert [f.index for f in found] == [first, second, second + 1] == [1, 4, 5]
    assert [f.entry for f in found] == [entry(1), entry(5), entry(7)]
    stored = {i: (leaf, h) for i, leaf, h in log.store.leaves()}
    for f in found:
        leaf, leaf_hash = stored[f.index]
        assert f.leaf_hash == leaf_hash == hash_leaf(leaf) == hash_leaf(f.entry.encode())
    assert log.entries_for_key("case-BX-1/never-sent/1") == []
    # A process opening the file afresh reads the same index.
    assert SqliteAuditStore(log.store.path).indexes_for_key(key) == [1, 4, 5]


def test_the_key_index_changes_nothing_an_auditor_verifies(tmp_path, signer):
    with_keys = AuditLog(SqliteAuditStore(tmp_path / "a.db"), signer, ORIGIN, checkpoint_every=10)
    without = AuditLog(SqliteAuditStore(tmp_path / "b.db"), signer, ORIGIN, checkpoint_every=10)
    for i in range(25):
        with_keys.append(entry(i), idempotency_key=f"key-{i % 4}")
        without.append(entry(i))
    assert with_keys.checkpoint() == without.checkpoint()  # same size, same root
    assert list(with_keys.store.leaves()) == list(without.store.leaves())
    assert verify(with_keys, signer).ok
    # The index is not evidence: deleting it (or all of it) leaves a log that verifies.
    tamper(with_keys, "DELETE FROM entry_keys")
    assert verify(with_keys, signer).ok
    assert with_keys.entries_for_key("key-1") == []


def test_an_index_row_is_written_with_its_entry_or_not_at_all(tmp_path, signer):
    store = SqliteAuditStore(tmp_path / "audit.db")
    with pytest.raises(ValueError, match="2 idempotency keys for 1 entries"):
        store.append([entry(0).encode()], ["k", "k"])
    assert store.size() == 0
    assert store.append([entry(0).encode()], ["k"]) == 0
    # An index row that cannot be written (a stray row already claims the next index) rolls the
    # entry back with it: the log never holds an entry its index should name and does not.
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO entry_keys (idempotency_key, idx) VALUES ('dup', 1)")
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.IntegrityError):
        store.append([entry(1).encode()], ["dup"])
    assert store.size() == 1
    assert store.indexes_for_key("k") == [0]


def test_a_log_made_before_the_key_index_opens_and_verifies(tmp_path, signer):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE entries (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, leaf_hash BLOB NOT NULL);
        CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
        """
    )
    conn.executemany(
        "INSERT INTO entries (idx, leaf, leaf_hash) VALUES (?, ?, ?)",
        [(i, entry(i).encode(), hash_leaf(entry(i).encode())) for i in range(12)],
    )
    conn.commit()
    conn.close()

    log = AuditLog(SqliteAuditStore(path), signer, ORIGIN)
    log.checkpoint()
    assert verify(log, signer).ok
    assert log.entries_for_key("anything") == []
    index = log.append(entry(12), idempotency_key="new-key")
    assert [f.index for f in log.entries_for_key("new-key")] == [index] == [12]
    log.checkpoint()
    report = verify(log, signer)
    assert report.ok and report.entries == 13
