"""Tamper suite for format 2: every manipulation of a sealed record is the one opaque error.

For each case: ``open_all`` raises ``InvalidRecord`` (fixed message, no chained cause) and
returns nothing; streaming ``open`` never releases a byte of the bad shard or of anything
after it (only verified shards before it), and raises before it could finish. Checks
that must happen before decryption are pinned with spies on the fetcher and on AES-GCM.
Lengths, count and order come only from the authenticated manifest: every edit of them
(in the manifest, or in what storage returns) is refused, never a shorter "complete"
record.
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
from app.crypto.envelope import ManifestV2, RecordContext, ShardedEnvelope, ShardSeal
from app.crypto.errors import InvalidRecord
from app.crypto.kms import InMemoryDataKeyProvider

SMALL_SHARD = 64  # the shard size of the ``envelope`` fixture
CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")
SIZE = SMALL_SHARD * 5 + 20  # six shards, the last one short
SHARDS = 6


class Fetcher:
    def __init__(self, shards: list[bytes | None]) -> None:
        self.shards = shards
        self.fetched: list[int] = []

    def __call__(self, index: int) -> bytes | None:
        self.fetched.append(index)
        return self.shards[index] if index < len(self.shards) else None


Sealed = tuple[bytes, ManifestV2, list[bytes]]


def seal(envelope: ShardedEnvelope, data: bytes, context: RecordContext = CONTEXT) -> Sealed:
    manifest, shards = envelope.seal_all(context, data)
    assert isinstance(manifest, ManifestV2)
    return data, manifest, shards


@pytest.fixture
def sealed(envelope: ShardedEnvelope) -> Sealed:
    data, manifest, shards = seal(envelope, os.urandom(SIZE))
    assert len(shards) == SHARDS
    return data, manifest, shards


def assert_rejected(
    envelope: ShardedEnvelope,
    manifest: ManifestV2 | bytes,
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
    with pytest.raises(InvalidRecord):
        envelope.open_verified(manifest, Fetcher(shards), context)

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


def assert_rejected_before_fetch(
    envelope: ShardedEnvelope,
    manifest: ManifestV2 | bytes,
    shards: list[bytes],
    aes_spy: Any,
    context: RecordContext = CONTEXT,
) -> None:
    fetcher = Fetcher(list(shards))
    with pytest.raises(InvalidRecord) as caught:
        envelope.open(manifest, fetcher, context)
    assert str(caught.value) == "sealed record failed verification"
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []
    with pytest.raises(InvalidRecord):
        envelope.open_views(manifest, fetcher, context)
    assert fetcher.fetched == [] and aes_spy.decrypt_calls == []


def mac_key(provider: InMemoryDataKeyProvider, manifest: ManifestV2) -> bytes:
    """What an adversary holding the data key (the sealer, or a reader) can derive."""
    ctx = manifest.context
    data_key = provider.decrypt_data_key(manifest.encrypted_data_key, ctx.encryption_context())
    encoding = _primitives.context_encoding_v2(
        ctx.record_id, ctx.patient_id, ctx.version, ctx.institution
    )
    return _primitives.derive_subkeys_v2(data_key, manifest.key_salt, encoding).mac_key


def forge(provider: InMemoryDataKeyProvider, original: ManifestV2, **changes: Any) -> ManifestV2:
    """``original`` with ``changes`` and a valid MAC, as a data-key holder could make it."""
    unsigned = replace(original, **changes)
    return replace(
        unsigned,
        mac=_primitives.manifest_mac(mac_key(provider, original), unsigned.authenticated_bytes()),
    )


def flipped(data: bytes, position: int, mask: int = 1) -> bytes:
    out = bytearray(data)
    out[position % len(out)] ^= mask
    return bytes(out)


# -- shards ----------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    index=st.integers(0, SHARDS - 1),
    position=st.integers(0, 10_000),
    bit=st.integers(0, 7),
    parallelism=st.sampled_from([1, 3]),
)
def test_a_bit_flipped_anywhere_in_any_shard_is_rejected(
    index: int, position: int, bit: int, parallelism: int
) -> None:
    envelope = ShardedEnvelope(
        InMemoryDataKeyProvider(), shard_size=SMALL_SHARD, parallelism=parallelism
    )
    data, manifest, shards = seal(envelope, os.urandom(SIZE))
    tampered: list[bytes | None] = list(shards)
    tampered[index] = flipped(shards[index], position, 1 << bit)
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 4), (2, 5), (0, 5)])
def test_two_swapped_shards_are_rejected(
    envelope: ShardedEnvelope, sealed: Sealed, i: int, j: int
) -> None:
    data, manifest, shards = sealed
    tampered: list[bytes | None] = list(shards)
    tampered[i], tampered[j] = tampered[j], tampered[i]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=i)


def test_swapped_shards_are_rejected_even_with_a_forged_manifest(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider
) -> None:
    """A key holder swaps two equal-size shards and their manifest entries and re-MACs:
    the committed tags then match, but each shard's associated data binds its index."""
    data, manifest, shards = seal(envelope, os.urandom(SMALL_SHARD * 4))
    seals = list(manifest.shards)
    seals[1], seals[2] = seals[2], seals[1]
    forged = forge(provider, manifest, shards=tuple(seals))
    swapped: list[bytes | None] = [shards[0], shards[2], shards[1], shards[3]]
    assert_rejected(envelope, forged, swapped, data, first_bad_shard=1)


@pytest.mark.parametrize("index", [0, 3, SHARDS - 1])
def test_a_shard_from_another_record_is_rejected(
    envelope: ShardedEnvelope, sealed: Sealed, index: int
) -> None:
    data, manifest, shards = sealed
    _, _, other_shards = seal(envelope, os.urandom(SIZE), replace(CONTEXT, record_id="rec-0002"))
    tampered: list[bytes | None] = list(shards)
    tampered[index] = other_shards[index]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize("index", [0, 2, SHARDS - 1])
def test_a_shard_from_an_older_version_of_the_same_record_is_rejected(
    envelope: ShardedEnvelope, index: int
) -> None:
    content = (b"same content" * 30)[:SIZE].ljust(SIZE, b"!")
    _, _, old_shards = seal(envelope, content, replace(CONTEXT, version=1))
    data, manifest, shards = seal(envelope, content)
    tampered: list[bytes | None] = list(shards)
    tampered[index] = old_shards[index]
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize("index", [0, 2, SHARDS - 1])
@pytest.mark.parametrize("change", ["cut-1", "cut-to-tag", "empty", "extend-1", "append-tag"])
def test_a_shard_of_the_wrong_size_is_rejected(
    envelope: ShardedEnvelope, sealed: Sealed, index: int, change: str
) -> None:
    data, manifest, shards = sealed
    shard = shards[index]
    resized = {
        "cut-1": shard[:-1],
        "cut-to-tag": shard[-16:],
        "empty": b"",
        "extend-1": shard + b"\0",
        "append-tag": shard + shard[-16:],
    }[change]
    tampered: list[bytes | None] = list(shards)
    tampered[index] = resized
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


@pytest.mark.parametrize("change", ["cut-1", "extend-1", "append-tag"])
def test_a_shard_of_the_wrong_size_is_never_decrypted(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any, change: str
) -> None:
    """The size comes from the manifest and is checked first: a resized object (even
    one still ending in its committed tag) never reaches AES-GCM."""
    _, manifest, shards = sealed
    shard = shards[0]
    resized = {"cut-1": shard[:-1], "extend-1": shard + b"\0", "append-tag": shard + shard[-16:]}
    tampered: list[bytes | None] = [resized[change], *shards[1:]]
    with pytest.raises(InvalidRecord):
        envelope.open_all(manifest, Fetcher(tampered), CONTEXT)
    assert aes_spy.decrypt_calls == []


@pytest.mark.parametrize("index", [0, 3, SHARDS - 1])
def test_a_missing_shard_is_rejected(envelope: ShardedEnvelope, sealed: Sealed, index: int) -> None:
    data, manifest, shards = sealed
    tampered: list[bytes | None] = list(shards)
    tampered[index] = None
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=index)


def test_storage_holding_fewer_shards_is_rejected(
    envelope: ShardedEnvelope, sealed: Sealed
) -> None:
    """The shard list kept in storage is cut short (a deleted shard version, an edited
    shard list): the manifest still says six shards, so the record is incomplete."""
    data, manifest, shards = sealed
    assert_rejected(envelope, manifest, list(shards[:3]), data, first_bad_shard=3)


def test_a_shard_whose_tag_differs_from_the_committed_one_is_never_decrypted(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any
) -> None:
    data, manifest, shards = sealed
    tampered: list[bytes | None] = list(shards)
    tampered[2] = flipped(shards[2], -1)
    assert_rejected(envelope, manifest, tampered, data, first_bad_shard=2)
    aes_spy.decrypt_calls.clear()
    with pytest.raises(InvalidRecord):
        envelope.open_all(manifest, Fetcher(tampered), CONTEXT)
    assert len(aes_spy.decrypt_calls) == 2  # shards 0 and 1 only


# -- lengths, count and order: only the authenticated manifest decides -------------------------


def test_a_truncated_shard_list_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any
) -> None:
    """Cutting the record short means editing the manifest's length and shard list."""
    data, manifest, shards = sealed
    body = json.loads(manifest.to_bytes())
    body["total_length"] = SMALL_SHARD * 3
    body["shards"] = body["shards"][:3]
    truncated = _primitives.canonical_json(body)
    assert_rejected_before_fetch(envelope, truncated, shards[:3], aes_spy)
    assert_rejected(envelope, truncated, list(shards[:3]), data, first_bad_shard=0)


def test_a_truncated_shard_list_is_rejected_even_with_a_forged_manifest(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed
) -> None:
    """A key holder shortens the manifest and re-MACs it: every shard's associated data
    binds the shard count and total length, so not one byte is released."""
    data, manifest, shards = sealed
    forged = forge(provider, manifest, total_length=SMALL_SHARD * 2, shards=manifest.shards[:2])
    assert_rejected(envelope, forged, list(shards[:2]), data, first_bad_shard=0)


@pytest.mark.parametrize("length", [0, 1, SMALL_SHARD * 5, SIZE - 1, SIZE + 1, SMALL_SHARD * 6])
def test_an_altered_length_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any, length: int
) -> None:
    _, manifest, shards = sealed
    body = json.loads(manifest.to_bytes())
    body["total_length"] = length
    assert_rejected_before_fetch(envelope, _primitives.canonical_json(body), shards, aes_spy)


@pytest.mark.parametrize("length", [SIZE - 1, SMALL_SHARD * 5 + 1, SMALL_SHARD * 6])
def test_an_altered_length_is_rejected_even_with_a_forged_manifest(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, length: int
) -> None:
    data, manifest, shards = sealed
    forged = forge(provider, manifest, total_length=length)
    assert_rejected(envelope, forged, list(shards), data, first_bad_shard=0)


def test_reordered_manifest_entries_are_rejected_before_any_fetch(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any
) -> None:
    _, manifest, shards = sealed
    reordered = replace(manifest, shards=tuple(reversed(manifest.shards)))
    assert_rejected_before_fetch(envelope, reordered, shards, aes_spy)


@pytest.mark.parametrize("index", [0, SHARDS - 1])
def test_a_forged_tag_in_the_manifest_is_rejected_at_that_shard(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, index: int
) -> None:
    data, manifest, shards = sealed
    seals = list(manifest.shards)
    seals[index] = ShardSeal(nonce=seals[index].nonce, tag=flipped(seals[index].tag, 0))
    forged = forge(provider, manifest, shards=tuple(seals))
    assert_rejected(envelope, forged, list(shards), data, first_bad_shard=index)


@pytest.mark.parametrize("index", [0, SHARDS - 1])
def test_a_forged_nonce_in_the_manifest_is_rejected_at_that_shard(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, index: int
) -> None:
    data, manifest, shards = sealed
    seals = list(manifest.shards)
    seals[index] = ShardSeal(nonce=flipped(seals[index].nonce, 0), tag=seals[index].tag)
    forged = forge(provider, manifest, shards=tuple(seals))
    assert_rejected(envelope, forged, list(shards), data, first_bad_shard=index)


def test_the_stream_reports_the_authenticated_length(
    envelope: ShardedEnvelope, sealed: Sealed
) -> None:
    data, manifest, shards = sealed
    stream = envelope.open(manifest.to_bytes(), Fetcher(list(shards)), CONTEXT)
    assert stream.total_length == len(data) == stream.manifest.total_length
    assert b"".join(stream) == data


# -- manifests of other records and versions, context, key and commitment ----------------------


def test_a_manifest_swapped_in_from_another_record_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, aes_spy: Any
) -> None:
    other = replace(CONTEXT, record_id="rec-0002")
    _, theirs, their_shards = seal(envelope, os.urandom(SIZE), other)
    assert_rejected_before_fetch(envelope, theirs, their_shards, aes_spy)
    # Relabelled to claim this record: the key service will not unwrap their key here.
    relabelled = replace(theirs, context=CONTEXT)
    calls = provider.calls["decrypt_data_key"]
    assert_rejected_before_fetch(envelope, relabelled, their_shards, aes_spy)
    assert provider.calls["decrypt_data_key"] == calls + 2  # one unwrap each: open, open_views


def test_a_manifest_of_another_version_of_the_same_record_is_rejected(
    envelope: ShardedEnvelope, aes_spy: Any
) -> None:
    _, older, older_shards = seal(envelope, os.urandom(SIZE), replace(CONTEXT, version=1))
    assert_rejected_before_fetch(envelope, older, older_shards, aes_spy)
    assert_rejected_before_fetch(envelope, replace(older, context=CONTEXT), older_shards, aes_spy)


@pytest.mark.parametrize("field", ["record_id", "patient_id", "version", "institution"])
def test_opening_as_another_context_is_rejected_without_touching_kms(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, field: str
) -> None:
    data, manifest, shards = sealed
    other = replace(CONTEXT, **{field: 7 if field == "version" else "someone-else"})
    assert_rejected(envelope, manifest, list(shards), data, first_bad_shard=0, context=other)
    assert provider.calls["decrypt_data_key"] == 0


def test_a_wrong_commitment_is_rejected_before_any_fetch_even_with_a_valid_mac(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, aes_spy: Any
) -> None:
    _, manifest, shards = sealed
    assert_rejected_before_fetch(
        envelope, replace(manifest, commitment=os.urandom(32)), shards, aes_spy
    )
    forged = forge(provider, manifest, commitment=os.urandom(32))
    assert_rejected_before_fetch(envelope, forged, shards, aes_spy)


def test_a_substituted_data_key_fails_the_commitment_before_decryption(
    envelope: ShardedEnvelope, provider: InMemoryDataKeyProvider, sealed: Sealed, aes_spy: Any
) -> None:
    """Same shards, another validly wrapped key for the same context, manifest re-MAC'd
    under that key: the commitment no longer matches, nothing is fetched or decrypted."""
    _, manifest, shards = sealed
    ctx = CONTEXT.encryption_context()
    other_key, other_wrapped = provider.generate_data_key(ctx)
    encoding = _primitives.context_encoding_v2(
        CONTEXT.record_id, CONTEXT.patient_id, CONTEXT.version, CONTEXT.institution
    )
    other_mac_key = _primitives.derive_subkeys_v2(other_key, manifest.key_salt, encoding).mac_key
    unsigned = replace(manifest, encrypted_data_key=other_wrapped)
    forged = replace(
        unsigned, mac=_primitives.manifest_mac(other_mac_key, unsigned.authenticated_bytes())
    )
    assert_rejected_before_fetch(envelope, forged, shards, aes_spy)


def test_a_wrapped_key_from_another_provider_is_rejected(
    envelope: ShardedEnvelope, sealed: Sealed
) -> None:
    data, manifest, shards = sealed
    stranger = ShardedEnvelope(InMemoryDataKeyProvider(), shard_size=SMALL_SHARD)
    assert_rejected(stranger, manifest, list(shards), data, first_bad_shard=0)


def test_a_record_opens_after_passing_every_check(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any
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

    last = SHARDS - 1
    edits: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("format v1", setter(("format",), "hub-sealed-record/1")),
        ("format v3", setter(("format",), "hub-sealed-record/3")),
        ("encrypted_data_key", setter(("encrypted_data_key",), _b64_flip)),
        ("key_salt", setter(("key_salt",), _b64_flip)),
        ("commitment", setter(("commitment",), _b64_flip)),
        ("mac", setter(("mac",), _b64_flip)),
        ("shard_size, same count", setter(("shard_size",), 65)),
        ("shard_size, other count", setter(("shard_size",), 128)),
        ("total_length, same count", setter(("total_length",), SIZE - 1)),
        ("total_length, fewer shards", setter(("total_length",), SMALL_SHARD * 5)),
        ("total_length negative", setter(("total_length",), -1)),
        ("total_length beyond 2**53", setter(("total_length",), 2**53)),
        ("first tag", setter(("shards", 0, "tag"), _b64_flip)),
        ("last tag", setter(("shards", last, "tag"), _b64_flip)),
        ("first nonce", setter(("shards", 0, "nonce"), _b64_flip)),
        ("last nonce", setter(("shards", last, "nonce"), _b64_flip)),
        ("short tag", setter(("shards", 0, "tag"), base64.b64encode(bytes(15)).decode())),
        ("short nonce", setter(("shards", 0, "nonce"), base64.b64encode(bytes(8)).decode())),
        ("unpadded tag", setter(("shards", 0, "tag"), lambda v: v.rstrip("="))),
        ("tag padding bits", setter(("shards", 0, "tag"), _b64_padding_bits)),
        ("key_salt padding bits", setter(("key_salt",), _b64_padding_bits)),
        ("tag with a newline", setter(("shards", 0, "tag"), lambda v: v[:4] + "\n" + v[4:])),
        ("entry dropped", lambda body: body["shards"].pop(2)),
        ("entry duplicated", lambda body: body["shards"].insert(1, body["shards"][1])),
        ("entries reordered", lambda body: body["shards"].reverse()),
        ("shards not a list", setter(("shards",), {})),
        ("unknown field", setter(("note",), "x")),
        ("unknown shard field", setter(("shards", 1, "size"), 80)),
        ("v1 shard fields", setter(("shards", 1), {"size": 80, "sha256": "0" * 64})),
        ("unknown context key", setter(("encryption_context", "purpose"), "x")),
        ("shard_size as string", setter(("shard_size",), "64")),
        ("total_length as bool", setter(("total_length",), True)),
        ("total_length as float", setter(("total_length",), float(SIZE))),
    ]
    for key in ["record_id", "patient_id", "institution"]:
        edits.append((f"context {key}", setter(("encryption_context", key), "someone-else")))
    edits.append(("context version", setter(("encryption_context", "version"), "3")))
    for key in sorted(ManifestV2._FIELDS):
        edits.append((f"missing {key}", drop(key)))
    return edits


@pytest.mark.parametrize(("name", "edit"), _edits(), ids=[name for name, _ in _edits()])
def test_an_edited_manifest_is_rejected_before_any_fetch(
    envelope: ShardedEnvelope,
    sealed: Sealed,
    aes_spy: Any,
    name: str,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    _, manifest, shards = sealed
    body = json.loads(manifest.to_bytes())
    edit(body)
    edited = _primitives.canonical_json(body)
    assert edited != manifest.to_bytes()
    assert_rejected_before_fetch(envelope, edited, shards, aes_spy)


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
        lambda b: json.dumps(json.loads(b)).encode(),  # unsorted-safe, but with spaces
    ],
    ids=[
        "trailing-space",
        "leading-space",
        "whitespace",
        "duplicate-key",
        "cut",
        "array",
        "empty",
        "not-ascii",
        "reindented",
        "spaced",
    ],
)
def test_a_non_canonical_or_malformed_manifest_is_rejected(
    sealed: Sealed, mangle: Callable[[bytes], bytes]
) -> None:
    _, manifest, _ = sealed
    with pytest.raises(InvalidRecord):
        ManifestV2.from_bytes(mangle(manifest.to_bytes()))


def test_the_manifest_mac_covers_what_nothing_else_checks_up_front(
    envelope: ShardedEnvelope, sealed: Sealed, aes_spy: Any
) -> None:
    """An edited tag of the last shard is caught by the MAC before any shard is
    fetched; without the MAC the first five shards would already have been released."""
    _, manifest, shards = sealed
    seals = list(manifest.shards)
    seals[-1] = ShardSeal(nonce=seals[-1].nonce, tag=bytes(16))
    assert_rejected_before_fetch(envelope, replace(manifest, shards=tuple(seals)), shards, aes_spy)


def test_a_manifest_with_a_wrong_shard_count_cannot_even_be_constructed(sealed: Sealed) -> None:
    _, manifest, _ = sealed
    with pytest.raises(InvalidRecord):
        replace(manifest, shards=manifest.shards[:-1])
    with pytest.raises(InvalidRecord):
        replace(manifest, total_length=SMALL_SHARD * 7)
