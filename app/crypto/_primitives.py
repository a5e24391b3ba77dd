"""Low-level building blocks of the sealed-record format. PRIVATE: do not import elsewhere.

WARNING: these functions are sharp. They take raw keys and assume their caller upholds
the format's invariants: a shard key seals exactly one record version (so a nonce derived
from the shard index is never reused under a key), commitment and manifest MAC are
checked before any shard is decrypted, and every failure is turned into the opaque
``InvalidRecord``. Only ``app.crypto.envelope`` upholds them; use its ``ShardedEnvelope``.

What this module guarantees: deterministic, domain-separated encodings (HKDF ``info``
labels, shard associated data) with length prefixes, so no two distinct inputs encode to
the same bytes, and constant-time comparison of secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = "hub-sealed-record/1"
DATA_KEY_BYTES = 32
SALT_BYTES = 32
COMMITMENT_BYTES = 32
MAC_BYTES = 32
TAG_BYTES = 16
NONCE_BYTES = 12
# The nonce is the shard index; 2**32 shards of even 16 bytes is far beyond any record.
MAX_SHARDS = 2**32 - 1

LABEL_ENCRYPTION = b"shard-encryption-key"
LABEL_COMMITMENT = b"key-commitment"
LABEL_MANIFEST_MAC = b"manifest-mac-key"


@dataclass(frozen=True, repr=False)
class Subkeys:
    """The three HKDF-SHA256 outputs of one data key (``repr`` hides them)."""

    encryption_key: bytes
    commitment: bytes
    mac_key: bytes


def canonical_json(value: object) -> bytes:
    """The one byte encoding of a JSON value used everywhere in the format."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def derive_subkeys(data_key: bytes, salt: bytes, context: Mapping[str, str]) -> Subkeys:
    """Derive the shard key, the key-commitment value and the manifest MAC key.

    HKDF-SHA256 (RFC 5869) with L = 32: one extract, then for each label a single expand
    block ``T(1) = HMAC(PRK, info || 0x01)``; tests check it equals cryptography's HKDF.
    The encryption context is in every ``info``, so subkeys (and the commitment) are
    bound to the context even if a key service ignored it.
    """
    if len(data_key) != DATA_KEY_BYTES or len(salt) != SALT_BYTES:
        raise ValueError("data key and salt must be 32 bytes each")
    prk = hmac.digest(salt, data_key, "sha256")
    context_bytes = canonical_json(dict(context))

    def expand(label: bytes) -> bytes:
        info = _length_prefixed(FORMAT_VERSION.encode("ascii"), label, context_bytes)
        return hmac.digest(prk, info + b"\x01", "sha256")

    return Subkeys(
        encryption_key=expand(LABEL_ENCRYPTION),
        commitment=expand(LABEL_COMMITMENT),
        mac_key=expand(LABEL_MANIFEST_MAC),
    )


def hkdf_info(label: bytes, context: Mapping[str, str]) -> bytes:
    """The HKDF ``info`` for ``label`` (exposed so tests can cross-check the derivation)."""
    return _length_prefixed(FORMAT_VERSION.encode("ascii"), label, canonical_json(dict(context)))


def shard_nonce(index: int) -> bytes:
    """The 96-bit nonce of shard ``index``: the index, big-endian."""
    return index.to_bytes(NONCE_BYTES, "big")


def shard_associated_data(
    *,
    record_id: str,
    version: int,
    index: int,
    shard_count: int,
    shard_size: int,
    total_length: int,
) -> bytes:
    """Associated data binding a shard to its place in exactly one record version."""
    return _length_prefixed(
        FORMAT_VERSION.encode("ascii"),
        record_id.encode("utf-8"),
        struct.pack(">QQQQQ", version, index, shard_count, shard_size, total_length),
    )


def new_shard_cipher(encryption_key: bytes) -> AESGCM:
    return AESGCM(encryption_key)


def seal_shard(
    cipher: AESGCM, index: int, plaintext: bytes | memoryview, associated_data: bytes
) -> bytes:
    return cipher.encrypt(shard_nonce(index), plaintext, associated_data)


def open_shard(cipher: AESGCM, index: int, ciphertext: bytes, associated_data: bytes) -> bytes:
    """Decrypt one shard; raises ``cryptography.exceptions.InvalidTag`` on any mismatch.

    AES-GCM checks the tag before returning, so no byte of a forged shard is released.
    """
    return cipher.decrypt(shard_nonce(index), ciphertext, associated_data)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def manifest_mac(mac_key: bytes, body: bytes) -> bytes:
    return hmac.new(mac_key, body, hashlib.sha256).digest()


def equal_secret(a: bytes, b: bytes) -> bool:
    """Constant-time comparison for commitments and MACs."""
    return hmac.compare_digest(a, b)
