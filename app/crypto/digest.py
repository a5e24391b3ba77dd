"""The content digest of a record version, sealed under its data key.

Format 2 keeps no plaintext digest (sealing would pay a SHA-256 pass; see
``ShardedEnvelope``), yet a reader should be able to compare the bytes it assembled with
what the uploader sealed, and the records table should not hold a plain hash of content
(a short document's hash confirms a guess). So the uploader (the doctor's client, or the
service for records it seals itself) seals the SHA-256 of the plaintext in a small box
that only data-key holders open:

  ``Kd = HKDF-SHA256(ikm = K, salt = manifest key_salt, info = LP("hub-content-digest/1")
  || LP("content-digest-key") || CTX, L = 32)``;
  ``box = N || AES-256-GCM(Kd, N, SHA-256(plaintext), AAD = LP("hub-content-digest/1") ||
  mac)``, ``N`` 12 random bytes: 60 bytes, standard base64 where it travels as text.

``CTX`` is the format 2 context encoding and ``mac`` the manifest's MAC, so a box opens
only with its own record version's key and next to its own manifest. The opener reports
the digest as ``Repr-Digest`` (RFC 9530, ``sha-256=:<base64>:``). Like the shards' tags,
the box authenticates against anyone without ``K``; a holder of ``K`` can make another.

Guarantees: every failure to open is the opaque ``InvalidRecord``; only WebCrypto
primitives (HKDF, AES-GCM); the random source is injectable for tests.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.crypto import _primitives as prim
from app.crypto.context import RecordContext
from app.crypto.errors import InvalidRecord
from app.crypto.manifest import ManifestV1, ManifestV2

LABEL = b"hub-content-digest/1"
BOX_BYTES = prim.NONCE_BYTES + 32 + prim.TAG_BYTES


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class ContentDigestKey:
    """``Kd`` of one record version: seals and opens its content digest box."""

    def __init__(self, data_key: bytes, key_salt: bytes, context: RecordContext) -> None:
        if not isinstance(data_key, bytes) or len(data_key) != prim.DATA_KEY_BYTES:
            raise ValueError("data key must be 32 bytes")
        info = (
            _lp(LABEL)
            + _lp(b"content-digest-key")
            + prim.context_encoding_v2(
                context.record_id, context.patient_id, context.version, context.institution
            )
        )
        key = HKDF(algorithm=SHA256(), length=32, salt=key_salt, info=info).derive(data_key)
        self._cipher = AESGCM(key)
        self._context = context
        self._key_salt = key_salt

    def __repr__(self) -> str:
        return "ContentDigestKey(<secret>)"

    def _matches(self, manifest: ManifestV1 | ManifestV2) -> bool:
        return manifest.context == self._context and manifest.key_salt == self._key_salt

    def seal(
        self,
        manifest: ManifestV1 | ManifestV2,
        sha256: bytes,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> bytes:
        """The box holding ``sha256`` (the plaintext's SHA-256) next to ``manifest``."""
        if not isinstance(sha256, bytes) or len(sha256) != 32:
            raise ValueError("a SHA-256 digest is 32 bytes")
        if not self._matches(manifest):
            raise ValueError("the manifest is not this record version's")
        nonce = random_bytes(prim.NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, sha256, _lp(LABEL) + manifest.mac)

    def open(self, manifest: ManifestV1 | ManifestV2, box: bytes) -> bytes:
        """The SHA-256 sealed in ``box``; raises the opaque ``InvalidRecord`` otherwise."""
        if not isinstance(box, bytes) or len(box) != BOX_BYTES or not self._matches(manifest):
            raise InvalidRecord() from None
        nonce, sealed = box[: prim.NONCE_BYTES], box[prim.NONCE_BYTES :]
        try:
            return self._cipher.decrypt(nonce, sealed, _lp(LABEL) + manifest.mac)
        except InvalidTag:
            raise InvalidRecord() from None


def seal_content_digest(
    data_key: bytes,
    manifest: ManifestV1 | ManifestV2,
    sha256: bytes,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """The box holding ``sha256`` for ``manifest``'s version, under its data key."""
    key = ContentDigestKey(data_key, manifest.key_salt, manifest.context)
    return key.seal(manifest, sha256, random_bytes=random_bytes)


def open_content_digest(data_key: bytes, manifest: ManifestV1 | ManifestV2, box: bytes) -> bytes:
    """The SHA-256 sealed in ``box``; raises the opaque ``InvalidRecord`` otherwise."""
    if not isinstance(data_key, bytes) or len(data_key) != prim.DATA_KEY_BYTES:
        raise InvalidRecord() from None
    return ContentDigestKey(data_key, manifest.key_salt, manifest.context).open(manifest, box)
