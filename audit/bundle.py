"""One case's evidence bundle: its entries, an inclusion proof of each in a signed checkpoint, the
checkpoint, and the public keys needed to check it all, offline (format in docs/audit.md)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from audit.entry import AuditEntry, Direction, EntryFormatError, EntryKind
from audit.merkle import ProofError, hash_leaf, inclusion_proof, verify_inclusion
from audit.note import NoteError, NoteVerifier, open_checkpoint
from audit.store import AuditStore
from stopline.v1 import bank_pb2, envelope_pb2, hub_pb2
from trust.envelope import verify_as_signed
from trust.errors import TrustError
from trust.registry import Registry

BUNDLE_FORMAT = "stopline.v1/evidence-bundle"
HUB_SIGNER = "hub"


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


# Payload types that carry the case id they are about, and where.
_CASE_ID_OF = {
    "stopline.v1.CaseReport": hub_pb2.CaseReport,
    "stopline.v1.CaseReceipt": hub_pb2.CaseReceipt,
    "stopline.v1.StopPaymentOrder": bank_pb2.StopPaymentOrder,
    "stopline.v1.StopPaymentAnswer": bank_pb2.StopPaymentAnswer,
}


def verify_bundle(bundle: dict, pinned_vkeys: list[str] | None = None, registry: Registry | None = None) -> BundleReport:
    """Check a bundle with nothing but its contents and, for a verdict worth having, the hub's
    checkpoint key and the institutions' registry obtained independently (`pinned_vkeys`,
    `registry`); without them the bundle vouches for itself. Raises BundleError naming the first
    problem. A bundle cannot prove it holds every entry of the case, only that each is in the log."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT}")
    case_id, entries = bundle.get("case_id"), bundle.get("entries")
    if not isinstance(case_id, str) or not isinstance(entries, list) or not entries:
        raise BundleError("a bundle needs a case_id and a non-empty list of entries")
    try:
        vkeys = bundle["checkpoint_vkeys"] if pinned_vkeys is None else pinned_vkeys
        verifiers = [NoteVerifier.from_vkey(v) for v in vkeys]
        checkpoint = open_checkpoint(bundle["checkpoint"], verifiers, origin=bundle["origin"])
    except (KeyError, TypeError, NoteError) as e:
        raise BundleError(f"checkpoint: {e}") from None
    if checkpoint.size != bundle.get("tree_size"):
        raise BundleError(f"checkpoint covers {checkpoint.size} entries, the bundle says {bundle.get('tree_size')}")
    if registry is None:
        try:
            registry = Registry.from_dict(bundle["registry"])
        except (KeyError, TypeError, TrustError) as e:
            raise BundleError(f"registry: {e}") from None
    previous = -1
    for item in entries:
        index = item.get("index") if isinstance(item, dict) else None
        if type(index) is not int or index <= previous:
            raise BundleError(f"entry indices must be increasing whole numbers (got {index!r} after {previous})")
        previous = index
        try:
            leaf = base64.b64decode(item["leaf"], validate=True)
            proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            verify_inclusion(index, checkpoint.size, hash_leaf(leaf), proof, checkpoint.root_hash)
            entry = AuditEntry.decode(leaf)
        except (KeyError, TypeError, ValueError, ProofError, EntryFormatError) as e:
            raise BundleError(f"entry {index}: {e}") from None
        if entry.case_id != case_id:
            raise BundleError(f"entry {index} belongs to case {entry.case_id!r}")
        if entry.kind is EntryKind.ENVELOPE:
            _check_envelope_entry(index, entry, registry)
    return BundleReport(case_id, len(entries), checkpoint.size)


def _check_envelope_entry(index: int, entry: AuditEntry, registry: Registry) -> None:
    try:
        envelope = envelope_pb2.Envelope.FromString(entry.payload)
        verify_as_signed(envelope, registry)
    except Exception as e:
        raise BundleError(f"entry {index}: envelope signature: {e}") from None
    # The entry's labels must agree with what was signed: who sent it, and which case it is about.
    sender = envelope.signer
    if entry.direction is Direction.IN and sender != entry.institution:
        raise BundleError(f"entry {index}: recorded as from {entry.institution!r} but signed by {sender!r}")
    if entry.direction is Direction.OUT and sender != HUB_SIGNER:
        raise BundleError(f"entry {index}: recorded as sent by the hub but signed by {sender!r}")
    message_type = _CASE_ID_OF.get(envelope.payload_type)
    if message_type is not None:
        try:
            signed_case = message_type.FromString(envelope.payload).case_id
        except Exception as e:
            raise BundleError(f"entry {index}: payload does not parse: {e}") from None
        if signed_case != entry.case_id:
            raise BundleError(f"entry {index}: recorded under case {entry.case_id!r} but signed about {signed_case!r}")


def dumps(bundle: dict) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
