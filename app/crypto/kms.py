"""Data-key providers: where each record version's AES-256 data key comes from.

``DataKeyProvider`` is the protocol the sealed-record format depends on: it returns a fresh
256-bit data key with its wrapped (encrypted) form, and unwraps a wrapped key, both bound
to an encryption context. Two implementations:

- ``KmsDataKeyProvider`` calls AWS KMS ``GenerateDataKey``/``Decrypt`` through a boto3
  client that the caller passes in (never created at import time), on one key.
- ``InMemoryDataKeyProvider`` is for tests and benchmarks only: it wraps data keys with
  AES-256-GCM under versioned in-process wrapping keys, binds the context as associated
  data (as KMS does), and supports rotation: a new wrapping-key version wraps new keys and
  every older version still unwraps what it wrapped, like KMS automatic rotation.

Guarantees: a wrapped key unwraps only with the exact context it was generated with; any
integrity or authorization failure of an unwrap is the opaque ``InvalidRecord``; a key
service that is unreachable or throttling raises ``KeyServiceUnavailable`` (retryable).
"""

from __future__ import annotations

import hmac
import logging
import os
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.crypto._primitives import DATA_KEY_BYTES, canonical_json
from app.crypto.errors import InvalidRecord, KeyServiceUnavailable

# Logs carry the KMS operation and error code only: never contexts, ids or key material.
_log = logging.getLogger(__name__)


class DataKey(NamedTuple):
    """A data key in both forms: use ``plaintext`` once, store only ``encrypted``."""

    plaintext: bytes
    encrypted: bytes


@runtime_checkable
class DataKeyProvider(Protocol):
    """Source of per-record data keys (KMS ``GenerateDataKey`` / ``Decrypt``)."""

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """Return ``(plaintext_key, encrypted_key)``: a fresh 32-byte key, wrapped."""
        ...

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        """Unwrap ``encrypted_key``; raises ``InvalidRecord`` unless ``context`` matches."""
        ...


# KMS error codes meaning "this ciphertext will not open for this caller": an integrity
# verdict (opaque), as opposed to availability, which a retry may fix.
_KMS_INTEGRITY_CODES = frozenset(
    {
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "AccessDeniedException",
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
    }
)


class KmsDataKeyProvider:
    """AWS KMS data keys on one symmetric key, with the context on every call.

    Args:
        client: a boto3 KMS client (``boto3.client("kms")``), created by the caller.
        key_id: the records key's ARN or alias ARN; ``Decrypt`` pins it too, so a
            wrapped key from another KMS key is refused rather than silently accepted.
    """

    def __init__(self, client: Any, key_id: str) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise ValueError("key_id must be a non-empty KMS key id or ARN")
        self._client = client
        self._key_id = key_id

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        response = self._call(
            "GenerateDataKey",
            self._client.generate_data_key,
            KeyId=self._key_id,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        plaintext = bytes(response["Plaintext"])
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyServiceUnavailable("GenerateDataKey")
        return DataKey(plaintext, bytes(response["CiphertextBlob"]))

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        response = self._call(
            "Decrypt",
            self._client.decrypt,
            KeyId=self._key_id,
            CiphertextBlob=encrypted_key,
            EncryptionContext=dict(context),
        )
        plaintext = bytes(response["Plaintext"])
        if len(plaintext) != DATA_KEY_BYTES:
            raise InvalidRecord() from None
        return plaintext

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # Callers see one opaque error; operators still need to tell a tampered
            # record from a key policy or a disabled key, so the code is logged.
            _log.warning("KMS %s refused: %s", operation, code)
            if operation == "Decrypt" and code in _KMS_INTEGRITY_CODES:
                raise InvalidRecord() from None
            raise KeyServiceUnavailable(operation) from None
        except BotoCoreError as exc:
            _log.warning("KMS %s unreachable: %s", operation, type(exc).__name__)
            raise KeyServiceUnavailable(operation) from None


_WRAP_HEADER = struct.Struct(">4sI")  # magic, wrapping-key version
_WRAP_MAGIC = b"HUBk"
_WRAP_NONCE_BYTES = 12


class InMemoryDataKeyProvider:
    """In-process stand-in for KMS, for tests and benchmarks (keys live in memory).

    Wrapped key layout: ``b"HUBk" || uint32 version || 12-byte random nonce ||
    AES-256-GCM(wrapping key[version], data key, aad = canonical JSON of the context)``.

    ``rotate()`` adds a wrapping-key version used for every later ``generate_data_key``;
    older versions keep unwrapping. ``calls`` counts operations, for tests.
    """

    def __init__(self, *, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self._wrapping_keys: dict[int, bytes] = {}
        self.calls: dict[str, int] = {"generate_data_key": 0, "decrypt_data_key": 0}
        self.rotate()

    @property
    def current_version(self) -> int:
        return max(self._wrapping_keys)

    def rotate(self) -> int:
        """Start a new wrapping-key version; return its number."""
        with self._lock:
            version = len(self._wrapping_keys) + 1
            self._wrapping_keys[version] = self._random_bytes(32)
            return version

    def wrapping_key_version(self, encrypted_key: bytes) -> int:
        """Which wrapping-key version wrapped ``encrypted_key`` (for rotation tests)."""
        _, version = _WRAP_HEADER.unpack_from(encrypted_key)
        return int(version)

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        with self._lock:
            self.calls["generate_data_key"] += 1
            version = self.current_version
            wrapping_key = self._wrapping_keys[version]
        plaintext = self._random_bytes(DATA_KEY_BYTES)
        nonce = self._random_bytes(_WRAP_NONCE_BYTES)
        header = _WRAP_HEADER.pack(_WRAP_MAGIC, version)
        wrapped = AESGCM(wrapping_key).encrypt(nonce, plaintext, canonical_json(dict(context)))
        return DataKey(plaintext, header + nonce + wrapped)

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        with self._lock:
            self.calls["decrypt_data_key"] += 1
        header_len = _WRAP_HEADER.size
        if len(encrypted_key) != header_len + _WRAP_NONCE_BYTES + DATA_KEY_BYTES + 16:
            raise InvalidRecord() from None
        magic, version = _WRAP_HEADER.unpack_from(encrypted_key)
        wrapping_key = self._wrapping_keys.get(version)
        if magic != _WRAP_MAGIC or wrapping_key is None:
            raise InvalidRecord() from None
        nonce = encrypted_key[header_len : header_len + _WRAP_NONCE_BYTES]
        wrapped = encrypted_key[header_len + _WRAP_NONCE_BYTES :]
        try:
            return AESGCM(wrapping_key).decrypt(nonce, wrapped, canonical_json(dict(context)))
        except InvalidTag:
            raise InvalidRecord() from None


class HandedDataKey:
    """The data key of one record version, handed to a client by the service.

    A client that opens (or seals) records itself receives the version's data key wrapped
    for it (``app.crypto.handover``) next to the manifest; this provider gives
    ``ShardedEnvelope.open`` that key, and only for the wrapped key it came with, so the
    envelope's checks (expected context, key commitment, manifest MAC, every shard's tag)
    run exactly as they do on the service. It never generates keys: sealing on a client
    goes through ``RecordSealer`` with the key the service issued.
    """

    def __init__(self, data_key: bytes, encrypted_data_key: bytes) -> None:
        if not isinstance(data_key, bytes) or len(data_key) != DATA_KEY_BYTES:
            raise ValueError("data_key must be 32 bytes")
        self._data_key = data_key
        self._encrypted_data_key = bytes(encrypted_data_key)

    def __repr__(self) -> str:
        return "HandedDataKey(<secret>)"

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        raise TypeError("a handed data key opens one record version; it cannot make new keys")

    def decrypt_data_key(self, encrypted_key: bytes, context: Mapping[str, str]) -> bytes:
        # Another wrapped key (a manifest swapped in from another version) never opens.
        if not hmac.compare_digest(bytes(encrypted_key), self._encrypted_data_key):
            raise InvalidRecord() from None
        return self._data_key
