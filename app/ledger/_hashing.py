"""Low-level RFC 9162 hashing primitives. Warning: building blocks, not a verifier.

Nothing here checks a proof. A root computed with these functions means something only
when compared, in constant time, with a root obtained independently (a signed tree head).
Use :func:`app.ledger.merkle.verify_inclusion` and
:func:`app.ledger.merkle.verify_consistency` instead of recombining hashes yourself.

The domain-separation prefixes (0x00 for leaves, 0x01 for interior nodes) are what stop
an interior node from being passed off as a leaf (second-preimage attack); never hash
leaf or node material without them.
"""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

EMPTY_ROOT = sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry."""
    return sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)
