"""Handing a record version's data key to one client, so that no log or trace on the way
can hold it: HPKE (RFC 9180) base mode to the client's ephemeral public key.

Suite: DHKEM(P-256, HKDF-SHA256) (KEM id 0x0010), HKDF-SHA256 (KDF id 0x0001), AES-256-GCM
(AEAD id 0x0002), single-shot ``enc || ciphertext``: 65 + 32 + 16 = 113 bytes for a data
key. P-256 rather than X25519 because every browser's WebCrypto has ECDH on P-256 (X25519
only in recent ones), and the rest is HKDF and AES-GCM, also in WebCrypto, so the web
client can unwrap with the platform alone. The implementation is pyca/cryptography's
``hpke.Suite`` (tests check its output against an RFC 9180 key schedule written from the
RFC). ``info`` binds the wrapped key to one record version: ``LP("hub-data-key/1") ||
CTX``, with ``CTX`` the format 2 context encoding, so a key wrapped for one version never
unwraps as another's.

The client makes a fresh key pair per request (``RecipientKey``) and sends only the
public key (the 65-byte uncompressed point, WebCrypto's ``raw`` export, standard base64).
Guarantees: a wrapped key unwraps only with that private key and that context; every
failure to unwrap is the opaque ``InvalidRecord``; nothing here logs or ``repr``s a key.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec

from app.crypto import _primitives as prim
from app.crypto.context import RecordContext
from app.crypto.errors import InvalidRecord

SUITE_NAME = "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
INFO_LABEL = b"hub-data-key/1"
PUBLIC_KEY_BYTES = 65
WRAPPED_KEY_BYTES = PUBLIC_KEY_BYTES + prim.DATA_KEY_BYTES + prim.TAG_BYTES

_SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def handover_info(context: RecordContext) -> bytes:
    """HPKE ``info`` for a record version: ``LP("hub-data-key/1") || CTX``."""
    encoding = prim.context_encoding_v2(
        context.record_id, context.patient_id, context.version, context.institution
    )
    return struct.pack(">I", len(INFO_LABEL)) + INFO_LABEL + encoding


def recipient_public_key(raw: bytes) -> ec.EllipticCurvePublicKey:
    """Parse a client's public key: a 65-byte uncompressed P-256 point on the curve.

    Raises:
        ValueError: anything else (wrong length, compressed form, not on the curve).
    """
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_BYTES or raw[0] != 0x04:
        raise ValueError("public key must be an uncompressed P-256 point (65 bytes)")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def wrap_data_key(data_key: bytes, recipient: bytes, context: RecordContext) -> bytes:
    """Wrap ``data_key`` for the holder of ``recipient``'s private key, bound to ``context``.

    Raises:
        ValueError: ``recipient`` is not a valid public key, or the key is not 32 bytes.
    """
    if not isinstance(data_key, bytes) or len(data_key) != prim.DATA_KEY_BYTES:
        raise ValueError("data key must be 32 bytes")
    return bytes(
        _SUITE.encrypt(data_key, recipient_public_key(recipient), info=handover_info(context))
    )


class RecipientKey:
    """A client's ephemeral key pair for one key handover (never stored, never logged)."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())

    def __repr__(self) -> str:
        return "RecipientKey(<secret>)"

    @property
    def public_bytes(self) -> bytes:
        """The 65-byte uncompressed point to send to the service."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self._private.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )

    def unwrap(self, wrapped: bytes, context: RecordContext) -> bytes:
        """The data key wrapped for this key pair and ``context``.

        Raises:
            InvalidRecord: wrong length, another recipient or another context (opaque).
        """
        if not isinstance(wrapped, bytes) or len(wrapped) != WRAPPED_KEY_BYTES:
            raise InvalidRecord() from None
        try:
            key = _SUITE.decrypt(wrapped, self._private, info=handover_info(context))
        except (InvalidTag, ValueError):
            raise InvalidRecord() from None
        if len(key) != prim.DATA_KEY_BYTES:
            raise InvalidRecord() from None
        return bytes(key)
