"""Property tests: every proof the log produces verifies, and any single bit flip fails."""

from __future__ import annotations

import ledger_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ledger.errors import LedgerVerificationError
from app.ledger.merkle import MerkleLog, leaf_hash, verify_consistency, verify_inclusion

MAX = 400
LEAVES = [leaf_hash(b"property entry %d" % i) for i in range(MAX)]
LOG = MerkleLog()
LOG.extend(LEAVES)
ROOTS = [LOG.root(n) for n in range(MAX + 1)]  # historic roots, as if from signed heads


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(0, MAX))
    return draw(st.integers(0, new)), new


@settings(max_examples=300, deadline=None)
@given(index_and_size())
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    proof = LOG.inclusion_proof(index, size)
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@settings(max_examples=300, deadline=None)
@given(two_sizes())
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    old, new = case
    proof = LOG.consistency_proof(old, new)
    verify_consistency(old, new, proof, ROOTS[old], ROOTS[new])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_consistency_proofs_match_the_rfc_reference(case: tuple[int, int]) -> None:
    new, old = case
    assert LOG.consistency_proof(old, new) == ref.proof(old, LEAVES[:new])


@settings(max_examples=300, deadline=None)
@given(index_and_size(), st.data())
def test_any_bit_flip_breaks_inclusion(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    proof = LOG.inclusion_proof(index, size)
    leaf, tree_root = LEAVES[index], ROOTS[size]
    # Flip one bit in the leaf hash, the root, or one proof element.
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        tree_root = _flip(tree_root, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(LedgerVerificationError):
        verify_inclusion(leaf, index, size, proof, tree_root)


@settings(max_examples=300, deadline=None)
@given(two_sizes().filter(lambda c: 0 < c[0] < c[1]), st.data())
def test_any_bit_flip_breaks_consistency(case: tuple[int, int], data: st.DataObject) -> None:
    old, new = case
    proof = LOG.consistency_proof(old, new)
    old_root, new_root = ROOTS[old], ROOTS[new]
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        old_root = _flip(old_root, bit)
    elif target == -1:
        new_root = _flip(new_root, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(LedgerVerificationError):
        verify_consistency(old, new, proof, old_root, new_root)


@settings(max_examples=200, deadline=None)
@given(index_and_size(), st.integers(-3, 3).filter(bool))
def test_a_proof_does_not_verify_another_position(case: tuple[int, int], shift: int) -> None:
    index, size = case
    other = index + shift
    proof = LOG.inclusion_proof(index, size)
    if 0 <= other < size and LEAVES[other] != LEAVES[index]:
        with pytest.raises(LedgerVerificationError):
            verify_inclusion(LEAVES[index], other, size, proof, ROOTS[size])
        with pytest.raises(LedgerVerificationError):
            verify_inclusion(LEAVES[other], index, size, proof, ROOTS[size])
