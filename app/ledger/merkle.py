"""The audit ledger's Merkle tree: RFC 9162 hashing, proofs from stored nodes, verification.

What this module guarantees:

- Hashing is exactly RFC 9162 §2.1 (the Certificate Transparency tree): a leaf is
  SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left || right), a tree of n > 1
  leaves splits at the largest power of two smaller than n, and the empty tree's root is
  SHA-256 of the empty string. Any RFC 6962/9162 verifier accepts our proofs.
- Proofs are built from *stored nodes*: the hashes of complete (perfect) subtrees, which
  never change once written because the log is append-only. A proof for a tree of size n
  reads O(log n) nodes, in one batch, and never reads the whole log. The same functions
  serve the in-memory :class:`MerkleLog` and any durable store implementing
  :class:`NodeStore`.
- :func:`verify_inclusion` and :func:`verify_consistency` return nothing and raise a
  :class:`~app.ledger.errors.LedgerVerificationError` subclass on any failure. They check
  preconditions first (sizes and indices, hash lengths, the exact proof length) and
  compare roots in constant time.

Nodes are addressed by :class:`NodeId` ``(level, index)``: the complete subtree at
``level`` covering leaves ``[index * 2**level, (index + 1) * 2**level)``. Level 0 holds the
leaf hashes. Names follow RFC 9162 and transparency-dev/merkle.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Protocol

from app.ledger._hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    NODE_PREFIX,
    leaf_hash,
    node_hash,
    split_point,
)
from app.ledger.errors import (
    IndexOutOfRange,
    InvalidHashLength,
    InvalidProofLength,
    InvalidTreeSize,
    NodeNotFound,
    RootMismatch,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "MerkleLog",
    "NodeId",
    "NodeStore",
    "consistency_proof",
    "consistency_proof_length",
    "inclusion_proof",
    "inclusion_proof_length",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_store",
    "verify_consistency",
    "verify_inclusion",
]


@dataclass(frozen=True, slots=True)
class NodeId:
    """A complete subtree: ``level`` (0 = leaf) and its ``index`` within that level."""

    level: int
    index: int


class NodeStore(Protocol):
    """Read side of a Merkle node store (in memory, DynamoDB, S3 tiles...).

    A store holds, for its current ``tree_size()``, the hash of every complete subtree
    within ``[0, tree_size)``. Those hashes never change once written, so a store of size
    N can serve proofs and roots for any size <= N.
    """

    def tree_size(self) -> int:
        """Number of leaves whose nodes are all stored."""
        ...

    def read_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """The hashes of the given nodes, in order; raises NodeNotFound if one is missing."""
        ...


# --- which nodes a proof needs (pure functions of the sizes) -------------------------------


def _range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete subtrees covering leaves ``[begin, end)``, left to right.

    For an RFC 9162 subtree (``begin`` aligned to the subtree's width) these are its
    perfect subtrees from the largest down, and folding them right to left gives MTH.
    """
    nodes = []
    while begin < end:
        # The largest block that both starts at `begin` (alignment) and fits before `end`.
        fit = (end - begin).bit_length() - 1
        level = fit if begin == 0 else min(fit, (begin & -begin).bit_length() - 1)
        nodes.append(NodeId(level, begin >> level))
        begin += 1 << level
    return nodes


def _inclusion_plan(index: int, size: int) -> list[list[NodeId]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]): per proof element, the nodes to fold.

    Every element is one stored node except at most one, the sibling on the tree's right
    border, which is folded from the O(log n) complete subtrees that cover it.
    """
    lo, hi = 0, size
    top_down = []
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            top_down.append(_range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(_range_nodes(lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def _consistency_plan(old_size: int, new_size: int) -> list[list[NodeId]]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]), for 0 < old_size < new_size."""
    lo, hi, m, whole_old_tree = 0, new_size, old_size, True
    top_down = []
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            top_down.append(_range_nodes(lo + k, hi))
            hi = lo + k
        else:
            top_down.append(_range_nodes(lo, lo + k))
            lo += k
            m -= k
            whole_old_tree = False
    top_down.reverse()
    # SUBPROOF(m, D[m], true) is empty: the verifier already holds the old root.
    return top_down if whole_old_tree else [_range_nodes(lo, hi), *top_down]


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a subtree given its perfect subtrees' roots, left to right."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _read_plan(store: NodeStore, plan: list[list[NodeId]]) -> list[bytes]:
    flat = [node for element in plan for node in element]
    hashes = store.read_nodes(flat)
    if len(hashes) != len(flat):
        raise NodeNotFound(f"store returned {len(hashes)} nodes for {len(flat)} requested")
    proof, at = [], 0
    for element in plan:
        proof.append(_fold(hashes[at : at + len(element)]))
        at += len(element)
    return proof


def _check_store_size(store: NodeStore, size: int) -> None:
    stored = store.tree_size()
    if size > stored:
        raise NodeNotFound(f"tree size {size} exceeds the stored tree size {stored}")


# --- public proof construction -------------------------------------------------------------


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves.

    Raises:
        IndexOutOfRange: unless 0 <= index < size.
        NodeNotFound: if ``size`` exceeds the store's tree size or a node is missing.
    """
    if not 0 <= index < size:
        raise IndexOutOfRange(f"leaf index {index} is not below tree size {size}")
    _check_store_size(store, size)
    return _read_plan(store, _inclusion_plan(index, size))


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``new_size`` leaves extends the tree of ``old_size``.

    Empty when ``old_size`` is 0 or equal to ``new_size`` (RFC 9162 §2.1.4).

    Raises:
        InvalidTreeSize: unless 0 <= old_size <= new_size.
        NodeNotFound: if ``new_size`` exceeds the store's tree size or a node is missing.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidTreeSize(f"sizes must satisfy 0 <= {old_size} <= {new_size}")
    _check_store_size(store, new_size)
    if old_size in (0, new_size):
        return []
    return _read_plan(store, _consistency_plan(old_size, new_size))


def root_from_store(store: NodeStore, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves, from O(log size) stored nodes."""
    if size < 0:
        raise InvalidTreeSize(f"tree size {size} is negative")
    _check_store_size(store, size)
    if size == 0:
        return EMPTY_ROOT
    return _fold(store.read_nodes(_range_nodes(0, size)))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root (MTH) of a tree given all its leaf hashes, in O(log n) memory.

    Raises:
        InvalidHashLength: if a leaf hash is not 32 bytes.
    """
    # Roots of the perfect subtrees seen so far, largest first (a compact range).
    stack: list[bytes] = []
    for count, h in enumerate(leaf_hashes):
        _check_hash("leaf hash", h)
        stack.append(h)
        merges = count
        while merges & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            merges >>= 1
    return _fold(stack) if stack else EMPTY_ROOT


# --- verification --------------------------------------------------------------------------


def inclusion_proof_length(index: int, size: int) -> int:
    """Exact number of hashes in the audit path of leaf ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise IndexOutOfRange(f"leaf index {index} is not below tree size {size}")
    # Levels where index and the last leaf part ways need a sibling each ("inner"); above
    # them, one per left sibling on the right border ("border").
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Exact number of hashes in the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise InvalidTreeSize(f"sizes must satisfy 0 <= {old_size} <= {new_size}")
    if old_size in (0, new_size):
        return 0
    length = inclusion_proof_length(old_size - 1, new_size)
    # The levels below the old tree's last perfect subtree are implied by its root, which is
    # itself sent unless the old tree is exactly that perfect subtree.
    shift = (old_size & -old_size).bit_length() - 1
    return length - shift + (0 if old_size == 1 << shift else 1)


_HASH_TYPES = (bytes, bytearray)


def _check_hash(what: str, value: object) -> None:
    if not isinstance(value, _HASH_TYPES) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, _HASH_TYPES) else type(value).__name__
        raise InvalidHashLength(f"{what} must be {HASH_SIZE} bytes, got {size}")


def _check_proof(proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise InvalidProofLength(f"proof has {len(proof)} hashes, expected {expected}")
    for i, h in enumerate(proof):
        # Cheap exact-type test first: this runs for every element of every proof verified.
        if type(h) not in _HASH_TYPES or len(h) != HASH_SIZE:
            _check_hash(f"proof[{i}]", h)


def _check_root(what: str, computed: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(computed, expected):
        raise RootMismatch(f"{what} does not match the root recomputed from the proof")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Returns nothing on success.

    Raises:
        IndexOutOfRange: unless 0 <= index < size.
        InvalidHashLength: if the leaf hash, the root or a proof element is not 32 bytes.
        InvalidProofLength: if the proof is not exactly as long as RFC 9162 prescribes.
        RootMismatch: if the recomputed root differs from ``root``.
    """
    if not 0 <= index < size:
        raise IndexOutOfRange(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_proof(proof, inclusion_proof_length(index, size))

    fn, sn, r = index, size - 1, bytes(leaf_hash)
    # node_hash inlined, names bound locally: this loop is the verifier's hot path.
    hash_, prefix = sha256, NODE_PREFIX
    for p in proof:
        if fn & 1 or fn == sn:
            r = hash_(prefix + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_(prefix + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's final condition
        raise InvalidProofLength("proof does not reach the root")
    _check_root("root", r, root)


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    RFC 9162 §2.1.4.2. Returns nothing on success. Stricter than the RFC on one point: an
    empty old tree must have the empty tree's root.

    Raises:
        InvalidTreeSize: unless 0 <= old_size <= new_size.
        InvalidHashLength: if a root or a proof element is not 32 bytes.
        InvalidProofLength: if the proof is not exactly as long as RFC 9162 prescribes.
        RootMismatch: if either recomputed root differs from the one given.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidTreeSize(f"sizes must satisfy 0 <= {old_size} <= {new_size}")
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof(proof, consistency_proof_length(old_size, new_size))

    if old_size == new_size:
        _check_root("new root", old_root, new_root)
        return
    if old_size == 0:
        _check_root("old root", EMPTY_ROOT, old_root)
        return

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; the RFC's own guard
            raise InvalidProofLength("proof is longer than the tree is tall")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofLength("proof does not reach the new root")
    _check_root("old root", fr, old_root)
    _check_root("new root", sr, new_root)


# --- in-memory log -------------------------------------------------------------------------


class MemoryNodeStore:
    """Complete-subtree hashes held in memory, one packed ``bytearray`` per level.

    32 bytes per node and about two nodes per leaf: a log of 10**6 entries takes ~64 MB.
    Only :class:`MerkleLog` writes to it; readers may run concurrently with one writer,
    because a node is written before the size that makes it visible.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    def tree_size(self) -> int:
        return self._size

    def read_nodes(self, ids: Sequence[NodeId]) -> list[bytes]:
        levels = self._levels
        out = []
        for node in ids:
            level, index = node.level, node.index
            start = index * HASH_SIZE
            if level < 0 or index < 0 or level >= len(levels):
                raise NodeNotFound(f"no node at level {level}, index {index}")
            h = bytes(levels[level][start : start + HASH_SIZE])
            if len(h) != HASH_SIZE:
                raise NodeNotFound(f"no node at level {level}, index {index}")
            out.append(h)
        return out

    def root(self, size: int) -> bytes:
        """Root of the first ``size`` leaves, read straight from the packed levels.

        Same result as :func:`root_from_store`, without building a read plan: the log's
        hot path when a tree head is taken after every batch.
        """
        if not 0 <= size <= self._size:
            raise NodeNotFound(f"tree size {size} is not within the stored size {self._size}")
        if size == 0:
            return EMPTY_ROOT
        levels = self._levels
        # Perfect subtrees of [0, size), smallest (rightmost) first, folded leftwards.
        level = (size & -size).bit_length() - 1
        end = size - (1 << level)
        at = (end >> level) * HASH_SIZE
        acc = bytes(levels[level][at : at + HASH_SIZE])
        bits = size >> (level + 1)
        while bits:
            level += 1
            if bits & 1:
                end -= 1 << level
                at = (end >> level) * HASH_SIZE
                acc = sha256(NODE_PREFIX + levels[level][at : at + HASH_SIZE] + acc).digest()
            bits >>= 1
        return acc

    def _append_leaf_hash(self, h: bytes) -> int:
        """Store one leaf and every subtree it completes: amortised O(1) hashes."""
        levels = self._levels
        index = self._size
        levels[0] += h
        level, i = 0, index
        while i & 1:
            # The new node's left sibling is the previous node on the same level.
            parent = sha256(NODE_PREFIX + levels[level][-2 * HASH_SIZE : -HASH_SIZE] + h).digest()
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent
            h = parent
            i >>= 1
        self._size = index + 1
        return index


class MerkleLog:
    """An append-only, in-memory RFC 9162 log of leaf hashes with O(log n) proofs.

    Appends cost amortised O(1) hashes (at most log2(n)); roots and proofs read O(log n)
    stored nodes. One writer at a time; entries themselves are not kept, only their
    leaf hashes (the durable ledger stores entries next to the tree).
    """

    def __init__(self, store: MemoryNodeStore | None = None) -> None:
        self.store = store if store is not None else MemoryNodeStore()

    @property
    def size(self) -> int:
        return self.store.tree_size()

    def __len__(self) -> int:
        return self.store.tree_size()

    def append(self, entry: bytes) -> int:
        """Append an entry (its leaf hash is stored); returns its leaf index."""
        return self.store._append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append an already computed leaf hash; returns its leaf index."""
        _check_hash("leaf hash", h)
        return self.store._append_leaf_hash(bytes(h))

    def extend(self, leaf_hashes: Iterable[bytes]) -> int:
        """Append many leaf hashes; returns the new size."""
        for h in leaf_hashes:
            self.append_leaf_hash(h)
        return self.size

    def leaf_hash_at(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise IndexOutOfRange(f"leaf index {index} is not below tree size {self.size}")
        return self.store.read_nodes([NodeId(0, index)])[0]

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: the whole log)."""
        if size is not None and size < 0:
            raise InvalidTreeSize(f"tree size {size} is negative")
        return self.store.root(self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.store, index, self.size if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(self.store, old_size, self.size if new_size is None else new_size)
