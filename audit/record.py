"""Building audit entries from what the hub sends, receives, refuses and decides."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from audit.entry import AuditEntry, Direction, EntryKind
from stopline.v1 import envelope_pb2

REFUSAL_KEEP_BYTES = 16 * 1024


def envelope_entry(
    envelope: envelope_pb2.Envelope, *, case_id: str, institution: str, direction: Direction
) -> AuditEntry:
    """A signed envelope, serialised as it travelled: its signature verifies from these bytes."""
    return AuditEntry(
        kind=EntryKind.ENVELOPE,
        case_id=case_id,
        institution=institution,
        direction=direction,
        recorded_at=datetime.now(UTC),
        payload=envelope.SerializeToString(),
    )


def refusal_entry(
    envelope: envelope_pb2.Envelope, *, case_id: str, institution: str, direction: Direction, reason: str
) -> AuditEntry:
    """A message the hub refused, or that refused the hub: why, and the envelope. Past
    REFUSAL_KEEP_BYTES only its SHA-256 and first bytes are kept, so nobody can fill the
    append-only log (and the disk) by sending large junk."""
    raw = envelope.SerializeToString()
    payload = {"reason": reason, "envelope_sha256": hashlib.sha256(raw).hexdigest(), "envelope_bytes": len(raw)}
    if len(raw) <= REFUSAL_KEEP_BYTES:
        payload["envelope"] = base64.b64encode(raw).decode()
    else:
        payload["envelope_prefix"] = base64.b64encode(raw[:REFUSAL_KEEP_BYTES]).decode()
    return AuditEntry(
        kind=EntryKind.REFUSAL,
        case_id=case_id,
        institution=institution,
        direction=direction,
        recorded_at=datetime.now(UTC),
        payload=json.dumps(payload, sort_keys=True).encode(),
    )


def decision_entry(*, case_id: str, institution: str, decision: str, details: dict) -> AuditEntry:
    """A decision that moved money or numbers (a workflow's, or an officer's): what, about whom."""
    payload = {"decision": decision, "details": details}
    return AuditEntry(
        kind=EntryKind.DECISION,
        case_id=case_id,
        institution=institution,
        direction=Direction.INTERNAL,
        recorded_at=datetime.now(UTC),
        payload=json.dumps(payload, sort_keys=True, separators=(",", ":")).encode(),
    )
