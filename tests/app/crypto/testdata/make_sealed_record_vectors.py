"""Regenerate the sealed-record test vectors (v2 good and corrupted; v1 good and a few bad).

Run from the repository root:
``.venv/bin/python tests/app/crypto/testdata/make_sealed_record_vectors.py``.

This is a second, independent implementation of the formats, written from their
specification (``app.crypto.envelope.ShardedEnvelope`` for v2, ``app.crypto.manifest``
for v1, and docs/records.md) with nothing but the ``cryptography`` primitives (HKDF,
AES-GCM, HMAC): it does not import ``app.crypto``, so the vectors do not merely echo the
implementation under test. A JavaScript/WebCrypto implementation checks the same files.

Conventions in the JSON: bytes are lowercase hex unless the field is named ``*_b64``
(standard base64 with padding); a manifest is the exact stored text (canonical JSON,
ASCII). The key service is a stub: ``key_service`` lists the only (wrapped key, context)
pairs it unwraps and the data key each yields; any other pair is refused (as KMS refuses
a wrapped key under a different encryption context).

Randomness is fixed: ``random_bytes`` lists the random bytes the sealer consumes, in
order, as one stream (v2: the 32-byte salt, then 12 bytes of nonce per shard in index
order; v1: the salt only). An implementation with an injectable random source may read
that stream in chunks of any size and reproduces each good vector byte for byte.

Each corrupted case says what an opener must do: refuse with its one opaque error, and
``refused_before_fetch`` (no shard may be fetched or decrypted: a manifest-level
failure) or ``released_shards`` (how many leading shards a streaming opener may already
have released, verified, before it refuses: never a byte of the bad shard or after it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = Path(__file__).resolve().parent
FORMAT_V1 = b"hub-sealed-record/1"
FORMAT_V2 = b"hub-sealed-record/2"
LABELS = {
    "encryption_key": b"shard-encryption-key",
    "commitment": b"key-commitment",
    "mac_key": b"manifest-mac-key",
}


# -- deterministic randomness -----------------------------------------------------------


class Drbg:
    """SHA-256 in counter mode over a seed: fixed, reproducible "random" bytes."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return out[:n]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def hkdf32(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


@dataclass(frozen=True)
class Context:
    record_id: str
    patient_id: str
    version: int
    institution: str

    def as_map(self) -> dict[str, str]:
        return {
            "record_id": self.record_id,
            "patient_id": self.patient_id,
            "version": str(self.version),
            "institution": self.institution,
        }

    def encoded_v2(self) -> bytes:
        return (
            lp(self.record_id.encode())
            + lp(self.patient_id.encode())
            + u64(self.version)
            + lp(self.institution.encode())
        )


def layout(total_length: int, shard_size: int) -> list[int]:
    count = max(1, -(-total_length // shard_size))
    return [min(shard_size, total_length - i * shard_size) for i in range(count)]


# -- version 2 (reference) ----------------------------------------------------------------


@dataclass
class SealedV2:
    context: Context
    shard_size: int
    plaintext: bytes
    data_key: bytes
    encrypted_data_key: bytes
    salt: bytes
    nonces: list[bytes]
    subkeys: dict[str, bytes] = field(default_factory=dict)
    infos: dict[str, bytes] = field(default_factory=dict)
    aads: list[bytes] = field(default_factory=list)
    shards: list[bytes] = field(default_factory=list)
    tags: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        ctx = self.context.encoded_v2()
        for name, label in LABELS.items():
            self.infos[name] = lp(FORMAT_V2) + lp(label) + ctx
            self.subkeys[name] = hkdf32(self.data_key, self.salt, self.infos[name])
        sizes = layout(len(self.plaintext), self.shard_size)
        assert len(self.nonces) == len(sizes)
        cipher = AESGCM(self.subkeys["encryption_key"])
        for i, size in enumerate(sizes):
            piece = self.plaintext[i * self.shard_size : i * self.shard_size + size]
            aad = aad_v2(self.context, i, len(sizes), self.shard_size, len(self.plaintext))
            sealed = cipher.encrypt(self.nonces[i], piece, aad)
            self.aads.append(aad)
            self.shards.append(sealed)
            self.tags.append(sealed[-16:])

    def manifest(self, **overrides: Any) -> bytes:
        """The stored manifest; ``overrides`` change fields *before* the MAC (a forger
        holding the data key), so the result is validly MAC'd."""
        fields: dict[str, Any] = {
            "context": self.context,
            "encrypted_data_key": self.encrypted_data_key,
            "salt": self.salt,
            "shard_size": self.shard_size,
            "total_length": len(self.plaintext),
            "seals": list(zip(self.nonces, self.tags, strict=True)),
            "commitment": self.subkeys["commitment"],
        }
        fields.update(overrides)
        return manifest_v2(mac_key=self.subkeys["mac_key"], **fields)

    def authenticated_bytes(self) -> bytes:
        return amb_v2(
            self.context,
            self.encrypted_data_key,
            self.salt,
            self.shard_size,
            len(self.plaintext),
            list(zip(self.nonces, self.tags, strict=True)),
            self.subkeys["commitment"],
        )


def aad_v2(context: Context, index: int, count: int, shard_size: int, total: int) -> bytes:
    return (
        lp(FORMAT_V2)
        + context.encoded_v2()
        + u64(index)
        + u64(count)
        + u64(shard_size)
        + u64(total)
    )


def amb_v2(
    context: Context,
    encrypted_data_key: bytes,
    salt: bytes,
    shard_size: int,
    total_length: int,
    seals: list[tuple[bytes, bytes]],
    commitment: bytes,
) -> bytes:
    return (
        lp(FORMAT_V2)
        + context.encoded_v2()
        + lp(encrypted_data_key)
        + salt
        + u64(shard_size)
        + u64(total_length)
        + u64(len(seals))
        + b"".join(nonce + tag for nonce, tag in seals)
        + commitment
    )


def manifest_v2(
    *,
    context: Context,
    encrypted_data_key: bytes,
    salt: bytes,
    shard_size: int,
    total_length: int,
    seals: list[tuple[bytes, bytes]],
    commitment: bytes,
    mac_key: bytes,
) -> bytes:
    amb = amb_v2(context, encrypted_data_key, salt, shard_size, total_length, seals, commitment)
    mac = hmac.new(mac_key, amb, hashlib.sha256).digest()
    return canonical_json(
        {
            "format": FORMAT_V2.decode(),
            "encryption_context": context.as_map(),
            "encrypted_data_key": b64(encrypted_data_key),
            "key_salt": b64(salt),
            "shard_size": shard_size,
            "total_length": total_length,
            "shards": [{"nonce": b64(n), "tag": b64(t)} for n, t in seals],
            "commitment": b64(commitment),
            "mac": b64(mac),
        }
    )


def seal_v2(context: Context, shard_size: int, plaintext: bytes, seed: str) -> SealedV2:
    rng = Drbg(seed)
    data_key, encrypted_data_key = rng(32), b"wrapped:" + rng(40)
    salt = rng(32)
    nonces = [rng(12) for _ in layout(len(plaintext), shard_size)]
    return SealedV2(context, shard_size, plaintext, data_key, encrypted_data_key, salt, nonces)


# -- version 1 (reference) ----------------------------------------------------------------


@dataclass
class SealedV1:
    context: Context
    shard_size: int
    plaintext: bytes
    data_key: bytes
    encrypted_data_key: bytes
    salt: bytes
    shards: list[bytes] = field(default_factory=list)
    manifest: bytes = b""

    def __post_init__(self) -> None:
        ctx_json = canonical_json(self.context.as_map())
        keys = {
            name: hkdf32(self.data_key, self.salt, lp(FORMAT_V1) + lp(label) + lp(ctx_json))
            for name, label in LABELS.items()
        }
        sizes = layout(len(self.plaintext), self.shard_size)
        total = len(self.plaintext)
        cipher = AESGCM(keys["encryption_key"])
        for i, size in enumerate(sizes):
            piece = self.plaintext[i * self.shard_size : i * self.shard_size + size]
            numbers = struct.pack(
                ">QQQQQ", self.context.version, i, len(sizes), self.shard_size, total
            )
            aad = lp(FORMAT_V1) + lp(self.context.record_id.encode()) + lp(numbers)
            self.shards.append(cipher.encrypt(i.to_bytes(12, "big"), piece, aad))
        body = {
            "format": FORMAT_V1.decode(),
            "encryption_context": self.context.as_map(),
            "encrypted_data_key": b64(self.encrypted_data_key),
            "key_salt": b64(self.salt),
            "shard_size": self.shard_size,
            "total_length": total,
            "shards": [
                {"size": len(s), "sha256": hashlib.sha256(s).hexdigest()} for s in self.shards
            ],
            "commitment": b64(keys["commitment"]),
        }
        mac = hmac.new(keys["mac_key"], canonical_json(body), hashlib.sha256).digest()
        self.manifest = canonical_json({**body, "mac": b64(mac)})


def seal_v1(context: Context, shard_size: int, plaintext: bytes, seed: str) -> SealedV1:
    rng = Drbg(seed)
    data_key, encrypted_data_key = rng(32), b"wrapped:" + rng(40)
    return SealedV1(context, shard_size, plaintext, data_key, encrypted_data_key, rng(32))


# -- the files ------------------------------------------------------------------------------

CTX_A = Context("rec-vector-a", "pt1-vector", 1, "hosp-vector")
CTX_B = Context("rec-vector-b", "pt1-vector", 1, "hosp-vector")
CTX_A2 = Context("rec-vector-a", "pt1-vector", 2, "hosp-vector")
NOTE = " ".join(" ".join(paragraph.split()) for paragraph in (__doc__ or "").split("\n\n")[3:6])
SHARD = 32  # small shards so the vectors stay readable; the format allows 16 B..64 MiB


def plaintext(n: int, label: str) -> bytes:
    return Drbg("plaintext:" + label)(n)


def key_entry(sealed: SealedV1 | SealedV2) -> dict[str, Any]:
    return {
        "encrypted_data_key_b64": b64(sealed.encrypted_data_key),
        "context": sealed.context.as_map(),
        "data_key": sealed.data_key.hex(),
    }


def repr_digest(data: bytes) -> str:
    return f"sha-256=:{b64(hashlib.sha256(data).digest())}:"


def good_v2(name: str, description: str, sealed: SealedV2, seed: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "context": sealed.context.as_map(),
        "shard_size": sealed.shard_size,
        "plaintext": sealed.plaintext.hex(),
        "random_bytes": [sealed.salt.hex()] + [n.hex() for n in sealed.nonces],
        "drbg_seed": seed,
        "data_key": sealed.data_key.hex(),
        "encrypted_data_key_b64": b64(sealed.encrypted_data_key),
        "context_encoding": sealed.context.encoded_v2().hex(),
        "hkdf_info": {k: v.hex() for k, v in sealed.infos.items()},
        "subkeys": {k: v.hex() for k, v in sealed.subkeys.items()},
        "associated_data": [a.hex() for a in sealed.aads],
        "shards": [s.hex() for s in sealed.shards],
        "authenticated_bytes": sealed.authenticated_bytes().hex(),
        "manifest": sealed.manifest().decode(),
        "repr_digest": repr_digest(sealed.plaintext),
    }


def flip(data: bytes, position: int, mask: int = 1) -> bytes:
    out = bytearray(data)
    out[position] ^= mask
    return bytes(out)


def edit_json(manifest: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    body = json.loads(manifest)
    edit(body)
    return canonical_json(body)


def corrupted_v2(a: SealedV2, a_other_version: SealedV2, b: SealedV2) -> list[dict[str, Any]]:
    """Cases against record A (3 shards of 32, 32, 16 bytes)."""
    good = a.manifest()
    shards = [s.hex() for s in a.shards]
    seals = list(zip(a.nonces, a.tags, strict=True))
    cases: list[dict[str, Any]] = []

    def case(
        name: str,
        description: str,
        *,
        manifest: bytes = good,
        shard_list: Any = None,
        context: Context = CTX_A,
        before_fetch: bool = False,
        released: int = 0,
    ) -> None:
        entry: dict[str, Any] = {
            "name": name,
            "description": description,
            "context": context.as_map(),
            "manifest": manifest.decode("ascii"),
            "shards": shards if shard_list is None else shard_list,
            "refused_before_fetch": before_fetch,
        }
        if not before_fetch:
            entry["released_shards"] = released
        cases.append(entry)

    def with_shard(index: int, value: str | None) -> list[str | None]:
        out: list[str | None] = list(shards)
        out[index] = value
        return out

    # shards
    case(
        "shard-tag-flipped",
        "last byte of shard 1's stored tag flipped",
        shard_list=with_shard(1, flip(a.shards[1], -1).hex()),
        released=1,
    )
    case(
        "shard-ciphertext-flipped",
        "one bit of shard 2's ciphertext flipped (tag intact)",
        shard_list=with_shard(2, flip(a.shards[2], 0, 0x80).hex()),
        released=2,
    )
    case(
        "shards-swapped",
        "shard objects 0 and 1 swapped",
        shard_list=[shards[1], shards[0], shards[2]],
        released=0,
    )
    case(
        "shards-swapped-manifest-forged",
        "shards 0 and 1 swapped and the manifest's entries swapped to match, re-MAC'd by a "
        "data-key holder: the associated data binds each shard to its index",
        manifest=a.manifest(seals=[seals[1], seals[0], seals[2]]),
        shard_list=[shards[1], shards[0], shards[2]],
        released=0,
    )
    case(
        "shard-truncated",
        "shard 1 one byte short",
        shard_list=with_shard(1, a.shards[1][:-1].hex()),
        released=1,
    )
    case(
        "shard-extended",
        "shard 1 one byte long",
        shard_list=with_shard(1, (a.shards[1] + b"\x00").hex()),
        released=1,
    )
    case(
        "shard-missing",
        "shard 2 does not exist (the fetcher answers null)",
        shard_list=with_shard(2, None),
        released=2,
    )
    case(
        "shard-list-truncated-in-storage",
        "only shards 0 and 1 stored",
        shard_list=shards[:2],
        released=2,
    )
    case(
        "shard-from-other-record",
        "shard 1 replaced by record B's shard 1",
        shard_list=with_shard(1, b.shards[1].hex()),
        released=1,
    )
    case(
        "shard-from-other-version",
        "shard 0 replaced by shard 0 of version 2 of record A",
        shard_list=with_shard(0, a_other_version.shards[0].hex()),
        released=0,
    )
    # manifest, structure and MAC
    case(
        "manifest-shard-list-truncated",
        "manifest's shard list cut to 2 entries and total_length to 64, MAC unchanged",
        manifest=edit_json(good, lambda m: (m["shards"].pop(), m.update(total_length=64))),
        shard_list=shards[:2],
        before_fetch=True,
    )
    case(
        "manifest-shard-list-truncated-length-kept",
        "manifest's shard list cut to 2 entries, total_length unchanged",
        manifest=edit_json(good, lambda m: m["shards"].pop()),
        before_fetch=True,
    )
    case(
        "manifest-shard-list-truncated-forged",
        "shard list cut to 2 entries and total_length to 64, re-MAC'd by a data-key "
        "holder: every shard's associated data binds the shard count and total length",
        manifest=a.manifest(seals=seals[:2], total_length=64),
        shard_list=shards[:2],
        released=0,
    )
    case(
        "manifest-length-shorter",
        "total_length 79 instead of 80 (MAC unchanged)",
        manifest=edit_json(good, lambda m: m.update(total_length=79)),
        before_fetch=True,
    )
    case(
        "manifest-length-longer",
        "total_length 96 (a whole last shard) (MAC unchanged)",
        manifest=edit_json(good, lambda m: m.update(total_length=96)),
        before_fetch=True,
    )
    case(
        "manifest-length-forged",
        "total_length 79, re-MAC'd by a data-key holder: the shards' associated data "
        "binds the total length",
        manifest=a.manifest(total_length=79),
        released=0,
    )
    case(
        "manifest-shard-size-changed",
        "shard_size 30: still 3 shards of 80 bytes, MAC unchanged",
        manifest=edit_json(good, lambda m: m.update(shard_size=30)),
        before_fetch=True,
    )
    case(
        "manifest-entries-reordered",
        "manifest entries 0 and 1 swapped (MAC unchanged)",
        manifest=edit_json(good, lambda m: m["shards"].reverse()),
        before_fetch=True,
    )
    case(
        "manifest-tag-flipped",
        "shard 1's tag in the manifest flipped (MAC unchanged)",
        manifest=manifest_field_flip(good, ("shards", 1, "tag")),
        before_fetch=True,
    )
    case(
        "manifest-tag-forged",
        "shard 1's tag in the manifest flipped, re-MAC'd by a data-key holder: the stored "
        "shard no longer matches its committed tag",
        manifest=a.manifest(seals=[seals[0], (seals[1][0], flip(seals[1][1], 0)), seals[2]]),
        released=1,
    )
    case(
        "manifest-nonce-flipped",
        "shard 0's nonce flipped (MAC unchanged)",
        manifest=manifest_field_flip(good, ("shards", 0, "nonce")),
        before_fetch=True,
    )
    case(
        "manifest-nonce-forged",
        "shard 0's nonce flipped, re-MAC'd by a data-key holder",
        manifest=a.manifest(seals=[(flip(seals[0][0], 0), seals[0][1]), *seals[1:]]),
        released=0,
    )
    case(
        "manifest-mac-flipped",
        "the MAC flipped",
        manifest=manifest_field_flip(good, ("mac",)),
        before_fetch=True,
    )
    case(
        "manifest-commitment-flipped",
        "the key commitment flipped (MAC unchanged)",
        manifest=manifest_field_flip(good, ("commitment",)),
        before_fetch=True,
    )
    case(
        "manifest-commitment-forged",
        "the key commitment flipped, re-MAC'd",
        manifest=a.manifest(commitment=flip(a.subkeys["commitment"], 0)),
        before_fetch=True,
    )
    case(
        "manifest-salt-flipped",
        "the key salt flipped",
        manifest=manifest_field_flip(good, ("key_salt",)),
        before_fetch=True,
    )
    case(
        "manifest-format-unknown",
        'format "hub-sealed-record/3"',
        manifest=edit_json(good, lambda m: m.update(format="hub-sealed-record/3")),
        before_fetch=True,
    )
    case(
        "manifest-format-v1",
        'format relabelled "hub-sealed-record/1"',
        manifest=edit_json(good, lambda m: m.update(format="hub-sealed-record/1")),
        before_fetch=True,
    )
    case(
        "manifest-unknown-field",
        "an extra top-level field",
        manifest=edit_json(good, lambda m: m.update(note="x")),
        before_fetch=True,
    )
    case(
        "manifest-unknown-shard-field",
        "an extra field in a shard entry",
        manifest=edit_json(good, lambda m: m["shards"][0].update(size=48)),
        before_fetch=True,
    )
    case(
        "manifest-not-canonical",
        "whitespace after the first colon",
        manifest=good.replace(b'":', b'": ', 1),
        before_fetch=True,
    )
    case(
        "manifest-length-as-string",
        'total_length given as the string "80"',
        manifest=edit_json(good, lambda m: m.update(total_length="80")),
        before_fetch=True,
    )
    # manifests of other records and versions
    case(
        "manifest-swap-between-records",
        "record B's manifest and shards presented as record A",
        manifest=b.manifest(),
        shard_list=[s.hex() for s in b.shards],
        before_fetch=True,
    )
    case(
        "manifest-swap-relabelled",
        "record B's manifest with its encryption context edited to A's: the wrapped key "
        "does not unwrap under A's context",
        manifest=edit_json(b.manifest(), lambda m: m.update(encryption_context=CTX_A.as_map())),
        shard_list=[s.hex() for s in b.shards],
        before_fetch=True,
    )
    case(
        "manifest-of-other-version",
        "version 2's manifest and shards presented as version 1 of the same record",
        manifest=a_other_version.manifest(),
        shard_list=[s.hex() for s in a_other_version.shards],
        before_fetch=True,
    )
    case(
        "opened-as-other-context",
        "a good record opened with another patient id",
        context=Context(CTX_A.record_id, "pt1-someone-else", 1, CTX_A.institution),
        before_fetch=True,
    )
    return cases


def manifest_field_flip(manifest: bytes, path: tuple[Any, ...]) -> bytes:
    def edit(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        raw = base64.b64decode(target[path[-1]])
        target[path[-1]] = b64(flip(raw, 0))

    return edit_json(manifest, edit)


def build_v2() -> dict[str, Any]:
    specs = [
        ("three-shards-short-last", "80 bytes in shards of 32: 32 + 32 + 16", CTX_A, 80),
        ("exact-multiple", "64 bytes in shards of 32: two full shards", CTX_A, 64),
        ("one-byte", "one byte: one short shard", CTX_A, 1),
        ("empty", "an empty record: one empty shard (the tag alone)", CTX_A, 0),
        ("record-b", "another record, used by the swap cases", CTX_B, 80),
        ("record-a-version-2", "version 2 of record A, used by the swap cases", CTX_A2, 80),
    ]
    sealed: dict[str, SealedV2] = {}
    vectors = []
    for name, description, context, size in specs:
        seed = f"v2:{name}"
        sealed[name] = seal_v2(context, SHARD, plaintext(size, name), seed)
        vectors.append(good_v2(name, description, sealed[name], seed))
    a, b, a2 = sealed["three-shards-short-last"], sealed["record-b"], sealed["record-a-version-2"]
    return {
        "format": FORMAT_V2.decode(),
        "note": NOTE,
        "generator": "tests/app/crypto/testdata/make_sealed_record_vectors.py",
        "key_service": [key_entry(s) for s in sealed.values()],
        "good": vectors,
        "corrupted_base": "three-shards-short-last",
        "corrupted": corrupted_v2(a, a2, b),
    }


def build_v1() -> dict[str, Any]:
    specs = [
        ("three-shards-short-last", CTX_A, 80),
        ("empty", CTX_A, 0),
        ("record-b", CTX_B, 80),
    ]
    sealed = {
        name: seal_v1(context, SHARD, plaintext(size, "v1:" + name), f"v1:{name}")
        for name, context, size in specs
    }
    a, b = sealed["three-shards-short-last"], sealed["record-b"]
    a_shards = [s.hex() for s in a.shards]
    swapped = [a_shards[1], a_shards[0], a_shards[2]]
    return {
        "format": FORMAT_V1.decode(),
        "note": "Records sealed in format 1 (per-shard SHA-256 in the manifest), which every "
        "reader must keep opening. Same conventions as sealed_record_v2_vectors.json; "
        "random_bytes is the salt (v1 nonces are the shard index).",
        "generator": "tests/app/crypto/testdata/make_sealed_record_vectors.py",
        "key_service": [key_entry(s) for s in sealed.values()],
        "good": [
            {
                "name": name,
                "context": s.context.as_map(),
                "shard_size": s.shard_size,
                "plaintext": s.plaintext.hex(),
                "random_bytes": [s.salt.hex()],
                "data_key": s.data_key.hex(),
                "encrypted_data_key_b64": b64(s.encrypted_data_key),
                "shards": [c.hex() for c in s.shards],
                "manifest": s.manifest.decode(),
                "repr_digest": repr_digest(s.plaintext),
            }
            for name, s in sealed.items()
        ],
        "corrupted_base": "three-shards-short-last",
        "corrupted": [
            {
                "name": "shards-swapped",
                "description": "shard objects 0 and 1 swapped",
                "context": CTX_A.as_map(),
                "manifest": a.manifest.decode(),
                "shards": swapped,
                "refused_before_fetch": False,
                "released_shards": 0,
            },
            {
                "name": "manifest-length-shorter",
                "description": "total_length 79 (MAC unchanged)",
                "context": CTX_A.as_map(),
                "manifest": edit_json(a.manifest, lambda m: m.update(total_length=79)).decode(),
                "shards": a_shards,
                "refused_before_fetch": True,
            },
            {
                "name": "manifest-swap-between-records",
                "description": "record B's manifest and shards presented as record A",
                "context": CTX_A.as_map(),
                "manifest": b.manifest.decode(),
                "shards": [s.hex() for s in b.shards],
                "refused_before_fetch": True,
            },
        ],
    }


def main() -> None:
    for name, data in [
        ("sealed_record_v2_vectors.json", build_v2()),
        ("sealed_record_v1_vectors.json", build_v1()),
    ]:
        (HERE / name).write_text(json.dumps(data, indent=1) + "\n", encoding="ascii")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
