"""Building audit entries from what the hub sends, receives, refuses and decides."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from audit.entry import AuditEntry, Direction, EntryKind
from stopline.v1 import envelope_pb2


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
    """A message the hub refused, or that refused the hub: why, and the bytes as they came."""
    payload = {"reason": reason, "envelope": base64.b64encode(envelope.SerializeToString()).decode()}
    return AuditEntry(
        kind=EntryKind.REFUSAL,
        case_id=case_id,
        institution=institution,
        direction=direction,
        recorded_at=datetime.now(UTC),
        payload=json.dumps(payload, sort_keys=True).encode(),
    )
