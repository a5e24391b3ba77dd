"""Sealing on the client: ``RecordSealer`` (one shard at a time, resumable), the handed data
key that opens what it sealed, and ``verify_manifest`` (the service's check of a manifest a
client commits, and of one it hands out)."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping

import pytest

from app.crypto import _primitives
from app.crypto.envelope import (
    ManifestV2,
    RecordContext,
    RecordSealer,
    ShardedEnvelope,
)
from app.crypto.errors import InvalidRecord, LengthMismatch
from app.crypto.kms import HandedDataKey, InMemoryDataKeyProvider

SHARD = 64
CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=3, institution="hosp-a")
KEY = bytes(range(32))
EDK = b"wrapped-by-kms" * 4


class FixedKey:
    """A provider that issues one fixed key (so two sealers can be compared byte by byte)."""

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        return KEY, EDK

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        if encrypted_key != EDK:
            raise InvalidRecord()
        return KEY


def _stream(seed: int) -> object:
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def _seal_all(sealer: RecordSealer, data: bytes) -> tuple[list[bytes], ManifestV2]:
    shards, seals = [], []
    for i in range(sealer.shard_count):
        piece = data[i * SHARD : i * SHARD + sealer.plaintext_size(i)]
        sealed = sealer.seal_shard(i, piece)
        shards.append(sealed.ciphertext)
        seals.append(sealed.seal)
    return shards, sealer.manifest(seals)


@pytest.mark.parametrize("size", [0, 1, SHARD - 1, SHARD, SHARD * 7 + 5])
def test_shard_by_shard_sealing_is_byte_for_byte_the_streaming_seal(size: int) -> None:
    """Same key, same random stream (salt, then one nonce per shard in index order): the
    per-shard sealer and ShardedEnvelope's stream agree on every byte, so the client's
    sealing is the specified format and not a second one."""
    data = os.urandom(size)
    streamed = ShardedEnvelope(FixedKey(), shard_size=SHARD, random_bytes=_stream(7))  # type: ignore[arg-type]
    stream_manifest, stream_shards = streamed.seal_all(CONTEXT, data)
    sealer = RecordSealer(
        CONTEXT,
        KEY,
        EDK,
        length=size,
        shard_size=SHARD,
        random_bytes=_stream(7),  # type: ignore[arg-type]
    )
    shards, manifest = _seal_all(sealer, data)
    assert shards == stream_shards
    assert manifest.to_bytes() == stream_manifest.to_bytes()


def test_what_a_client_seals_opens_with_the_handed_key_and_with_kms() -> None:
    provider = InMemoryDataKeyProvider()
    data_key, edk = provider.generate_data_key(CONTEXT.encryption_context())
    data = os.urandom(SHARD * 5 + 3)
    sealer = RecordSealer(CONTEXT, data_key, edk, length=len(data), shard_size=SHARD)
    shards, manifest = _seal_all(sealer, data)
    fetch = shards.__getitem__
    client = ShardedEnvelope(HandedDataKey(data_key, edk), parallelism=3)
    assert client.open_all(manifest.to_bytes(), fetch, CONTEXT) == data
    service = ShardedEnvelope(provider)
    assert service.open_all(manifest, fetch, CONTEXT) == data
    verified = service.verify_manifest(manifest.to_bytes(), CONTEXT)
    assert verified.data_key == data_key and verified.total_length == len(data)
    assert "data_key" not in repr(verified) and data_key.hex() not in repr(verified)


def test_a_resumed_upload_reuses_the_salt_and_seals_missing_shards_under_new_nonces() -> None:
    data = os.urandom(SHARD * 4)
    first = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    kept = {i: first.seal_shard(i, data[i * SHARD : (i + 1) * SHARD]) for i in (0, 2)}
    # The process dies; the client kept the salt and the seals of the shards it stored.
    resumed = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD, salt=first.salt)
    again = {i: resumed.seal_shard(i, data[i * SHARD : (i + 1) * SHARD]) for i in (3, 1)}
    both = {**kept, **again}
    manifest = resumed.manifest([both[i].seal for i in range(4)])
    shards = [both[i].ciphertext for i in range(4)]
    envelope = ShardedEnvelope(FixedKey())  # type: ignore[arg-type]
    assert envelope.open_all(manifest, shards.__getitem__, CONTEXT) == data
    nonces = [s.seal.nonce for s in both.values()]
    assert len(set(nonces)) == 4
    # Sealing a stored shard again draws a fresh nonce: never the one already used.
    assert resumed.seal_shard(0, data[:SHARD]).seal.nonce != kept[0].seal.nonce


def test_a_manifest_with_a_seal_from_another_shard_does_not_open() -> None:
    data = os.urandom(SHARD * 3)
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    sealed = [sealer.seal_shard(i, data[i * SHARD : (i + 1) * SHARD]) for i in range(3)]
    swapped = sealer.manifest([sealed[1].seal, sealed[0].seal, sealed[2].seal])
    envelope = ShardedEnvelope(FixedKey())  # type: ignore[arg-type]
    shards = [s.ciphertext for s in sealed]
    with pytest.raises(InvalidRecord):
        envelope.open_all(swapped, shards.__getitem__, CONTEXT)


def test_a_handed_key_opens_only_the_wrapped_key_it_came_with() -> None:
    handed = HandedDataKey(KEY, EDK)
    assert handed.decrypt_data_key(EDK, CONTEXT.encryption_context()) == KEY
    with pytest.raises(InvalidRecord):
        handed.decrypt_data_key(EDK + b"x", CONTEXT.encryption_context())
    with pytest.raises(TypeError):
        handed.generate_data_key(CONTEXT.encryption_context())
    assert KEY.hex() not in repr(handed)


def test_the_sealer_refuses_a_shard_of_the_wrong_size_or_position() -> None:
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=SHARD + 10, shard_size=SHARD)
    with pytest.raises(LengthMismatch):
        sealer.seal_shard(0, b"x" * (SHARD - 1))
    with pytest.raises(LengthMismatch):
        sealer.seal_shard(1, b"x" * SHARD)
    with pytest.raises(ValueError, match="out of range"):
        sealer.seal_shard(2, b"x" * 10)
    with pytest.raises(ValueError, match="one seal per shard"):
        sealer.manifest([sealer.seal_shard(0, b"x" * SHARD).seal])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_key": b"short"}, "data_key"),
        ({"encrypted_data_key": b""}, "encrypted_data_key"),
        ({"shard_size": 8}, "shard_size"),
        ({"length": -1}, "length"),
        ({"length": _primitives.MAX_V2_TOTAL_LENGTH + 1}, "length"),
        ({"salt": b"short"}, "salt"),
    ],
)
def test_the_sealer_validates_its_arguments(overrides: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "data_key": KEY,
        "encrypted_data_key": EDK,
        "length": 100,
        "shard_size": SHARD,
    }
    arguments.update(overrides)
    key, edk = arguments.pop("data_key"), arguments.pop("encrypted_data_key")
    with pytest.raises(ValueError, match=message):
        RecordSealer(CONTEXT, key, edk, **arguments)  # type: ignore[arg-type]


def test_verify_manifest_refuses_another_context_before_any_key_use() -> None:
    provider = InMemoryDataKeyProvider()
    envelope = ShardedEnvelope(provider, shard_size=SHARD)
    manifest, _ = envelope.seal_all(CONTEXT, b"synthetic")
    other = RecordContext("rec-0001", "pt-0001", 4, "hosp-a")
    with pytest.raises(InvalidRecord):
        envelope.verify_manifest(manifest, other)
    assert provider.calls["decrypt_data_key"] == 0


def test_a_shard_sealed_again_is_byte_for_byte_the_first_and_only_for_the_same_plaintext() -> None:
    data = os.urandom(SHARD * 2)
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    first = sealer.seal_shard(1, data[SHARD:])
    assert sealer.reseal_shard(1, data[SHARD:], first.seal) == first.ciphertext
    changed = bytearray(data[SHARD:])
    changed[0] ^= 1
    # The source changed in between: nothing sealed under the reused nonce is released.
    with pytest.raises(InvalidRecord):
        sealer.reseal_shard(1, bytes(changed), first.seal)
    with pytest.raises(InvalidRecord):
        sealer.reseal_shard(0, data[:SHARD], first.seal)  # another position
    with pytest.raises(LengthMismatch):
        sealer.reseal_shard(1, data[SHARD:-1], first.seal)


@pytest.mark.parametrize("piece", [1, 7, 64, 1000])
def test_a_shard_sealed_again_from_pieces_is_the_same_object(piece: int) -> None:
    data = os.urandom(SHARD * 3 + 5)
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    for index in range(sealer.shard_count):
        plain = data[index * SHARD : index * SHARD + sealer.plaintext_size(index)]
        first = sealer.seal_shard(index, plain)
        pieces = [plain[i : i + piece] for i in range(0, len(plain), piece)]
        assert bytes(sealer.reseal_shard_pieces(index, pieces, first.seal)) == first.ciphertext
    changed = bytearray(data[:SHARD])
    changed[-1] ^= 1
    with pytest.raises(InvalidRecord):
        sealer.reseal_shard_pieces(0, [bytes(changed)], sealer.seal_shard(0, data[:SHARD]).seal)
    with pytest.raises(LengthMismatch):
        sealer.reseal_shard_pieces(0, [data[: SHARD - 1]], sealer.seal_shard(0, data[:SHARD]).seal)


def test_a_shard_sealed_into_a_buffer_is_what_seal_shard_makes_and_opens() -> None:
    data = os.urandom(SHARD * 2 + 9)
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    out = bytearray(b"\xff" * (SHARD + 16))
    seals, objects = [], []
    for index in range(sealer.shard_count):
        plain = data[index * SHARD : index * SHARD + sealer.plaintext_size(index)]
        view = memoryview(out)[: sealer.ciphertext_size(index)]
        seal = sealer.seal_shard_into(index, plain, view)
        assert bytes(view) == sealer.reseal_shard(index, plain, seal)  # same nonce, same bytes
        assert bytes(view[-16:]) == seal.tag
        seals.append(seal)
        objects.append(bytes(view))
    assert len({seal.nonce for seal in seals}) == sealer.shard_count  # fresh nonces
    envelope = ShardedEnvelope(HandedDataKey(KEY, EDK))
    assert envelope.open_all(sealer.manifest(seals), objects.__getitem__, CONTEXT) == data
    with pytest.raises(ValueError):
        sealer.seal_shard_into(0, data[:SHARD], memoryview(bytearray(SHARD + 17)))
    with pytest.raises(LengthMismatch):
        sealer.seal_shard_into(0, data[: SHARD - 1], memoryview(out)[: SHARD + 15])


def test_a_shard_sealed_again_into_a_reused_buffer_is_the_same_object_or_nothing() -> None:
    data = os.urandom(SHARD * 3 + 5)
    sealer = RecordSealer(CONTEXT, KEY, EDK, length=len(data), shard_size=SHARD)
    out = bytearray(b"\xff" * (SHARD + 16))  # dirty, and larger than the last shard
    for index in range(sealer.shard_count):
        plain = data[index * SHARD : index * SHARD + sealer.plaintext_size(index)]
        first = sealer.seal_shard(index, plain)
        pieces = [plain[i : i + 7] for i in range(0, len(plain), 7)]
        with sealer.reseal_shard_pieces_into(index, pieces, first.seal, out) as view:
            assert bytes(view) == first.ciphertext
    changed = bytearray(data[:SHARD])
    changed[-1] ^= 1
    seal = sealer.seal_shard(0, data[:SHARD]).seal
    # The source changed in between: what was sealed under the reused nonce is wiped.
    with pytest.raises(InvalidRecord):
        sealer.reseal_shard_pieces_into(0, [bytes(changed)], seal, out)
    assert out == bytes(len(out))
    out[:] = b"\xff" * len(out)
    with pytest.raises(LengthMismatch):
        sealer.reseal_shard_pieces_into(0, [data[:SHARD], b"x"], seal, out)
    assert out == bytes(len(out))
    with pytest.raises(ValueError):
        sealer.reseal_shard_pieces_into(0, [data[:SHARD]], seal, bytearray(SHARD + 15))
