"""Tamper suite for format 1 records (sealed before v2, still opened): every
manipulation is the one opaque error. ``test_sealed_record_v2_tamper.py`` is the same
suite for format 2.

For each case: ``open_all`` raises ``InvalidRecord`` (fixed message, no chained cause) and
returns nothing; streaming ``open`` never releases a byte of the bad shard or of anything
after it (only verified shards before it), and raises before it could finish. Checks
that must happen before decryption are pinned with spies on the fetcher and on AES-GCM.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.crypto import _primitives
from app.crypto.envelope import ManifestV1 as Manifest
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.kms import InMemoryDataKeyProvider

SMALL_SHARD = 64  # the shard size of the ``envelope`` fixture
CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")
SIZE = SMALL_SHARD * 5 + 20  # six shards, the last one short
SHARDS = 6


@pytest.fixture
def envelope(provider: InMemoryDataKeyProvider) -> ShardedEnvelope:
    """Format 1, which only tests and benchmarks still seal."""
    return ShardedEnvelope(provider, shard_size=SMALL_SHARD, format_version=1)


class Fetcher:
    def __init__(self, shards: list[bytes | None]) -> None:
        self.shards = shards
        self.fetched: list[int] = []

    def __call__(self, index: int) -> bytes | None:
        self.fetched.append(index)
        return self.shards[index] if index < len(self.shards) else None


@pytest.fixture
def sealed(envelope: ShardedEnvelope) -> tuple[bytes, Manifest, list[bytes]]:
    data = os.urandom(SIZE)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    assert len(shards) == SHARDS and isinstance(manifest, Manifest)
    return data, manifest, shards


def assert_rejected(
    envelope: ShardedEnvelope,
    manifest: Manifest | bytes,
    shards: list[bytes | None],
    plaintext: bytes,
    *,
    first_bad_shard: int,
    context: RecordContext = CONTEXT,
) -> None:
    """Rejected opaquely; streaming releases at most the verified shards before the bad one."""
    with pytest.raises(InvalidRecord) as caught:
        envelope.open_all(manifest, Fetcher(shards), context)
    assert str(caught.value) == "sealed record failed verification"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__

    released: list[bytes] = []
    with pytest.raises(InvalidRecord):
        for chunk in envelope.open(manifest, Fetcher(shards), context):
            released.append(chunk)
    assert b"".join(released) == plaintext[: first_bad_shard * SMALL_SHARD]

    released = []
    with pytest.raises(InvalidRecord):
        for view in envelope.open_views(manifest, Fetcher(shards), context):
            released.append(bytes(view))
    assert b"".join(released) == plaintext[: first_bad_shard * SMALL_SHARD]


def _unwrap_subkeys(provider: InMemoryDataKeyProvider, manifest: Manifest) -> _primitives.Subkeys:
    """What an adversary holding the data key (a malicious sealer) can derive."""
    ctx = manifest.context.encryption_context()
    data_key = provider.decrypt_data_key(manifest.encrypted_data_key, ctx)
    return _primitives.derive_subkeys(data_key, manifest.key_salt, ctx)


def _remac(manifest: Manifest, mac_key: bytes) -> Manifest:
    return replace(manifest, mac=_primitives.manifest_mac(mac_key, manifest.authenticated_bytes()))


# -- shards --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, SHARDS - 1), position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_a_bit_flipped_in_any_shard_is_rejected(index: int, position: int, bit: int) -> None:
    envelope = ShardedEnvelope(
        InMemoryDataKeyProvider(), shard_size=SMALL_SHARD, parallelism=2, format_version=1
    )
    data = os.urandom(SIZE)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    tampered: list[bytes | None] = list(shards)
    flipped = bytearray(shards[index])
    flipped[position % len(flipped)] ^= 1 << bit
    tampered[index] = bytes(flipped)
    assert not manifest.shard_matches(index, bytes(flipped))
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 4), (2, 5), (0, 5)])
def test_two_swapped_shards_are_rejected(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]], i: int, j: int
) -> None:
    data, manifest, shards = sealed
    tampered: list[bytes | None] = list(shards)
    tampered[i], tampered[j] = tampered[j], tampered[i]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=i)


def test_swapped_full_shards_are_rejected_even_with_a_forged_manifest(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider
) -> None:
    """A key holder who swaps two equal-size shards and re-signs the manifest still fails:
    each shard's nonce and associated data bind it to its index."""
    data = os.urandom(SMALL_SHARD * 4)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    assert isinstance(manifest, Manifest)
    entries = list(manifest.shards)
    entries[1], entries[2] = entries[2], entries[1]
    forged = _remac(
        replace(manifest, shards=tuple(entries)), _unwrap_subkeys(provider, manifest).mac_key
    )
    swapped: list[bytes | None] = [shards[0], shards[2], shards[1], shards[3]]
    assert_rejected(envelope, forged, swapped, data, first_bad_shard=1)


@pytest.mark.parametrize("index", [0, 3, SHARDS - 1])
def test_a_shard_from_another_record_is_rejected(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]], index: int
) -> None:
    data, manifest, shards = sealed
    other = replace(CONTEXT, record_id="rec-0002")
    _, other_shards = envelope.seal_all(other, os.urandom(SIZE))
    tampered: list[bytes | None] = list(shards)
    tampered[index] = other_shards[index]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize("index", [0, 2, SHARDS - 1])
def test_a_shard_from_an_older_version_of_the_same_record_is_rejected(
    envelope: ShardedEnvelope, index: int
) -> None:
    older = replace(CONTEXT, version=1)
    _, old_shards = envelope.seal_all(older, b"same content" * 30)
    data = (b"same content" * 30)[:SIZE].ljust(SIZE, b"!")
    manifest, shards = envelope.seal_all(CONTEXT, data)
    tampered: list[bytes | None] = list(shards)
    tampered[index] = old_shards[index]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize("index", [0, 2, SHARDS - 1])
@pytest.mark.parametrize("keep", [0, 1, 16, -1])
def test_a_truncated_shard_is_rejected(
    envelope: ShardedEnvelope,
    sealed: tuple[bytes, Manifest, list[bytes]],
    index: int,
    keep: int,
) -> None:
    data, manifest, shards = sealed
    tampered: list[bytes | None] = list(shards)
    tampered[index] = shards[index][:keep]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


def test_a_truncated_record_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]]
) -> None:
    """Cutting the record short means editing the manifest's length and shard list."""
    data, manifest, shards = sealed
    body = json.loads(manifest.to_bytes())
    body["total_length"] = SMALL_SHARD * 3
    body["shards"] = body["shards"][:3]
    truncated = _primitives.canonical_json(body)
    fetcher = Fetcher(list(shards[:3]))
    with pytest.raises(InvalidRecord):
        envelope.open(truncated, fetcher, CONTEXT)
    assert fetcher.fetched == []
    assert_rejected(envelope, truncated, list(shards[:3]), data, first_bad_shard=0)


def test_a_dropped_last_shard_is_rejected(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]]
) -> None:
    data, manifest, shards = sealed
    assert_rejected(envelope, manifest, list(shards[:-1]), data, first_bad_shard=SHARDS - 1)


def test_a_truncated_record_is_rejected_even_with_a_forged_manifest(
    envelope: ShardedEnvelope,
    provider: InMemoryDataKeyProvider,
    sealed: tuple[bytes, Manifest, list[bytes]],
) -> None:
    """Whoever holds the key and re-signs a shortened manifest still fails: every shard's
    associated data binds the shard count and total length."""
    data, manifest, shards = sealed
    short = replace(manifest, total_length=SMALL_SHARD * 2, shards=manifest.shards[:2])
    forged = _remac(short, _unwrap_subkeys(provider, manifest).mac_key)
    assert_rejected(envelope, forged, list(shards[:2]), data, first_bad_shard=0)


# -- context, key and commitment --------------------------------------------------------------


@pytest.mark.parametrize("field", ["record_id", "patient_id", "version", "institution"])
def test_opening_as_another_context_is_rejected_without_touching_kms(
    envelope: ShardedEnvelope,
    provider: InMemoryDataKeyProvider,
    sealed: tuple[bytes, Manifest, list[bytes]],
    field: str,
) -> None:
    data, manifest, shards = sealed
    other = replace(CONTEXT, **{field: 7 if field == "version" else "someone-else"})
    assert_rejected(envelope, manifest, list(shards), data, first_bad_shard=0, context=other)
    assert provider.calls["decrypt_data_key"] == 0


@pytest.mark.parametrize("field", ["record_id", "patient_id", "version", "institution"])
def test_a_manifest_relabelled_to_another_context_does_not_unwrap(
    envelope: ShardedEnvelope,
    sealed: tuple[bytes, Manifest, list[bytes]],
    aes_spy: Any,
    field: str,
) -> None:
    """The stored context is edited and the caller asks for the edited one: the key
    service refuses to unwrap the data key under a context it was not bound to."""
    _, manifest, shards = sealed
    other = replace(CONTEXT, **{field: 7 if field == "version" else "someone-else"})
    relabelled = replace(manifest, context=other)
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(relabelled, fetcher, other)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


def test_a_wrong_commitment_is_rejected_before_any_fetch_or_decryption(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]], aes_spy: Any
) -> None:
    data, manifest, shards = sealed
    wrong = replace(manifest, commitment=os.urandom(32))
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(wrong, fetcher, CONTEXT)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []
    assert_rejected(envelope, wrong, list(shards), data, first_bad_shard=0)


def test_commitment_is_checked_even_when_the_manifest_mac_is_valid(
    envelope: ShardedEnvelope,
    provider: InMemoryDataKeyProvider,
    sealed: tuple[bytes, Manifest, list[bytes]],
    aes_spy: Any,
) -> None:
    """A key holder re-signs a manifest with a wrong commitment: the commitment check
    alone must stop it, before AES-GCM ever runs."""
    _, manifest, shards = sealed
    forged = _remac(
        replace(manifest, commitment=os.urandom(32)), _unwrap_subkeys(provider, manifest).mac_key
    )
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(forged, fetcher, CONTEXT)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


def test_a_substituted_data_key_fails_the_commitment_before_decryption(
    envelope: ShardedEnvelope,
    provider: InMemoryDataKeyProvider,
    sealed: tuple[bytes, Manifest, list[bytes]],
    aes_spy: Any,
) -> None:
    """Same shards, a different validly wrapped key for the same context, manifest
    re-signed with that key: the old commitment no longer matches, nothing is decrypted."""
    _, manifest, shards = sealed
    ctx = CONTEXT.encryption_context()
    other_key, other_wrapped = provider.generate_data_key(ctx)
    mac_key = _primitives.derive_subkeys(other_key, manifest.key_salt, ctx).mac_key
    forged = _remac(replace(manifest, encrypted_data_key=other_wrapped), mac_key)
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(forged, fetcher, CONTEXT)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


def test_a_record_opens_after_passing_every_check(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]], aes_spy: Any
) -> None:
    """Control for the spies above: an untampered record is fetched and decrypted."""
    data, manifest, shards = sealed
    fetcher = Fetcher(list(shards))
    assert envelope.open_all(manifest, fetcher, CONTEXT) == data
    assert fetcher.fetched == list(range(SHARDS)) and len(aes_spy.decrypt_calls) == SHARDS


# -- the manifest, field by field ----------------------------------------------------------------


def _b64_flip(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64_padding_bits(value: str) -> str:
    """The same bytes in non-canonical base64: a padding bit of the last character set."""
    assert value.endswith("=")
    at = len(value.rstrip("=")) - 1
    return value[:at] + _B64_ALPHABET[_B64_ALPHABET.index(value[at]) ^ 1] + value[at + 1 :]


def _edits() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def setter(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
        def edit(body: dict[str, Any]) -> None:
            target: Any = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value(target[path[-1]]) if callable(value) else value

        return edit

    def drop(key: str) -> Callable[[dict[str, Any]], None]:
        return lambda body: body.pop(key)

    edits: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("format", setter(("format",), "hub-sealed-record/2")),
        ("encrypted_data_key", setter(("encrypted_data_key",), _b64_flip)),
        ("key_salt", setter(("key_salt",), _b64_flip)),
        ("commitment", setter(("commitment",), _b64_flip)),
        ("mac", setter(("mac",), _b64_flip)),
        ("key_salt padding bits", setter(("key_salt",), _b64_padding_bits)),
        ("mac padding bits", setter(("mac",), _b64_padding_bits)),
        ("shard_size", setter(("shard_size",), 65)),
        ("shard_size-regrouped", setter(("shard_size",), 128)),
        ("total_length", setter(("total_length",), SIZE - 1)),
        ("first shard size", setter(("shards", 0, "size"), 79)),
        ("last shard size", setter(("shards", SHARDS - 1, "size"), 35)),
        ("first shard sha256", setter(("shards", 0, "sha256"), "0" * 64)),
        ("last shard sha256", setter(("shards", SHARDS - 1, "sha256"), "f" * 64)),
        ("unknown field", setter(("note",), "x")),
        ("unknown shard field", setter(("shards", 1, "etag"), "x")),
        ("unknown context key", setter(("encryption_context", "purpose"), "x")),
        ("shard_size as string", setter(("shard_size",), "64")),
        ("total_length as bool", setter(("total_length",), True)),
    ]
    for key in ["record_id", "patient_id", "institution"]:
        edits.append((f"context {key}", setter(("encryption_context", key), "someone-else")))
    edits.append(("context version", setter(("encryption_context", "version"), "3")))
    for key in sorted(Manifest._FIELDS):
        edits.append((f"missing {key}", drop(key)))
    return edits


@pytest.mark.parametrize(("name", "edit"), _edits(), ids=[name for name, _ in _edits()])
def test_an_edited_manifest_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope,
    sealed: tuple[bytes, Manifest, list[bytes]],
    aes_spy: Any,
    name: str,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    _, manifest, shards = sealed
    body = json.loads(manifest.to_bytes())
    edit(body)
    edited = _primitives.canonical_json(body)
    assert edited != manifest.to_bytes()
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(edited, fetcher, CONTEXT)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b + b" ",
        lambda b: b" " + b,
        lambda b: b.replace(b'":', b'": ', 1),
        lambda b: b.replace(b'{"commitment"', b'{"commitment":"AAAA","commitment"', 1),
        lambda b: b[:-1],
        lambda b: b"[]",
        lambda b: b"",
        lambda b: b"\xff" + b,
        lambda b: json.dumps(json.loads(b), indent=1).encode(),
    ],
    ids=[
        "trailing-space",
        "leading-space",
        "whitespace",
        "duplicate-key",
        "cut",
        "array",
        "empty",
        "not-utf8",
        "reindented",
    ],
)
def test_a_non_canonical_or_malformed_manifest_is_rejected(
    sealed: tuple[bytes, Manifest, list[bytes]], mangle: Callable[[bytes], bytes]
) -> None:
    _, manifest, _ = sealed
    with pytest.raises(InvalidRecord):
        Manifest.from_bytes(mangle(manifest.to_bytes()))


def test_the_manifest_mac_covers_fields_nothing_else_checks_up_front(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]], aes_spy: Any
) -> None:
    """An edited digest of the last shard is caught by the MAC before any shard is
    fetched; without the MAC the first five shards would already have been released."""
    _, manifest, shards = sealed
    entries = list(manifest.shards)
    entries[-1] = replace(entries[-1], sha256=bytes(32))
    edited = replace(manifest, shards=tuple(entries))
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord):
        envelope.open(edited, fetcher, CONTEXT)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


def test_a_wrapped_key_from_another_provider_is_rejected(
    envelope: ShardedEnvelope, sealed: tuple[bytes, Manifest, list[bytes]]
) -> None:
    data, manifest, shards = sealed
    stranger = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SMALL_SHARD)
    assert_rejected(stranger, manifest, list(shards), data, first_bad_shard=0)
