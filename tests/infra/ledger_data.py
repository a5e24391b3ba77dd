"""A small signed audit ledger as verification's collector returns it (plain data).

Entries are canonical ledger entries, the tree is RFC 9162 (``app.ledger.merkle``), each
head is signed with a local P-256 key exactly as KMS signs the checkpoint text; so the
ledger rule runs the real verifier on data written by hand, compliant or tampered.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.ledger.checkpoint import SignedTreeHead, checkpoint_message
from app.ledger.entries import Action, Actor, AuditEntry, Outcome, Resource, ResourceType, Role
from app.ledger.merkle import MerkleLog, leaf_hash

KEY = ec.derive_private_key(0x5EED, ec.SECP256R1())


def _entry(n: int, outcome: Outcome = Outcome.SUCCESS) -> bytes:
    return AuditEntry(
        sequence=n,
        timestamp_ms=1795599000000 + n,
        actor=Actor("0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab", (Role.DOCTOR,)),
        action=Action.READ,
        resource=Resource(ResourceType.GROUP, f"g{n}"),
        outcome=outcome,
        reason="member-views-open-group",
        request_id=f"req-{n}",
    ).to_bytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signed_ledger(size: int = 6, *, table: str = "hub-p1-ledger", bucket: str = "audit") -> dict:
    """``size`` entries with a signed head after every second one (and at the end)."""
    entries = [_entry(n) for n in range(size)]
    log = MerkleLog()
    heads: list[dict[str, Any]] = []
    for n, raw in enumerate(entries):
        log.append(raw)
        if n % 2 == 1 or n == size - 1:
            root, ts = log.root(), 1795599000000 + 1000 * n
            message = checkpoint_message("phase1-specialist", log.size, root, ts)
            signature = KEY.sign(message, ec.ECDSA(hashes.SHA256()))
            heads.append(
                SignedTreeHead("phase1-specialist", log.size, root, ts, signature, "k").to_json()
            )
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "table": table,
        "bucket": bucket,
        "signing_key": "arn:aws:kms:ap-east-1:123456789012:key/sig",
        "public_key_pem": pem.decode(),
        "entries": {str(n): _b64(raw) for n, raw in enumerate(entries)},
        "tree_leaves": {str(n): _b64(leaf_hash(raw)) for n, raw in enumerate(entries)},
        "heads": heads,
    }


def tampered(ledger: dict, index: int) -> dict:
    """The same ledger with entry ``index`` rewritten in place (still canonical): what an
    insider hiding a refusal would do; the tree's stored leaf hash gives it away."""
    entries = dict(ledger["entries"])
    entries[str(index)] = _b64(_entry(index, Outcome.DENIED))
    return {**ledger, "entries": entries}
