"""C2SP signed notes (signed-note v1.0.0) and tlog checkpoints (tlog-checkpoint v1.0.0).

A note is UTF-8 text ending in a newline, a blank line, then one line per signature:

    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>\\n

The key hash is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key); a verifier
key is written `<name>+<key hash, hex>+<base64(0x01 || public key)>`. The signature covers the
text exactly as it stands (every byte up to and including its last newline). A checkpoint is a
note whose text is `<origin>\\n<tree size>\\n<base64 root hash>\\n`, then optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trust.keys import raw_public_key

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # EM DASH, space
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note that is malformed, or that no known key signed."""


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + raw_public_key(public_key)).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + raw_public_key(self.public_key)).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        # Split on the first two '+' only: the base64 part may contain '+'.
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError(f"verifier key {vkey!r} is not name+hash+key")
        name, hash_hex, encoded = parts
        _check_name(name)
        try:
            key = base64.b64decode(encoded, validate=True)
            claimed = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError):
            raise NoteError(f"verifier key {vkey!r} is not valid hex and base64") from None
        if len(key) != 33 or key[0] != ALG_ED25519 or len(claimed) != 4:
            raise NoteError(f"verifier key {vkey!r} is not an Ed25519 key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key[1:]))
        if verifier.key_hash != claimed:
            raise NoteError(f"verifier key {vkey!r}: key hash does not match the key")
        return verifier


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key())

    def signature_line(self, text: str) -> str:
        signature = self.private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(self.verifier.key_hash + signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must not contain control characters")


def sign_note(text: str, *signers: NoteSigner) -> str:
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


@dataclass(frozen=True)
class OpenedNote:
    text: str
    signed_by: tuple[str, ...]  # names of the known keys whose signatures verified


def open_note(note: str | bytes, verifiers: list[NoteVerifier]) -> OpenedNote:
    """Verify a signed note: every signature by a known key must verify, and at least one must
    exist. Signatures by unknown keys are ignored (a note may carry witnesses' signatures)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8") from None
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not signature_block.endswith("\n"):
        raise NoteError("signature block must end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_hash): v for v in verifiers}
    signed_by: list[str] = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not name or any(c.isspace() for c in name) or "+" in name or any(ord(c) < 0x20 for c in line):
            raise NoteError(f"malformed signature line {line!r}")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError(f"signature by {name!r} is not base64") from None
        if len(blob) < 5:
            raise NoteError(f"signature by {name!r} is too short")
        verifier = known.get((name, blob[:4]))
        if verifier is None:
            continue
        try:
            verifier.public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise NoteError(f"signature by {name!r} does not verify") from None
        signed_by.append(name)
    if not signed_by:
        raise NoteError("no signature by a known key")
    return OpenedNote(text, tuple(signed_by))


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        _check_text(text)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin is empty")
        if not re.fullmatch(r"0|[1-9][0-9]*", size_text):  # ASCII digits only, no leading zero
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise NoteError("checkpoint root hash is not base64") from None
        if len(root) != 32:
            raise NoteError(f"checkpoint root hash is {len(root)} bytes, not 32")
        if any(not line for line in extensions):
            raise NoteError("checkpoint has an empty extension line")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    return sign_note(checkpoint.to_text(), signer)


def open_checkpoint(note: str | bytes, verifiers: list[NoteVerifier], origin: str | None = None) -> Checkpoint:
    checkpoint = Checkpoint.parse(open_note(note, verifiers).text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
