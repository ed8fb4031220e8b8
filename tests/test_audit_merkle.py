"""RFC 6962 hashing and proofs against every shared vector (from transparency-dev/merkle), and
proofs we generate verified by the same verifier."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_from_leaf_hashes,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import shared_dir

VECTORS = shared_dir() / "vectors" / "rfc6962"

# The RFC 6962 reference tree's leaf inputs, used by transparency-dev/merkle's test data.
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def vectors(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return files


@pytest.mark.parametrize("path", vectors("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path):
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], b64(v["leafHash"]), [b64(h) for h in v["proof"] or []], b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", vectors("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path):
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], b64(v["root1"]), b64(v["root2"]), [b64(h) for h in v["proof"] or []])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_reference_tree_root_matches_the_vectors():
    leaves = [hash_leaf(x) for x in RFC6962_LEAVES]
    happy = json.loads((VECTORS / "inclusion" / "1" / "happy-path.json").read_text())
    assert root_of(leaves) == b64(happy["root"]) == root_from_leaf_hashes(leaves)[1]
    assert root_of([]) == EMPTY_ROOT == root_from_leaf_hashes([])[1]


def test_generated_proofs_equal_the_vectors_proofs():
    leaves = [hash_leaf(x) for x in RFC6962_LEAVES]
    checked = 0
    for path in vectors("inclusion"):
        v = json.loads(path.read_text())
        if v["desc"] == "happy path" and v["treeSize"] <= 8 and b64(v["leafHash"]) == leaves[v["leafIdx"]]:
            assert inclusion_proof(leaves[: v["treeSize"]], v["leafIdx"]) == [b64(h) for h in v["proof"] or []]
            checked += 1
    for path in vectors("consistency"):
        v = json.loads(path.read_text())
        if v["desc"] == "happy path" and v["size2"] <= 8 and b64(v["root2"]) == root_of(leaves[: v["size2"]]):
            assert consistency_proof(leaves[: v["size2"]], v["size1"]) == [b64(h) for h in v["proof"] or []]
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100])
def test_every_generated_proof_verifies_and_a_changed_one_does_not(n):
    leaves = [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]
    size, root = root_from_leaf_hashes(leaves)
    assert size == n and root == root_of(leaves)
    for i in range(n):
        proof = inclusion_proof(leaves, i)
        verify_inclusion(i, n, leaves[i], proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(i, n, hash_leaf(b"not in the log"), proof, root)
    for m in range(1, n + 1):
        old_root = root_of(leaves[:m])
        proof = consistency_proof(leaves, m)
        verify_consistency(m, n, old_root, root, proof)
        if m < n:
            with pytest.raises(ProofError):
                verify_consistency(m, n, hash_children(old_root, old_root), root, proof)


@pytest.mark.parametrize("index,size", [(-12, 12), (True, 12), (1.0, 12), (0, -1)])
def test_negative_or_non_integer_positions_never_verify(index, size):
    leaves = [hash_leaf(bytes([i])) for i in range(12)]
    proof = inclusion_proof(leaves, 10 if index == -12 else 1)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaves[10 if index == -12 else 1], proof, root_of(leaves))


def test_negative_consistency_sizes_never_verify():
    leaves = [hash_leaf(bytes([i])) for i in range(4)]
    with pytest.raises(ProofError):
        verify_consistency(-8, 4, root_of(leaves[:3]), root_of(leaves), consistency_proof(leaves, 3))
