"""The steps every sandbox service takes around its own work: count
the request and play the configured faults, check the TLS peer and open the hub's envelope
(signature over the bytes received first, the payload parsed only after), refuse with the status
that names what was wrong, and sign answers with the institution's key (or, under the
forge_answers fault, with a key nobody registered that claims the real key id).

Used by the bank (sandbox.bank), the telecom carrier (sandbox.carrier) and the regulator
(sandbox.regulator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from sandbox.faults import Faults
from sandbox.wire import InvalidField
from stopline.v1 import envelope_pb2
from trust.envelope import open_envelope, seal_bytes
from trust.errors import EnvelopeRejected, MalformedPayload, PeerMismatch, WrongPayloadType, WrongSigner
from trust.keys import SigningKey
from trust.registry import Registry
from trust.replay import MemoryNonceCache
from trust.tls import peer_mismatch, tls_peer

HUB_ID = "hub"

log = structlog.get_logger("sandbox")


class IdempotencyConflict(Exception):
    """The idempotency key was already used for an order of this type with different content."""


class SignedServicer:
    """What a sandbox service shares: its identity and key, the registry it checks the hub
    against, its faults, and the hub nonces it has seen (a replayed message is refused)."""

    def __init__(
        self,
        institution_id: str,
        signing_key: SigningKey,
        registry: Callable[[], Registry],
        faults: Faults,
        on_request: Callable[[], None] = lambda: None,
    ):
        if signing_key.institution_id != institution_id:
            raise ValueError(f"signing key belongs to {signing_key.institution_id!r}, not {institution_id!r}")
        self.institution_id = institution_id
        self._key = signing_key
        self._registry = registry
        self.faults = faults
        self._on_request = on_request
        self._forged_key: SigningKey | None = None
        self._nonces = MemoryNonceCache()

    async def _before(self, context) -> None:
        """Count the request, then play the configured faults (slow first, then refusing)."""
        self._on_request()
        if self.faults.delay_seconds > 0:
            await asyncio.sleep(self.faults.delay_seconds)
        code = self.faults.refuse_all_with
        if code is not None:
            log.warning("fault.refuse_all", institution=self.institution_id, code=code.name)
            await context.abort(code, f"sandbox fault: {self.institution_id} refuses every request with {code.name}")

    async def _open(self, request, message_type: type[Message], context):
        """Verify the hub's signature over the bytes received, and only then parse them.
        UNAUTHENTICATED for a bad envelope (or a TLS peer that is not the signer),
        PERMISSION_DENIED for a valid signature by anyone but the hub, INVALID_ARGUMENT for a
        payload of another type or that does not parse."""
        if not request.HasField("envelope"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "envelope: missing")
        signer = request.envelope.signer
        inst = self._registry().get(signer)
        mismatch = peer_mismatch(tls_peer(context), signer, inst.tls_cert_sha256 if inst is not None else None)
        try:
            if mismatch is not None:
                raise PeerMismatch(mismatch)
            return open_envelope(
                request.envelope, message_type, self._registry(), expected_signer=HUB_ID, replay=self._nonces
            )
        except EnvelopeRejected as e:
            code, what = grpc.StatusCode.UNAUTHENTICATED, e
        except WrongSigner as e:
            code, what = grpc.StatusCode.PERMISSION_DENIED, e
        except (WrongPayloadType, MalformedPayload) as e:
            code, what = grpc.StatusCode.INVALID_ARGUMENT, e
        # The signer is logged as claimed: for UNAUTHENTICATED it is not proven, which the code says.
        log.warning("request.refused", institution=self.institution_id, code=code.name,
                    reason=type(what).__name__, signer=signer)  # fmt: skip
        await context.abort(code, f"request envelope refused: {what}")

    @staticmethod
    async def _invalid(context, bound, rpc: str, e: InvalidField) -> None:
        # The field name only: the problem text may echo request values.
        bound.warning(f"{rpc}.invalid_argument", field=e.field)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    async def _lose_answer_after_apply(self, context, bound) -> None:
        """The fail_after_apply fault: the work is done and committed, the answer never arrives."""
        if self.faults.fail_after_apply > 0:
            # Checked and decremented with no await in between: concurrent requests each take one.
            self.faults.fail_after_apply -= 1
            bound.warning("fault.answer_lost", remaining=self.faults.fail_after_apply)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "answer lost after apply (sandbox fault)")

    def _seal_stored(self, payload: bytes, answer_type: type[Message]) -> envelope_pb2.Envelope:
        """The stored answer bytes in a fresh envelope (time, nonce): every copy of an answer
        carries the same payload, and a retry's answer is never a replay of the first."""
        return seal_bytes(payload, answer_type.DESCRIPTOR.full_name, self._answer_key())

    def _answer_key(self) -> SigningKey:
        """The institution's key, or under forge_answers a key nobody registered that claims the
        real key id (so only the signature gives it away)."""
        if not self.faults.forge_answers:
            return self._key
        if self._forged_key is None:
            self._forged_key = SigningKey(self._key.institution_id, self._key.key_id, Ed25519PrivateKey.generate())
        return self._forged_key
