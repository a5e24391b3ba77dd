"""``ShardedEnvelope.open_views``: opening into reused buffers releases exactly what ``open``
releases, never lets a stale view read a later shard, never overwrites a buffer something
still exports, and never leaves unverified plaintext in a buffer.

The tamper suites (test_sealed_record_v1_tamper.py, test_sealed_record_v2_tamper.py) run
every manipulation through ``open_views`` too.
"""

from __future__ import annotations

import ctypes
import os

import pytest

from app.crypto import _primitives
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.kms import InMemoryDataKeyProvider

SHARD = 64
CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")


@pytest.mark.parametrize("format_version", [1, 2])
@pytest.mark.parametrize("parallelism", [1, 3])
@pytest.mark.parametrize("size", [0, 1, SHARD - 1, SHARD, SHARD + 1, 10 * SHARD + 7])
def test_views_release_exactly_what_open_releases(
    format_version: int, parallelism: int, size: int
) -> None:
    envelope = ShardedEnvelope(
        InMemoryDataKeyProvider(),
        shard_size=SHARD,
        parallelism=parallelism,
        format_version=format_version,
    )
    data = os.urandom(size)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    chunks = [bytes(view) for view in envelope.open_views(manifest, shards.__getitem__, CONTEXT)]
    assert chunks == list(envelope.open(manifest, shards.__getitem__, CONTEXT))
    assert b"".join(chunks) == data
    stream = envelope.open_views(manifest.to_bytes(), shards.__getitem__, CONTEXT)
    assert stream.total_length == size
    assert b"".join(bytes(view) for view in stream) == data


@pytest.mark.parametrize("parallelism", [1, 3])
def test_a_view_is_released_once_the_next_is_asked_for(parallelism: int) -> None:
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SHARD, parallelism=parallelism)
    manifest, shards = envelope.seal_all(CONTEXT, os.urandom(6 * SHARD))
    kept = list(envelope.open_views(manifest, shards.__getitem__, CONTEXT))
    assert len(kept) == 6
    for view in kept:  # including the last: released when the stream ended
        with pytest.raises(ValueError):
            bytes(view)


def test_a_buffer_something_still_exports_is_never_overwritten() -> None:
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SHARD)
    data = os.urandom(6 * SHARD)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    stream = envelope.open_views(manifest, shards.__getitem__, CONTEXT)
    first = next(stream)
    held = (ctypes.c_char * SHARD).from_buffer(first)  # exports the view's buffer
    rest = [bytes(view) for view in stream]
    assert bytes(held) == data[:SHARD]
    assert b"".join(rest) == data[SHARD:]


def test_a_forged_shard_leaves_no_plaintext_in_the_buffer() -> None:
    """OpenSSL writes the plaintext out before checking the tag; it must not stay there."""
    key = os.urandom(32)
    cipher = _primitives.new_shard_cipher(key)
    nonce, plaintext = os.urandom(12), os.urandom(4 * SHARD)
    sealed = bytearray(_primitives.seal_shard(cipher, nonce, plaintext, b"aad"))
    sealed[5] ^= 1  # the ciphertext, not the tag: decryption runs, then the tag fails
    out = bytearray(len(plaintext))
    with pytest.raises(_primitives.InvalidTag):
        _primitives.open_shard_into(cipher, nonce, bytes(sealed), b"aad", memoryview(out))
    assert out == bytes(len(plaintext))


def test_a_forged_shard_through_views_is_the_opaque_error() -> None:
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SHARD, parallelism=2)
    data = os.urandom(6 * SHARD)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    tampered = list(shards)
    bad = bytearray(tampered[3])
    bad[0] ^= 1  # the committed tag still matches: AES-GCM itself refuses it
    tampered[3] = bytes(bad)
    released: list[bytes] = []
    with pytest.raises(InvalidRecord) as caught:
        for view in envelope.open_views(manifest, tampered.__getitem__, CONTEXT):
            released.append(bytes(view))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert b"".join(released) == data[: 3 * SHARD]


def test_a_buffer_a_kept_slice_refers_to_is_never_overwritten() -> None:
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SHARD, parallelism=2)
    data = os.urandom(6 * SHARD)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    kept = [view[:8] for view in envelope.open_views(manifest, shards.__getitem__, CONTEXT)]
    assert [bytes(piece) for piece in kept] == [data[i : i + 8] for i in range(0, len(data), SHARD)]


def test_the_buffers_kept_between_opens_are_bounded_and_wiped_by_discard() -> None:
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SHARD, parallelism=2)
    data = os.urandom(20 * SHARD)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    for _ in range(3):
        assert (
            b"".join(bytes(v) for v in envelope.open_views(manifest, shards.__getitem__, CONTEXT))
            == data
        )
    kept = list(envelope._buffers._free)  # white-box: what the envelope holds between opens
    assert 0 < len(kept) <= 2 * 2 + 1
    assert any(bytes(buffer) in data for buffer in kept)  # they hold plaintext shards
    envelope.discard_buffers()
    assert envelope._buffers._free == []
    assert all(buffer == bytes(SHARD) for buffer in kept)
