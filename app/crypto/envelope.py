"""The sealed-record format: sharded envelope encryption of one record version.

A record version is sealed under a fresh KMS data key bound to its encryption context
(record id, patient id, version, institution), split into fixed-size shards sealed with
AES-256-GCM, and described by a manifest that commits to the key and is MAC-protected.
The format is specified in the docstring of :class:`ShardedEnvelope`.

Guarantees:
- Callers never handle nonces or subkeys; a data key seals exactly one record version.
- Opening checks, before fetching or decrypting any shard: the manifest's schema, that it
  is for the expected record context, the data-key unwrap under that context, the key
  commitment (constant time) and the manifest MAC. Each shard is then checked against
  its manifest length and its AES-GCM tag before any of its bytes is released.
- Every integrity or decryption failure is the one opaque ``InvalidRecord``.
- Seal and open stream: peak memory is about (2 x parallelism + 1) x shard size,
  independent of the record's length.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag

from app.crypto import _primitives as prim
from app.crypto.errors import InvalidRecord, LengthMismatch, SealNotFinished
from app.crypto.kms import DataKeyProvider

DEFAULT_SHARD_SIZE = 1 << 20
MIN_SHARD_SIZE = 16
MAX_SHARD_SIZE = 64 << 20
MAX_PARALLELISM = 32
# KMS caps a CiphertextBlob at 6144 bytes.
MAX_ENCRYPTED_DATA_KEY_BYTES = 6144
MAX_RECORD_VERSION = 2**31 - 1
FORMAT_VERSION = prim.FORMAT_VERSION

# Identifiers travel in the KMS encryption context (logged by CloudTrail) and in object
# metadata, so they are opaque tokens: never names or other patient content.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

ShardFetcher = Callable[[int], "bytes | None"]
"""Returns shard ``index``'s ciphertext, or ``None`` when the shard does not exist.

Transport errors it raises propagate unchanged, so the storage layer can retry them;
a missing shard (``None``) is an integrity failure of the record. With parallelism > 1
it is called from several threads at once (a boto3 client is safe to share).
"""

Source = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RecordContext:
    """What a data key is bound to: the KMS encryption context of one record version.

    Raises:
        ValueError: an identifier is not an opaque token (``[A-Za-z0-9][A-Za-z0-9._:-]``,
            at most 128 characters) or the version is not an integer in 1..2**31-1.
    """

    record_id: str
    patient_id: str
    version: int
    institution: str

    def __post_init__(self) -> None:
        for name in ("record_id", "patient_id", "institution"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
                raise ValueError(f"{name} must be an opaque identifier token")
        if not _is_int(self.version) or not 1 <= self.version <= MAX_RECORD_VERSION:
            raise ValueError("version must be an integer between 1 and 2**31-1")

    def encryption_context(self) -> dict[str, str]:
        """The KMS encryption context: exactly the keys the records key policy requires."""
        return {
            "record_id": self.record_id,
            "patient_id": self.patient_id,
            "version": str(self.version),
            "institution": self.institution,
        }

    @classmethod
    def from_encryption_context(cls, context: Mapping[str, Any]) -> RecordContext:
        """Parse a stored encryption context; raises ``ValueError`` unless exact."""
        if set(context) != {"record_id", "patient_id", "version", "institution"}:
            raise ValueError("encryption context must have exactly the record keys")
        version = context["version"]
        if not isinstance(version, str) or not re.fullmatch(r"[1-9][0-9]{0,9}", version):
            raise ValueError("version must be a decimal string")
        return cls(
            record_id=context["record_id"],
            patient_id=context["patient_id"],
            version=int(version),
            institution=context["institution"],
        )


@dataclass(frozen=True, slots=True)
class SealedShard:
    """One sealed shard, to be stored under an opaque object key."""

    index: int
    ciphertext: bytes


@dataclass(frozen=True)
class ShardEntry:
    """A shard's entry in the manifest: ciphertext length and SHA-256 of the ciphertext."""

    size: int
    sha256: bytes


def shard_count_for(total_length: int, shard_size: int) -> int:
    """Number of shards of a record; an empty record still has one (empty) shard."""
    return max(1, -(-total_length // shard_size))


def _plaintext_size(index: int, total_length: int, shard_size: int, shard_count: int) -> int:
    if index < shard_count - 1:
        return shard_size
    return total_length - shard_size * (shard_count - 1)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    decoded = base64.b64decode(value, validate=True)
    if _b64(decoded) != value:
        raise ValueError("non-canonical base64")
    return decoded


def _manifest_body(
    *,
    context: RecordContext,
    encrypted_data_key: bytes,
    key_salt: bytes,
    shard_size: int,
    total_length: int,
    shards: tuple[ShardEntry, ...],
    commitment: bytes,
) -> dict[str, Any]:
    """The JSON object of every manifest field except ``mac`` (what the MAC covers)."""
    return {
        "format": FORMAT_VERSION,
        "encryption_context": context.encryption_context(),
        "encrypted_data_key": _b64(encrypted_data_key),
        "key_salt": _b64(key_salt),
        "shard_size": shard_size,
        "total_length": total_length,
        "shards": [{"size": s.size, "sha256": s.sha256.hex()} for s in shards],
        "commitment": _b64(commitment),
    }


@dataclass(frozen=True)
class Manifest:
    """The public description of one sealed record version (see ``ShardedEnvelope``).

    Construction validates structure (sizes consistent with ``shard_size`` and
    ``total_length``, field lengths) and raises the opaque ``InvalidRecord`` otherwise;
    authenticity (commitment and MAC) is only established by ``ShardedEnvelope.open``.
    """

    context: RecordContext
    encrypted_data_key: bytes
    key_salt: bytes
    shard_size: int
    total_length: int
    shards: tuple[ShardEntry, ...]
    commitment: bytes
    mac: bytes

    _FIELDS = frozenset(
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
        if not isinstance(self.context, RecordContext):
            return False
        byte_fields = (self.encrypted_data_key, self.key_salt, self.commitment, self.mac)
        if not all(isinstance(b, bytes) for b in byte_fields):
            return False
        if not (
            0 < len(self.encrypted_data_key) <= MAX_ENCRYPTED_DATA_KEY_BYTES
            and len(self.key_salt) == prim.SALT_BYTES
            and len(self.commitment) == prim.COMMITMENT_BYTES
            and len(self.mac) == prim.MAC_BYTES
        ):
            return False
        if not (_is_int(self.shard_size) and MIN_SHARD_SIZE <= self.shard_size <= MAX_SHARD_SIZE):
            return False
        if not (_is_int(self.total_length) and 0 <= self.total_length < 2**63):
            return False
        count = shard_count_for(self.total_length, self.shard_size)
        if not isinstance(self.shards, tuple) or len(self.shards) != count:
            return False
        if count > prim.MAX_SHARDS:
            return False
        for index, entry in enumerate(self.shards):
            if not isinstance(entry, ShardEntry) or not isinstance(entry.sha256, bytes):
                return False
            expected = _plaintext_size(index, self.total_length, self.shard_size, count)
            if entry.size != expected + prim.TAG_BYTES or len(entry.sha256) != 32:
                return False
        return True

    @property
    def shard_count(self) -> int:
        return len(self.shards)

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
        return _manifest_body(
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
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse the stored form strictly; raises ``InvalidRecord`` on any deviation.

        Rejected: invalid UTF-8/JSON, duplicate keys, unknown or missing fields, wrong
        types, non-canonical encodings (the bytes must equal the canonical re-encoding),
        an unknown format version, and sizes inconsistent with the shard layout.
        """
        try:
            return cls._parse(data)
        except InvalidRecord:
            raise
        except Exception:
            raise InvalidRecord() from None

    @classmethod
    def _parse(cls, data: bytes) -> Manifest:
        if not isinstance(data, bytes):
            raise TypeError("manifest must be bytes")

        def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            obj = dict(pairs)
            if len(obj) != len(pairs):
                raise ValueError("duplicate key")
            return obj

        obj = json.loads(data.decode("ascii"), object_pairs_hook=unique_keys)
        if not isinstance(obj, dict) or set(obj) != cls._FIELDS:
            raise ValueError("wrong fields")
        if obj["format"] != FORMAT_VERSION:
            raise ValueError("unknown format")
        context = obj["encryption_context"]
        if not isinstance(context, dict):
            raise ValueError("bad context")
        shards_raw = obj["shards"]
        if not isinstance(shards_raw, list):
            raise ValueError("bad shards")
        shards: list[ShardEntry] = []
        for entry in shards_raw:
            if not isinstance(entry, dict) or set(entry) != {"size", "sha256"}:
                raise ValueError("bad shard entry")
            size, digest = entry["size"], entry["sha256"]
            if not (_is_int(size) and isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
                raise ValueError("bad shard entry")
            shards.append(ShardEntry(size=size, sha256=bytes.fromhex(digest)))
        manifest = cls(
            context=RecordContext.from_encryption_context(context),
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


class ShardedEnvelope:
    """Seals and opens record versions in format ``hub-sealed-record/1``.

    Key schedule (per record version):
      1. ``provider.generate_data_key(ctx)`` returns a fresh 32-byte data key ``K`` and
         its wrapped form; ``ctx`` is ``RecordContext.encryption_context()``:
         ``{record_id, patient_id, version, institution}`` (all strings).
      2. ``salt`` = 32 random bytes (so subkeys differ even if a key service ever
         repeated a data key).
      3. HKDF-SHA256(ikm=K, salt=salt, L=32) with ``info`` = length-prefixed
         (``"hub-sealed-record/1"``, label, canonical-JSON(ctx)) for three labels:
         ``shard-encryption-key`` -> ``Ke``; ``key-commitment`` -> the commitment value
         ``C`` (stored); ``manifest-mac-key`` -> ``Km``.

    "Length-prefixed (a, b, ...)" below means each part preceded by its length as a
    4-byte big-endian integer, so distinct inputs never encode alike.

    Shards: the plaintext of ``total_length`` bytes is cut into ``n`` =
    max(1, ceil(total_length / shard_size)) shards, every one ``shard_size`` bytes except
    the last (an empty record has one empty shard). Shard ``i`` is
    ``AES-256-GCM(Ke, nonce = i as 12-byte big-endian, plaintext, aad)`` (ciphertext ||
    16-byte tag), with ``aad`` = length-prefixed (``"hub-sealed-record/1"``,
    UTF-8 record_id, big-endian uint64 x5: version, i, n, shard_size, total_length).
    A nonce repeats only across records, never under one key: ``Ke`` seals one version.

    Manifest: canonical JSON (sorted keys, no whitespace, ASCII) of exactly::

        {"format": "hub-sealed-record/1",
         "encryption_context": {record_id, patient_id, version, institution},
         "encrypted_data_key": base64, "key_salt": base64 (32 bytes),
         "shard_size": int, "total_length": int,
         "shards": [{"size": ciphertext bytes, "sha256": lowercase hex of ciphertext}],
         "commitment": base64(C), "mac": base64(HMAC-SHA256(Km, every other field's
         canonical JSON))}

    Open order (each failure -> ``InvalidRecord``, nothing fetched or decrypted before
    the manifest steps pass): strict parse; manifest context == the expected context;
    unwrap ``K`` with the context; derive subkeys; compare ``C`` in constant time (key
    commitment, before any decryption, as the AWS Encryption SDK's committing suites
    do); verify the MAC in constant time; then per shard in index order: fetch, check
    length against the manifest, AES-GCM decrypt (tag checked before any byte is
    returned), release. The manifest's SHA-256 digests let storage verify shards without
    a key (``Manifest.shard_matches``, S3 ``ChecksumSHA256``); opening relies on the tag.

    Args:
        provider: where data keys come from (KMS, or in-memory for tests).
        shard_size: plaintext bytes per shard when sealing (opening uses the manifest's).
        parallelism: worker threads for seal/open; 1 runs inline. At most
            ``2 x parallelism`` shards are in flight.
        random_bytes: the salt source (injectable for tests).

    Raises:
        ValueError: on an invalid ``shard_size`` or ``parallelism``.
    """

    def __init__(
        self,
        provider: DataKeyProvider,
        *,
        shard_size: int = DEFAULT_SHARD_SIZE,
        parallelism: int = 1,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not _is_int(shard_size) or not MIN_SHARD_SIZE <= shard_size <= MAX_SHARD_SIZE:
            raise ValueError(
                f"shard_size must be an integer in {MIN_SHARD_SIZE}..{MAX_SHARD_SIZE} bytes"
            )
        if not _is_int(parallelism) or not 1 <= parallelism <= MAX_PARALLELISM:
            raise ValueError(f"parallelism must be an integer in 1..{MAX_PARALLELISM}")
        if not (
            callable(getattr(provider, "generate_data_key", None))
            and callable(getattr(provider, "decrypt_data_key", None))
        ):
            raise TypeError("provider must implement DataKeyProvider")
        self._provider = provider
        self._shard_size = shard_size
        self._parallelism = parallelism
        self._random_bytes = random_bytes

    @property
    def shard_size(self) -> int:
        return self._shard_size

    def seal(self, context: RecordContext, source: Source, length: int) -> SealingStream:
        """Start sealing ``length`` bytes from ``source`` as the record version ``context``.

        Generates the data key now. Iterate the result for the sealed shards (in index
        order); its ``manifest`` is available once every shard has been produced.

        Args:
            source: bytes, a binary file-like object (``read``), or an iterable of bytes
                chunks of any sizes.
            length: the declared plaintext length; a source that yields more or fewer
                bytes raises ``LengthMismatch`` during iteration and no manifest exists.
        """
        if not isinstance(context, RecordContext):
            raise TypeError("context must be a RecordContext")
        if not _is_int(length) or length < 0 or length >= 2**63:
            raise ValueError("length must be a non-negative integer")
        if shard_count_for(length, self._shard_size) > prim.MAX_SHARDS:
            raise ValueError("record too large for the shard size")
        encryption_context = context.encryption_context()
        data_key, encrypted_key = self._provider.generate_data_key(encryption_context)
        salt = self._random_bytes(prim.SALT_BYTES)
        subkeys = prim.derive_subkeys(bytes(data_key), salt, encryption_context)
        return SealingStream(
            context=context,
            encrypted_data_key=bytes(encrypted_key),
            salt=salt,
            subkeys=subkeys,
            shard_size=self._shard_size,
            length=length,
            source=source,
            parallelism=self._parallelism,
        )

    def seal_all(self, context: RecordContext, data: bytes) -> tuple[Manifest, list[bytes]]:
        """Seal an in-memory record; returns the manifest and the shard ciphertexts."""
        stream = self.seal(context, data, len(data))
        shards = [shard.ciphertext for shard in stream]
        return stream.manifest, shards

    def open(
        self,
        manifest: Manifest | bytes,
        fetch_shard: ShardFetcher,
        context: RecordContext,
    ) -> Iterator[bytes]:
        """Verify the manifest now, then return an iterator of verified plaintext chunks.

        Everything checkable without shards (schema, context, key unwrap, commitment,
        MAC) is checked before this returns, so a bad manifest raises here and no shard
        is fetched. The iterator then yields each shard's plaintext only after that shard
        is verified, and raises ``InvalidRecord`` at the first bad or missing shard.

        Callers must not act on streamed plaintext (store it, show it as complete, hand
        it on as a record) until the iterator finishes without error: a later shard can
        still fail. Use ``open_all`` to get bytes only when every shard has verified.

        Raises:
            InvalidRecord: any integrity or decryption failure (opaque).
            KeyServiceUnavailable: the key service could not be reached (retryable).
        """
        if isinstance(manifest, bytes):
            manifest = Manifest.from_bytes(manifest)
        if not isinstance(manifest, Manifest) or not isinstance(context, RecordContext):
            raise TypeError("open takes a Manifest (or its bytes) and a RecordContext")
        if manifest.context != context:
            raise InvalidRecord() from None
        encryption_context = context.encryption_context()
        data_key = self._provider.decrypt_data_key(manifest.encrypted_data_key, encryption_context)
        try:
            subkeys = prim.derive_subkeys(bytes(data_key), manifest.key_salt, encryption_context)
        except ValueError:
            raise InvalidRecord() from None
        if not prim.equal_secret(subkeys.commitment, manifest.commitment):
            raise InvalidRecord() from None
        expected_mac = prim.manifest_mac(subkeys.mac_key, manifest.authenticated_bytes())
        if not prim.equal_secret(expected_mac, manifest.mac):
            raise InvalidRecord() from None
        return _open_shards(manifest, subkeys, fetch_shard, self._parallelism)

    def open_all(
        self,
        manifest: Manifest | bytes,
        fetch_shard: ShardFetcher,
        context: RecordContext,
    ) -> bytes:
        """Open a whole record into memory; returns only once every shard has verified."""
        return b"".join(list(self.open(manifest, fetch_shard, context)))


class SealingStream:
    """The shards of one record version being sealed, then its manifest.

    Iterable once; yields ``SealedShard`` in index order. ``manifest`` raises
    ``SealNotFinished`` until every shard has been yielded and the source has been
    checked to hold exactly the declared length.
    """

    def __init__(
        self,
        *,
        context: RecordContext,
        encrypted_data_key: bytes,
        salt: bytes,
        subkeys: prim.Subkeys,
        shard_size: int,
        length: int,
        source: Source,
        parallelism: int,
    ) -> None:
        self._context = context
        self._encrypted_data_key = encrypted_data_key
        self._salt = salt
        self._subkeys: prim.Subkeys | None = subkeys
        self._shard_size = shard_size
        self._length = length
        self._source = source
        self._parallelism = parallelism
        self._started = False
        self._manifest: Manifest | None = None

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            raise SealNotFinished()
        return self._manifest

    def __iter__(self) -> Iterator[SealedShard]:
        if self._started:
            raise RuntimeError("a SealingStream can be iterated only once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[SealedShard]:
        subkeys = self._subkeys
        assert subkeys is not None
        count = shard_count_for(self._length, self._shard_size)
        cipher = prim.new_shard_cipher(subkeys.encryption_key)
        record_id, version = self._context.record_id, self._context.version

        def seal_one(index: int, plaintext: bytes | memoryview) -> tuple[bytes, ShardEntry]:
            aad = prim.shard_associated_data(
                record_id=record_id,
                version=version,
                index=index,
                shard_count=count,
                shard_size=self._shard_size,
                total_length=self._length,
            )
            ciphertext = prim.seal_shard(cipher, index, plaintext, aad)
            return ciphertext, ShardEntry(size=len(ciphertext), sha256=prim.sha256(ciphertext))

        def checked_pieces() -> Iterator[tuple[int, bytes | memoryview]]:
            index = -1
            for index, piece in enumerate(_pieces(self._source, self._shard_size)):
                expected = (
                    _plaintext_size(index, self._length, self._shard_size, count)
                    if index < count
                    else -1
                )
                if len(piece) != expected:
                    raise LengthMismatch()
                yield index, piece
            if self._length == 0 and index == -1:
                yield 0, b""
            elif index != count - 1:
                raise LengthMismatch()

        entries: list[ShardEntry] = []
        for index, (ciphertext, entry) in _ordered_map(
            seal_one, checked_pieces(), min(self._parallelism, count)
        ):
            entries.append(entry)
            yield SealedShard(index, ciphertext)

        fields: dict[str, Any] = {
            "context": self._context,
            "encrypted_data_key": self._encrypted_data_key,
            "key_salt": self._salt,
            "shard_size": self._shard_size,
            "total_length": self._length,
            "shards": tuple(entries),
            "commitment": subkeys.commitment,
        }
        mac = prim.manifest_mac(subkeys.mac_key, prim.canonical_json(_manifest_body(**fields)))
        self._manifest = Manifest(**fields, mac=mac)
        # Best effort: Python cannot wipe memory, but the subkeys need not outlive the seal.
        self._subkeys = None


def _pieces(source: Source, shard_size: int) -> Iterator[bytes | memoryview]:
    """Cut a source into shard-sized pieces (the last may be short; none are empty)."""
    if isinstance(source, bytes):
        view = memoryview(source)  # immutable: slicing without copying is safe
        for start in range(0, len(view), shard_size):
            yield view[start : start + shard_size]
        return
    if isinstance(source, bytearray | memoryview):
        # Mutable: copy shard by shard (not the whole record) so workers see stable bytes.
        mutable = memoryview(source).cast("B")
        for start in range(0, len(mutable), shard_size):
            yield bytes(mutable[start : start + shard_size])
        return
    if isinstance(source, io.IOBase) or callable(getattr(source, "read", None)):
        reader: Any = source
        while True:
            piece = reader.read(shard_size)
            while piece and len(piece) < shard_size:
                more = reader.read(shard_size - len(piece))
                if not more:
                    break
                piece += more
            if not piece:
                return
            yield bytes(piece)
            if len(piece) < shard_size:
                return  # the inner loop only stops short at end of file
    buffer = bytearray()
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError("source iterable must yield bytes")
        buffer += chunk
        while len(buffer) >= shard_size:
            yield bytes(buffer[:shard_size])
            del buffer[:shard_size]
    if buffer:
        yield bytes(buffer)


def _ordered_map(
    function: Callable[..., Any], items: Iterator[tuple[Any, ...]], parallelism: int
) -> Iterator[tuple[int, Any]]:
    """Apply ``function(*item)`` to each item, yielding ``(item[0], result)`` in order.

    With parallelism > 1 a thread pool runs up to ``2 x parallelism`` items at once (the
    AES-GCM and SHA-256 calls release the GIL); items are pulled lazily, so memory stays
    bounded. Leaving early cancels whatever is still queued.
    """
    if parallelism == 1:
        for item in items:
            yield item[0], function(*item)
        return
    executor = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="sealed-record")
    pending: deque[tuple[int, Future[Any]]] = deque()
    try:
        for item in items:
            pending.append((item[0], executor.submit(function, *item)))
            if len(pending) >= 2 * parallelism:
                index, future = pending.popleft()
                yield index, future.result()
        while pending:
            index, future = pending.popleft()
            yield index, future.result()
    finally:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=False, cancel_futures=True)


class _ShardFailure(Exception):
    """Internal: a shard failed verification (turned into ``InvalidRecord``)."""


def _open_shards(
    manifest: Manifest,
    subkeys: prim.Subkeys,
    fetch_shard: ShardFetcher,
    parallelism: int,
) -> Iterator[bytes]:
    cipher = prim.new_shard_cipher(subkeys.encryption_key)
    count = manifest.shard_count
    context = manifest.context

    def open_one(index: int) -> bytes:
        ciphertext = fetch_shard(index)
        if ciphertext is None:
            raise _ShardFailure()
        # The GCM tag under the committed key, with the shard's position in the AAD, is
        # what authenticates a shard; re-hashing it here would cost a second pass over
        # the data and reject nothing GCM accepts (the digests serve keyless checks).
        if len(ciphertext) != manifest.shards[index].size:
            raise _ShardFailure()
        aad = prim.shard_associated_data(
            record_id=context.record_id,
            version=context.version,
            index=index,
            shard_count=count,
            shard_size=manifest.shard_size,
            total_length=manifest.total_length,
        )
        try:
            return prim.open_shard(cipher, index, ciphertext, aad)
        except InvalidTag:
            raise _ShardFailure() from None

    def generate() -> Iterator[bytes]:
        released = 0
        try:
            shards = ((i,) for i in range(count))
            for _, plaintext in _ordered_map(open_one, shards, min(parallelism, count)):
                released += len(plaintext)
                yield plaintext
        except _ShardFailure:
            raise InvalidRecord() from None
        if released != manifest.total_length:
            raise InvalidRecord() from None

    return generate()


__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT_VERSION",
    "Manifest",
    "RecordContext",
    "SealedShard",
    "SealingStream",
    "ShardEntry",
    "ShardFetcher",
    "ShardedEnvelope",
]
