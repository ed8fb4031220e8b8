"""`stopline keys ...`: operators manage who may sign what, in the registry file.

    stopline keys list
    stopline keys new ID --kind KIND --name NAME [--endpoint HOST:PORT] [--public-key B64]
    stopline keys rotate ID [--public-key B64] [--overlap-hours H]
    stopline keys revoke ID KEY_ID
    stopline keys certificate ID [--certificate PEM_FILE]

Every change is validated as a whole and written atomically; running hub processes pick it up on
their next message. Without --public-key the key pair is made here and the private key kept in
the data folder (the hub itself, local police units); an outside institution makes its own key
and hands over only the public half.

TLS certificates are pinned in the registry by SHA-256. For an identity kept here (no
--public-key), `keys new` also issues its certificate from the local CA; `keys certificate`
issues a fresh one (retiring the old: the hub refuses any certificate but the pinned one) or pins
the certificate an outside institution's CA issued it.
"""

from __future__ import annotations

import dataclasses
import fcntl
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from stopline.config import Settings
from trust.errors import RegistryError
from trust.keys import SigningKey, key_id_for, public_key_from_b64
from trust.registry import Institution, InstitutionKind, RegisteredKey, Registry, registered_key

DEFAULT_OVERLAP = timedelta(hours=24)


class KeysCommandError(Exception):
    pass


@contextmanager
def _editing(settings: Settings):
    """One registry edit at a time: a concurrent `keys` command waits rather than losing (say)
    a revocation to a read-modify-write race."""
    settings.registry_path.parent.mkdir(parents=True, exist_ok=True)
    with open(settings.registry_path.with_name("registry.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _load(settings: Settings) -> Registry:
    try:
        return Registry.load(settings.registry_path)
    except RegistryError as e:
        raise KeysCommandError(str(e)) from None


def _save(settings: Settings, institutions: list[Institution]) -> None:
    try:
        registry = Registry(institutions)
        Registry.from_dict(registry.to_dict())  # the same validation an operator's edit gets
    except RegistryError as e:
        raise KeysCommandError(str(e)) from None
    registry.save(settings.registry_path)


def _new_key(settings: Settings, institution_id: str, public_key_b64: str | None, now: datetime) -> RegisteredKey:
    if public_key_b64:
        try:
            public_key = public_key_from_b64(public_key_b64)
        except ValueError as e:
            raise KeysCommandError(f"--public-key: {e}") from None
        return registered_key(public_key, key_id_for(institution_id, public_key), now)
    key = SigningKey.generate(institution_id)
    path = settings.key_path(institution_id)
    if path.exists():  # keep the old private key beside the new one until its overlap ends
        path.rename(path.with_name(f"{path.stem}.{SigningKey.load(institution_id, path).key_id}.pem"))
    key.save(path)
    return registered_key(key.public_key, key.key_id, now)


def keys_list(settings: Settings) -> list[dict]:
    rows = []
    for inst in _load(settings):
        for key in inst.keys or (None,):
            rows.append({
                "institution": inst.id, "kind": inst.kind.value, "endpoint": inst.endpoint or "-",
                "key_id": key.key_id if key else "-",
                "valid_from": key.valid_from.isoformat() if key else "-",
                "valid_until": key.valid_until.isoformat() if key and key.valid_until else "-",
                "revoked_at": key.revoked_at.isoformat() if key and key.revoked_at else "-",
            })  # fmt: skip
    return rows


def keys_new(settings: Settings, institution_id: str, kind: str, name: str, endpoint: str | None,
             public_key_b64: str | None) -> str:  # fmt: skip
    with _editing(settings):
        return _keys_new(settings, institution_id, kind, name, endpoint, public_key_b64)


def _keys_new(settings, institution_id, kind, name, endpoint, public_key_b64) -> str:
    registry = _load(settings)
    if institution_id in registry:
        raise KeysCommandError(f"{institution_id!r} is already registered: use `stopline keys rotate`")
    try:
        kind_value = InstitutionKind(kind)
    except ValueError:
        raise KeysCommandError(f"--kind {kind!r}: one of {', '.join(k.value for k in InstitutionKind)}") from None
    key = _new_key(settings, institution_id, public_key_b64, datetime.now(UTC))
    # An identity kept here gets its certificate too; an outside one brings its own (keys certificate).
    pin = None if public_key_b64 else _issue_certificate(settings, institution_id, endpoint)
    _save(settings, [*registry, Institution(institution_id, name, kind_value, endpoint, (key,), tls_cert_sha256=pin)])
    return key.key_id


def _issue_certificate(settings: Settings, institution_id: str, endpoint: str | None) -> str:
    from stopline.setup import tls_dir
    from trust.tls import LocalCA

    hosts = (endpoint.rsplit(":", 1)[0],) if endpoint else ()
    identity = LocalCA.load_or_create(tls_dir(settings)).issue(institution_id, hosts)
    identity.save(tls_dir(settings))
    return identity.cert_sha256


def keys_certificate(settings: Settings, institution_id: str, certificate_pem: bytes | None) -> str:
    """Pin `certificate_pem` for the institution, or issue and pin a new one from the local CA;
    return the pinned SHA-256."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from trust.tls import certificate_sha256

    with _editing(settings):
        registry = _load(settings)
        inst = registry.get(institution_id)
        if inst is None:
            raise KeysCommandError(f"{institution_id!r} is not registered: use `stopline keys new`")
        if certificate_pem is None:
            pin = _issue_certificate(settings, institution_id, inst.endpoint)
        else:
            try:
                cert = x509.load_pem_x509_certificate(certificate_pem)
            except ValueError as e:
                raise KeysCommandError(f"--certificate: not a PEM certificate ({e})") from None
            names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if names != [institution_id]:
                raise KeysCommandError(f"--certificate: its common name is {names}, not {institution_id!r}")
            pin = certificate_sha256(certificate_pem)
        _save(settings, [dataclasses.replace(i, tls_cert_sha256=pin) if i.id == institution_id else i for i in registry])
        return pin


def keys_rotate(settings: Settings, institution_id: str, public_key_b64: str | None,
                overlap: timedelta = DEFAULT_OVERLAP) -> str:  # fmt: skip
    """A new key valid from now; current keys stay valid for `overlap`, so messages signed just
    before the rotation (and processes not yet restarted) still verify."""
    if overlap < timedelta(0):
        raise KeysCommandError("--overlap-hours must not be negative: history signed with older keys must stay valid")
    with _editing(settings):
        return _keys_rotate(settings, institution_id, public_key_b64, overlap)


def _keys_rotate(settings: Settings, institution_id: str, public_key_b64: str | None, overlap: timedelta) -> str:
    registry = _load(settings)
    inst = registry.get(institution_id)
    if inst is None:
        raise KeysCommandError(f"{institution_id!r} is not registered: use `stopline keys new`")
    now = datetime.now(UTC)
    new = _new_key(settings, institution_id, public_key_b64, now)
    if any(k.key_id == new.key_id for k in inst.keys):
        raise KeysCommandError(f"key {new.key_id} is already registered for {institution_id!r}")
    ending = now + overlap
    kept = tuple(
        dataclasses.replace(k, valid_until=min(k.valid_until or ending, ending)) for k in inst.keys
    )
    _save(settings, [dataclasses.replace(i, keys=(*kept, new)) if i.id == institution_id else i for i in registry])
    return new.key_id


def keys_revoke(settings: Settings, institution_id: str, key_id: str) -> None:
    """From now on nothing signed with this key is accepted, whatever time it claims."""
    with _editing(settings):
        _keys_revoke(settings, institution_id, key_id)


def _keys_revoke(settings: Settings, institution_id: str, key_id: str) -> None:
    registry = _load(settings)
    inst = registry.get(institution_id)
    if inst is None or not any(k.key_id == key_id for k in inst.keys):
        raise KeysCommandError(f"{institution_id!r} has no key {key_id!r}")
    now = datetime.now(UTC)
    keys = tuple(dataclasses.replace(k, revoked_at=k.revoked_at or now) if k.key_id == key_id else k for k in inst.keys)
    _save(settings, [dataclasses.replace(i, keys=keys) if i.id == institution_id else i for i in registry])
