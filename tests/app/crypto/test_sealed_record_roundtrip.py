"""Round-trip properties of the sealed-record formats (v2, and v1 which still opens),
streaming and validation."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.crypto import _primitives
from app.crypto.envelope import (
    DEFAULT_SHARD_SIZE,
    FORMAT_VERSION,
    Manifest,
    ManifestV1,
    ManifestV2,
    RecordContext,
    ShardedEnvelope,
    ShardSeal,
)
from app.crypto.errors import LengthMismatch, SealNotFinished
from app.crypto.kms import InMemoryDataKeyProvider

SMALL_SHARD = 64  # the shard size of the ``envelope`` fixture
CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")

EDGE_SIZES = [0, 1, SMALL_SHARD - 1, SMALL_SHARD, SMALL_SHARD + 1, SMALL_SHARD * 9 + 17]


def _chunked(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        yield data[start:cut]
        start = cut
    yield data[start:]


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, str, list[int], int, int]:
    size = draw(st.sampled_from(EDGE_SIZES) | st.integers(0, SMALL_SHARD * 12))
    data = draw(st.binary(min_size=size, max_size=size))
    shape = draw(st.sampled_from(["bytes", "bytearray", "memoryview", "file", "chunks"]))
    cuts = draw(st.lists(st.integers(0, 10_000), max_size=8))
    parallelism = draw(st.sampled_from([1, 3]))
    format_version = draw(st.sampled_from([2, 1]))
    return data, shape, cuts, parallelism, format_version


def _source(data: bytes, shape: str, cuts: list[int]) -> object:
    if shape == "bytes":
        return data
    if shape == "bytearray":
        return bytearray(data)
    if shape == "memoryview":
        return memoryview(data)
    if shape == "file":
        return io.BytesIO(data)
    return _chunked(data, cuts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_open_returns_exactly_what_was_sealed(
    record: tuple[bytes, str, list[int], int, int],
) -> None:
    data, shape, cuts, parallelism, format_version = record
    provider = InMemoryDataKeyProvider()
    envelope = ShardedEnvelope(
        provider, shard_size=SMALL_SHARD, parallelism=parallelism, format_version=format_version
    )
    stream = envelope.seal(CONTEXT, _source(data, shape, cuts), len(data))  # type: ignore[arg-type]
    shards = list(stream)
    manifest = Manifest.from_bytes(stream.manifest.to_bytes())

    assert type(manifest) is (ManifestV2 if format_version == 2 else ManifestV1)
    assert [s.index for s in shards] == list(range(max(1, -(-len(data) // SMALL_SHARD))))
    assert manifest.total_length == len(data)
    fetch = [s.ciphertext for s in shards].__getitem__
    # Whatever sealed it, the default (v2) reader opens it: open dispatches on the format.
    reader = ShardedEnvelope(provider, parallelism=parallelism)
    opening = reader.open(manifest, fetch, CONTEXT)
    assert opening.total_length == len(data)
    chunks = list(opening)
    assert b"".join(chunks) == data
    # Streaming releases one chunk per shard, each the shard's plaintext in order.
    assert [len(c) for c in chunks] == [
        min(SMALL_SHARD, len(data) - i * SMALL_SHARD) for i in range(len(chunks))
    ]
    assert reader.open_all(manifest.to_bytes(), fetch, CONTEXT) == data
    opened = reader.open_verified(manifest, fetch, CONTEXT)
    assert opened.plaintext == data and opened.sha256 == hashlib.sha256(data).digest()


@pytest.mark.parametrize("format_version", [2, 1])
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_edge_sizes_have_the_documented_shard_layout(
    provider: InMemoryDataKeyProvider, size: int, format_version: int
) -> None:
    envelope = ShardedEnvelope(provider, shard_size=SMALL_SHARD, format_version=format_version)
    data = os.urandom(size)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    expected_count = max(1, -(-size // SMALL_SHARD))
    assert manifest.shard_count == len(shards) == expected_count
    for index, ciphertext in enumerate(shards):
        plain = min(SMALL_SHARD, size - index * SMALL_SHARD)
        assert len(ciphertext) == plain + _primitives.TAG_BYTES == manifest.ciphertext_size(index)
        assert manifest.shard_matches(index, ciphertext)
        assert not manifest.shard_matches(index, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]))
        assert not manifest.shard_matches(index, ciphertext + b"\0")
    assert not manifest.shard_matches(expected_count, shards[-1])
    assert envelope.open_all(manifest, shards.__getitem__, CONTEXT) == data


def test_new_seals_use_format_2(envelope: ShardedEnvelope) -> None:
    manifest, _ = envelope.seal_all(CONTEXT, b"synthetic")
    assert FORMAT_VERSION == "hub-sealed-record/2"
    assert isinstance(manifest, ManifestV2)
    assert b'"format":"hub-sealed-record/2"' in manifest.to_bytes()


def test_open_verified_gives_the_repr_digest_of_the_plaintext(envelope: ShardedEnvelope) -> None:
    data = os.urandom(SMALL_SHARD * 3 + 5)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    opened = envelope.open_verified(manifest, shards.__getitem__, CONTEXT)
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert opened.repr_digest == f"sha-256=:{expected}:"
    assert data.hex() not in repr(opened) and expected not in repr(opened)


def test_v2_nonces_come_from_the_random_source_fresh_for_every_shard_and_seal(
    provider: InMemoryDataKeyProvider,
) -> None:
    """One nonce per shard, read in index order after the salt even when sealing in
    parallel, and never the same twice: re-sealing a shard (a resumed upload) cannot
    repeat a nonce under the record's key."""
    drawn: list[bytes] = []

    def recording(n: int) -> bytes:
        drawn.append(os.urandom(n))
        return drawn[-1]

    envelope = ShardedEnvelope(
        provider, shard_size=SMALL_SHARD, parallelism=3, random_bytes=recording
    )
    manifest, _ = envelope.seal_all(CONTEXT, os.urandom(SMALL_SHARD * 7))
    assert isinstance(manifest, ManifestV2)
    assert drawn[0] == manifest.key_salt
    assert b"".join(s.nonce for s in manifest.shards) == b"".join(drawn[1:])
    again, _ = envelope.seal_all(CONTEXT, os.urandom(SMALL_SHARD * 7))
    assert isinstance(again, ManifestV2)
    nonces = [s.nonce for m in (manifest, again) for s in m.shards]
    assert len(set(nonces)) == len(nonces) == 14


def test_a_random_source_returning_the_wrong_length_is_refused(
    provider: InMemoryDataKeyProvider,
) -> None:
    sizes = iter([32, 11])
    envelope = ShardedEnvelope(provider, random_bytes=lambda n: os.urandom(next(sizes)))
    with pytest.raises(ValueError, match="random_bytes"):
        list(envelope.seal(CONTEXT, b"x", 1))


def test_v2_lengths_stay_within_what_javascript_holds_exactly(envelope: ShardedEnvelope) -> None:
    with pytest.raises(ValueError, match="length"):
        envelope.seal(CONTEXT, b"", 2**53)


def test_default_one_mib_shards_round_trip_in_parallel() -> None:
    data = os.urandom(2 * DEFAULT_SHARD_SIZE + 12_345)
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), parallelism=2)
    assert envelope.shard_size == DEFAULT_SHARD_SIZE
    manifest, shards = envelope.seal_all(CONTEXT, data)
    assert [len(s) for s in shards] == [DEFAULT_SHARD_SIZE + 16] * 2 + [12_345 + 16]
    assert envelope.open_all(manifest, shards.__getitem__, CONTEXT) == data


def test_every_seal_uses_a_fresh_data_key_and_salt(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider
) -> None:
    data = b"synthetic lab result " * 10
    first, first_shards = envelope.seal_all(CONTEXT, data)
    second, second_shards = envelope.seal_all(CONTEXT, data)
    assert provider.calls["generate_data_key"] == 2
    assert first.encrypted_data_key != second.encrypted_data_key
    assert first.key_salt != second.key_salt
    assert first.commitment != second.commitment
    assert not set(first_shards) & set(second_shards)


def test_manifest_holds_no_plaintext(envelope: ShardedEnvelope) -> None:
    marker = b"SYNTHETIC-PATIENT-NOTE-MARKER"
    manifest, shards = envelope.seal_all(CONTEXT, marker * 20)
    assert marker not in manifest.to_bytes()
    assert all(marker not in shard for shard in shards)


def test_manifest_is_only_available_after_the_last_shard(envelope: ShardedEnvelope) -> None:
    stream = envelope.seal(CONTEXT, os.urandom(200), 200)
    iterator = iter(stream)
    next(iterator)
    with pytest.raises(SealNotFinished):
        _ = stream.manifest
    list(iterator)
    assert stream.manifest.total_length == 200
    with pytest.raises(RuntimeError):
        iter(stream)


@pytest.mark.parametrize("actual", [0, 99, 101, 128, 129, 400])
@pytest.mark.parametrize("shape", ["bytes", "file", "chunks"])
def test_a_source_of_the_wrong_length_never_yields_a_manifest(
    envelope: ShardedEnvelope, actual: int, shape: str
) -> None:
    declared = 128 if actual != 128 else 100
    stream = envelope.seal(CONTEXT, _source(os.urandom(actual), shape, [7, 70]), declared)  # type: ignore[arg-type]
    with pytest.raises(LengthMismatch):
        list(stream)
    with pytest.raises(SealNotFinished):
        _ = stream.manifest


def test_records_sealed_before_a_key_rotation_still_open(
    provider: InMemoryDataKeyProvider,
) -> None:
    envelope = ShardedEnvelope(provider, shard_size=SMALL_SHARD)
    old_data, new_data = os.urandom(300), os.urandom(300)
    old_manifest, old_shards = envelope.seal_all(CONTEXT, old_data)
    assert provider.rotate() == 2
    newer = RecordContext(
        record_id=CONTEXT.record_id,
        patient_id=CONTEXT.patient_id,
        version=CONTEXT.version + 1,
        institution=CONTEXT.institution,
    )
    new_manifest, new_shards = envelope.seal_all(newer, new_data)

    assert provider.wrapping_key_version(old_manifest.encrypted_data_key) == 1
    assert provider.wrapping_key_version(new_manifest.encrypted_data_key) == 2
    assert envelope.open_all(old_manifest, old_shards.__getitem__, CONTEXT) == old_data
    assert envelope.open_all(new_manifest, new_shards.__getitem__, newer) == new_data


def test_seal_streams_in_bounded_memory() -> None:
    """Sealing 8 MiB from a chunked source keeps far less than the record in memory."""
    shard = 64 * 1024
    size = 8 * 1024 * 1024
    block = os.urandom(shard)
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=shard, parallelism=2)

    def source() -> Iterator[bytes]:
        for _ in range(size // 4096):
            yield block[:4096]

    tracemalloc.start()
    try:
        stream = envelope.seal(CONTEXT, source(), size)
        count = sum(1 for _ in stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == size // shard
    assert peak < 1024 * 1024, peak  # (2 x 2 + 1) shards of 64 KiB, plus the manifest


def test_open_streams_in_bounded_memory() -> None:
    shard = 64 * 1024
    envelope = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=shard, parallelism=2)
    manifest, shards = envelope.seal_all(CONTEXT, os.urandom(8 * 1024 * 1024))
    tracemalloc.start()
    try:
        released = sum(len(chunk) for chunk in envelope.open(manifest, shards.__getitem__, CONTEXT))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert released == 8 * 1024 * 1024
    assert peak < 1024 * 1024, peak


def test_abandoning_a_parallel_open_does_not_hang(envelope: ShardedEnvelope) -> None:
    parallel = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SMALL_SHARD, parallelism=4)
    manifest, shards = parallel.seal_all(CONTEXT, os.urandom(SMALL_SHARD * 50))
    iterator = parallel.open(manifest, shards.__getitem__, CONTEXT)
    assert next(iterator) == parallel.open_all(manifest, shards.__getitem__, CONTEXT)[:SMALL_SHARD]
    iterator.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("shard_size", [0, 15, True, 64 * 1024 * 1024 + 1, 64.0])
def test_envelope_rejects_bad_shard_sizes(shard_size: object) -> None:
    with pytest.raises(ValueError, match="shard_size"):
        ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=shard_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("parallelism", [0, -1, 33, False])
def test_envelope_rejects_bad_parallelism(parallelism: object) -> None:
    with pytest.raises(ValueError, match="parallelism"):
        ShardedEnvelope(InMemoryDataKeyProvider(), parallelism=parallelism)  # type: ignore[arg-type]


def test_envelope_rejects_something_that_is_not_a_key_provider() -> None:
    with pytest.raises(TypeError):
        ShardedEnvelope(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"record_id": ""},
        {"record_id": "has space"},
        {"patient_id": "Chan Tai Man"},
        {"institution": "h" * 129},
        {"patient_id": "pt-\u00e9"},
        {"version": 0},
        {"version": True},
        {"version": "1"},
        {"version": 2**31},
    ],
)
def test_record_context_rejects_bad_identifiers(overrides: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "record_id": "r",
        "patient_id": "p",
        "version": 1,
        "institution": "i",
        **overrides,
    }
    with pytest.raises(ValueError):
        RecordContext(**fields)  # type: ignore[arg-type]


def test_encryption_context_keys_are_the_ones_the_records_key_policy_requires() -> None:
    keys_py = Path(__file__).resolve().parents[3] / "infra" / "components" / "keys.py"
    tree = ast.parse(keys_py.read_text())
    required = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "RECORD_CONTEXT_KEYS" for t in node.targets)
    )
    assert set(CONTEXT.encryption_context()) == set(required)
    assert all(isinstance(v, str) for v in CONTEXT.encryption_context().values())


def test_shard_associated_data_changes_with_every_bound_field() -> None:
    base = {
        "record_id": "r1",
        "version": 1,
        "index": 0,
        "shard_count": 3,
        "shard_size": 64,
        "total_length": 150,
    }
    reference = _primitives.shard_associated_data(**base)  # type: ignore[arg-type]
    for key, value in base.items():
        changed = {**base, key: value + "x" if isinstance(value, str) else value + 1}
        assert _primitives.shard_associated_data(**changed) != reference, key  # type: ignore[arg-type]
    assert _primitives.FORMAT_V1.encode() in reference


def test_v2_shard_associated_data_changes_with_every_bound_field() -> None:
    fields = {"record_id": "r1", "patient_id": "p1", "version": 1, "institution": "i1"}
    numbers = {"index": 0, "shard_count": 3, "shard_size": 64, "total_length": 150}

    def aad(ctx: dict[str, object], nums: dict[str, int]) -> bytes:
        encoding = _primitives.context_encoding_v2(**ctx)  # type: ignore[arg-type]
        return _primitives.shard_associated_data_v2(context_encoding=encoding, **nums)

    reference = aad(fields, numbers)
    for key, value in fields.items():
        changed = {**fields, key: value + "x" if isinstance(value, str) else value + 1}  # type: ignore[operator]
        assert aad(changed, numbers) != reference, key
    for key, number in numbers.items():
        assert aad(fields, {**numbers, key: number + 1}) != reference, key
    # Length prefixes: moving a character across a field boundary changes the bytes.
    assert aad({**fields, "record_id": "r1p", "patient_id": "1"}, numbers) != aad(
        {**fields, "record_id": "r1", "patient_id": "p1"}, numbers
    )
    assert _primitives.FORMAT_V2.encode() in reference


@pytest.mark.parametrize("parallelism", [1, 3])
def test_transport_errors_from_the_fetcher_propagate_unchanged(parallelism: int) -> None:
    """Only integrity failures are opaque; a storage outage stays retryable."""
    envelope = ShardedEnvelope(
        InMemoryDataKeyProvider(), shard_size=SMALL_SHARD, parallelism=parallelism
    )
    manifest, shards = envelope.seal_all(CONTEXT, os.urandom(SMALL_SHARD * 8))

    def flaky(index: int) -> bytes:
        if index == 5:
            raise ConnectionError("synthetic storage outage")
        return shards[index]

    with pytest.raises(ConnectionError):
        envelope.open_all(manifest, flaky, CONTEXT)


def test_subkeys_are_separate_and_bound_to_the_encryption_context() -> None:
    key, salt = os.urandom(32), os.urandom(32)
    ctx = CONTEXT.encryption_context()
    subkeys = _primitives.derive_subkeys(key, salt, ctx)
    assert len({subkeys.encryption_key, subkeys.commitment, subkeys.mac_key}) == 3
    for field in ctx:
        other = _primitives.derive_subkeys(key, salt, {**ctx, field: ctx[field] + "0"})
        assert other.commitment != subkeys.commitment, field
        assert other.encryption_key != subkeys.encryption_key, field
    assert _primitives.derive_subkeys(key, os.urandom(32), ctx).commitment != subkeys.commitment
    assert repr(subkeys.encryption_key) not in repr(subkeys)  # repr never shows key bytes


def test_v2_subkeys_are_bound_to_the_context_and_differ_from_v1() -> None:
    key, salt = os.urandom(32), os.urandom(32)
    ctx = CONTEXT
    encoding = _primitives.context_encoding_v2(
        ctx.record_id, ctx.patient_id, ctx.version, ctx.institution
    )
    subkeys = _primitives.derive_subkeys_v2(key, salt, encoding)
    v1 = _primitives.derive_subkeys(key, salt, ctx.encryption_context())
    assert len({subkeys.encryption_key, subkeys.commitment, subkeys.mac_key}) == 3
    assert subkeys.encryption_key != v1.encryption_key and subkeys.mac_key != v1.mac_key
    other = _primitives.context_encoding_v2(
        ctx.record_id, ctx.patient_id + "0", ctx.version, ctx.institution
    )
    assert _primitives.derive_subkeys_v2(key, salt, other).commitment != subkeys.commitment


def test_v2_subkey_derivation_is_rfc5869_hkdf_sha256() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key, salt = os.urandom(32), os.urandom(32)
    encoding = _primitives.context_encoding_v2("r", "p", 3, "i")
    subkeys = _primitives.derive_subkeys_v2(key, salt, encoding)
    for label, value in [
        (_primitives.LABEL_ENCRYPTION, subkeys.encryption_key),
        (_primitives.LABEL_COMMITMENT, subkeys.commitment),
        (_primitives.LABEL_MANIFEST_MAC, subkeys.mac_key),
    ]:
        info = _primitives.hkdf_info_v2(label, encoding)
        assert HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key) == value


def test_subkey_derivation_is_rfc5869_hkdf_sha256() -> None:
    """The one-block HKDF in _primitives equals cryptography's HKDF for every label."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key, salt = os.urandom(32), os.urandom(32)
    ctx = CONTEXT.encryption_context()
    subkeys = _primitives.derive_subkeys(key, salt, ctx)
    for label, value in [
        (_primitives.LABEL_ENCRYPTION, subkeys.encryption_key),
        (_primitives.LABEL_COMMITMENT, subkeys.commitment),
        (_primitives.LABEL_MANIFEST_MAC, subkeys.mac_key),
    ]:
        info = _primitives.hkdf_info(label, ctx)
        assert HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key) == value


_TOKEN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    record_id=_TOKEN,
    patient_id=_TOKEN,
    institution=_TOKEN,
    version=st.integers(1, 2**31 - 1),
    shard_size=st.integers(16, 1 << 26),
    total_length=st.integers(0, 2**53 - 1),
    edk_size=st.integers(1, 6144),
    seed=st.binary(min_size=32, max_size=32),
)
def test_the_v2_stored_form_is_canonical_json_of_its_fields(
    record_id: str,
    patient_id: str,
    institution: str,
    version: int,
    shard_size: int,
    total_length: int,
    edk_size: int,
    seed: bytes,
) -> None:
    """``ManifestV2.to_bytes`` writes the JSON out by hand (it is on every open's path);
    it must equal ``canonical_json`` of the same fields, the format's definition."""
    total_length = min(total_length, shard_size * 2000)  # at most 2000 shards
    count = -(-total_length // shard_size) or 1
    stream = hashlib.shake_256(seed).digest(edk_size + 96 + 28 * count)
    seals = [
        ShardSeal(nonce=stream[96 + 28 * i : 108 + 28 * i], tag=stream[108 + 28 * i : 124 + 28 * i])
        for i in range(count)
    ]
    manifest = ManifestV2(
        context=RecordContext(
            record_id=record_id, patient_id=patient_id, version=version, institution=institution
        ),
        encrypted_data_key=stream[96 + 28 * count :],
        key_salt=stream[:32],
        shard_size=shard_size,
        total_length=total_length,
        shards=tuple(seals),
        commitment=stream[32:64],
        mac=stream[64:96],
    )

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    expected = _primitives.canonical_json(
        {
            "format": "hub-sealed-record/2",
            "encryption_context": manifest.context.encryption_context(),
            "encrypted_data_key": b64(manifest.encrypted_data_key),
            "key_salt": b64(manifest.key_salt),
            "shard_size": shard_size,
            "total_length": total_length,
            "shards": [{"nonce": b64(s.nonce), "tag": b64(s.tag)} for s in seals],
            "commitment": b64(manifest.commitment),
            "mac": b64(manifest.mac),
        }
    )
    assert manifest.to_bytes() == expected
    assert ManifestV2.from_bytes(expected) == manifest
