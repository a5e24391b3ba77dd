"""Signed tree heads (checkpoints): what is signed, how KMS signs it, how anyone verifies it.

A tree head commits to the whole log: ``(size, root, timestamp)``. The signed message is
the checkpoint text, ASCII, one field per line, each line ending in ``\\n``::

    health-hub/ledger/v1
    <origin>                 the deployment (stack) the log belongs to
    <size>                   decimal number of entries
    <root>                   base64 of the 32-byte RFC 9162 root
    <timestamp_ms>           decimal milliseconds since the Unix epoch, UTC

It is signed with the deployment's KMS asymmetric key (``ECC_NIST_P256``,
``ECDSA_SHA_256``, ``MessageType=RAW``: KMS hashes the text with SHA-256 and returns a
DER-encoded ECDSA signature). :func:`verify_head` needs only the public key (PEM, from
``GetPublicKey``) and ``cryptography``: no AWS access, no trust in the service.

Guarantees: a head parsed from JSON is validated field by field; :func:`verify_head`
raises :class:`BadSignature` on any mismatch (wrong key, altered size, root, timestamp
or origin), never returns False.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.ledger._hashing import HASH_SIZE
from app.ledger.errors import LedgerVerificationError

CHECKPOINT_FORMAT = "health-hub/ledger/v1"
ALGORITHM = "ECDSA_SHA_256"
CHECKPOINT_PREFIX = "ledger-checkpoints/"


class BadSignature(LedgerVerificationError):
    """A tree head's signature does not verify under the given public key."""


class MalformedHead(LedgerVerificationError):
    """A tree head document is missing a field or has one of the wrong shape."""


@dataclass(frozen=True)
class SignedTreeHead:
    origin: str
    size: int
    root: bytes
    timestamp_ms: int
    signature: bytes
    key_id: str
    algorithm: str = ALGORITHM

    def message(self) -> bytes:
        return checkpoint_message(self.origin, self.size, self.root, self.timestamp_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "timestamp_ms": self.timestamp_ms,
            "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id,
            "algorithm": self.algorithm,
        }

    @classmethod
    def from_json(cls, data: Any) -> SignedTreeHead:
        if not isinstance(data, dict):
            raise MalformedHead("a tree head must be a JSON object")
        try:
            if data.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
                raise MalformedHead("unknown checkpoint format")
            size, ts = data["size"], data["timestamp_ms"]
            if type(size) is not int or type(ts) is not int or size < 0 or ts < 0:
                raise MalformedHead("size and timestamp_ms must be non-negative integers")
            root = base64.b64decode(data["root"], validate=True)
            signature = base64.b64decode(data["signature"], validate=True)
            origin, key_id = str(data["origin"]), str(data["key_id"])
            algorithm = str(data.get("algorithm", ALGORITHM))
        except (KeyError, TypeError, binascii.Error) as exc:
            raise MalformedHead(f"tree head field missing or malformed: {exc}") from None
        if len(root) != HASH_SIZE:
            raise MalformedHead("root must be 32 bytes")
        return cls(origin, size, root, ts, signature, key_id, algorithm)


def checkpoint_message(origin: str, size: int, root: bytes, timestamp_ms: int) -> bytes:
    """The exact bytes that are signed for a tree head."""
    if "\n" in origin or not origin.isascii() or not origin:
        raise MalformedHead("origin must be one non-empty ASCII line")
    lines = [
        CHECKPOINT_FORMAT,
        origin,
        str(size),
        base64.b64encode(root).decode(),
        str(timestamp_ms),
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def checkpoint_object_key(size: int, timestamp_ms: int) -> str:
    """Where a head is archived in the Object Lock bucket; lexical order = log order."""
    return f"{CHECKPOINT_PREFIX}{size:012d}-{timestamp_ms:013d}.json"


class HeadSigner(Protocol):
    key_id: str

    def sign(self, message: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


class KmsHeadSigner:
    """Signs with a KMS ``ECC_NIST_P256`` key; the private key never leaves KMS."""

    def __init__(self, kms: Any, key_id: str):
        self._kms = kms
        self.key_id = key_id
        self._pem: bytes | None = None

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(
            KeyId=self.key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=ALGORITHM,
        )
        return bytes(response["Signature"])

    def public_key_pem(self) -> bytes:
        """The public key as PEM (SubjectPublicKeyInfo), fetched once with GetPublicKey."""
        if self._pem is None:
            response = self._kms.get_public_key(KeyId=self.key_id)
            if ALGORITHM not in response.get("SigningAlgorithms", [ALGORITHM]):
                raise MalformedHead(f"key {self.key_id} cannot sign with {ALGORITHM}")
            key = serialization.load_der_public_key(bytes(response["PublicKey"]))
            self._pem = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return self._pem


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise MalformedHead("the public key is not an ECDSA P-256 key")
    return key


def verify_head(head: SignedTreeHead, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check a head's signature offline.

    Raises:
        BadSignature: if the signature is not valid for this head under ``public_key``.
        MalformedHead: if the head names another algorithm.
    """
    if head.algorithm != ALGORITHM:
        raise MalformedHead(f"unsupported signing algorithm {head.algorithm}")
    try:
        public_key.verify(head.signature, head.message(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature(f"signature of the tree head of size {head.size} is invalid") from None


# --- trails and the ledger checkpoint over them ---------------------------------------------

LEDGER_CHECKPOINT_FORMAT = "health-hub/ledger-checkpoint/v1"
TRAIL_HEAD_FORMAT = "health-hub/trail-head/v1"
LEDGER_CHECKPOINT_PREFIX = f"{CHECKPOINT_PREFIX}ledger/"
# Every trail k >= 1 has a folder under it: listing it with a "/" delimiter names them all.
TRAIL_FOLDERS_PREFIX = f"{CHECKPOINT_PREFIX}trail-"


def trail_origin(origin: str, trail: int) -> str:
    """The origin a trail's heads are signed under: the stack for trail 0 (as before
    trails), ``<stack>/trail/<k>`` for trail ``k``; a head cannot pass for another
    trail's."""
    return origin if trail == 0 else f"{origin}/trail/{trail}"


def trail_checkpoint_prefix(trail: int) -> str:
    """Where a trail's signed heads are archived: ``ledger-checkpoints/`` for trail 0,
    ``ledger-checkpoints/trail-<nnn>/`` for the others."""
    return CHECKPOINT_PREFIX if trail == 0 else f"{CHECKPOINT_PREFIX}trail-{trail:03d}/"


@dataclass(frozen=True)
class TrailHead:
    """One trail's tree head as a ledger checkpoint lists it."""

    trail: int
    size: int
    root: bytes

    def leaf(self) -> bytes:
        """The checkpoint tree's leaf for this head (hashed as an RFC 9162 leaf)."""
        root = base64.b64encode(self.root).decode()
        return f"{TRAIL_HEAD_FORMAT}\n{self.trail}\n{self.size}\n{root}\n".encode("ascii")


def checkpoint_root(heads: Sequence[TrailHead]) -> bytes:
    """The RFC 9162 root over the trail heads, in trail order: one hash for the ledger."""
    from app.ledger.merkle import MerkleLog

    log = MerkleLog()
    for head in heads:
        log.append(head.leaf())
    return log.root()


def trail_head_proof(heads: Sequence[TrailHead], trail: int) -> list[bytes]:
    """The audit path of ``trail``'s head in the checkpoint tree over ``heads``."""
    from app.ledger.merkle import MerkleLog

    log = MerkleLog()
    for head in heads:
        log.append(head.leaf())
    return log.inclusion_proof(trail, len(heads))


def verify_trail_head_in(head: TrailHead, proof: Sequence[bytes], trails: int, root: bytes) -> None:
    """Check that ``head`` is leaf ``head.trail`` of a checkpoint tree of ``trails``
    leaves with ``root``. Raises :class:`LedgerVerificationError` otherwise."""
    from app.ledger._hashing import leaf_hash
    from app.ledger.merkle import verify_inclusion

    verify_inclusion(leaf_hash(head.leaf()), head.trail, trails, list(proof), root)


def ledger_checkpoint_message(origin: str, timestamp_ms: int, heads: Sequence[TrailHead]) -> bytes:
    """The exact bytes signed for a ledger checkpoint: every trail's head and the root
    over them, so one signature (and one root) commits to the whole ledger."""
    if "\n" in origin or not origin.isascii() or not origin:
        raise MalformedHead("origin must be one non-empty ASCII line")
    lines = [
        LEDGER_CHECKPOINT_FORMAT,
        origin,
        str(timestamp_ms),
        str(len(heads)),
        base64.b64encode(checkpoint_root(heads)).decode(),
        *(f"{h.trail} {h.size} {base64.b64encode(h.root).decode()}" for h in heads),
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def ledger_checkpoint_object_key(timestamp_ms: int, heads: Sequence[TrailHead]) -> str:
    """Archive key of a ledger checkpoint: time order, unique per content."""
    total = sum(h.size for h in heads)
    return f"{LEDGER_CHECKPOINT_PREFIX}{timestamp_ms:013d}-{total:012d}.json"


@dataclass(frozen=True)
class LedgerCheckpoint:
    """A signed statement of every trail's head at one moment (trails ``0 .. N-1``)."""

    origin: str
    timestamp_ms: int
    heads: tuple[TrailHead, ...]
    signature: bytes
    key_id: str
    algorithm: str = ALGORITHM

    @property
    def root(self) -> bytes:
        return checkpoint_root(self.heads)

    @property
    def trails(self) -> int:
        return len(self.heads)

    def head(self, trail: int) -> TrailHead | None:
        return self.heads[trail] if 0 <= trail < len(self.heads) else None

    def message(self) -> bytes:
        return ledger_checkpoint_message(self.origin, self.timestamp_ms, self.heads)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LEDGER_CHECKPOINT_FORMAT,
            "origin": self.origin,
            "timestamp_ms": self.timestamp_ms,
            "trails": [
                {"trail": h.trail, "size": h.size, "root": base64.b64encode(h.root).decode()}
                for h in self.heads
            ],
            "root": base64.b64encode(self.root).decode(),
            "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id,
            "algorithm": self.algorithm,
        }

    @classmethod
    def from_json(cls, data: Any) -> LedgerCheckpoint:
        if not isinstance(data, dict) or data.get("format") != LEDGER_CHECKPOINT_FORMAT:
            raise MalformedHead("not a ledger checkpoint")
        try:
            ts = data["timestamp_ms"]
            if type(ts) is not int or ts < 0:
                raise MalformedHead("timestamp_ms must be a non-negative integer")
            heads = []
            for position, row in enumerate(data["trails"]):
                trail, size = row["trail"], row["size"]
                if type(trail) is not int or type(size) is not int or size < 0:
                    raise MalformedHead("trail and size must be non-negative integers")
                if trail != position:
                    raise MalformedHead("a ledger checkpoint lists trails 0 .. N-1 in order")
                root = base64.b64decode(row["root"], validate=True)
                if len(root) != HASH_SIZE:
                    raise MalformedHead("root must be 32 bytes")
                heads.append(TrailHead(trail, size, root))
            if not heads:
                raise MalformedHead("a ledger checkpoint lists at least one trail")
            signature = base64.b64decode(data["signature"], validate=True)
            origin, key_id = str(data["origin"]), str(data["key_id"])
            algorithm = str(data.get("algorithm", ALGORITHM))
        except (KeyError, TypeError, binascii.Error) as exc:
            raise MalformedHead(f"checkpoint field missing or malformed: {exc}") from None
        checkpoint = cls(origin, ts, tuple(heads), signature, key_id, algorithm)
        stated = data.get("root")
        if stated is not None and stated != base64.b64encode(checkpoint.root).decode():
            raise MalformedHead("the stated root is not the root over the listed trail heads")
        return checkpoint


def verify_ledger_checkpoint(
    checkpoint: LedgerCheckpoint, public_key: ec.EllipticCurvePublicKey
) -> None:
    """Check a ledger checkpoint's signature offline (raises :class:`BadSignature`)."""
    if checkpoint.algorithm != ALGORITHM:
        raise MalformedHead(f"unsupported signing algorithm {checkpoint.algorithm}")
    try:
        public_key.verify(checkpoint.signature, checkpoint.message(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature(
            f"signature of the ledger checkpoint at {checkpoint.timestamp_ms} is invalid"
        ) from None
