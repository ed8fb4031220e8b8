"""C2SP signed notes and tlog checkpoints: the spec's example verifies, ours round-trip, and any
change to the text, a signature or the key is caught."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.merkle import hash_leaf, root_of
from audit.note import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from tests.conftest import shared_dir

EXAMPLE = shared_dir() / "vectors" / "signed-note"


def test_the_specs_example_note_verifies():
    verifier = NoteVerifier.from_vkey((EXAMPLE / "example.vkey").read_text())
    assert verifier.name == "example.com/foo" and verifier.key_hash.hex() == "530d903a"
    opened = open_note((EXAMPLE / "example.note").read_bytes(), [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.signed_by == ("example.com/foo",)
    assert verifier.vkey == (EXAMPLE / "example.vkey").read_text().strip()


def test_the_example_with_one_changed_byte_fails():
    verifier = NoteVerifier.from_vkey((EXAMPLE / "example.vkey").read_text())
    note = (EXAMPLE / "example.note").read_bytes()
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace(b"example message", b"example massage"), [verifier])


def test_a_note_signed_by_an_unknown_key_only_is_refused():
    stranger = NoteSigner("stopline.example/hub", Ed25519PrivateKey.generate())
    ours = NoteSigner("stopline.example/hub", Ed25519PrivateKey.generate())
    note = sign_note("hello\n", stranger)
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [ours.verifier])


def test_vkey_round_trip_and_a_wrong_key_hash_is_refused():
    signer = NoteSigner("stopline.example/hub", Ed25519PrivateKey.generate())
    vkey = signer.verifier.vkey
    assert NoteVerifier.from_vkey(vkey).key_hash == signer.verifier.key_hash
    name, hash_hex, key = vkey.split("+", 2)
    with pytest.raises(NoteError, match="key hash"):
        NoteVerifier.from_vkey(f"{name}+{'00000000' if hash_hex != '00000000' else '11111111'}+{key}")


def test_checkpoint_signs_opens_and_parses():
    signer = NoteSigner("stopline.example/audit", Ed25519PrivateKey.generate())
    leaves = [hash_leaf(bytes([i])) for i in range(5)]
    checkpoint = Checkpoint("stopline.example/audit", 5, root_of(leaves), ("extension line",))
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith("stopline.example/audit\n5\n")
    assert open_checkpoint(note, [signer.verifier], origin="stopline.example/audit") == checkpoint
    with pytest.raises(NoteError, match="not 'other/log'"):
        open_checkpoint(note, [signer.verifier], origin="other/log")
    forged = note.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(forged, [signer.verifier])


@pytest.mark.parametrize(
    "text",
    ["origin\n05\n" + "A" * 44 + "\n", "origin\n5\nnot-base64!\n", "\n5\n" + "A" * 44 + "\n", "origin\n5\n"],
)
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


@pytest.mark.parametrize("size", ["\u0661\u0660", "\u00b2", "+5", " 5"])
def test_checkpoint_size_must_be_ascii_decimal(size):
    with pytest.raises(NoteError):
        Checkpoint.parse(f"origin\n{size}\n" + "A" * 43 + "=\n")
