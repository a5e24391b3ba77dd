"""Manifests of sealed record versions: the public, MAC-protected description of a record.

A manifest names the record version's encryption context, its wrapped data key, the key
salt and commitment, the shard layout (``shard_size`` and ``total_length``, from which the
shard count and every shard's size follow) and what each shard must be: in format 1 its
ciphertext size and SHA-256, in format 2 its nonce and AES-GCM tag. The formats are
specified in ``app.crypto.envelope.ShardedEnvelope`` (v2) and ``ManifestV1`` (v1).

Guarantees:
- ``Manifest.from_bytes`` reads either version, dispatching on the stored ``format``, and
  refuses (opaque ``InvalidRecord``) anything that is not exactly a canonical encoding of
  a structurally valid manifest: unknown fields or versions, wrong types, duplicate keys,
  non-canonical JSON or base64, and a shard list that does not match the layout.
- Structure is not authenticity: only ``ShardedEnvelope.open`` establishes that a
  manifest is genuine (key commitment and MAC), so a caller must not trust a manifest's
  sizes before ``open`` has accepted it (``OpeningStream.total_length`` is the checked
  one).
"""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from app.crypto import _primitives as prim
from app.crypto.context import RecordContext, is_int
from app.crypto.errors import InvalidRecord

MIN_SHARD_SIZE = 16
MAX_SHARD_SIZE = 64 << 20
# KMS caps a CiphertextBlob at 6144 bytes.
MAX_ENCRYPTED_DATA_KEY_BYTES = 6144
FORMAT_V1 = prim.FORMAT_V1
FORMAT_V2 = prim.FORMAT_V2

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SEAL_KEYS = frozenset({"nonce", "tag"})


def shard_count_for(total_length: int, shard_size: int) -> int:
    """Number of shards of a record; an empty record still has one (empty) shard."""
    return max(1, -(-total_length // shard_size))


def plaintext_size(index: int, total_length: int, shard_size: int, shard_count: int) -> int:
    """Plaintext bytes of shard ``index``: ``shard_size`` except for the last shard."""
    if index < shard_count - 1:
        return shard_size
    return total_length - shard_size * (shard_count - 1)


def _b64(data: bytes) -> str:
    # binascii directly: the base64 module's wrappers cost more than the encoding itself.
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(value: object) -> bytes:
    """Strict base64 (alphabet and padding). Canonical form (zero padding bits) is not
    checked here: every parser compares the manifest re-encoded with the stored bytes,
    which re-encodes each field and so refuses any non-canonical base64."""
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    return binascii.a2b_base64(value, strict_mode=True)


def _load(data: bytes) -> dict[str, Any]:
    """JSON of ASCII bytes with an object at the top. Not strict on its own: duplicate
    keys, whitespace and key order are refused by the parsers' round trip (the manifest
    re-encoded must equal ``data``; a duplicate key loses one of its values)."""
    if not isinstance(data, bytes):
        raise TypeError("manifest must be bytes")
    obj = json.loads(data.decode("ascii"))
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    return obj


def _strictly(parse: Callable[[], Manifest]) -> Any:
    """Run a parser; every failure becomes the opaque ``InvalidRecord``."""
    try:
        return parse()
    except InvalidRecord:
        raise
    except Exception:
        raise InvalidRecord() from None


def _common_fields_ok(manifest: ManifestV1 | ManifestV2) -> bool:
    """The fields both versions share: types and lengths (runtime values may be anything)."""
    if not isinstance(manifest.context, RecordContext):
        return False
    byte_fields = (manifest.encrypted_data_key, manifest.key_salt, manifest.commitment)
    if not all(isinstance(b, bytes) for b in (*byte_fields, manifest.mac)):
        return False
    return (
        0 < len(manifest.encrypted_data_key) <= MAX_ENCRYPTED_DATA_KEY_BYTES
        and len(manifest.key_salt) == prim.SALT_BYTES
        and len(manifest.commitment) == prim.COMMITMENT_BYTES
        and len(manifest.mac) == prim.MAC_BYTES
    )


class Manifest:
    """A sealed record version's manifest, of any format version.

    ``Manifest.from_bytes(data)`` reads the stored form of either version; the versions
    are ``ManifestV1`` (read only) and ``ManifestV2`` (what ``ShardedEnvelope`` seals).
    Both have ``context``, ``encrypted_data_key``, ``key_salt``, ``shard_size``,
    ``total_length``, ``commitment``, ``mac``, ``shard_count``, ``ciphertext_size(i)``,
    ``shard_matches(i, ciphertext)``, ``authenticated_bytes()`` and ``to_bytes()``.
    """

    FORMAT: ClassVar[str]

    @classmethod
    def from_bytes(
        cls, data: bytes, expected: RecordContext | None = None
    ) -> ManifestV1 | ManifestV2:
        """Parse a stored manifest of any version; raises ``InvalidRecord`` if invalid.

        ``expected``: the context the caller will require (an opener's); a manifest
        naming exactly it shares that (already validated) object rather than building
        its own. The result is the same either way."""
        result: ManifestV1 | ManifestV2 = _strictly(lambda: _parse_any(data, expected))
        return result


def _parse_any(data: bytes, expected: RecordContext | None = None) -> ManifestV1 | ManifestV2:
    fast = _v2_canonical(data, expected)
    if fast is not None:
        return fast
    obj = _load(data)
    version = obj.get("format")
    if version == FORMAT_V2:
        return ManifestV2._from_json(obj, data)
    if version == FORMAT_V1:
        return ManifestV1._from_json(obj, data)
    raise ValueError("unknown format")


# -- format 1 (read only) ------------------------------------------------------------------


@dataclass(frozen=True)
class ShardEntry:
    """v1: a shard's manifest entry: ciphertext length and SHA-256 of the ciphertext."""

    size: int
    sha256: bytes


def _v1_body(
    *,
    context: RecordContext,
    encrypted_data_key: bytes,
    key_salt: bytes,
    shard_size: int,
    total_length: int,
    shards: tuple[ShardEntry, ...],
    commitment: bytes,
) -> dict[str, Any]:
    """The JSON object of every v1 manifest field except ``mac`` (what the MAC covers)."""
    return {
        "format": FORMAT_V1,
        "encryption_context": context.encryption_context(),
        "encrypted_data_key": _b64(encrypted_data_key),
        "key_salt": _b64(key_salt),
        "shard_size": shard_size,
        "total_length": total_length,
        "shards": [{"size": s.size, "sha256": s.sha256.hex()} for s in shards],
        "commitment": _b64(commitment),
    }


@dataclass(frozen=True)
class ManifestV1(Manifest):
    """Format ``hub-sealed-record/1``: records sealed before v2, still opened, never sealed
    again (except by tests and benchmarks that compare the formats).

    Key schedule: HKDF-SHA256(ikm = data key ``K``, salt = 32 random bytes, L = 32) with
    ``info`` = length-prefixed (``"hub-sealed-record/1"``, label, canonical-JSON(ctx)) for
    the labels ``shard-encryption-key`` (``Ke``), ``key-commitment`` (``C``, stored) and
    ``manifest-mac-key`` (``Km``); "length-prefixed (a, b, ...)" is each part preceded by
    its length as a 4-byte big-endian integer.

    Shards: as v2's layout; shard ``i`` is ``AES-256-GCM(Ke, nonce = i as 12-byte
    big-endian, plaintext, aad)`` (ciphertext || tag) with ``aad`` = length-prefixed
    (``"hub-sealed-record/1"``, UTF-8 record_id, big-endian uint64 x5: version, i, n,
    shard_size, total_length).

    Manifest: canonical JSON of exactly ``{"format", "encryption_context",
    "encrypted_data_key" (base64), "key_salt" (base64), "shard_size", "total_length",
    "shards": [{"size": ciphertext bytes, "sha256": lowercase hex of the ciphertext}],
    "commitment" (base64 C), "mac"}`` where ``mac`` = base64 HMAC-SHA256(Km, canonical
    JSON of every other field). The SHA-256 digests let storage check shards without a
    key (``shard_matches``); opening relies on the GCM tag.

    Construction validates structure and raises the opaque ``InvalidRecord`` otherwise.
    """

    context: RecordContext
    encrypted_data_key: bytes
    key_salt: bytes
    shard_size: int
    total_length: int
    shards: tuple[ShardEntry, ...]
    commitment: bytes
    mac: bytes

    FORMAT: ClassVar[str] = FORMAT_V1
    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "format",
            "encryption_context",
            "encrypted_data_key",
            "key_salt",
            "shard_size",
            "total_length",
            "shards",
            "commitment",
            "mac",
        }
    )

    def __post_init__(self) -> None:
        if not self._is_well_formed():
            raise InvalidRecord() from None

    def _is_well_formed(self) -> bool:
        if not _common_fields_ok(self):
            return False
        if not (_is_shard_size(self.shard_size) and is_int(self.total_length)):
            return False
        if not 0 <= self.total_length < 2**63:
            return False
        count = shard_count_for(self.total_length, self.shard_size)
        if not isinstance(self.shards, tuple) or len(self.shards) != count:
            return False
        if count > prim.MAX_SHARDS:
            return False
        for index, entry in enumerate(self.shards):
            if not isinstance(entry, ShardEntry) or not isinstance(entry.sha256, bytes):
                return False
            if entry.size != self.ciphertext_size(index) or len(entry.sha256) != 32:
                return False
        return True

    @property
    def shard_count(self) -> int:
        return len(self.shards)

    def ciphertext_size(self, index: int) -> int:
        """Stored bytes of shard ``index``: its plaintext plus the 16-byte tag."""
        count = shard_count_for(self.total_length, self.shard_size)
        size = plaintext_size(index, self.total_length, self.shard_size, count)
        return size + prim.TAG_BYTES

    def shard_matches(self, index: int, ciphertext: bytes) -> bool:
        """Keyless check of a stored shard against this manifest's size and SHA-256.

        For storage integrity checks (S3 ``ChecksumSHA256``, audits, sweeps) that hold no
        key; opening authenticates shards by their AES-GCM tag instead.
        """
        if not 0 <= index < len(self.shards):
            return False
        entry = self.shards[index]
        return len(ciphertext) == entry.size and prim.equal_secret(
            prim.sha256(ciphertext), entry.sha256
        )

    def _body(self) -> dict[str, Any]:
        return _v1_body(
            context=self.context,
            encrypted_data_key=self.encrypted_data_key,
            key_salt=self.key_salt,
            shard_size=self.shard_size,
            total_length=self.total_length,
            shards=self.shards,
            commitment=self.commitment,
        )

    def authenticated_bytes(self) -> bytes:
        """The canonical bytes the manifest MAC covers: every field except ``mac``."""
        return prim.canonical_json(self._body())

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no whitespace, ASCII): the stored form."""
        return prim.canonical_json({**self._body(), "mac": _b64(self.mac)})

    @classmethod
    def from_bytes(cls, data: bytes, expected: RecordContext | None = None) -> ManifestV1:
        """Parse a stored v1 manifest strictly; raises ``InvalidRecord`` on any deviation.
        (``expected`` is unused: v1 manifests are read through ``json`` only.)"""
        del expected
        result: ManifestV1 = _strictly(lambda: cls._from_json(_load(data), data))
        return result

    @classmethod
    def _from_json(cls, obj: dict[str, Any], data: bytes) -> ManifestV1:
        if set(obj) != cls._FIELDS or obj["format"] != FORMAT_V1:
            raise ValueError("wrong fields or format")
        shards_raw = obj["shards"]
        if not isinstance(shards_raw, list):
            raise ValueError("bad shards")
        shards: list[ShardEntry] = []
        for entry in shards_raw:
            if not isinstance(entry, dict) or set(entry) != {"size", "sha256"}:
                raise ValueError("bad shard entry")
            size, digest = entry["size"], entry["sha256"]
            if not (is_int(size) and isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
                raise ValueError("bad shard entry")
            shards.append(ShardEntry(size=size, sha256=bytes.fromhex(digest)))
        manifest = cls(
            context=_context(obj["encryption_context"]),
            encrypted_data_key=_unb64(obj["encrypted_data_key"]),
            key_salt=_unb64(obj["key_salt"]),
            shard_size=obj["shard_size"],
            total_length=obj["total_length"],
            shards=tuple(shards),
            commitment=_unb64(obj["commitment"]),
            mac=_unb64(obj["mac"]),
        )
        if manifest.to_bytes() != data:
            raise ValueError("non-canonical encoding")
        return manifest


def _is_shard_size(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and MIN_SHARD_SIZE <= value <= MAX_SHARD_SIZE
    )


def _context(value: object) -> RecordContext:
    if not isinstance(value, dict):
        raise ValueError("bad context")
    return RecordContext.from_encryption_context(value)


# -- format 2 ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardSeal:
    """v2: what the manifest commits to for one shard: its 12-byte nonce and 16-byte tag."""

    nonce: bytes
    tag: bytes


@dataclass(frozen=True)
class ManifestV2(Manifest):
    """Format ``hub-sealed-record/2``, specified byte by byte in ``ShardedEnvelope``.

    Construction validates structure (field lengths, ``shard_size`` in 16 B..64 MiB,
    ``total_length`` in 0..2**53-1, exactly one ``ShardSeal`` per shard of the layout)
    and raises the opaque ``InvalidRecord`` otherwise.
    """

    context: RecordContext
    encrypted_data_key: bytes
    key_salt: bytes
    shard_size: int
    total_length: int
    shards: tuple[ShardSeal, ...]
    commitment: bytes
    mac: bytes

    FORMAT: ClassVar[str] = FORMAT_V2
    _FIELDS: ClassVar[frozenset[str]] = ManifestV1._FIELDS

    def __post_init__(self) -> None:
        if not self._is_well_formed():
            raise InvalidRecord() from None

    def _is_well_formed(self) -> bool:
        if not _common_fields_ok(self):
            return False
        if not (_is_shard_size(self.shard_size) and is_int(self.total_length)):
            return False
        if not 0 <= self.total_length <= prim.MAX_V2_TOTAL_LENGTH:
            return False
        count = shard_count_for(self.total_length, self.shard_size)
        if count > prim.MAX_SHARDS:
            return False
        if not isinstance(self.shards, tuple) or len(self.shards) != count:
            return False
        return all(
            isinstance(seal, ShardSeal)
            and isinstance(seal.nonce, bytes)
            and isinstance(seal.tag, bytes)
            and len(seal.nonce) == prim.NONCE_BYTES
            and len(seal.tag) == prim.TAG_BYTES
            for seal in self.shards
        )

    @property
    def shard_count(self) -> int:
        return len(self.shards)

    def ciphertext_size(self, index: int) -> int:
        """Stored bytes of shard ``index``: its plaintext plus the 16-byte tag."""
        size = plaintext_size(index, self.total_length, self.shard_size, len(self.shards))
        return size + prim.TAG_BYTES

    def shard_matches(self, index: int, ciphertext: bytes) -> bool:
        """Keyless check of a stored shard: the manifest's size, and its tag at the end.

        Needs only the object's size and last 16 bytes (S3 ``HeadObject`` and a ranged
        ``GetObject`` of ``bytes=-16``). It catches a missing, resized, misplaced or
        replaced shard; it does not authenticate the content, which only the GCM tag
        check under the data key does (see "what the tags do not do" in the envelope).
        """
        if not 0 <= index < len(self.shards):
            return False
        return len(ciphertext) == self.ciphertext_size(index) and prim.equal_secret(
            bytes(ciphertext[-prim.TAG_BYTES :]), self.shards[index].tag
        )

    def context_encoding(self) -> bytes:
        """``prim.context_encoding_v2`` of the manifest's context. Made once per manifest:
        an open needs it three times (subkeys, manifest MAC, shard associated data)."""
        return self._context_encoding

    @functools.cached_property
    def _context_encoding(self) -> bytes:
        ctx = self.context
        return prim.context_encoding_v2(ctx.record_id, ctx.patient_id, ctx.version, ctx.institution)

    def authenticated_bytes(self) -> bytes:
        """The bytes the manifest MAC covers (binary, see ``ShardedEnvelope``)."""
        return prim.manifest_authenticated_bytes_v2(
            context_encoding=self.context_encoding(),
            encrypted_data_key=self.encrypted_data_key,
            key_salt=self.key_salt,
            shard_size=self.shard_size,
            total_length=self.total_length,
            seals=[(s.nonce, s.tag) for s in self.shards],
            commitment=self.commitment,
        )

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no whitespace, ASCII): the stored form.

        Written out in sorted key order rather than through ``json`` (every parse
        re-encodes the manifest it read, so this is on the path of every open): the
        values need no escaping (identifiers are tokens of ``[A-Za-z0-9._:-]``, base64
        and integers are plain), and a test checks it equals ``prim.canonical_json`` of
        the same fields. A deviation could only make a valid manifest fail to parse.
        """
        ctx = self.context
        shards = ",".join(
            [f'{{"nonce":"{_b64(s.nonce)}","tag":"{_b64(s.tag)}"}}' for s in self.shards]
        )
        text = (
            f'{{"commitment":"{_b64(self.commitment)}",'
            f'"encrypted_data_key":"{_b64(self.encrypted_data_key)}",'
            f'"encryption_context":{{"institution":"{ctx.institution}",'
            f'"patient_id":"{ctx.patient_id}","record_id":"{ctx.record_id}",'
            f'"version":"{ctx.version:d}"}},'
            f'"format":"{FORMAT_V2}","key_salt":"{_b64(self.key_salt)}",'
            f'"mac":"{_b64(self.mac)}","shard_size":{self.shard_size:d},'
            f'"shards":[{shards}],"total_length":{self.total_length:d}}}'
        )
        return text.encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, expected: RecordContext | None = None) -> ManifestV2:
        """Parse a stored v2 manifest strictly; raises ``InvalidRecord`` on any deviation."""
        result: ManifestV2 = _strictly(
            lambda: _v2_canonical(data, expected) or cls._from_json(_load(data), data)
        )
        return result

    @classmethod
    def _from_json(cls, obj: dict[str, Any], data: bytes) -> ManifestV2:
        if set(obj) != cls._FIELDS or obj["format"] != FORMAT_V2:
            raise ValueError("wrong fields or format")
        shards_raw = obj["shards"]
        if not isinstance(shards_raw, list):
            raise ValueError("bad shards")
        seals: list[ShardSeal] = []
        for entry in shards_raw:
            if not isinstance(entry, dict) or entry.keys() != _SEAL_KEYS:
                raise ValueError("bad shard entry")
            seals.append(ShardSeal(nonce=_unb64(entry["nonce"]), tag=_unb64(entry["tag"])))
        manifest = cls(
            context=_context(obj["encryption_context"]),
            encrypted_data_key=_unb64(obj["encrypted_data_key"]),
            key_salt=_unb64(obj["key_salt"]),
            shard_size=obj["shard_size"],
            total_length=obj["total_length"],
            shards=tuple(seals),
            commitment=_unb64(obj["commitment"]),
            mac=_unb64(obj["mac"]),
        )
        if manifest.to_bytes() != data:
            raise ValueError("non-canonical encoding")
        return manifest


# The canonical v2 form, as ``ManifestV2.to_bytes`` writes it (sorted keys, no spaces).
# Identifiers and numbers are matched loosely: the parse below re-encodes what it read and
# accepts it only if that equals the stored bytes, so the pattern need only find the fields
# of a canonical manifest; anything it does not match goes through ``json``.
_V2_CANONICAL = re.compile(
    rb'\{"commitment":"([A-Za-z0-9+/=]*)","encrypted_data_key":"([A-Za-z0-9+/=]*)",'
    rb'"encryption_context":\{"institution":"([^"\\]*)","patient_id":"([^"\\]*)",'
    rb'"record_id":"([^"\\]*)","version":"([0-9]+)"\},"format":"hub-sealed-record/2",'
    rb'"key_salt":"([A-Za-z0-9+/=]*)","mac":"([A-Za-z0-9+/=]*)","shard_size":([0-9]+),'
    rb'"shards":\[([^\]]*)\],"total_length":([0-9]+)\}'
)
# One shard's entry: '{"nonce":"' + 16 base64 characters + '","tag":"' + 24 + '"}'. What
# lies between entries is not matched: the re-encoding check refuses anything but commas.
_V2_ENTRY = re.compile(rb'\{"nonce":"([^"]{16})","tag":"([^"]{24})"\}')
_ENTRY_BYTES = 61


def _v2_canonical(data: bytes, expected: RecordContext | None = None) -> ManifestV2 | None:
    """The manifest ``data`` encodes if it is in canonical v2 form, without ``json``;
    ``None`` for anything else (the strict ``json`` path then decides).

    Every open starts with this parse, before anything is decrypted (about a tenth of a
    16 MiB open went to ``json.loads`` and its objects). It decides nothing on its own:
    the result is returned only if re-encoding it gives ``data`` byte for byte, which is
    the ``json`` path's canonical check, so both accept exactly the same bytes.
    """
    if not isinstance(data, bytes):
        return None
    match = _V2_CANONICAL.fullmatch(data)
    if match is None:
        return None
    (commitment, edk, institution, patient_id, record_id, version, salt, mac,
     shard_size, entries, total_length) = match.groups()  # fmt: skip
    if len(entries) % (_ENTRY_BYTES + 1) != _ENTRY_BYTES:
        return None
    context = expected
    if expected is None or (institution, patient_id, record_id, version) != (
        expected.institution.encode("ascii"),
        expected.patient_id.encode("ascii"),
        expected.record_id.encode("ascii"),
        b"%d" % expected.version,
    ):
        context = None  # built from the bytes below
    try:
        unb64 = binascii.a2b_base64
        seals = tuple(
            [
                ShardSeal(unb64(nonce, strict_mode=True), unb64(tag, strict_mode=True))
                for nonce, tag in _V2_ENTRY.findall(entries)
            ]
        )
        manifest = ManifestV2(
            context=context
            or RecordContext.from_encryption_context(
                {
                    "institution": institution.decode("ascii"),
                    "patient_id": patient_id.decode("ascii"),
                    "record_id": record_id.decode("ascii"),
                    "version": version.decode("ascii"),
                }
            ),
            encrypted_data_key=unb64(edk, strict_mode=True),
            key_salt=unb64(salt, strict_mode=True),
            shard_size=int(shard_size),
            total_length=int(total_length),
            shards=seals,
            commitment=unb64(commitment, strict_mode=True),
            mac=unb64(mac, strict_mode=True),
        )
    except (ValueError, InvalidRecord):
        return None
    return manifest if manifest.to_bytes() == data else None


__all__ = [
    "FORMAT_V1",
    "FORMAT_V2",
    "Manifest",
    "ManifestV1",
    "ManifestV2",
    "ShardEntry",
    "ShardSeal",
    "plaintext_size",
    "shard_count_for",
]
