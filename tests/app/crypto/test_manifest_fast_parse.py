"""The v2 manifest's fast parse (``_v2_canonical``) accepts exactly what the strict ``json``
parse accepts, and returns the same manifest.

The fast parse is on the path of every open; it must be used for every canonical v2
manifest (or it saves nothing), and must never accept bytes the ``json`` path refuses
(non-canonical JSON or base64, duplicate keys, escapes, a shard list that does not fit
the layout). Mutations are generated, not listed: any single-byte edit, insertion or
deletion of a stored manifest.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.crypto import _primitives as prim
from app.crypto import manifest as manifest_module
from app.crypto.envelope import ManifestV2, RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.kms import InMemoryDataKeyProvider
from app.crypto.manifest import Manifest

_PROVIDER = InMemoryDataKeyProvider()
_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)


def _stored(length: int, shard_size: int, context: RecordContext) -> bytes:
    envelope = ShardedEnvelope(_PROVIDER, shard_size=shard_size)
    manifest, _ = envelope.seal_all(context, os.urandom(length))
    return manifest.to_bytes()


def _strict(data: bytes) -> ManifestV2 | None:
    """The ``json`` path alone (what ``from_bytes`` did before the fast parse)."""
    try:
        return ManifestV2._from_json(manifest_module._load(data), data)
    except Exception:
        return None


contexts = st.builds(
    RecordContext,
    record_id=_IDS,
    patient_id=_IDS,
    version=st.integers(1, 10**9),
    institution=_IDS,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context=contexts,
    length=st.integers(0, 700),
    shard_size=st.sampled_from([16, 64, 100, 1024]),
)
def test_every_canonical_v2_manifest_takes_the_fast_parse_and_gets_the_same_result(
    context: RecordContext, length: int, shard_size: int
) -> None:
    stored = _stored(length, shard_size, context)
    fast = manifest_module._v2_canonical(stored)
    assert fast is not None, "a canonical manifest fell back to json: the fast parse is unused"
    assert fast == _strict(stored)
    assert Manifest.from_bytes(stored) == fast


_BASE = _stored(
    300, 64, RecordContext(record_id="rec-1", patient_id="pt-1", version=3, institution="inst-a")
)


@settings(max_examples=400, deadline=None)
@given(
    position=st.integers(0, len(_BASE) - 1),
    byte=st.integers(0, 255),
    edit=st.sampled_from(["replace", "insert", "delete"]),
)
def test_an_edited_manifest_is_accepted_by_the_fast_parse_only_if_json_accepts_it(
    position: int, byte: int, edit: str
) -> None:
    if edit == "replace":
        data = _BASE[:position] + bytes([byte]) + _BASE[position + 1 :]
    elif edit == "insert":
        data = _BASE[:position] + bytes([byte]) + _BASE[position:]
    else:
        data = _BASE[:position] + _BASE[position + 1 :]
    fast = manifest_module._v2_canonical(data)
    strict = _strict(data)
    if fast is not None:
        assert fast == strict
    if strict is None:
        with pytest.raises(InvalidRecord):
            Manifest.from_bytes(data)
    else:
        assert Manifest.from_bytes(data) == strict


@pytest.mark.parametrize(
    "mangle",
    [
        # An escaped character is the same JSON string but not the canonical bytes.
        lambda b: b.replace(b'"institution":"inst-a"', b'"institution":"inst\\u002da"'),
        # A shard entry's keys swapped: the same object, not its canonical form.
        lambda b: b.replace(b'{"nonce":', b'{"tag":', 1),
        # A tag's padding changed (17 bytes, not a tag).
        lambda b: b.replace(b'=="}', b'Q="}', 1),
        # One shard entry fewer (the layout needs six).
        lambda b: b[: b.index(b'{"nonce"')] + b[b.index(b"},{") + 2 :],
    ],
    ids=["escaped-id", "entry-keys-swapped", "tag-padding-changed", "entry-dropped"],
)
def test_the_fast_parse_refuses_what_only_looks_canonical(mangle: object) -> None:
    data = mangle(_BASE)  # type: ignore[operator]
    assert data != _BASE
    assert manifest_module._v2_canonical(data) is None
    with pytest.raises(InvalidRecord):
        Manifest.from_bytes(data)


@settings(max_examples=40, deadline=None)
@given(context=contexts, other=contexts)
def test_an_expected_context_changes_nothing_but_who_builds_it(
    context: RecordContext, other: RecordContext
) -> None:
    """An opener's expected context is shared only when the manifest names exactly it;
    a manifest naming another context still parses to that other context (the opener
    then refuses it), never to the one expected."""
    stored = _stored(100, 64, context)
    plain = Manifest.from_bytes(stored)
    assert Manifest.from_bytes(stored, context) == plain
    assert Manifest.from_bytes(stored, context).context is context
    assert Manifest.from_bytes(stored, other).context == context


@settings(max_examples=40, deadline=None)
@given(context=contexts, other=contexts)
def test_a_manifest_encodes_its_own_context_once(
    context: RecordContext, other: RecordContext
) -> None:
    """An open uses the manifest's context encoding three times (subkeys, MAC, shard
    associated data); it is made once per manifest, from the context the manifest names,
    whatever context the opener expected."""
    stored = _stored(100, 64, context)
    expected = prim.context_encoding_v2(
        context.record_id, context.patient_id, context.version, context.institution
    )
    for parsed in (Manifest.from_bytes(stored, context), Manifest.from_bytes(stored, other)):
        assert isinstance(parsed, ManifestV2)
        first = parsed.context_encoding()
        assert first == expected
        assert parsed.context_encoding() is first
