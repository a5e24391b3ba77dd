"""What committing to GCM tags does not do, shown rather than asserted (docs/records.md).

GHASH is linear in its key ``H``, which anyone holding the data key can compute, so such
a party can change a shard's ciphertext without changing its tag. These tests build that
forgery and pin the documented consequences:

- against anyone *without* the data key, v2's tag commitment authenticates each shard
  (every other test in this package);
- a data-key holder who can also write a shard object (and the table row pinning its S3
  version) can substitute content that opens: in v2 and, as it happens, in v1 too,
  because v1's reader also relied on the tag and never re-hashed;
- what v2 gives up against v1 is only the keyless audit: v1's per-shard SHA-256 let a
  holder of no key notice such a substitution (``shard_matches``); v2's keyless check
  compares size and tag and cannot.

If the format ever gains a collision-resistant per-shard commitment, these tests fail
and the docs must change with them.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.crypto import _primitives
from app.crypto.envelope import ManifestV1, ManifestV2, RecordContext, ShardedEnvelope
from app.crypto.kms import InMemoryDataKeyProvider

CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")
SHARD = 64  # four GCM blocks
_R = 0xE1 << 120


def _gf_mult(x: int, y: int) -> int:
    """Multiplication in GF(2^128) with GCM's bit order (NIST SP 800-38D, Algorithm 1)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _gf_pow(x: int, n: int) -> int:
    result = 1 << 127  # the field's 1 in GCM's bit order
    for _ in range(n):
        result = _gf_mult(result, x)
    return result


def _same_tag_forgery(shard_key: bytes, ciphertext: bytes, aad_length: int) -> bytes:
    """Change ciphertext blocks 0 and 1 so that GHASH, hence the tag, is unchanged."""
    encryptor = Cipher(algorithms.AES(shard_key), modes.ECB()).encryptor()
    h = int.from_bytes(encryptor.update(bytes(16)) + encryptor.finalize(), "big")
    body = ciphertext[: -_primitives.TAG_BYTES]
    aad_blocks, body_blocks = -(-aad_length // 16), -(-len(body) // 16)
    m = aad_blocks + body_blocks + 1  # + the lengths block
    # Block at 1-based position p is multiplied by H^(m - p + 1).
    e0, e1 = m - aad_blocks, m - aad_blocks - 1
    x = int.from_bytes(b"synthetic change", "big")
    d0, d1 = _gf_mult(x, _gf_pow(h, e1)), _gf_mult(x, _gf_pow(h, e0))  # d0 H^e0 = d1 H^e1
    delta = d0.to_bytes(16, "big") + d1.to_bytes(16, "big")
    forged = bytes(a ^ b for a, b in zip(body[:32], delta, strict=True)) + body[32:]
    return forged + ciphertext[-_primitives.TAG_BYTES :]


def _holder_shard_key(
    provider: InMemoryDataKeyProvider, manifest: ManifestV1 | ManifestV2
) -> bytes:
    ctx = manifest.context
    key = provider.decrypt_data_key(manifest.encrypted_data_key, ctx.encryption_context())
    if isinstance(manifest, ManifestV2):
        encoding = _primitives.context_encoding_v2(
            ctx.record_id, ctx.patient_id, ctx.version, ctx.institution
        )
        return _primitives.derive_subkeys_v2(key, manifest.key_salt, encoding).encryption_key
    return _primitives.derive_subkeys(
        key, manifest.key_salt, ctx.encryption_context()
    ).encryption_key


def _aad_length(manifest: ManifestV1 | ManifestV2) -> int:
    ctx = manifest.context
    if isinstance(manifest, ManifestV2):
        encoding = _primitives.context_encoding_v2(
            ctx.record_id, ctx.patient_id, ctx.version, ctx.institution
        )
        return len(
            _primitives.shard_associated_data_v2(
                context_encoding=encoding, index=0, shard_count=1, shard_size=1, total_length=1
            )
        )
    return len(
        _primitives.shard_associated_data(
            record_id=ctx.record_id, version=1, index=0, shard_count=1, shard_size=1, total_length=1
        )
    )


def _forge(
    format_version: int,
) -> tuple[bytes, bytes, ManifestV1 | ManifestV2, list[bytes], list[bytes]]:
    provider = InMemoryDataKeyProvider()
    envelope = ShardedEnvelope(provider, shard_size=SHARD, format_version=format_version)
    data = os.urandom(SHARD * 3)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    assert isinstance(manifest, ManifestV1 | ManifestV2)
    forged_shard = _same_tag_forgery(
        _holder_shard_key(provider, manifest), shards[1], _aad_length(manifest)
    )
    forged = [shards[0], forged_shard, shards[2]]
    opened = envelope.open_all(manifest, forged.__getitem__, CONTEXT)
    return data, opened, manifest, shards, forged


def test_a_data_key_holder_can_make_a_v2_shard_with_the_same_tag_that_opens() -> None:
    data, opened, manifest, shards, forged = _forge(2)
    assert forged[1] != shards[1] and forged[1][-16:] == shards[1][-16:]
    assert opened != data and len(opened) == len(data)  # accepted, and different
    # The keyless check (size and tag) cannot tell either.
    assert manifest.shard_matches(1, forged[1])


def test_v1_readers_accepted_the_same_forgery_only_its_keyless_audit_caught_it() -> None:
    data, opened, manifest, shards, forged = _forge(1)
    assert opened != data  # v1's reader also relied on the tag
    assert manifest.shard_matches(1, shards[1])
    assert not manifest.shard_matches(1, forged[1])  # the SHA-256 in the manifest differs
