"""Low-level building blocks of the sealed-record format. PRIVATE: do not import elsewhere.

WARNING: these functions are sharp. They take raw keys and assume their caller upholds
the format's invariants: a shard key seals exactly one record version (so a nonce derived
from the shard index is never reused under a key), commitment and manifest MAC are
checked before any shard is decrypted, and every failure is turned into the opaque
``InvalidRecord``. Only ``app.crypto.envelope`` upholds them; use its ``ShardedEnvelope``.

What this module guarantees: deterministic, domain-separated encodings (HKDF ``info``
labels, shard associated data, the v2 manifest's authenticated bytes) with length
prefixes, so no two distinct inputs encode to the same bytes, and constant-time comparison
of secrets. Every encoding carries its format label, so nothing of v1 verifies as v2.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = "hub-sealed-record/1"
FORMAT_V2 = "hub-sealed-record/2"
DATA_KEY_BYTES = 32
SALT_BYTES = 32
COMMITMENT_BYTES = 32
MAC_BYTES = 32
TAG_BYTES = 16
NONCE_BYTES = 12
# v1: the nonce is the shard index; 2**32 shards of even 16 bytes is far beyond any record.
# v2: nonces are random, and NIST SP 800-38D caps random-nonce invocations per key at 2**32.
MAX_SHARDS = 2**32 - 1
# v2 lengths stay below 2**53 so that a JavaScript reader holds them exactly in a Number.
MAX_V2_TOTAL_LENGTH = 2**53 - 1

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


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join([_U32.pack(len(p)) + p for p in parts])


def _u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def _hkdf_three(data_key: bytes, salt: bytes, info_of: Callable[[bytes], bytes]) -> Subkeys:
    """HKDF-SHA256 (RFC 5869) with L = 32: one extract, then for each label a single
    expand block ``T(1) = HMAC(PRK, info || 0x01)``; tests check it equals cryptography's
    HKDF (and WebCrypto's ``deriveBits`` computes the same)."""
    if len(data_key) != DATA_KEY_BYTES or len(salt) != SALT_BYTES:
        raise ValueError("data key and salt must be 32 bytes each")
    # ``hmac.new`` rather than the one-shot ``hmac.digest``: on OpenSSL 3 the one-shot
    # looks the MAC algorithm up again at every call, which on caches a large record has
    # just left cold costs more than the four HMACs themselves (see bench_crypto).
    prk = hmac.new(salt, data_key, "sha256").digest()

    def expand(label: bytes) -> bytes:
        return hmac.new(prk, info_of(label) + b"\x01", "sha256").digest()

    return Subkeys(
        encryption_key=expand(LABEL_ENCRYPTION),
        commitment=expand(LABEL_COMMITMENT),
        mac_key=expand(LABEL_MANIFEST_MAC),
    )


# -- format 1 ------------------------------------------------------------------------------


def derive_subkeys(data_key: bytes, salt: bytes, context: Mapping[str, str]) -> Subkeys:
    """v1: derive the shard key, the key-commitment value and the manifest MAC key.

    The encryption context is in every ``info``, so subkeys (and the commitment) are
    bound to the context even if a key service ignored it.
    """
    return _hkdf_three(data_key, salt, lambda label: hkdf_info(label, context))


def hkdf_info(label: bytes, context: Mapping[str, str]) -> bytes:
    """v1: the HKDF ``info`` for ``label`` (exposed so tests can cross-check it)."""
    return _length_prefixed(FORMAT_V1.encode("ascii"), label, canonical_json(dict(context)))


def shard_nonce(index: int) -> bytes:
    """v1: the 96-bit nonce of shard ``index``: the index, big-endian."""
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
    """v1: associated data binding a shard to its place in exactly one record version."""
    return _length_prefixed(
        FORMAT_V1.encode("ascii"),
        record_id.encode("utf-8"),
        struct.pack(">QQQQQ", version, index, shard_count, shard_size, total_length),
    )


# -- format 2 ------------------------------------------------------------------------------

_FORMAT_V2_LP = _length_prefixed(FORMAT_V2.encode("ascii"))


def context_encoding_v2(record_id: str, patient_id: str, version: int, institution: str) -> bytes:
    """v2: ``LP(record_id) || LP(patient_id) || u64(version) || LP(institution)``."""
    # One join rather than three ``_length_prefixed`` calls: each open encodes it three
    # times (subkeys, manifest MAC, shard associated data).
    record, patient, place = (
        record_id.encode("ascii"),
        patient_id.encode("ascii"),
        institution.encode("ascii"),
    )
    return b"".join(
        (
            _U32.pack(len(record)),
            record,
            _U32.pack(len(patient)),
            patient,
            _U64.pack(version),
            _U32.pack(len(place)),
            place,
        )
    )


def hkdf_info_v2(label: bytes, context_encoding: bytes) -> bytes:
    """v2: the HKDF ``info`` for ``label``: ``LP(format) || LP(label) || context``."""
    prefix = _INFO_PREFIXES_V2.get(label)
    if prefix is None:
        prefix = _length_prefixed(FORMAT_V2.encode("ascii"), label)
    return prefix + context_encoding


# ``LP(format) || LP(label)`` of the three labels, built once (every seal and open uses them).
_INFO_PREFIXES_V2 = {
    label: _length_prefixed(FORMAT_V2.encode("ascii"), label)
    for label in (LABEL_ENCRYPTION, LABEL_COMMITMENT, LABEL_MANIFEST_MAC)
}


def derive_subkeys_v2(data_key: bytes, salt: bytes, context_encoding: bytes) -> Subkeys:
    """v2: the same three subkeys as v1, under v2's binary ``info`` encoding."""
    return _hkdf_three(data_key, salt, lambda label: hkdf_info_v2(label, context_encoding))


def shard_associated_data_v2(
    *, context_encoding: bytes, index: int, shard_count: int, shard_size: int, total_length: int
) -> bytes:
    """v2: ``LP(format) || context || u64(index, count, shard_size, total_length)``."""
    return shard_associated_data_v2_for(
        context_encoding=context_encoding,
        shard_count=shard_count,
        shard_size=shard_size,
        total_length=total_length,
    )(index)


def shard_associated_data_v2_for(
    *, context_encoding: bytes, shard_count: int, shard_size: int, total_length: int
) -> Callable[[int], bytes]:
    """v2: the associated data of each shard of one record, by index (prefix built once)."""
    prefix = _FORMAT_V2_LP + context_encoding
    numbers = struct.Struct(">QQQQ")

    def of(index: int) -> bytes:
        return prefix + numbers.pack(index, shard_count, shard_size, total_length)

    return of


def manifest_authenticated_bytes_v2(
    *,
    context_encoding: bytes,
    encrypted_data_key: bytes,
    key_salt: bytes,
    shard_size: int,
    total_length: int,
    seals: Sequence[tuple[bytes, bytes]],
    commitment: bytes,
) -> bytes:
    """v2: what the manifest MAC covers (see ``ShardedEnvelope``): every field but the MAC,
    with each shard's nonce and tag in index order."""
    parts = [
        _FORMAT_V2_LP,
        context_encoding,
        _length_prefixed(encrypted_data_key),
        key_salt,
        struct.pack(">QQQ", shard_size, total_length, len(seals)),
    ]
    for nonce, tag in seals:
        parts += (nonce, tag)
    parts.append(commitment)
    return b"".join(parts)


# -- both ----------------------------------------------------------------------------------


def new_shard_cipher(encryption_key: bytes) -> AESGCM:
    return AESGCM(encryption_key)


def seal_shard(
    cipher: AESGCM, nonce: bytes, plaintext: bytes | memoryview, associated_data: bytes
) -> bytes:
    """AES-256-GCM: ciphertext || 16-byte tag. ``nonce`` must never repeat under the key."""
    return cipher.encrypt(nonce, plaintext, associated_data)


def seal_shard_pieces(
    encryption_key: bytes,
    nonce: bytes,
    pieces: Iterable[bytes],
    size: int,
    associated_data: bytes,
) -> tuple[bytearray, bytes]:
    """AES-256-GCM over a plaintext given in pieces (``size`` bytes in all), into one
    buffer: ``(ciphertext || 16 zero bytes, tag)``. The same bytes ``seal_shard`` gives for
    the concatenated plaintext, without holding plaintext and ciphertext whole at once.
    The caller must not release the buffer before it has checked the tag.
    """
    out = bytearray(size + TAG_BYTES)
    return out, seal_shard_pieces_into(encryption_key, nonce, pieces, size, associated_data, out)


def seal_shard_pieces_into(
    encryption_key: bytes,
    nonce: bytes,
    pieces: Iterable[bytes | memoryview],
    size: int,
    associated_data: bytes,
    out: bytearray,
) -> bytes:
    """As ``seal_shard_pieces``, into the caller's buffer (at least ``size + 16`` bytes):
    the ciphertext is written to ``out[:size]``, and the tag is returned (not written).
    The caller must not release the buffer before it has checked the tag.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(out) < size + TAG_BYTES:
        raise ValueError("the output buffer is smaller than the sealed shard")
    encryptor = Cipher(algorithms.AES(encryption_key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(associated_data)
    at = 0
    with memoryview(out) as view:
        for piece in pieces:
            if at + len(piece) > size:
                raise ValueError("pieces longer than the declared size")
            # update_into wants room for len(piece) + 15 bytes: the tag's 16 are spare.
            at += encryptor.update_into(piece, view[at : size + TAG_BYTES])
    tail = encryptor.finalize()
    if tail or at != size:
        raise ValueError("pieces do not add up to the declared size")
    return encryptor.tag


def open_shard(
    cipher: AESGCM, nonce: bytes, ciphertext: bytes | memoryview, associated_data: bytes
) -> bytes:
    """Decrypt one shard; raises ``cryptography.exceptions.InvalidTag`` on any mismatch.

    AES-GCM checks the tag before returning, so no byte of a forged shard is released.
    """
    return cipher.decrypt(nonce, ciphertext, associated_data)


def open_shard_into(
    cipher: AESGCM,
    nonce: bytes,
    ciphertext: bytes | memoryview,
    associated_data: bytes,
    out: memoryview,
) -> None:
    """Decrypt one shard into ``out`` (exactly ``len(ciphertext) - 16`` bytes), with no
    new buffer; raises ``InvalidTag`` on any mismatch.

    Unlike ``open_shard``, OpenSSL writes the plaintext into ``out`` before it checks the
    tag, so on failure ``out`` holds unverified bytes: this function zeroes them before
    raising, and ``out`` is never left holding plaintext of a forged shard.
    """
    try:
        cipher.decrypt_into(nonce, ciphertext, associated_data, out)
    except InvalidTag:
        out[:] = bytes(len(out))
        raise


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def manifest_mac(mac_key: bytes, body: bytes) -> bytes:
    return hmac.new(mac_key, body, hashlib.sha256).digest()


def equal_secret(a: bytes, b: bytes) -> bool:
    """Constant-time comparison for commitments and MACs."""
    return hmac.compare_digest(a, b)
