"""The sealed-record test vectors (``testdata/``): reproduced byte for byte and refused.

The vectors come from an independent reference implementation
(``testdata/make_sealed_record_vectors.py``, which does not import ``app.crypto``); a
JavaScript/WebCrypto client checks the same files. The v1 vectors were also checked
against the code as it stood before format 2 existed (it sealed them identically), so
opening them here shows records written by that code still open.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from app.crypto import _primitives
from app.crypto.envelope import (
    Manifest,
    ManifestV1,
    ManifestV2,
    RecordContext,
    ShardedEnvelope,
)
from app.crypto.errors import InvalidRecord

TESTDATA = Path(__file__).parent / "testdata"
V2 = json.loads((TESTDATA / "sealed_record_v2_vectors.json").read_text(encoding="ascii"))
V1 = json.loads((TESTDATA / "sealed_record_v1_vectors.json").read_text(encoding="ascii"))


class VectorKeyService:
    """The vectors' key-service stub: unwraps only the listed (wrapped key, context)
    pairs, as KMS unwraps a key only under the context it was generated with."""

    def __init__(self, vectors: dict[str, Any], sealing: dict[str, Any] | None = None) -> None:
        self._keys = {
            (entry["encrypted_data_key_b64"], _ctx_key(entry["context"])): bytes.fromhex(
                entry["data_key"]
            )
            for entry in vectors["key_service"]
        }
        self._sealing = sealing

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        assert self._sealing is not None and dict(context) == self._sealing["context"]
        wrapped = base64.b64decode(self._sealing["encrypted_data_key_b64"])
        return bytes.fromhex(self._sealing["data_key"]), wrapped

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        key = self._keys.get((base64.b64encode(encrypted_key).decode(), _ctx_key(context)))
        if key is None:
            raise InvalidRecord() from None
        return key


def _ctx_key(context: Mapping[str, str]) -> str:
    return json.dumps(dict(context), sort_keys=True)


class Fetcher:
    def __init__(self, shards: list[str | None]) -> None:
        self._shards = [bytes.fromhex(s) if s is not None else None for s in shards]
        self.fetched: list[int] = []

    def __call__(self, index: int) -> bytes | None:
        self.fetched.append(index)
        return self._shards[index] if index < len(self._shards) else None


def _context(vector: dict[str, Any]) -> RecordContext:
    return RecordContext.from_encryption_context(vector["context"])


def _sealer(
    vectors: dict[str, Any], vector: dict[str, Any], version: int
) -> tuple[ShardedEnvelope, bytearray]:
    """An envelope whose random source is the vector's random bytes, read as one stream."""
    stream = bytearray(b"".join(bytes.fromhex(b) for b in vector["random_bytes"]))

    def random_bytes(n: int) -> bytes:
        assert len(stream) >= n
        value = bytes(stream[:n])
        del stream[:n]
        return value

    envelope = ShardedEnvelope(
        VectorKeyService(vectors, vector),
        shard_size=vector["shard_size"],
        random_bytes=random_bytes,
        format_version=version,
    )
    return envelope, stream


def _names(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


# -- format 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", V2["good"], ids=_names(V2["good"]))
def test_v2_sealing_reproduces_the_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    envelope, randomness = _sealer(V2, vector, 2)
    manifest, shards = envelope.seal_all(_context(vector), bytes.fromhex(vector["plaintext"]))
    assert [s.hex() for s in shards] == vector["shards"]
    assert manifest.to_bytes() == vector["manifest"].encode("ascii")
    assert isinstance(manifest, ManifestV2)
    assert randomness == b""  # every random byte of the vector was used, none more
    assert manifest.authenticated_bytes().hex() == vector["authenticated_bytes"]


@pytest.mark.parametrize("vector", V2["good"], ids=_names(V2["good"]))
def test_v2_intermediate_values_match_the_vector(vector: dict[str, Any]) -> None:
    """For implementers: each step of the key schedule and the associated data."""
    ctx = _context(vector)
    encoding = _primitives.context_encoding_v2(
        ctx.record_id, ctx.patient_id, ctx.version, ctx.institution
    )
    assert encoding.hex() == vector["context_encoding"]
    salt = bytes.fromhex(vector["random_bytes"][0])
    subkeys = _primitives.derive_subkeys_v2(bytes.fromhex(vector["data_key"]), salt, encoding)
    assert subkeys.encryption_key.hex() == vector["subkeys"]["encryption_key"]
    assert subkeys.commitment.hex() == vector["subkeys"]["commitment"]
    assert subkeys.mac_key.hex() == vector["subkeys"]["mac_key"]
    assert (
        _primitives.hkdf_info_v2(_primitives.LABEL_ENCRYPTION, encoding).hex()
        == (vector["hkdf_info"]["encryption_key"])
    )
    count = len(vector["shards"])
    total = len(vector["plaintext"]) // 2
    for index, aad in enumerate(vector["associated_data"]):
        assert (
            _primitives.shard_associated_data_v2(
                context_encoding=encoding,
                index=index,
                shard_count=count,
                shard_size=vector["shard_size"],
                total_length=total,
            ).hex()
            == aad
        )


@pytest.mark.parametrize("vector", V2["good"], ids=_names(V2["good"]))
def test_v2_vectors_open_with_their_repr_digest(vector: dict[str, Any]) -> None:
    envelope = ShardedEnvelope(VectorKeyService(V2))
    opened = envelope.open_verified(
        vector["manifest"].encode("ascii"), Fetcher(vector["shards"]), _context(vector)
    )
    assert opened.plaintext.hex() == vector["plaintext"]
    assert opened.repr_digest == vector["repr_digest"]


@pytest.mark.parametrize("case", V2["corrupted"], ids=_names(V2["corrupted"]))
def test_v2_corrupted_vectors_are_refused(case: dict[str, Any]) -> None:
    _assert_refused(V2, case)


def test_the_v2_corrupted_cases_cover_what_the_format_promises() -> None:
    names = set(_names(V2["corrupted"]))
    for required in [
        "shard-tag-flipped",
        "shards-swapped",
        "shards-swapped-manifest-forged",
        "manifest-shard-list-truncated",
        "manifest-shard-list-truncated-forged",
        "manifest-length-shorter",
        "manifest-length-forged",
        "manifest-swap-between-records",
        "manifest-swap-relabelled",
        "shard-missing",
    ]:
        assert required in names


def _assert_refused(vectors: dict[str, Any], case: dict[str, Any]) -> None:
    base = next(v for v in vectors["good"] if v["name"] == vectors["corrupted_base"])
    envelope = ShardedEnvelope(VectorKeyService(vectors))
    context = _context(case)
    manifest = case["manifest"].encode("ascii")
    if case["refused_before_fetch"]:
        fetcher = Fetcher(case["shards"])
        with pytest.raises(InvalidRecord):
            envelope.open(manifest, fetcher, context)
        assert fetcher.fetched == []
    else:
        released: list[bytes] = []
        with pytest.raises(InvalidRecord):
            for chunk in envelope.open(manifest, Fetcher(case["shards"]), context):
                released.append(chunk)
        shard_size = base["shard_size"]
        expected = bytes.fromhex(base["plaintext"])[: case["released_shards"] * shard_size]
        assert b"".join(released) == expected
    with pytest.raises(InvalidRecord) as caught:
        envelope.open_all(manifest, Fetcher(case["shards"]), context)
    assert str(caught.value) == "sealed record failed verification"


# -- format 1 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", V1["good"], ids=_names(V1["good"]))
def test_v1_vectors_still_open(vector: dict[str, Any]) -> None:
    manifest = Manifest.from_bytes(vector["manifest"].encode("ascii"))
    assert isinstance(manifest, ManifestV1)
    envelope = ShardedEnvelope(VectorKeyService(V1))  # a default (v2) reader
    opened = envelope.open_verified(manifest, Fetcher(vector["shards"]), _context(vector))
    assert opened.plaintext.hex() == vector["plaintext"]
    assert opened.repr_digest == vector["repr_digest"]


@pytest.mark.parametrize("vector", V1["good"], ids=_names(V1["good"]))
def test_v1_sealing_is_unchanged(vector: dict[str, Any]) -> None:
    envelope, randomness = _sealer(V1, vector, 1)
    manifest, shards = envelope.seal_all(_context(vector), bytes.fromhex(vector["plaintext"]))
    assert [s.hex() for s in shards] == vector["shards"]
    assert manifest.to_bytes() == vector["manifest"].encode("ascii")
    assert randomness == b""


@pytest.mark.parametrize("case", V1["corrupted"], ids=_names(V1["corrupted"]))
def test_v1_corrupted_vectors_are_refused(case: dict[str, Any]) -> None:
    _assert_refused(V1, case)


# -- the files are what the generator makes -----------------------------------------------


def test_the_vector_files_are_what_the_generator_makes() -> None:
    """A stale file (edited by hand, or a generator change not re-run) fails here."""
    spec = importlib.util.spec_from_file_location(
        "make_sealed_record_vectors", TESTDATA / "make_sealed_record_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generator  # its dataclasses resolve annotations through it
    try:
        spec.loader.exec_module(generator)
    finally:
        del sys.modules[spec.name]
    assert generator.build_v2() == V2
    assert generator.build_v1() == V1
