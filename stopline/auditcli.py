"""`stopline audit ...`: what an auditor runs against the hub's audit log.

    stopline audit verify               recompute everything; print the first bad entry, exit 1
    stopline audit prove ENTRY          inclusion proof of one entry in the latest checkpoint
    stopline audit consistency OLD NEW  proof that the tree of size OLD is a prefix of size NEW
    stopline audit export CASE          one case's evidence bundle (JSON)
    stopline audit verify-bundle FILE   check a bundle offline, with nothing but its contents

Only the log file and the public keys in the registry are used: nothing is trusted from the hub.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from audit.bundle import BundleError, export_case, verify_bundle
from audit.bundle import dumps as bundle_dumps
from audit.entry import AuditEntry, EntryKind
from audit.log import leaf_hashes, verify_log
from audit.merkle import CompactRange, consistency_proof, inclusion_proof, root_of
from audit.note import NoteError, NoteVerifier, open_checkpoint
from audit.store import SqliteAuditStore
from stopline.config import Settings
from stopline.setup import HUB_ID
from stopline.v1 import envelope_pb2
from trust.envelope import verify_as_signed
from trust.errors import TrustError
from trust.registry import Registry


class AuditCommandError(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checkpoint_verifiers(settings: Settings, registry: Registry, pinned: list[str] | None = None) -> list[NoteVerifier]:
    """The keys a checkpoint may be signed with. Best: the hub's verifier keys the auditor
    obtained independently (`pinned`, C2SP vkeys). Otherwise every hub key in the registry that
    was never revoked (a checkpoint carries no time, so a revoked key vouches for nothing)."""
    if pinned:
        try:
            return [NoteVerifier.from_vkey(v) for v in pinned]
        except NoteError as e:
            raise AuditCommandError(f"--hub-key: {e}") from None
    hub = registry.institution(HUB_ID)
    return [NoteVerifier(settings.audit_origin, key.public_key) for key in hub.keys if key.revoked_at is None]


@dataclass(frozen=True)
class EnvelopeSignatures:
    """`audit verify`'s check of each entry: an envelope's signature must verify against the
    registry as it was when it was signed. A module-level class rather than a closure because
    verify_log runs it in worker processes on a large log, and those receive it pickled."""

    registry: Registry

    def __call__(self, index: int, entry: AuditEntry) -> str | None:
        if entry.kind is not EntryKind.ENVELOPE:
            return None
        try:
            verify_as_signed(envelope_pb2.Envelope.FromString(entry.payload), self.registry)
        except TrustError as e:
            return f"envelope signature: {e}"
        except Exception as e:  # a payload that is not an envelope at all
            return f"not a valid envelope: {e}"
        return None


def _store(settings: Settings) -> SqliteAuditStore:
    if not settings.audit_db.exists():
        raise AuditCommandError(f"no audit log at {settings.audit_db}")
    return SqliteAuditStore(settings.audit_db)


def audit_verify(
    settings: Settings, registry: Registry, pinned: list[str] | None = None, since: str | None = None
) -> tuple[bool, str]:
    """`since`: a checkpoint note the auditor saved earlier; the log must still extend it (so a
    truncated or rewritten log is caught even if its own checkpoints were rewritten too)."""
    store = _store(settings)
    verifiers = checkpoint_verifiers(settings, registry, pinned)
    report = verify_log(store, verifiers, settings.audit_origin, EnvelopeSignatures(registry))
    if not report.ok:
        return False, f"FAILED at {report.problem}"
    if report.entries and not report.checkpoints:
        return False, "FAILED: no signed checkpoint covers the log"
    if since is not None:
        try:
            saved = open_checkpoint(since, verifiers, origin=settings.audit_origin)
        except NoteError as e:
            return False, f"FAILED: the saved checkpoint does not verify: {e}"
        if saved.size > report.entries:
            return False, f"FAILED: the log has {report.entries} entries, fewer than the saved checkpoint's {saved.size} (truncated)"
        head = CompactRange()
        for _, _, leaf_hash in store.leaves(0, saved.size):
            head.append(leaf_hash)
        if head.root() != saved.root_hash:
            return False, f"FAILED: the first {saved.size} entries no longer hash to the saved checkpoint's root (rewritten)"
    uncovered = report.entries - report.latest_checkpoint
    tail = f"; {uncovered} newest entries not yet under a checkpoint" if uncovered else ""
    anchor = f"; extends the saved checkpoint of {saved.size}" if since is not None else ""
    pinned_note = "" if pinned else " (hub key from the registry: pass --hub-key to pin it)"
    return True, (
        f"OK: {report.entries} entries, {report.checkpoints} checkpoint(s) verified; latest signed checkpoint "
        f"covers {report.latest_checkpoint} entries{tail}{anchor}{pinned_note}"
    )


def audit_prove(settings: Settings, registry: Registry, index: int) -> dict:
    store = _store(settings)
    checkpoints = store.checkpoints()
    if not checkpoints:
        raise AuditCommandError("the log has no checkpoint yet")
    size, note = checkpoints[-1]
    if not 0 <= index < size:
        raise AuditCommandError(f"entry {index} is not under the latest checkpoint (size {size})")
    checkpoint = open_checkpoint(note, checkpoint_verifiers(settings, registry), origin=settings.audit_origin)
    hashes = leaf_hashes(store, size)
    leaf = next(leaf for _, leaf, _ in store.leaves(index, index + 1))
    return {
        "index": index,
        "tree_size": size,
        "leaf": _b64(leaf),
        "inclusion_proof": [_b64(h) for h in inclusion_proof(hashes, index)],
        "checkpoint": note,
        "root_hash": _b64(checkpoint.root_hash),
    }


def audit_consistency(settings: Settings, old: int, new: int) -> dict:
    store = _store(settings)
    size = store.size()
    if not 0 < old <= new <= size:
        raise AuditCommandError(f"need 0 < OLD <= NEW <= {size} (the log's size)")
    hashes = leaf_hashes(store, new)
    notes = dict(store.checkpoints())
    return {
        "old_size": old,
        "new_size": new,
        "old_root_hash": _b64(root_of(hashes[:old])),
        "new_root_hash": _b64(root_of(hashes)),
        "consistency_proof": [_b64(h) for h in consistency_proof(hashes, old)],
        "old_checkpoint": notes.get(old),
        "new_checkpoint": notes.get(new),
    }


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2)


def audit_export(settings: Settings, registry: Registry, case_id: str, output: Path | None) -> str | None:
    """The bundle as JSON text, or written to `output` (then None)."""
    vkeys = [v.vkey for v in checkpoint_verifiers(settings, registry)]
    try:
        text = bundle_dumps(export_case(_store(settings), case_id, settings.audit_origin, vkeys, registry))
    except BundleError as e:
        raise AuditCommandError(str(e)) from None
    if output is None:
        return text
    output.write_text(text, "utf-8")
    return None


def audit_verify_bundle(path: Path, pinned_vkeys: list[str] | None, registry_path: Path | None = None) -> tuple[bool, str]:
    try:
        registry = Registry.load(registry_path) if registry_path else None
        report = verify_bundle(json.loads(path.read_text("utf-8")), pinned_vkeys, registry)
    except TrustError as e:
        return False, f"FAILED: --registry: {e}"
    except OSError as e:
        return False, f"FAILED: cannot read {path}: {e}"
    except json.JSONDecodeError as e:
        return False, f"FAILED: not JSON ({e})"
    except BundleError as e:
        return False, f"FAILED: {e}"
    missing = [flag for flag, given in (("--hub-key", pinned_vkeys), ("--registry", registry_path)) if not given]
    note = f" (the bundle vouched for its own keys: pass {' and '.join(missing)} to check against yours)" if missing else ""
    return True, f"OK: case {report.case_id}, {report.entries} entries proved in a checkpoint of {report.tree_size}{note}"
