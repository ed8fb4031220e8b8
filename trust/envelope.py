"""The signed envelope: seal a protobuf message, open (verify, then parse) one.

Signature input ("to be signed", TBS): the ASCII domain tag `stopline.v1/envelope`, then each
field as a 4-byte big-endian length followed by its bytes:

    protocol version ("1"), payload_type, signer, key_id,
    signed_at seconds (8-byte big-endian signed), signed_at nanos (4-byte big-endian),
    nonce, SHA-256(payload)

Length prefixes make the encoding unambiguous (no two field lists give the same bytes); the
domain tag keeps a Stopline signature from ever being valid for another protocol that uses the
same key. The payload enters only through its hash, computed over the bytes exactly as received:
nothing is re-serialised before verification, and nothing is parsed before it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from stopline.v1 import envelope_pb2
from trust.errors import (
    BadSignature,
    MalformedPayload,
    ReplayedEnvelope,
    StaleEnvelope,
    WrongPayloadType,
    WrongSigner,
)
from trust.keys import SigningKey, verify_signature
from trust.registry import Registry
from trust.replay import NonceCache

DOMAIN_TAG = b"stopline.v1/envelope"
PROTOCOL_VERSION = b"1"
NONCE_BYTES = 16
# How far a signer's clock may be from ours; inside this window a replay is caught by the nonce
# cache (trust/replay.py).
DEFAULT_MAX_SKEW = timedelta(minutes=5)

M = TypeVar("M", bound=Message)


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def signature_input(
    payload_type: str, signer: str, key_id: str, signed_at: Timestamp, nonce: bytes, payload: bytes
) -> bytes:
    return DOMAIN_TAG + b"".join(
        _field(part)
        for part in (
            PROTOCOL_VERSION,
            payload_type.encode("utf-8"),
            signer.encode("utf-8"),
            key_id.encode("utf-8"),
            struct.pack(">q", signed_at.seconds),
            struct.pack(">i", signed_at.nanos),
            nonce,
            hashlib.sha256(payload).digest(),
        )
    )


def seal(message: Message, key: SigningKey, *, now: datetime | None = None) -> envelope_pb2.Envelope:
    """Serialise `message` once and sign those exact bytes."""
    payload = message.SerializeToString(deterministic=True)
    return seal_bytes(payload, message.DESCRIPTOR.full_name, key, now=now)


def seal_bytes(
    payload: bytes, payload_type: str, key: SigningKey, *, now: datetime | None = None
) -> envelope_pb2.Envelope:
    signed_at = Timestamp()
    signed_at.FromDatetime(now or datetime.now(UTC))
    nonce = os.urandom(NONCE_BYTES)
    tbs = signature_input(payload_type, key.institution_id, key.key_id, signed_at, nonce, payload)
    return envelope_pb2.Envelope(
        payload=payload,
        payload_type=payload_type,
        signer=key.institution_id,
        key_id=key.key_id,
        signed_at=signed_at,
        nonce=nonce,
        signature=key.private_key.sign(tbs),
    )


def verify(
    envelope: envelope_pb2.Envelope,
    registry: Registry,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    replay: NonceCache | None = None,
) -> None:
    """Raise EnvelopeRejected unless `envelope` is signed by a key the registry held valid at
    signing time, over exactly these payload bytes, within the clock-skew window."""
    if not envelope.signer or not envelope.key_id:
        raise BadSignature("envelope has no signer or key id")
    if len(envelope.nonce) != NONCE_BYTES:
        raise BadSignature(f"envelope nonce must be {NONCE_BYTES} bytes, got {len(envelope.nonce)}")
    if not envelope.HasField("signed_at"):
        raise BadSignature("envelope has no signed_at time")
    try:
        signed_at = envelope.signed_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadSignature("envelope signed_at is not a valid time") from None
    now = now or datetime.now(UTC)
    if abs(now - signed_at) > max_skew:
        raise StaleEnvelope(
            f"envelope signed at {signed_at.isoformat()} is outside the {max_skew} clock-skew window"
        )
    # Valid when signed, and not revoked by now: a stolen key cannot sign "a minute ago" past
    # its revocation.
    key = registry.key_for(envelope.signer, envelope.key_id, at=signed_at, now=now)
    tbs = signature_input(
        envelope.payload_type,
        envelope.signer,
        envelope.key_id,
        envelope.signed_at,
        envelope.nonce,
        envelope.payload,
    )
    if not verify_signature(key.raw_public_key, envelope.signature, tbs):
        raise BadSignature(f"signature by {envelope.signer} key {envelope.key_id} does not verify")
    # Only now, with the signature good: a nonce is kept until the envelope would be stale.
    if replay is not None and not replay.first_sighting(
        envelope.signer, envelope.nonce, (signed_at + max_skew).timestamp()
    ):
        raise ReplayedEnvelope(f"envelope from {envelope.signer} was already received (nonce replayed)")


def open_envelope(
    envelope: envelope_pb2.Envelope,
    message_type: type[M],
    registry: Registry,
    *,
    expected_signer: str | Callable[[str], bool] | None = None,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    replay: NonceCache | None = None,
) -> M:
    """Verify, then parse. `expected_signer` (an id, or a predicate on the id) is checked after
    the signature, so the refusal names an authenticated signer. With `replay`, an envelope seen
    before inside the skew window is refused."""
    verify(envelope, registry, now=now, max_skew=max_skew, replay=replay)
    # Who may send it comes before what was sent: a stranger learns nothing about our types.
    if expected_signer is not None:
        ok = expected_signer(envelope.signer) if callable(expected_signer) else envelope.signer == expected_signer
        if not ok:
            raise WrongSigner(f"envelope is signed by {envelope.signer!r}, which may not send this message")
    expected_type = message_type.DESCRIPTOR.full_name
    if envelope.payload_type != expected_type:
        raise WrongPayloadType(f"envelope carries {envelope.payload_type!r}, expected {expected_type!r}")
    message = message_type()
    try:
        message.ParseFromString(envelope.payload)
    except DecodeError as e:
        raise MalformedPayload(f"payload does not parse as {expected_type}: {e}") from None
    return message


def verify_as_signed(envelope: envelope_pb2.Envelope, registry: Registry) -> None:
    """For auditors: was this envelope validly signed by a key the registry held valid when it was
    signed? No clock window and no revocation after the fact: history is judged as it was."""
    try:
        signed_at = envelope.signed_at.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadSignature("envelope signed_at is not a valid time") from None
    verify(envelope, registry, now=signed_at, max_skew=timedelta(0))
