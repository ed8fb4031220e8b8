"""One case's evidence bundle: its entries, an inclusion proof of each in a signed checkpoint, the
checkpoint, and the public keys needed to check it all, offline (format in docs/audit.md)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from audit.entry import AuditEntry, EntryFormatError, EntryKind
from audit.merkle import ProofError, hash_leaf, inclusion_proof, verify_inclusion
from audit.note import NoteError, NoteVerifier, open_checkpoint
from audit.store import AuditStore
from stopline.v1 import envelope_pb2
from trust.envelope import verify_as_signed
from trust.errors import TrustError
from trust.registry import Registry

BUNDLE_FORMAT = "stopline.v1/evidence-bundle"


class BundleError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_case(store: AuditStore, case_id: str, origin: str, checkpoint_vkeys: list[str], registry: Registry) -> dict:
    """Every entry of `case_id` under the latest checkpoint, each with its inclusion proof."""
    checkpoints = store.checkpoints()
    if not checkpoints:
        raise BundleError("the log has no checkpoint yet")
    size, note = checkpoints[-1]
    hashes: list[bytes] = []
    entries = []
    for index, leaf, leaf_hash in store.leaves(0, size):
        hashes.append(leaf_hash)
        if AuditEntry.decode(leaf).case_id == case_id:
            entries.append((index, leaf))
    if not entries:
        raise BundleError(f"no entries for case {case_id!r} under the latest checkpoint (size {size})")
    signers = set()
    for _, leaf in entries:
        entry = AuditEntry.decode(leaf)
        if entry.kind is EntryKind.ENVELOPE:
            signers.add(envelope_pb2.Envelope.FromString(entry.payload).signer)
    registry_dict = registry.to_dict()
    return {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "case_id": case_id,
        "tree_size": size,
        "checkpoint": note,
        "entries": [
            {"index": i, "leaf": _b64(leaf), "inclusion_proof": [_b64(h) for h in inclusion_proof(hashes, i)]}
            for i, leaf in entries
        ],
        "checkpoint_vkeys": checkpoint_vkeys,
        "registry": {
            "version": registry_dict["version"],
            "institutions": [i for i in registry_dict["institutions"] if i["id"] in signers],
        },
    }


@dataclass(frozen=True)
class BundleReport:
    case_id: str
    entries: int
    tree_size: int


def verify_bundle(bundle: dict, pinned_vkeys: list[str] | None = None) -> BundleReport:
    """Check a bundle with nothing but its contents (and, ideally, the hub's checkpoint key
    obtained independently: `pinned_vkeys`). Raises BundleError naming the first problem."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT}")
    try:
        verifiers = [NoteVerifier.from_vkey(v) for v in (pinned_vkeys or bundle["checkpoint_vkeys"])]
        checkpoint = open_checkpoint(bundle["checkpoint"], verifiers, origin=bundle["origin"])
    except (KeyError, NoteError) as e:
        raise BundleError(f"checkpoint: {e}") from None
    if checkpoint.size != bundle.get("tree_size"):
        raise BundleError(f"checkpoint covers {checkpoint.size} entries, the bundle says {bundle.get('tree_size')}")
    try:
        registry = Registry.from_dict(bundle["registry"])
    except (KeyError, TrustError) as e:
        raise BundleError(f"registry: {e}") from None
    for item in bundle.get("entries", []):
        index = item.get("index")
        try:
            leaf = base64.b64decode(item["leaf"], validate=True)
            proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            verify_inclusion(index, checkpoint.size, hash_leaf(leaf), proof, checkpoint.root_hash)
            entry = AuditEntry.decode(leaf)
        except (KeyError, TypeError, ValueError, ProofError, EntryFormatError) as e:
            raise BundleError(f"entry {index}: {e}") from None
        if entry.case_id != bundle["case_id"]:
            raise BundleError(f"entry {index} belongs to case {entry.case_id!r}")
        if entry.kind is EntryKind.ENVELOPE:
            try:
                verify_as_signed(envelope_pb2.Envelope.FromString(entry.payload), registry)
            except Exception as e:
                raise BundleError(f"entry {index}: envelope signature: {e}") from None
    if not bundle.get("entries"):
        raise BundleError("the bundle holds no entries")
    return BundleReport(bundle["case_id"], len(bundle["entries"]), checkpoint.size)


def dumps(bundle: dict) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
