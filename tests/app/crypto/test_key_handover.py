"""The data key handed to a client: HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256),
HKDF-SHA256, AES-256-GCM, bound to one record version; and the sealed content digest.

The handover is checked against a second implementation written here from RFC 9180
(section 4 key schedule, section 5.1 base mode, DHKEM in 4.1), from primitives only: what
a browser does with WebCrypto's ECDH, HKDF and AES-GCM. If pyca/cryptography's output
ever stopped being RFC 9180, a web client would stop unwrapping; this test would fail
first."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.crypto.digest import BOX_BYTES, open_content_digest, seal_content_digest
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.handover import (
    WRAPPED_KEY_BYTES,
    RecipientKey,
    handover_info,
    recipient_public_key,
    wrap_data_key,
)
from app.crypto.kms import InMemoryDataKeyProvider

CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=1, institution="hosp-a")
KEY = os.urandom(32)


# -- RFC 9180, from primitives -------------------------------------------------------------


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt or b"\x00" * 32, ikm, "sha256")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, _i2osp(length, 2) + b"HPKE-v1" + suite + label + info, length)


def rfc9180_open(wrapped: bytes, private: ec.EllipticCurvePrivateKey, info: bytes) -> bytes:
    kem_suite = b"KEM" + _i2osp(0x0010, 2)
    enc, ciphertext = wrapped[:65], wrapped[65:]
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc)
    dh = private.exchange(ec.ECDH(), peer)
    mine = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    eae_prk = _labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem_suite, eae_prk, b"shared_secret", enc + mine, 32)
    suite = b"HPKE" + _i2osp(0x0010, 2) + _i2osp(0x0001, 2) + _i2osp(0x0002, 2)
    psk_id_hash = _labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash  # mode_base
    secret = _labeled_extract(suite, shared, b"secret", b"")
    key = _labeled_expand(suite, secret, b"key", context, 32)
    base_nonce = _labeled_expand(suite, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(base_nonce, ciphertext, b"")  # sequence number 0


def test_the_wrapped_key_is_rfc9180_base_mode_with_the_documented_suite_and_info() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    wrapped = wrap_data_key(KEY, public, CONTEXT)
    assert len(wrapped) == WRAPPED_KEY_BYTES == 65 + 32 + 16
    label = b"hub-data-key/1"
    info = handover_info(CONTEXT)
    assert info.startswith(struct.pack(">I", len(label)) + label)
    assert rfc9180_open(wrapped, private, info) == KEY


def test_a_recipient_unwraps_only_its_own_key_for_its_own_record_version() -> None:
    recipient = RecipientKey()
    wrapped = wrap_data_key(KEY, recipient.public_bytes, CONTEXT)
    assert recipient.unwrap(wrapped, CONTEXT) == KEY
    other_version = RecordContext("rec-0001", "pt-0001", 2, "hosp-a")
    with pytest.raises(InvalidRecord):
        recipient.unwrap(wrapped, other_version)
    with pytest.raises(InvalidRecord):
        RecipientKey().unwrap(wrapped, CONTEXT)
    flipped = bytearray(wrapped)
    flipped[-1] ^= 1
    with pytest.raises(InvalidRecord):
        recipient.unwrap(bytes(flipped), CONTEXT)
    with pytest.raises(InvalidRecord):
        recipient.unwrap(wrapped[:-1], CONTEXT)
    assert "secret" in repr(recipient)


def test_each_wrap_uses_a_fresh_ephemeral_key() -> None:
    recipient = RecipientKey()
    first = wrap_data_key(KEY, recipient.public_bytes, CONTEXT)
    second = wrap_data_key(KEY, recipient.public_bytes, CONTEXT)
    assert first[:65] != second[:65] and first[65:] != second[65:]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x04" + b"\x00" * 64,  # not on the curve
        b"\x02" + b"\x11" * 32,  # compressed
        b"\x04" + b"\x11" * 63,
    ],
)
def test_a_public_key_that_is_not_an_uncompressed_p256_point_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        recipient_public_key(raw)
    with pytest.raises(ValueError):
        wrap_data_key(KEY, raw, CONTEXT)


# -- the sealed content digest -------------------------------------------------------------


def test_the_content_digest_opens_only_next_to_its_own_manifest() -> None:
    provider = InMemoryDataKeyProvider()
    envelope = ShardedEnvelope(provider, shard_size=64)
    manifest, _ = envelope.seal_all(CONTEXT, b"synthetic content " * 10)
    other, _ = envelope.seal_all(CONTEXT, b"other synthetic content")
    key = envelope.verify_manifest(manifest, CONTEXT).data_key
    other_key = envelope.verify_manifest(other, CONTEXT).data_key
    digest = hashlib.sha256(b"synthetic content " * 10).digest()
    box = seal_content_digest(key, manifest, digest)
    assert len(box) == BOX_BYTES and digest not in box
    assert open_content_digest(key, manifest, box) == digest
    with pytest.raises(InvalidRecord):
        open_content_digest(other_key, other, box)  # another version's key and manifest
    with pytest.raises(InvalidRecord):
        open_content_digest(key, other, box)  # moved next to another manifest
    with pytest.raises(InvalidRecord):
        open_content_digest(key, manifest, box[:-1] + bytes([box[-1] ^ 1]))
