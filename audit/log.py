"""The hub's audit log: append entries, sign checkpoints, prove and verify.

Verification needs only the stored entries and the hub's checkpoint key: it recomputes every
leaf hash from the leaf data (a changed byte names its entry), recomputes the tree head at every
checkpoint and checks its signature (a reordered, dropped or inserted entry breaks the first
checkpoint after it), and checks each checkpoint is a prefix of the next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from audit.entry import AuditEntry, EntryFormatError
from audit.merkle import CompactRange, consistency_proof, hash_leaf, inclusion_proof
from audit.note import Checkpoint, NoteError, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint
from audit.store import AuditStore

DEFAULT_CHECKPOINT_EVERY = 1000
logger = logging.getLogger(__name__)


class AuditIntegrityError(Exception):
    """The stored log contradicts itself or a checkpoint already signed: nothing is signed."""


class AuditLog:
    def __init__(self, store: AuditStore, signer: NoteSigner, origin: str, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY):
        self.store = store
        self.signer = signer
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self._head = CompactRange()
        self._head_lock = threading.Lock()  # appends and checkpoints come from several threads

    def append(self, *entries: AuditEntry) -> int:
        """Record entries; return the first one's index. Durable when this returns."""
        first = self.store.append([e.encode() for e in entries])
        last_size = first + len(entries)
        if last_size // self.checkpoint_every > first // self.checkpoint_every:
            try:
                self.checkpoint()
            except Exception:
                # The entries are stored; the caller must not fail (and retry) over a checkpoint.
                # The periodic checkpointer tries again, and `audit verify` will say what is wrong.
                logger.exception("audit checkpoint failed")
        return first

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head (also on shutdown, so the last entries are covered)."""
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
                note = signed.get(self._head.size)
                if note is not None and Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").root_hash != self._head.root():
                    raise AuditIntegrityError(
                        f"the first {self._head.size} entries no longer match the checkpoint signed for them"
                    )
            size, root = self._head.size, self._head.root()
        checkpoint = Checkpoint(self.origin, size, root)
        if size == 0:
            return checkpoint  # nothing to vouch for yet
        self.store.add_checkpoint(size, sign_checkpoint(checkpoint, self.signer))
        return checkpoint

    def prove_inclusion(self, index: int, size: int | None = None) -> tuple[int, list[bytes]]:
        hashes = leaf_hashes(self.store, size)
        return len(hashes), inclusion_proof(hashes, index)

    def prove_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(leaf_hashes(self.store, new_size), old_size)


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


def verify_log(
    store: AuditStore,
    verifiers: list[NoteVerifier],
    origin: str,
    check_entry: Callable[[int, AuditEntry], str | None] | None = None,
) -> VerifyReport:
    """Recompute everything from the stored bytes; report the first problem.

    `check_entry(index, entry)` may add checks per entry (e.g. envelope signatures against the
    registry as it was then) and returns a problem or None.
    """
    checkpoints = store.checkpoints()
    pending = list(checkpoints)
    head = CompactRange()
    while pending and pending[0][0] == 0:
        if (problem := _check_checkpoint(0, pending.pop(0)[1], head.root(), verifiers, origin)) is not None:
            return VerifyReport(0, 0, problem)
    expected_index = 0
    for index, leaf, stored_hash in store.leaves():
        if index != expected_index:
            return VerifyReport(expected_index, 0, f"entry {expected_index} is missing (next stored is {index})")
        expected_index += 1
        if hash_leaf(leaf) != stored_hash:
            return VerifyReport(index, 0, f"entry {index}: its bytes do not match its recorded hash")
        try:
            entry = AuditEntry.decode(leaf)
        except EntryFormatError as e:
            return VerifyReport(index, 0, f"entry {index}: {e}")
        if check_entry is not None and (problem := check_entry(index, entry)):
            return VerifyReport(index, 0, f"entry {index}: {problem}")
        head.append(stored_hash)
        while pending and pending[0][0] == head.size:
            size, note = pending.pop(0)
            if (problem := _check_checkpoint(size, note, head.root(), verifiers, origin)) is not None:
                return VerifyReport(index + 1, 0, problem)
    if pending:
        size, _ = pending[0]
        return VerifyReport(expected_index, 0, f"checkpoint at size {size} covers entries the log no longer has (log has {expected_index})")
    return VerifyReport(expected_index, len(checkpoints), latest_checkpoint=checkpoints[-1][0] if checkpoints else 0)


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
