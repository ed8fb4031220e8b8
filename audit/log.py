"""The hub's audit log: append entries, sign checkpoints, prove and verify.

Verification needs only the stored entries and the hub's checkpoint key: it recomputes every
leaf hash from the leaf data (a changed byte names its entry), recomputes the tree head at every
checkpoint and checks its signature (a reordered, dropped or inserted entry breaks the first
checkpoint after it), and checks each checkpoint is a prefix of the next.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from audit.entry import AuditEntry, EntryFormatError
from audit.merkle import CompactRange, consistency_proof, hash_leaf, inclusion_proof
from audit.note import Checkpoint, NoteError, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint
from audit.store import AuditStore

DEFAULT_CHECKPOINT_EVERY = 1000


class AuditIntegrityError(Exception):
    """The stored log contradicts itself or a checkpoint already signed: nothing is signed."""


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    entry: AuditEntry
    leaf_hash: bytes  # RFC 6962 leaf hash, as stored


class AuditLog:
    def __init__(self, store: AuditStore, signer: NoteSigner, origin: str, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY):
        self.store = store
        self.signer = signer
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self._head = CompactRange()
        self._head_lock = threading.Lock()  # appends and checkpoints come from several threads
        # Set when an append crosses a multiple of `checkpoint_every`; the background
        # checkpointer (audit/checkpointer.py, run by stopline/stack.py `checkpointing`) waits on
        # it alongside its timer.
        self.checkpoint_due = threading.Event()

    def append(self, *entries: AuditEntry, idempotency_key: str | None = None) -> int:
        """Record entries; return the first one's index. Durable when this returns.

        With `idempotency_key`, the entries are also indexed under it (in the same transaction;
        outside the Merkle tree): `entries_for_key` finds them again, e.g. every signed attempt
        of a request an institution left unanswered.

        Crossing a multiple of `checkpoint_every` only sets `checkpoint_due`. Signing here would
        put a checkpoint's cost (re-reading and re-hashing every leaf since this process last
        looked, all of them in a freshly started process, then signing and a synchronous commit)
        on whichever stop-payment happened to cross the boundary."""
        leaves = [e.encode() for e in entries]
        keys = [idempotency_key] * len(leaves) if idempotency_key else None
        first = self.store.append(leaves, keys)
        if crosses_multiple(first, len(entries), self.checkpoint_every):
            self.checkpoint_due.set()
        return first

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head (also on shutdown, so the last entries are covered)."""
        # Cleared before the log is read: every append that set it is stored by now, so this
        # checkpoint covers it; an append that sets it from here on gets the next one.
        self.checkpoint_due.clear()
        # The log only grows, so the tree head extends from where this process last looked. On
        # the way, every new leaf is re-hashed and every checkpoint already signed must agree:
        # a log must never sign a head inconsistent with one it signed before (C2SP
        # tlog-checkpoint), e.g. after a database was restored from an old backup or edited.
        with self._head_lock:
            signed = {size: note for size, note in self.store.checkpoints()}
            for index, leaf, leaf_hash in self.store.leaves(self._head.size):
                if hash_leaf(leaf) != leaf_hash:
                    raise AuditIntegrityError(f"entry {index}: its bytes do not match its recorded hash")
                self._head.append(leaf_hash)
                _check_signed_head(signed.get(self._head.size), self._head)
            size, root = self._head.size, self._head.root()
            # Again with no new leaf: another process may have signed this very head meanwhile.
            _check_signed_head(signed.get(size), self._head)
        checkpoint = Checkpoint(self.origin, size, root)
        if size == 0 or size in signed:
            return checkpoint  # nothing to vouch for yet, or signed already (by another process)
        self.store.add_checkpoint(size, sign_checkpoint(checkpoint, self.signer))
        return checkpoint

    def entries_for_key(self, idempotency_key: str) -> list[LoggedEntry]:
        """The entries appended under `idempotency_key`, in log order, each with its index and
        stored leaf hash (what a LogEntryRef cites; an auditor re-hashes the leaf to check it)."""
        found = []
        for index in self.store.indexes_for_key(idempotency_key):
            for stored_index, leaf, leaf_hash in self.store.leaves(index, index + 1):
                found.append(LoggedEntry(stored_index, AuditEntry.decode(leaf), leaf_hash))
        return found

    def prove_inclusion(self, index: int, size: int | None = None) -> tuple[int, list[bytes]]:
        hashes = leaf_hashes(self.store, size)
        return len(hashes), inclusion_proof(hashes, index)

    def prove_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(leaf_hashes(self.store, new_size), old_size)


def crosses_multiple(first: int, count: int, every: int) -> bool:
    """Do entries first .. first + count - 1 take the log's size past a multiple of `every`?"""
    return (first + count) // every > first // every


def _check_signed_head(note: str | None, head: CompactRange) -> None:
    if note is not None and Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").root_hash != head.root():
        raise AuditIntegrityError(
            f"the first {head.size} entries no longer match the checkpoint signed for them"
        )


def leaf_hashes(store: AuditStore, size: int | None = None) -> list[bytes]:
    """The stored leaf hashes of the first `size` entries (all by default), for proofs."""
    return [h for _, _, h in store.leaves(0, size)]


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    checkpoints: int
    problem: str | None = None  # the first thing wrong, naming the entry or checkpoint
    latest_checkpoint: int = 0  # size of the newest checkpoint verified

    @property
    def ok(self) -> bool:
        return self.problem is None


# Entry checks are handed to worker processes this many at a time: about 0.25 s of Ed25519
# verification, so the ~1 MB of leaves sent with each costs little next to the work, and a bad
# entry early in a big log is reported without checking far past it.
CHUNK_ENTRIES = 2000
# Below this a log verifies in seconds on one core: starting worker processes would not pay.
PARALLEL_FROM_ENTRIES = 20_000

CheckEntry = Callable[[int, AuditEntry], str | None]


def verify_log(
    store: AuditStore,
    verifiers: list[NoteVerifier],
    origin: str,
    check_entry: CheckEntry | None = None,
    *,
    workers: int | None = None,
    chunk_entries: int = CHUNK_ENTRIES,
) -> VerifyReport:
    """Recompute everything from the stored bytes; report the first problem.

    `check_entry(index, entry)` may add checks per entry (e.g. envelope signatures against the
    registry as it was then) and returns a problem or None.

    The leaves are re-hashed and the tree recomputed in one pass here, while decoding and
    `check_entry` run in `workers` processes (default: one per CPU for a log of
    PARALLEL_FROM_ENTRIES or more, else in this process), so `check_entry` must then be
    picklable: a module-level function, or an instance of a module-level class. Workers are
    spawned, not forked (see _EntryChecks), so a script calling this must keep its top-level
    code under `if __name__ == "__main__":`, as for any spawned pool. The report is the same
    however many workers: the problem a one-by-one pass in index order meets first.
    """
    checkpoints = store.checkpoints()
    if workers is None:
        workers = default_workers(store.size(), available_cpus())
    with _EntryChecks(check_entry, workers, chunk_entries) as checks:
        entries, tree_problem = _tree_pass(store, checkpoints, verifiers, origin, checks)
        entry_problem = checks.first_problem()
    problems = [p for p in (tree_problem, entry_problem) if p is not None]
    if problems:
        return min(problems).report
    return VerifyReport(entries, len(checkpoints), latest_checkpoint=checkpoints[-1][0] if checkpoints else 0)


# The steps a one-by-one pass takes for entry i, in order: its stored bytes against its stored
# hash, its content (decoding, `check_entry`), then the checkpoints of size i + 1. Ordering
# problems by (index, step) picks the one that pass would meet first, however the work was split.
STORED, CONTENT, CHECKPOINT = 0, 1, 2


@dataclass(frozen=True, order=True)
class _Problem:
    position: tuple[int, int]  # (entry index, step)
    report: VerifyReport = field(compare=False)


def _tree_pass(
    store: AuditStore,
    checkpoints: list[tuple[int, str]],
    verifiers: list[NoteVerifier],
    origin: str,
    checks: _EntryChecks,
) -> tuple[int, _Problem | None]:
    """Re-hash every leaf in index order and check every checkpoint against the recomputed head,
    handing each good leaf to `checks`. Returns (entries passed, the first problem met)."""
    pending = list(checkpoints)
    head = CompactRange()
    while pending and pending[0][0] == 0:
        if (problem := _check_checkpoint(0, pending.pop(0)[1], head.root(), verifiers, origin)) is not None:
            return 0, _Problem((-1, CHECKPOINT), VerifyReport(0, 0, problem))
    expected = 0
    for index, leaf, stored_hash in store.leaves():
        if index != expected:
            problem = f"entry {expected} is missing (next stored is {index})"
            return expected, _Problem((expected, STORED), VerifyReport(expected, 0, problem))
        if hash_leaf(leaf) != stored_hash:
            problem = f"entry {index}: its bytes do not match its recorded hash"
            return expected, _Problem((index, STORED), VerifyReport(index, 0, problem))
        expected += 1
        checks.add(index, leaf)
        if checks.failed:
            return expected, None  # a bad entry at or before this one: it comes first
        head.append(stored_hash)
        while pending and pending[0][0] == head.size:
            size, note = pending.pop(0)
            if (problem := _check_checkpoint(size, note, head.root(), verifiers, origin)) is not None:
                return expected, _Problem((index, CHECKPOINT), VerifyReport(index + 1, 0, problem))
    if pending:
        size, _ = pending[0]
        problem = f"checkpoint at size {size} covers entries the log no longer has (log has {expected})"
        return expected, _Problem((expected, STORED), VerifyReport(expected, 0, problem))
    return expected, None


def check_entries(first: int, leaves: list[bytes], check_entry: CheckEntry | None) -> tuple[int, str] | None:
    """Decode and check the entries from index `first` on: (index, problem) for the first bad
    one, or None."""
    for index, leaf in enumerate(leaves, first):
        try:
            entry = AuditEntry.decode(leaf)
        except EntryFormatError as e:
            return index, str(e)
        if check_entry is not None and (problem := check_entry(index, entry)):
            return index, problem
    return None


def available_cpus() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer than exist)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(entries: int, cpus: int) -> int:
    return cpus if entries >= PARALLEL_FROM_ENTRIES else 1


_worker_check: CheckEntry | None = None  # in a worker process: the check it was started with


def _start_worker(check_entry: CheckEntry | None) -> None:
    global _worker_check
    _worker_check = check_entry


def _check_chunk(first: int, leaves: list[bytes]) -> tuple[int, str] | None:
    return check_entries(first, leaves, _worker_check)


class _EntryChecks:
    """Runs `check_entries` over the leaves the tree pass hands over: one at a time in this
    process, or in chunks on a process pool, at most two chunks a worker ahead of the results
    (so the leaves held stay bounded).

    Results are collected strictly in the order the chunks were handed out, whatever order they
    finish in: the first problem collected is then the lowest of all, and later chunks no
    longer matter."""

    def __init__(self, check_entry: CheckEntry | None, workers: int, chunk_entries: int):
        self._check_entry = check_entry
        self._pool: ProcessPoolExecutor | None = None
        self._chunk = 1
        if workers > 1:
            # spawn, not fork: forking a process that runs other threads (gRPC, Temporal, a test
            # runner's) can copy a lock some thread held, and deadlock the child.
            self._pool = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(check_entry,),
            )  # fmt: skip
            self._chunk = chunk_entries
        self._max_in_flight = 2 * workers
        self._first = 0
        self._leaves: list[bytes] = []
        self._in_flight: deque[Future] = deque()
        self._problem: tuple[int, str] | None = None

    def __enter__(self) -> _EntryChecks:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def failed(self) -> bool:
        return self._problem is not None

    def add(self, index: int, leaf: bytes) -> None:
        if not self._leaves:
            self._first = index
        self._leaves.append(leaf)
        if len(self._leaves) >= self._chunk:
            self._hand_out()

    def first_problem(self) -> _Problem | None:
        """The lowest problem among all the entries added (waiting for the pool as needed)."""
        if not self.failed:
            self._hand_out()
        while self._in_flight and not self.failed:
            self._collect(self._in_flight.popleft().result())
        if self._problem is None:
            return None
        index, problem = self._problem
        return _Problem((index, CONTENT), VerifyReport(index, 0, f"entry {index}: {problem}"))

    def _hand_out(self) -> None:
        first, leaves, self._leaves = self._first, self._leaves, []
        if not leaves:
            return
        if self._pool is None:
            self._collect(check_entries(first, leaves, self._check_entry))
            return
        self._in_flight.append(self._pool.submit(_check_chunk, first, leaves))
        # Collect what is done at the front; block on the oldest only when too far ahead.
        while (
            self._in_flight
            and not self.failed
            and (len(self._in_flight) > self._max_in_flight or self._in_flight[0].done())
        ):
            self._collect(self._in_flight.popleft().result())

    def _collect(self, result: tuple[int, str] | None) -> None:
        if result is not None and self._problem is None:
            self._problem = result


def _check_checkpoint(size: int, note: str, root: bytes, verifiers: list[NoteVerifier], origin: str) -> str | None:
    try:
        checkpoint = open_checkpoint(note, verifiers, origin=origin)
    except NoteError as e:
        return f"checkpoint at size {size}: {e}"
    if checkpoint.size != size:
        return f"checkpoint stored at size {size} says size {checkpoint.size}"
    if checkpoint.root_hash != root:
        return (
            f"checkpoint at size {size}: the entries do not hash to its signed root "
            "(an entry before it was changed, dropped, inserted or reordered)"
        )
    return None
