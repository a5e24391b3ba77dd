"""The sealed-record format: sharded envelope encryption of one record version.

A record version is sealed under a fresh KMS data key bound to its encryption context
(record id, patient id, version, institution), split into fixed-size shards sealed with
AES-256-GCM, and described by a manifest that commits to the key and is MAC-protected.
New records are sealed in format 2, specified byte by byte in the docstring of
:class:`ShardedEnvelope`; format 1 records (``ManifestV1``) still open.

Guarantees:
- Callers never handle nonces or subkeys; a data key seals exactly one record version.
- Opening checks, before fetching or decrypting any shard: the manifest's schema, that it
  is for the expected record context, the data-key unwrap under that context, the key
  commitment (constant time) and the manifest MAC. Each shard is then checked against
  its manifest size (and, in v2, its committed tag) and its AES-GCM tag before any of its
  bytes is released. Record length, shard count, sizes and order come only from the
  authenticated manifest.
- Every integrity or decryption failure is the one opaque ``InvalidRecord``.
- Seal and open stream: peak memory is about (2 x parallelism + 1) x shard size,
  independent of the record's length.
- ``RecordSealer`` seals a format 2 record one shard at a time, in any order, for a client
  that puts each shard to storage as it is sealed and may resume: it draws every nonce
  itself, and builds the manifest from the shards' seals alone.
- ``ShardedEnvelope.verify_manifest`` runs the checks of opening that need no shard and
  hands back the authenticated manifest with its data key (to be wrapped for a client).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag

from app.crypto import _primitives as prim
from app.crypto.context import MAX_RECORD_VERSION, RecordContext, is_int
from app.crypto.digest import ContentDigestKey
from app.crypto.errors import InvalidRecord, LengthMismatch, SealNotFinished
from app.crypto.kms import DataKeyProvider
from app.crypto.manifest import (
    FORMAT_V1,
    FORMAT_V2,
    MAX_ENCRYPTED_DATA_KEY_BYTES,
    MAX_SHARD_SIZE,
    MIN_SHARD_SIZE,
    Manifest,
    ManifestV1,
    ManifestV2,
    ShardEntry,
    ShardSeal,
    plaintext_size,
    shard_count_for,
)

DEFAULT_SHARD_SIZE = 1 << 20
MAX_PARALLELISM = 32
_NONCE_BATCH = 1024  # nonces drawn per call to the random source (12 KiB)
FORMAT_VERSION = FORMAT_V2
"""The format new seals use."""

ShardFetcher = Callable[[int], "bytes | None"]
"""Returns shard ``index``'s ciphertext, or ``None`` when the shard does not exist.

Transport errors it raises propagate unchanged, so the storage layer can retry them;
a missing shard (``None``) is an integrity failure of the record. With parallelism > 1
it is called from several threads at once (a boto3 client is safe to share).
"""

Source = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class SealedShard:
    """One sealed shard, to be stored under an opaque object key."""

    index: int
    ciphertext: bytes


def repr_digest_sha256(sha256: bytes) -> str:
    """An RFC 9530 ``Repr-Digest`` field value for a SHA-256 digest: ``sha-256=:<b64>:``."""
    if len(sha256) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    return f"sha-256=:{base64.b64encode(sha256).decode('ascii')}:"


@dataclass(frozen=True, repr=False)
class OpenedRecord:
    """A whole record version, every shard verified, with the SHA-256 of its plaintext.

    ``repr`` shows neither content nor digest (both are patient data for logs).
    """

    plaintext: bytes
    sha256: bytes

    @property
    def repr_digest(self) -> str:
        """The ``Repr-Digest`` header value of the plaintext (RFC 9530, ``sha-256``)."""
        return repr_digest_sha256(self.sha256)


class ShardedEnvelope:
    """Seals record versions in format ``hub-sealed-record/2``; opens formats 1 and 2.

    Notation: ``||`` concatenates bytes; ``u64(x)`` is ``x`` as 8 bytes big-endian;
    ``LP(b)`` is ``len(b)`` as 4 bytes big-endian followed by ``b``; ``F`` is the 19 ASCII
    bytes ``hub-sealed-record/2``. Identifiers are ASCII tokens (``RecordContext``). The
    only primitives are AES-256-GCM (96-bit nonce, 128-bit tag), HKDF-SHA256 and
    HMAC-SHA256, all three in WebCrypto.

    Context: ``ctx`` is the KMS encryption context ``{record_id, patient_id, version
    (decimal string), institution}``; its encoding is
    ``CTX = LP(record_id) || LP(patient_id) || u64(version) || LP(institution)``.

    Key schedule (one per record version):
      1. KMS ``GenerateDataKey`` under ``ctx`` gives a 32-byte data key ``K`` and its
         wrapped form ``EDK`` (opaque, at most 6144 bytes).
      2. ``salt`` = 32 random bytes.
      3. For each label: ``HKDF-SHA256(ikm = K, salt = salt, info = LP(F) || LP(label) ||
         CTX, L = 32)``; label ``shard-encryption-key`` gives ``Ke``, ``key-commitment``
         gives the commitment ``C`` (stored), ``manifest-mac-key`` gives ``Km``.

    Layout: ``T`` = total length (0..2**53-1, so a JavaScript Number holds it exactly),
    ``S`` = shard size (16 B..64 MiB), ``n`` = max(1, ceil(T / S)). Plaintext shard
    ``P_i`` is bytes ``[i*S, min((i+1)*S, T))``: ``S`` bytes except the last; an empty
    record has one empty shard.

    Shard ``i`` (each sealable on its own, in any order, in parallel; the sealer needs
    only ``Ke``, ``ctx``, ``i``, ``n``, ``S`` and ``T``):
      ``N_i`` = 12 fresh random bytes (not derived from ``i``, so a resumed upload that
      seals a shard again can never repeat a nonce under ``Ke``);
      ``AAD_i = LP(F) || CTX || u64(i) || u64(n) || u64(S) || u64(T)``;
      ``O_i = AES-256-GCM-Encrypt(Ke, N_i, P_i, AAD_i)`` = ciphertext (``|P_i|`` bytes)
      || ``tag_i`` (16 bytes), exactly WebCrypto's output. ``O_i`` is the stored shard
      object, ``|P_i| + 16`` bytes; its nonce lives in the manifest.

    Manifest (computable once every shard's ``(N_i, tag_i)`` is known, from those alone):
      ``AMB = LP(F) || CTX || LP(EDK) || salt || u64(S) || u64(T) || u64(n) ||
      N_0 || tag_0 || ... || N_(n-1) || tag_(n-1) || C`` (``n`` x 28 bytes of seals) and
      ``mac = HMAC-SHA256(Km, AMB)``. The stored form is canonical JSON (keys sorted, no
      whitespace, ASCII; base64 is RFC 4648 standard with padding) of exactly::

        {"commitment": b64(C), "encrypted_data_key": b64(EDK),
         "encryption_context": {"institution", "patient_id", "record_id", "version"},
         "format": "hub-sealed-record/2", "key_salt": b64(salt), "mac": b64(mac),
         "shard_size": S, "shards": [{"nonce": b64(N_i), "tag": b64(tag_i)}, ...],
         "total_length": T}

      Readers dispatch on ``format``; ``hub-sealed-record/1`` is ``ManifestV1``.

    Open (each failure is the one opaque ``InvalidRecord``; nothing is fetched or
    decrypted before steps 1-5 pass):
      1. strict parse: exact fields and types, canonical JSON and base64, one shard entry
         per shard of the layout ``(S, T)``;
      2. the manifest's ``ctx`` equals the one the caller expects (from its own state);
      3. unwrap ``K`` under ``ctx`` (KMS refuses any other context); derive the subkeys;
      4. ``C`` matches, in constant time (key commitment: the manifest fixes one key);
      5. ``mac`` matches ``AMB``, in constant time: ``T``, ``S``, ``n``, the order and every
         ``N_i`` and ``tag_i`` are now authentic;
      6. per shard in index order: fetch ``O_i``; ``|O_i| = |P_i| + 16`` from ``(S, T,
         i)``; its last 16 bytes equal ``tag_i``; AES-GCM decrypt with ``N_i`` and
         ``AAD_i`` (tag checked before any byte is returned); release ``P_i``;
      7. after shard ``n-1``: the released bytes number exactly ``T``.
    Lengths, count and order come only from the authenticated manifest, never from a
    length stored elsewhere (a table column, ``Content-Length``, object sizes). A
    truncated, extended or reordered shard list fails at step 1, 5 or 6, and never
    yields a shorter record that looks complete.

    What the tags do not do: the manifest commits to each shard through its GCM tag,
    which authenticates the content against anyone without ``K``. GHASH is not collision
    resistant for whoever knows ``K`` (the sealer, and every reader given the key): such
    a party can make a different shard with the same tag, which then opens. Format 1's
    reader accepted that too (it also relied on the tag); only its per-shard SHA-256 let
    a keyless audit notice. A substitution also needs write access to the shard bucket
    and to the table row that pins each shard's S3 version id. Shown by
    tests/app/crypto/test_sealed_record_tag_limits.py; see docs/records.md.

    Not in the format, by decision (docs/records.md "Sealed-record format v2"): transport
    checksums (S3 checks CRC64NVME per shard object) and a plaintext digest (the opener
    computes ``Repr-Digest``; ``open_verified``).

    Args:
        provider: where data keys come from (KMS, or in-memory for tests).
        shard_size: plaintext bytes per shard when sealing (opening uses the manifest's).
        parallelism: worker threads for seal/open; 1 runs inline. At most
            ``2 x parallelism`` shards are in flight.
        random_bytes: the source of salts and nonces (injectable for test vectors), read
            as one stream from the calling thread: the 32-byte salt, then (v2) 12 bytes
            per shard in index order, drawn up to 1024 nonces per call.
        format_version: 2 (default). 1 seals the legacy format, kept only so tests and
            benchmarks can compare the two; production code never passes it.

    Raises:
        ValueError: on an invalid ``shard_size``, ``parallelism`` or ``format_version``.
    """

    def __init__(
        self,
        provider: DataKeyProvider,
        *,
        shard_size: int = DEFAULT_SHARD_SIZE,
        parallelism: int = 1,
        random_bytes: Callable[[int], bytes] = os.urandom,
        format_version: int = 2,
    ) -> None:
        if not is_int(shard_size) or not MIN_SHARD_SIZE <= shard_size <= MAX_SHARD_SIZE:
            raise ValueError(
                f"shard_size must be an integer in {MIN_SHARD_SIZE}..{MAX_SHARD_SIZE} bytes"
            )
        if not is_int(parallelism) or not 1 <= parallelism <= MAX_PARALLELISM:
            raise ValueError(f"parallelism must be an integer in 1..{MAX_PARALLELISM}")
        if format_version not in (1, 2) or not is_int(format_version):
            raise ValueError("format_version must be 1 or 2")
        if not (
            callable(getattr(provider, "generate_data_key", None))
            and callable(getattr(provider, "decrypt_data_key", None))
        ):
            raise TypeError("provider must implement DataKeyProvider")
        self._provider = provider
        self._shard_size = shard_size
        self._parallelism = parallelism
        self._random_bytes = random_bytes
        self._format_version = format_version
        self._buffers = _BufferPool(2 * parallelism + 1)

    @property
    def shard_size(self) -> int:
        return self._shard_size

    @property
    def format_version(self) -> int:
        return self._format_version

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
        limit = prim.MAX_V2_TOTAL_LENGTH if self._format_version == 2 else 2**63 - 1
        if not is_int(length) or not 0 <= length <= limit:
            raise ValueError(f"length must be an integer in 0..{limit}")
        if shard_count_for(length, self._shard_size) > prim.MAX_SHARDS:
            raise ValueError("record too large for the shard size")
        encryption_context = context.encryption_context()
        data_key, encrypted_key = self._provider.generate_data_key(encryption_context)
        salt = self._random_bytes(prim.SALT_BYTES)
        return SealingStream(
            context=context,
            encrypted_data_key=bytes(encrypted_key),
            salt=salt,
            subkeys=_derive(self._format_version, bytes(data_key), salt, context),
            digest_key=ContentDigestKey(bytes(data_key), salt, context),
            shard_size=self._shard_size,
            length=length,
            source=source,
            parallelism=self._parallelism,
            format_version=self._format_version,
            random_bytes=self._random_bytes,
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
    ) -> OpeningStream:
        """Verify the manifest now, then return a stream of verified plaintext chunks.

        Everything checkable without shards (schema, context, key unwrap, commitment,
        MAC) is checked before this returns, so a bad manifest raises here and no shard
        is fetched. The stream then yields each shard's plaintext only after that shard
        is verified, and raises ``InvalidRecord`` at the first bad or missing shard. Its
        ``total_length`` is the record's length from the authenticated manifest: the one
        to announce (``Content-Length``), never a length stored elsewhere.

        Callers must not act on streamed plaintext (store it, show it as complete, hand
        it on as a record) until the stream finishes without error: a later shard can
        still fail. ``open_all`` and ``open_verified`` return only once every shard has
        verified.

        Raises:
            InvalidRecord: any integrity or decryption failure (opaque).
            KeyServiceUnavailable: the key service could not be reached (retryable).
        """
        manifest, _, subkeys = self._authenticate(manifest, context)
        return OpeningStream(
            manifest, _open_shards(manifest, subkeys, fetch_shard, self._parallelism)
        )

    def open_views(
        self,
        manifest: Manifest | bytes,
        fetch_shard: ShardFetcher,
        context: RecordContext,
    ) -> OpeningViews:
        """As ``open``, but each shard is decrypted into a buffer this stream reuses, and
        yielded as a ``memoryview`` of it: no new buffer per shard (the allocation, and
        the page faults of fresh memory, cost about a fifth of AES-GCM itself at 1 MiB).
        For a caller that writes each chunk out (a file, a digest, a socket) at once.

        A view is valid only until the next one is asked for: the stream then releases it
        (using it raises ``ValueError``) and reuses its buffer for a later shard only if
        nothing refers to that buffer any more: a slice of the view, or an object made on
        it (a NumPy array, a ctypes array), keeps its buffer out of reuse, so it is never
        overwritten under the caller. A caller that keeps a chunk should still copy it
        (``bytes(view)``): holding views holds one shard-sized buffer each. The checks
        are exactly ``open``'s, and a shard that fails its tag leaves its buffer zeroed:
        no unverified byte is ever readable through a view. At most ``2 x parallelism +
        1`` buffers of the manifest's shard size exist at once per open; the envelope
        keeps that many for its next open (fresh memory costs page faults on every open
        otherwise, as much as decrypting 2 MiB), so they hold the last shards opened
        until then, as freed memory would; ``discard_buffers`` zeroes and drops them.

        Raises:
            InvalidRecord: any integrity or decryption failure (opaque).
            KeyServiceUnavailable: the key service could not be reached (retryable).
        """
        manifest, _, subkeys = self._authenticate(manifest, context)
        return OpeningViews(
            manifest,
            _open_shard_views(manifest, subkeys, fetch_shard, self._parallelism, self._buffers),
        )

    def discard_buffers(self) -> None:
        """Zero and drop the buffers ``open_views`` keeps between opens."""
        self._buffers.discard()

    def verify_manifest(
        self, manifest: Manifest | bytes, context: RecordContext
    ) -> VerifiedManifest:
        """Steps 1-5 of opening (no shard is fetched): parse, expected context, key unwrap,
        commitment, MAC. Returns the authenticated manifest and its data key, for the
        service to hand the key to a client that opens the shards itself (wrapped for
        that client: ``app.crypto.handover``), or to check a manifest a client committed.

        Raises:
            InvalidRecord: any integrity failure (opaque).
            KeyServiceUnavailable: the key service could not be reached (retryable).
        """
        manifest, data_key, _ = self._authenticate(manifest, context)
        return VerifiedManifest(manifest, data_key)

    def _authenticate(
        self, manifest: Manifest | bytes, context: RecordContext
    ) -> tuple[ManifestV1 | ManifestV2, bytes, prim.Subkeys]:
        if isinstance(manifest, bytes):
            expected = context if isinstance(context, RecordContext) else None
            manifest = Manifest.from_bytes(manifest, expected)
        if not isinstance(manifest, ManifestV1 | ManifestV2) or not isinstance(
            context, RecordContext
        ):
            raise TypeError("open takes a Manifest (or its bytes) and a RecordContext")
        if manifest.context != context:
            raise InvalidRecord() from None
        data_key = bytes(
            self._provider.decrypt_data_key(
                manifest.encrypted_data_key, context.encryption_context()
            )
        )
        try:
            if isinstance(manifest, ManifestV2):
                # The manifest's context is the caller's (checked above), encoded once.
                subkeys = prim.derive_subkeys_v2(
                    data_key, manifest.key_salt, manifest.context_encoding()
                )
            else:
                subkeys = _derive(1, data_key, manifest.key_salt, context)
        except ValueError:
            raise InvalidRecord() from None
        if not prim.equal_secret(subkeys.commitment, manifest.commitment):
            raise InvalidRecord() from None
        expected_mac = prim.manifest_mac(subkeys.mac_key, manifest.authenticated_bytes())
        if not prim.equal_secret(expected_mac, manifest.mac):
            raise InvalidRecord() from None
        return manifest, data_key, subkeys

    def open_all(
        self,
        manifest: Manifest | bytes,
        fetch_shard: ShardFetcher,
        context: RecordContext,
    ) -> bytes:
        """Open a whole record into memory; returns only once every shard has verified."""
        return b"".join(list(self.open(manifest, fetch_shard, context)))

    def open_verified(
        self,
        manifest: Manifest | bytes,
        fetch_shard: ShardFetcher,
        context: RecordContext,
    ) -> OpenedRecord:
        """Open a whole record into memory with the SHA-256 of its plaintext.

        For responses that carry a ``Repr-Digest`` (records served by the service within
        the API caps): the digest costs one SHA-256 pass over the plaintext, which the
        format itself no longer pays (see the class docstring).
        """
        digest = hashlib.sha256()
        parts: list[bytes] = []
        for chunk in self.open(manifest, fetch_shard, context):
            digest.update(chunk)
            parts.append(chunk)
        return OpenedRecord(plaintext=b"".join(parts), sha256=digest.digest())


@dataclass(frozen=True, repr=False)
class VerifiedManifest:
    """A manifest that passed every check opening makes before fetching a shard, with the
    data key it was authenticated under. ``repr`` shows neither (the key is a secret, and
    the manifest belongs to a patient's record)."""

    manifest: ManifestV1 | ManifestV2
    data_key: bytes

    @property
    def total_length(self) -> int:
        """The record's plaintext length, from the authenticated manifest."""
        return self.manifest.total_length


def _derive(version: int, data_key: bytes, salt: bytes, context: RecordContext) -> prim.Subkeys:
    if version == 2:
        return prim.derive_subkeys_v2(data_key, salt, _context_encoding(context))
    return prim.derive_subkeys(data_key, salt, context.encryption_context())


def _context_encoding(context: RecordContext) -> bytes:
    return prim.context_encoding_v2(
        context.record_id, context.patient_id, context.version, context.institution
    )


class _Opening:
    """What both opening streams share: the authenticated manifest and ``close()``."""

    def __init__(self, manifest: ManifestV1 | ManifestV2, chunks: Generator[Any, None, None]):
        self._manifest = manifest
        self._chunks = chunks

    @property
    def manifest(self) -> ManifestV1 | ManifestV2:
        return self._manifest

    @property
    def total_length(self) -> int:
        """The record's plaintext length, from the authenticated manifest."""
        return self._manifest.total_length

    def close(self) -> None:
        self._chunks.close()


class OpeningStream(_Opening, Iterator[bytes]):
    """The verified plaintext chunks of one record version, one per shard, in order.

    Returned by ``ShardedEnvelope.open`` once the manifest has been authenticated.
    ``manifest`` and ``total_length`` are authentic; the chunks are not a record until
    the stream ends without ``InvalidRecord``. ``close()`` abandons it (cancels fetches).
    """

    def __iter__(self) -> OpeningStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)  # type: ignore[no-any-return]


class OpeningViews(_Opening, Iterator[memoryview]):
    """As ``OpeningStream``, each chunk a view valid until the next is asked for
    (``ShardedEnvelope.open_views``)."""

    def __iter__(self) -> OpeningViews:
        return self

    def __next__(self) -> memoryview:
        return next(self._chunks)


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
        digest_key: ContentDigestKey,
        shard_size: int,
        length: int,
        source: Source,
        parallelism: int,
        format_version: int,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self._digest_key: ContentDigestKey | None = digest_key
        self._context = context
        self._encrypted_data_key = encrypted_data_key
        self._salt = salt
        self._subkeys: prim.Subkeys | None = subkeys
        self._shard_size = shard_size
        self._length = length
        self._source = source
        self._parallelism = parallelism
        self._format_version = format_version
        self._random_bytes = random_bytes
        self._started = False
        self._manifest: ManifestV1 | ManifestV2 | None = None

    @property
    def manifest(self) -> ManifestV1 | ManifestV2:
        if self._manifest is None:
            raise SealNotFinished()
        return self._manifest

    def seal_content_digest(self, sha256: bytes) -> bytes:
        """The sealed content digest box (``app.crypto.digest``) of this record version,
        for the SHA-256 of the plaintext the caller computed while sealing. Once only."""
        if self._digest_key is None:
            raise RuntimeError("the content digest is sealed once")
        box = self._digest_key.seal(self.manifest, sha256, random_bytes=self._random_bytes)
        self._digest_key = None
        return box

    def __iter__(self) -> Iterator[SealedShard]:
        if self._started:
            raise RuntimeError("a SealingStream can be iterated only once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[SealedShard]:
        subkeys = self._subkeys
        assert subkeys is not None
        count = shard_count_for(self._length, self._shard_size)
        seal_one = (
            self._shard_sealer_v2(subkeys, count)
            if self._format_version == 2
            else self._shard_sealer_v1(subkeys, count)
        )
        entries: list[Any] = []
        pieces = self._checked_pieces(count)
        if min(self._parallelism, count) == 1:
            # One thread: inline, without _ordered_map's generator layer.
            for index, nonce, piece in pieces:
                ciphertext, entry = seal_one(index, nonce, piece)
                entries.append(entry)
                yield SealedShard(index, ciphertext)
        else:
            for index, (ciphertext, entry) in _ordered_map(
                seal_one, pieces, min(self._parallelism, count)
            ):
                entries.append(entry)
                yield SealedShard(index, ciphertext)
        self._manifest = self._build_manifest(subkeys, entries)
        # Best effort: Python cannot wipe memory, but the subkeys need not outlive the seal.
        self._subkeys = None

    def _checked_pieces(self, count: int) -> Iterator[tuple[int, bytes, bytes | memoryview]]:
        """``(index, nonce, plaintext)`` per shard; nonces drawn here, in index order."""
        nonces = self._nonces(count)
        shard_size, last = self._shard_size, count - 1
        last_size = plaintext_size(last, self._length, shard_size, count)
        index = -1
        for index, piece in enumerate(_pieces(self._source, shard_size)):
            expected = shard_size if index < last else last_size if index == last else -1
            if len(piece) != expected:
                raise LengthMismatch()
            yield index, next(nonces), piece
        if self._length == 0 and index == -1:
            yield 0, next(nonces), b""
        elif index != count - 1:
            raise LengthMismatch()

    def _nonces(self, count: int) -> Iterator[bytes]:
        """v2: 12 random bytes per shard, in index order, drawn up to ``_NONCE_BATCH``
        at a time (one small read per shard costs more than it should after AES-GCM
        has run: about 6 us each, 10% of sealing a 1 MiB shard). v1: unused."""
        if self._format_version == 1:
            while True:
                yield b""
        drawn = 0
        while drawn < count:
            batch = min(count - drawn, _NONCE_BATCH)
            block = self._random_bytes(prim.NONCE_BYTES * batch)
            if not isinstance(block, bytes) or len(block) != prim.NONCE_BYTES * batch:
                raise ValueError("random_bytes must return the number of bytes asked for")
            for offset in range(0, len(block), prim.NONCE_BYTES):
                yield block[offset : offset + prim.NONCE_BYTES]
            drawn += batch

    def _shard_sealer_v2(
        self, subkeys: prim.Subkeys, count: int
    ) -> Callable[[int, bytes, bytes | memoryview], tuple[bytes, ShardSeal]]:
        cipher = prim.new_shard_cipher(subkeys.encryption_key)
        aad_of = prim.shard_associated_data_v2_for(
            context_encoding=_context_encoding(self._context),
            shard_count=count,
            shard_size=self._shard_size,
            total_length=self._length,
        )

        def seal_one(
            index: int, nonce: bytes, plaintext: bytes | memoryview
        ) -> tuple[bytes, ShardSeal]:
            aad = aad_of(index)
            ciphertext = prim.seal_shard(cipher, nonce, plaintext, aad)
            return ciphertext, ShardSeal(nonce=nonce, tag=ciphertext[-prim.TAG_BYTES :])

        return seal_one

    def _shard_sealer_v1(
        self, subkeys: prim.Subkeys, count: int
    ) -> Callable[[int, bytes, bytes | memoryview], tuple[bytes, ShardEntry]]:
        cipher = prim.new_shard_cipher(subkeys.encryption_key)
        record_id, version = self._context.record_id, self._context.version

        def seal_one(
            index: int, _nonce: bytes, plaintext: bytes | memoryview
        ) -> tuple[bytes, ShardEntry]:
            aad = prim.shard_associated_data(
                record_id=record_id,
                version=version,
                index=index,
                shard_count=count,
                shard_size=self._shard_size,
                total_length=self._length,
            )
            ciphertext = prim.seal_shard(cipher, prim.shard_nonce(index), plaintext, aad)
            return ciphertext, ShardEntry(size=len(ciphertext), sha256=prim.sha256(ciphertext))

        return seal_one

    def _build_manifest(self, subkeys: prim.Subkeys, entries: list[Any]) -> ManifestV1 | ManifestV2:
        common: dict[str, Any] = {
            "context": self._context,
            "encrypted_data_key": self._encrypted_data_key,
            "key_salt": self._salt,
            "shard_size": self._shard_size,
            "total_length": self._length,
            "commitment": subkeys.commitment,
        }
        if self._format_version == 2:
            seals = tuple(entries)
            authenticated = prim.manifest_authenticated_bytes_v2(
                context_encoding=_context_encoding(self._context),
                encrypted_data_key=self._encrypted_data_key,
                key_salt=self._salt,
                shard_size=self._shard_size,
                total_length=self._length,
                seals=[(s.nonce, s.tag) for s in seals],
                commitment=subkeys.commitment,
            )
            mac = prim.manifest_mac(subkeys.mac_key, authenticated)
            return ManifestV2(**common, shards=seals, mac=mac)
        unsigned = ManifestV1(**common, shards=tuple(entries), mac=bytes(prim.MAC_BYTES))
        mac = prim.manifest_mac(subkeys.mac_key, unsigned.authenticated_bytes())
        return ManifestV1(**common, shards=tuple(entries), mac=mac)


@dataclass(frozen=True, slots=True)
class SealedShardV2:
    """One shard sealed by ``RecordSealer``: the object to store and its manifest entry."""

    index: int
    ciphertext: bytes
    seal: ShardSeal


class RecordSealer:
    """Seals one format 2 record version shard by shard, in any order, then its manifest.

    For a client that seals on its own device and puts each shard to storage as soon as it
    is sealed: the service hands it the data key ``K`` and its wrapped form ``EDK`` (from
    KMS ``GenerateDataKey`` under the record's context), and the client keeps only the
    salt and each stored shard's ``ShardSeal`` to resume later (``salt=``): a shard sealed
    again gets a fresh random nonce, so a resumed upload never repeats a nonce under
    ``Ke`` even if the source changed. The byte layout is ``ShardedEnvelope``'s.

    Callers never pass nonces. ``seal_shard`` is safe to call from several threads.

    Args:
        context: the record version's context (as the service issued it).
        data_key: ``K``, 32 bytes. It never leaves this object except as subkeys.
        encrypted_data_key: ``EDK``, stored in the manifest.
        length: the record's plaintext length ``T`` (0..2**53-1).
        shard_size: ``S`` (16 B..64 MiB).
        salt: the 32-byte key salt of an upload being resumed; None draws a fresh one.
        random_bytes: the source of the salt and nonces (injectable for tests).

    Raises:
        ValueError: an argument outside its range (nothing about content).
    """

    def __init__(
        self,
        context: RecordContext,
        data_key: bytes,
        encrypted_data_key: bytes,
        *,
        length: int,
        shard_size: int,
        salt: bytes | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not isinstance(context, RecordContext):
            raise TypeError("context must be a RecordContext")
        if not isinstance(data_key, bytes) or len(data_key) != prim.DATA_KEY_BYTES:
            raise ValueError("data_key must be 32 bytes")
        if (
            not isinstance(encrypted_data_key, bytes)
            or not 0 < len(encrypted_data_key) <= MAX_ENCRYPTED_DATA_KEY_BYTES
        ):
            raise ValueError("encrypted_data_key must be 1..6144 bytes")
        if not is_int(shard_size) or not MIN_SHARD_SIZE <= shard_size <= MAX_SHARD_SIZE:
            raise ValueError(
                f"shard_size must be an integer in {MIN_SHARD_SIZE}..{MAX_SHARD_SIZE} bytes"
            )
        if not is_int(length) or not 0 <= length <= prim.MAX_V2_TOTAL_LENGTH:
            raise ValueError(f"length must be an integer in 0..{prim.MAX_V2_TOTAL_LENGTH}")
        count = shard_count_for(length, shard_size)
        if count > prim.MAX_SHARDS:
            raise ValueError("record too large for the shard size")
        salt = random_bytes(prim.SALT_BYTES) if salt is None else salt
        if not isinstance(salt, bytes) or len(salt) != prim.SALT_BYTES:
            raise ValueError("salt must be 32 bytes")
        self._context = context
        self._encrypted_data_key = encrypted_data_key
        self._salt = salt
        self._length = length
        self._shard_size = shard_size
        self._count = count
        self._random_bytes = random_bytes
        self._subkeys = prim.derive_subkeys_v2(data_key, salt, _context_encoding(context))
        self._cipher = prim.new_shard_cipher(self._subkeys.encryption_key)
        self._aad_of = prim.shard_associated_data_v2_for(
            context_encoding=_context_encoding(context),
            shard_count=count,
            shard_size=shard_size,
            total_length=length,
        )

    @property
    def salt(self) -> bytes:
        """The key salt: public, kept by a client that may resume."""
        return self._salt

    @property
    def shard_count(self) -> int:
        return self._count

    def plaintext_size(self, index: int) -> int:
        """Plaintext bytes of shard ``index`` (``S`` except for the last)."""
        if not is_int(index) or not 0 <= index < self._count:
            raise ValueError("shard index out of range")
        return plaintext_size(index, self._length, self._shard_size, self._count)

    def ciphertext_size(self, index: int) -> int:
        """Stored bytes of shard ``index``: its plaintext plus the 16-byte tag."""
        return self.plaintext_size(index) + prim.TAG_BYTES

    def seal_shard(self, index: int, plaintext: bytes | memoryview) -> SealedShardV2:
        """Seal shard ``index`` under a fresh random nonce.

        Raises:
            LengthMismatch: ``plaintext`` is not exactly the shard's size in the layout.
        """
        if len(plaintext) != self.plaintext_size(index):
            raise LengthMismatch()
        nonce = self._random_bytes(prim.NONCE_BYTES)
        if not isinstance(nonce, bytes) or len(nonce) != prim.NONCE_BYTES:
            raise ValueError("random_bytes must return the number of bytes asked for")
        ciphertext = prim.seal_shard(self._cipher, nonce, plaintext, self._aad_of(index))
        return SealedShardV2(index, ciphertext, ShardSeal(nonce, ciphertext[-prim.TAG_BYTES :]))

    def seal_shard_into(
        self, index: int, plaintext: bytes | memoryview, out: memoryview
    ) -> ShardSeal:
        """As ``seal_shard``, writing the sealed shard into ``out`` (exactly
        ``ciphertext_size(index)`` bytes) instead of a new buffer; returns its seal.

        Raises:
            LengthMismatch: ``plaintext`` is not exactly the shard's size in the layout.
            ValueError: ``out`` is not exactly the sealed shard's size.
        """
        if len(plaintext) != self.plaintext_size(index):
            raise LengthMismatch()
        if len(out) != len(plaintext) + prim.TAG_BYTES:
            raise ValueError("out must be exactly the sealed shard's size")
        nonce = self._random_bytes(prim.NONCE_BYTES)
        if not isinstance(nonce, bytes) or len(nonce) != prim.NONCE_BYTES:
            raise ValueError("random_bytes must return the number of bytes asked for")
        self._cipher.encrypt_into(nonce, plaintext, self._aad_of(index), out)
        return ShardSeal(nonce, bytes(out[-prim.TAG_BYTES :]))

    def reseal_shard(self, index: int, plaintext: bytes | memoryview, seal: ShardSeal) -> bytes:
        """Shard ``index`` exactly as ``seal_shard`` sealed it before (its nonce again).

        For a client that does not keep sealed shards in memory while it waits for their
        upload URLs (which sign each shard's checksum): it seals once to learn the seal and
        checksum, drops the ciphertext, and seals again when the URL arrives. The result is
        released only if its tag equals ``seal.tag``, that is, for the same plaintext: a
        source that changed in between raises and nothing sealed under the reused nonce
        ever leaves this method, so no two released ciphertexts share a nonce.

        Raises:
            LengthMismatch: the plaintext is not this shard's size.
            InvalidRecord: it is not the plaintext ``seal`` was made for (opaque).
        """
        if len(plaintext) != self.plaintext_size(index):
            raise LengthMismatch()
        if not isinstance(seal, ShardSeal) or len(seal.nonce) != prim.NONCE_BYTES:
            raise InvalidRecord() from None
        ciphertext = prim.seal_shard(self._cipher, seal.nonce, plaintext, self._aad_of(index))
        if not prim.equal_secret(ciphertext[-prim.TAG_BYTES :], seal.tag):
            raise InvalidRecord() from None
        return ciphertext

    def reseal_shard_pieces(
        self, index: int, pieces: Iterable[bytes], seal: ShardSeal
    ) -> bytearray:
        """As ``reseal_shard``, from the plaintext in pieces, so that only the sealed shard is
        held whole (a client putting several shards at once needs half the memory). The
        buffer is returned only once its tag equals ``seal.tag``.

        Raises:
            LengthMismatch: the pieces are not this shard's size.
            InvalidRecord: not the plaintext ``seal`` was made for (opaque).
        """
        out = bytearray(self.ciphertext_size(index))
        self.reseal_shard_pieces_into(index, pieces, seal, out)
        return out

    def reseal_shard_pieces_into(
        self, index: int, pieces: Iterable[bytes | memoryview], seal: ShardSeal, out: bytearray
    ) -> memoryview:
        """As ``reseal_shard_pieces``, into the caller's buffer (at least the sealed shard's
        size; a client reuses one per worker, so no shard-sized buffer is allocated per
        put). Returns a view of the sealed shard in ``out``. If the tag differs, ``out``
        is zeroed before raising: nothing sealed under the reused nonce stays in it.

        Raises:
            LengthMismatch: the pieces are not this shard's size.
            InvalidRecord: not the plaintext ``seal`` was made for (opaque).
            ValueError: ``out`` is too small.
        """
        size = self.plaintext_size(index)
        if not isinstance(seal, ShardSeal) or len(seal.nonce) != prim.NONCE_BYTES:
            raise InvalidRecord() from None
        if len(out) < size + prim.TAG_BYTES:
            raise ValueError("out is smaller than the sealed shard")
        try:
            tag = prim.seal_shard_pieces_into(
                self._subkeys.encryption_key, seal.nonce, pieces, size, self._aad_of(index), out
            )
        except ValueError:
            out[:] = bytes(len(out))
            raise LengthMismatch() from None
        if not prim.equal_secret(tag, seal.tag):
            out[:] = bytes(len(out))
            raise InvalidRecord() from None
        out[size : size + prim.TAG_BYTES] = tag
        return memoryview(out)[: size + prim.TAG_BYTES]

    def manifest(self, seals: Sequence[ShardSeal]) -> ManifestV2:
        """The MAC-protected manifest, from every shard's seal in index order.

        Raises:
            ValueError: not exactly one well-formed seal per shard of the layout.
        """
        seals = tuple(seals)
        if len(seals) != self._count or not all(
            isinstance(seal, ShardSeal)
            and len(seal.nonce) == prim.NONCE_BYTES
            and len(seal.tag) == prim.TAG_BYTES
            for seal in seals
        ):
            raise ValueError("manifest needs one seal per shard, in index order")
        authenticated = prim.manifest_authenticated_bytes_v2(
            context_encoding=_context_encoding(self._context),
            encrypted_data_key=self._encrypted_data_key,
            key_salt=self._salt,
            shard_size=self._shard_size,
            total_length=self._length,
            seals=[(s.nonce, s.tag) for s in seals],
            commitment=self._subkeys.commitment,
        )
        return ManifestV2(
            context=self._context,
            encrypted_data_key=self._encrypted_data_key,
            key_salt=self._salt,
            shard_size=self._shard_size,
            total_length=self._length,
            shards=seals,
            commitment=self._subkeys.commitment,
            mac=prim.manifest_mac(self._subkeys.mac_key, authenticated),
        )


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

    A thread pool runs up to ``2 x parallelism`` items at once (the AES-GCM and SHA-256
    calls release the GIL); items are pulled lazily, so memory stays bounded. Leaving
    early cancels whatever is still queued. For parallelism > 1 only: at one thread the
    callers run inline.
    """
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


def _shard_checker(
    manifest: ManifestV1 | ManifestV2, fetch_shard: ShardFetcher
) -> Callable[[int], tuple[bytes, bytes, bytes]]:
    """``check(index)``: fetch shard ``index`` and run every check made before decrypting
    it (size from the manifest, and in v2 the committed tag); returns ``(ciphertext,
    nonce, associated data)``, or raises ``_ShardFailure``."""
    count = manifest.shard_count
    context = manifest.context

    if isinstance(manifest, ManifestV2):
        aad_of = prim.shard_associated_data_v2_for(
            context_encoding=manifest.context_encoding(),
            shard_count=count,
            shard_size=manifest.shard_size,
            total_length=manifest.total_length,
        )
        seals = manifest.shards
        ciphertext_size = manifest.ciphertext_size

        def check_v2(index: int) -> tuple[bytes, bytes, bytes]:
            # One function per shard (this runs once per shard, at every open).
            ciphertext = fetch_shard(index)
            if ciphertext is None or len(ciphertext) != ciphertext_size(index):
                raise _ShardFailure()
            seal = seals[index]
            # The committed tag is checked first: a misplaced or replaced shard is refused
            # without a decryption, and the GCM check then binds the content.
            if not prim.equal_secret(ciphertext[-prim.TAG_BYTES :], seal.tag):
                raise _ShardFailure()
            return ciphertext, seal.nonce, aad_of(index)

        return check_v2

    else:

        def nonce_and_aad(index: int, ciphertext: bytes) -> tuple[bytes, bytes]:
            # v1: the GCM tag under the committed key, with the shard's position in the
            # AAD, authenticates a shard; re-hashing it here would cost a second pass and
            # reject nothing GCM accepts (the digests serve keyless checks).
            aad = prim.shard_associated_data(
                record_id=context.record_id,
                version=context.version,
                index=index,
                shard_count=count,
                shard_size=manifest.shard_size,
                total_length=manifest.total_length,
            )
            return prim.shard_nonce(index), aad

    def check(index: int) -> tuple[bytes, bytes, bytes]:
        ciphertext = fetch_shard(index)
        if ciphertext is None or len(ciphertext) != manifest.ciphertext_size(index):
            raise _ShardFailure()
        nonce, aad = nonce_and_aad(index, ciphertext)
        return ciphertext, nonce, aad

    return check


def _open_shards(
    manifest: ManifestV1 | ManifestV2,
    subkeys: prim.Subkeys,
    fetch_shard: ShardFetcher,
    parallelism: int,
) -> Generator[bytes, None, None]:
    cipher = prim.new_shard_cipher(subkeys.encryption_key)
    count = manifest.shard_count
    check = _shard_checker(manifest, fetch_shard)

    def open_one(index: int) -> bytes:
        ciphertext, nonce, aad = check(index)
        try:
            return prim.open_shard(cipher, nonce, ciphertext, aad)
        except InvalidTag:
            raise _ShardFailure() from None

    def generate() -> Generator[bytes, None, None]:
        released = 0
        try:
            if min(parallelism, count) == 1:
                # One thread: the same steps inline, without a pool or a generator layer.
                for index in range(count):
                    plaintext = open_one(index)
                    released += len(plaintext)
                    yield plaintext
            else:
                shards = ((i,) for i in range(count))
                for _, plaintext in _ordered_map(open_one, shards, min(parallelism, count)):
                    released += len(plaintext)
                    yield plaintext
        except _ShardFailure:
            raise InvalidRecord() from None
        if released != manifest.total_length:
            raise InvalidRecord() from None

    return generate()


class _BufferPool:
    """Shard buffers no view refers to any more, for the next shard (``open_views``).

    ``list.append`` and ``pop`` are atomic, so opens on several threads share it safely;
    a buffer is given back only once its view has been released and nothing else refers
    to it. Holds at most ``limit`` buffers, all of one size.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        while True:
            try:
                buffer = self._free.pop()
            except IndexError:
                break
            if len(buffer) == size:
                return buffer
        # One byte of spare capacity, so that ``_unexported`` never reallocates.
        buffer = bytearray(size + 1)
        del buffer[-1]
        return buffer

    def give_back(self, view: memoryview, buffer: bytearray) -> None:
        if _release(view, buffer) and len(self._free) < self._limit:
            self._free.append(buffer)

    def discard(self) -> None:
        while self._free:
            buffer = self._free.pop()
            buffer[:] = bytes(len(buffer))


def _release(view: memoryview, buffer: bytearray) -> bool:
    """Release a view handed to the caller; True when its buffer may then be overwritten."""
    try:
        view.release()
    except BufferError:
        return False  # something was made on the view itself: never overwrite it
    # Not while a slice of the view, or anything made on one, is left.
    return _unexported(buffer)


def _unexported(buffer: bytearray) -> bool:
    """True when no view or export of ``buffer`` is left: only then can it be reused.
    (A bytearray refuses to change size while anything refers to its memory.)"""
    try:
        buffer.append(0)
    except BufferError:
        return False
    del buffer[-1]
    return True


def _open_shard_views(
    manifest: ManifestV1 | ManifestV2,
    subkeys: prim.Subkeys,
    fetch_shard: ShardFetcher,
    parallelism: int,
    pool: _BufferPool,
) -> Generator[memoryview, None, None]:
    """``_open_shards`` decrypting into reused buffers (``ShardedEnvelope.open_views``)."""
    cipher = prim.new_shard_cipher(subkeys.encryption_key)
    count = manifest.shard_count
    check = _shard_checker(manifest, fetch_shard)
    shard_size = manifest.shard_size

    def open_one(index: int) -> tuple[bytearray, int]:
        ciphertext, nonce, aad = check(index)
        size = len(ciphertext) - prim.TAG_BYTES
        buffer = pool.take(shard_size)
        with memoryview(buffer) as whole:
            try:
                prim.open_shard_into(cipher, nonce, ciphertext, aad, whole[:size])
            except InvalidTag:
                raise _ShardFailure() from None  # open_shard_into zeroed what it wrote
        return buffer, size

    give_back = pool.give_back

    def generate() -> Generator[memoryview, None, None]:
        released = 0
        handed: tuple[memoryview, bytearray] | None = None
        try:
            if min(parallelism, count) == 1:
                # One thread, inline: the previous view is released (as the caller was
                # told) before the next shard is decrypted, and its buffer is reused at
                # once if nothing refers to it any more.
                current: bytearray | None = None
                for index in range(count):
                    ciphertext, nonce, aad = check(index)
                    if handed is not None:
                        reusable = _release(*handed)
                        handed = None
                        if not reusable:
                            current = None
                    if current is None:
                        current = pool.take(shard_size)
                    size = len(ciphertext) - prim.TAG_BYTES
                    view = memoryview(current)[:size]
                    handed = (view, current)
                    try:
                        prim.open_shard_into(cipher, nonce, ciphertext, aad, view)
                    except InvalidTag:
                        raise _ShardFailure() from None  # open_shard_into zeroed the view
                    released += size
                    yield view
            else:
                shards = ((i,) for i in range(count))
                for _, (buffer, size) in _ordered_map(open_one, shards, min(parallelism, count)):
                    if handed is not None:
                        give_back(*handed)
                    view = memoryview(buffer)[:size]
                    handed = (view, buffer)
                    released += size
                    yield view
        except _ShardFailure:
            raise InvalidRecord() from None
        finally:
            if handed is not None:
                give_back(*handed)
        if released != manifest.total_length:
            raise InvalidRecord() from None

    return generate()


__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT_V1",
    "FORMAT_V2",
    "FORMAT_VERSION",
    "MAX_ENCRYPTED_DATA_KEY_BYTES",
    "MAX_RECORD_VERSION",
    "Manifest",
    "ManifestV1",
    "ManifestV2",
    "OpenedRecord",
    "OpeningStream",
    "OpeningViews",
    "RecordContext",
    "RecordSealer",
    "SealedShard",
    "SealedShardV2",
    "SealingStream",
    "ShardEntry",
    "ShardFetcher",
    "ShardSeal",
    "ShardedEnvelope",
    "VerifiedManifest",
    "repr_digest_sha256",
    "shard_count_for",
]
