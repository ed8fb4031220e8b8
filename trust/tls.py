"""Mutual TLS between the hub and institutions: a local certificate authority, one certificate per
institution, and the checks that bind a TLS peer to the institution that signs the envelopes.

Each certificate names its institution twice: as the subject's common name (what a server reads
off a client's certificate) and as a DNS subject alternative name (what a client checks on the
server's certificate: it dials with the institution id as the TLS target name, so a bank's
endpoint that presents any other institution's certificate is refused during the handshake).

Keys are ECDSA P-256: every TLS stack a bank runs accepts them in certificates. The envelope
signatures stay Ed25519; TLS only authenticates the channel.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
CERT_VALIDITY = timedelta(days=397)  # the CA/Browser Forum's ceiling, a habit worth keeping
CA_NAME = "Stopline local CA"


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with the mode set before any byte is written (private keys are never readable
    by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def certificate_sha256(cert_pem: bytes | str) -> str:
    """Hex SHA-256 of a certificate's DER: what the registry pins for an institution."""
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode("ascii")
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class TlsIdentity:
    """What one party needs for mutual TLS: the CA it trusts, its certificate and private key."""

    institution_id: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert_sha256(self) -> str:
        return certificate_sha256(self.cert_pem)

    def server_credentials(self) -> grpc.ServerCredentials:
        # require_client_auth: a caller without a certificate from our CA never reaches a handler.
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)], root_certificates=self.ca_pem, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem, private_key=self.key_pem, certificate_chain=self.cert_pem
        )

    @classmethod
    def load(cls, directory: Path, institution_id: str, ca_pem: bytes) -> TlsIdentity:
        return cls(
            institution_id,
            ca_pem,
            (directory / f"{institution_id}.crt").read_bytes(),
            (directory / f"{institution_id}.key").read_bytes(),
        )

    def save(self, directory: Path) -> None:
        _write(directory / f"{self.institution_id}.crt", self.cert_pem, 0o644)
        _write(directory / f"{self.institution_id}.key", self.key_pem, 0o600)


def target_name_options(institution_id: str) -> list[tuple[str, str]]:
    """Channel options that make the TLS handshake check the server is `institution_id`, whatever
    host or IP address its endpoint has."""
    return [("grpc.ssl_target_name_override", institution_id)]


class LocalCA:
    """The certificate authority `stopline up` makes at first start for the embedded set-up (and
    the tests make per run). A deployment uses the centre's own CA instead: only `ca.crt` and each
    institution's certificate and key matter to the rest of the code."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):
        self._key = key
        self.cert = cert

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(cls, now: datetime | None = None) -> LocalCA:
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )  # fmt: skip
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load_or_create(cls, directory: Path) -> LocalCA:
        """The CA in `directory` (ca.crt, ca.key), made there if it is not yet."""
        cert_path, key_path = directory / "ca.crt", directory / "ca.key"
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        ca = cls.create()
        _write(key_path, _private_pem(ca._key), 0o600)
        _write(cert_path, ca.cert_pem, 0o644)
        return ca

    def issue(self, institution_id: str, hosts: tuple[str, ...] = (), now: datetime | None = None) -> TlsIdentity:
        """A certificate for `institution_id`, good as a server (under its id and `hosts`) and
        as a client (its common name is the id)."""
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(institution_id)]
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, institution_id)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CERT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return TlsIdentity(
            institution_id, self.cert_pem, cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)
        )


@dataclass(frozen=True)
class TlsPeer:
    """Who is on the other end of a gRPC call, as its verified client certificate says."""

    common_name: str
    cert_sha256: str


def tls_peer(context: grpc.aio.ServicerContext) -> TlsPeer | None:
    """The verified TLS client of this call, or None on a plaintext server. gRPC has already
    checked the certificate chains to our CA (require_client_auth) before any handler runs."""
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    names = auth.get("x509_common_name") or [b""]
    pem = (auth.get("x509_pem_cert") or [b""])[0]
    return TlsPeer(names[0].decode("utf-8", "replace"), certificate_sha256(pem) if pem else "")


def peer_mismatch(peer: TlsPeer | None, signer: str, pinned_sha256: str | None) -> str | None:
    """Why a TLS client may not speak for envelope signer `signer`, or None if it may.

    The certificate's name must be the signer's id, and where the registry pins the signer's
    certificate, the presented one must be that very certificate (so an operator can retire a
    certificate by re-pinning, without waiting for it to expire)."""
    if peer is None:
        return None  # plaintext, allowed only behind the explicit flag
    if peer.common_name != signer:
        return f"the TLS client certificate names {peer.common_name!r} but the envelope is signed by {signer!r}"
    if pinned_sha256 and peer.cert_sha256 != pinned_sha256:
        return f"the TLS client certificate of {signer!r} is not the one the registry pins for it"
    return None
