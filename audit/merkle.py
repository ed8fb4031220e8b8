"""RFC 6962 (RFC 9162 section 2.1) Merkle tree hashing and proofs, after transparency-dev/merkle.

    leaf hash = SHA-256(0x00 || entry)        node hash = SHA-256(0x01 || left || right)

Verification follows transparency-dev/merkle's proof/verify.go (the shared vectors in
../shared/vectors/rfc6962 come from it); proof generation follows RFC 6962's PATH and SUBPROOF.
No well-kept Python package implements these (see docs/decisions.md), so they are small pure
functions here, checked against every shared vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims (or is malformed)."""


def hash_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- tree heads ------------------------------------------------------------------------------


class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size), merged as in binary
    addition: a growing tree's head in O(log n) memory and O(1) amortised work per leaf."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf_hash: bytes) -> None:
        node = leaf_hash
        self.size += 1
        merges = self.size
        while merges % 2 == 0:  # one merge per trailing zero bit of the new size
            node = hash_children(self._stack.pop(), node)
            merges //= 2
        self._stack.append(node)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1]
        for node in reversed(self._stack[:-1]):
            root = hash_children(node, root)
        return root


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """(size, root) of the tree over these leaf hashes, in one pass."""
    compact = CompactRange()
    for leaf in leaf_hashes:
        compact.append(leaf)
    return compact.size, compact.root()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return hash_children(_subtree_root(leaves, lo, lo + k), _subtree_root(leaves, lo + k, hi))


def root_of(leaves: Sequence[bytes]) -> bytes:
    return _subtree_root(leaves, 0, len(leaves)) if leaves else EMPTY_ROOT


# --- proof generation (RFC 6962 section 2.1.1 and 2.1.2) ------------------------------------


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) over the first len(leaves) leaf hashes."""
    if not 0 <= index < len(leaves):
        raise ProofError(f"index {index} is not in a tree of size {len(leaves)}")
    proof: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(_subtree_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree_root(leaves, lo, lo + k))
            lo = lo + k
    proof.reverse()  # PATH lists the siblings from the leaf up
    return proof


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[n]): shows the tree of the first size1 leaves is a prefix of this one."""
    size2 = len(leaves)
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    return _subproof(leaves, size1, 0, size2, True)


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [_subtree_root(leaves, lo, hi)]
    k = _split(n)
    if m <= k:
        return _subproof(leaves, m, lo, lo + k, whole) + [_subtree_root(leaves, lo + k, hi)]
    return _subproof(leaves, m - k, lo + k, hi, False) + [_subtree_root(leaves, lo, lo + k)]


# --- proof verification (transparency-dev/merkle proof/verify.go) ---------------------------


def _decompose(index: int, size: int) -> tuple[int, int]:
    """How many proof hashes lie inside the index's subtree, and how many on the right border."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = hash_children(seed, h) if (index >> i) & 1 == 0 else hash_children(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = hash_children(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = hash_children(h, seed)
    return seed


def _check_count(name: str, value) -> None:
    # Indices and sizes are unsigned in RFC 9162 (and in transparency-dev/merkle): a negative
    # or non-integer one must never line up with a real proof.
    if type(value) is not int or value < 0:
        raise ProofError(f"{name} must be a non-negative integer, got {value!r}")


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    _check_count("index", index)
    _check_count("size", size)
    if index >= size:
        raise ProofError(f"index {index} is beyond the tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, a tree of size {size} needs {inner + border}")
    result = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(result, proof[inner:])


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` with `leaf_hash` is in the tree `root`."""
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise ProofError(f"inclusion proof gives root {calculated.hex()}, expected {root.hex()}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows the tree (size1, root1) is a prefix of (size2, root2)."""
    _check_count("size1", size1)
    _check_count("size2", size2)
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("empty proof for different sizes")

    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    # When size1 is a power of two its root is itself a node of the proof path.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, expected {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError(f"consistency proof gives old root {hash1.hex()}, expected {root1.hex()}")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError(f"consistency proof gives new root {hash2.hex()}, expected {root2.hex()}")
