"""The signed envelope: a forged, tampered, stale or misattributed message is refused before
its payload is ever parsed."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stopline.v1 import bank_pb2, common_pb2, hub_pb2
from trust.envelope import open_envelope, seal, signature_input
from trust.errors import (
    BadSignature,
    KeyNotValid,
    RegistryError,
    ReplayedEnvelope,
    StaleEnvelope,
    UnknownSigner,
    WrongPayloadType,
    WrongSigner,
)
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, RegisteredKey, Registry, registered_key
from trust.replay import MemoryNonceCache, SqliteNonceCache

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_registry(*entries: tuple[SigningKey, InstitutionKind], revoked_at=None) -> Registry:
    return Registry(
        [
            Institution(
                id=key.institution_id,
                name=key.institution_id,
                kind=kind,
                keys=(
                    RegisteredKey(
                        key_id=key.key_id,
                        public_key_b64=registered_key(key.public_key, key.key_id, EPOCH).public_key_b64,
                        valid_from=EPOCH,
                        revoked_at=revoked_at,
                    ),
                ),
            )
            for key, kind in entries
        ]
    )


@pytest.fixture
def hub() -> SigningKey:
    return SigningKey.generate("hub")


@pytest.fixture
def bank() -> SigningKey:
    return SigningKey.generate("qilu-bank")


@pytest.fixture
def registry(hub, bank) -> Registry:
    return make_registry((hub, InstitutionKind.HUB), (bank, InstitutionKind.BANK))


def order() -> bank_pb2.StopPaymentOrder:
    return bank_pb2.StopPaymentOrder(
        idempotency_key="case-X/stop/qilu-bank/1/1",
        case_id="X",
        account=common_pb2.AccountRef(institution="qilu-bank", account_number="6222000011112222"),
        amount=common_pb2.Money(minor_units=80_000_000, currency="CNY"),
    )


def test_sealed_message_opens_to_the_same_message(hub, registry):
    envelope = seal(order(), hub)
    assert envelope.payload_type == "stopline.v1.StopPaymentOrder"
    assert open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, expected_signer="hub") == order()


def test_one_flipped_payload_bit_is_refused(hub, registry):
    envelope = seal(order(), hub)
    tampered = bytearray(envelope.payload)
    tampered[-1] ^= 0x01
    envelope.payload = bytes(tampered)
    with pytest.raises(BadSignature):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry)


def test_payload_is_never_parsed_before_verification(hub, registry):
    envelope = seal(order(), hub)
    envelope.payload = b"\xff\xff not protobuf"  # would fail to parse; must fail on signature first
    with pytest.raises(BadSignature):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry)


def test_signature_by_an_unregistered_key_claiming_a_registered_id_is_refused(hub, registry):
    impostor = SigningKey("hub", hub.key_id, SigningKey.generate("hub").private_key)
    with pytest.raises(BadSignature):
        open_envelope(seal(order(), impostor), bank_pb2.StopPaymentOrder, registry)


def test_unknown_signer_is_refused(registry):
    with pytest.raises(UnknownSigner):
        open_envelope(seal(order(), SigningKey.generate("nobody")), bank_pb2.StopPaymentOrder, registry)


def test_payload_type_is_covered_by_the_signature(hub, registry):
    envelope = seal(order(), hub)
    envelope.payload_type = "stopline.v1.CaseReport"
    with pytest.raises(BadSignature):
        open_envelope(envelope, hub_pb2.CaseReport, registry)


def test_wrong_message_type_is_refused_after_verification(hub, registry):
    with pytest.raises(WrongPayloadType):
        open_envelope(seal(order(), hub), hub_pb2.CaseReport, registry)


def test_valid_signature_from_the_wrong_institution_is_refused(bank, registry):
    with pytest.raises(WrongSigner):
        open_envelope(seal(order(), bank), bank_pb2.StopPaymentOrder, registry, expected_signer="hub")


def test_stale_envelope_is_refused(hub, registry):
    envelope = seal(order(), hub, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(StaleEnvelope):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry)


def test_revoked_key_is_refused_for_messages_signed_after_revocation(hub, bank):
    registry = make_registry((hub, InstitutionKind.HUB), revoked_at=datetime.now(UTC) - timedelta(minutes=1))
    with pytest.raises(KeyNotValid):
        open_envelope(seal(order(), hub), bank_pb2.StopPaymentOrder, registry)


def test_signature_input_is_unambiguous():
    """Moving a byte from one field to the next must change what is signed."""
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp(seconds=1, nanos=2)
    a = signature_input("ab", "c", "k", ts, b"\x00" * 16, b"p")
    b = signature_input("a", "bc", "k", ts, b"\x00" * 16, b"p")
    assert a != b


def test_registry_round_trips_through_its_file(tmp_path, hub, bank, registry):
    registry.save(tmp_path / "registry.json")
    loaded = Registry.load(tmp_path / "registry.json")
    assert loaded.to_dict() == registry.to_dict()
    assert open_envelope(seal(order(), hub), bank_pb2.StopPaymentOrder, loaded) == order()


def test_out_of_range_signing_time_is_refused_not_crashed(hub, registry):
    envelope = seal(order(), hub)
    envelope.signed_at.nanos = -5
    with pytest.raises(BadSignature, match="signed_at"):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry)


def test_registry_refuses_a_key_id_that_does_not_match_its_key(tmp_path, hub, bank, registry):
    data = registry.to_dict()
    data["institutions"][0]["keys"][0]["key_id"] = bank.key_id.replace("qilu-bank", "hub")
    with pytest.raises(RegistryError, match=r"institutions\[0\] \(hub\)\.keys\[0\]\.key_id"):
        Registry.from_dict(data)
    data = registry.to_dict()
    data["institutions"][1]["id"] = "Qilu Bank!"
    with pytest.raises(RegistryError, match=r"institutions\[1\]\.id"):
        Registry.from_dict(data)


@pytest.mark.parametrize("make_cache", [MemoryNonceCache, lambda: SqliteNonceCache(Path(tempfile.mkdtemp()) / "n.db")])
def test_a_replayed_envelope_is_refused_once_its_nonce_was_seen(hub, registry, make_cache):
    cache = make_cache()
    envelope = seal(order(), hub)
    assert open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, replay=cache) == order()
    with pytest.raises(ReplayedEnvelope):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, replay=cache)
    # The same order sealed again carries a fresh nonce: not a replay.
    open_envelope(seal(order(), hub), bank_pb2.StopPaymentOrder, registry, replay=cache)


def test_a_forged_envelope_does_not_burn_its_nonce(hub, registry):
    cache = MemoryNonceCache()
    envelope = seal(order(), hub)
    tampered = type(envelope)()
    tampered.CopyFrom(envelope)
    tampered.payload = tampered.payload + b"\x00"
    with pytest.raises(BadSignature):
        open_envelope(tampered, bank_pb2.StopPaymentOrder, registry, replay=cache)
    assert open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, replay=cache) == order()


def test_processes_sharing_a_nonce_file_see_each_others_nonces(tmp_path, hub, registry):
    envelope = seal(order(), hub)
    open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, replay=SqliteNonceCache(tmp_path / "n.db"))
    with pytest.raises(ReplayedEnvelope):
        open_envelope(envelope, bank_pb2.StopPaymentOrder, registry, replay=SqliteNonceCache(tmp_path / "n.db"))


def test_an_expired_nonce_may_be_seen_again():
    cache = MemoryNonceCache()
    assert cache.first_sighting("hub", b"n" * 16, expires_at=0)  # already expired when recorded
    assert cache.first_sighting("hub", b"n" * 16, expires_at=4_000_000_000)
    assert not cache.first_sighting("hub", b"n" * 16, expires_at=4_000_000_000)


def test_roles_default_by_kind_and_explicit_roles_replace_them(registry):
    from trust.registry import Role

    data = registry.to_dict()
    assert data["institutions"][1]["roles"] == ["answer"]  # written out, for operators to see
    del data["institutions"][1]["roles"]
    assert Registry.from_dict(data).institution("qilu-bank").effective_roles == {Role.ANSWER}
    data["institutions"][1]["roles"] = ["answer", "read"]
    assert Registry.from_dict(data).institution("qilu-bank").has_role(Role.READ)
    data["institutions"][1]["roles"] = []
    assert not Registry.from_dict(data).institution("qilu-bank").effective_roles
    data["institutions"][1]["roles"] = ["answer", "superuser"]
    with pytest.raises(RegistryError, match=r"institutions\[1\] \(qilu-bank\)\.roles: 'superuser' is not one of"):
        Registry.from_dict(data)


def test_registry_pins_tls_certificates_by_sha256(registry):
    from trust.tls import LocalCA

    cert = LocalCA.create().issue("qilu-bank")
    data = registry.to_dict()
    data["institutions"][1]["tls_cert_sha256"] = cert.cert_sha256
    assert Registry.from_dict(data).institution("qilu-bank").tls_cert_sha256 == cert.cert_sha256
    data["institutions"][1]["tls_cert_sha256"] = "AB" * 32
    with pytest.raises(RegistryError, match=r"tls_cert_sha256: 'ABAB.*is not 64 lowercase hex digits"):
        Registry.from_dict(data)


def test_a_running_process_signs_with_the_rotated_key_file(tmp_path, hub):
    from trust.keys import SigningKeyFile

    path = tmp_path / "hub.pem"
    hub.save(path)
    current = SigningKeyFile("hub", path)
    assert current().key_id == hub.key_id
    rotated = SigningKey.generate("hub")
    rotated.save(path)  # what `stopline keys rotate hub` does: an atomic replace
    assert current().key_id == rotated.key_id
