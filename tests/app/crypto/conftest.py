"""Fixtures for the sealed-record tests: in-memory KMS, a small-shard envelope, spies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from app.crypto import _primitives
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.kms import InMemoryDataKeyProvider

SMALL_SHARD = 64

CONTEXT = RecordContext(record_id="rec-0001", patient_id="pt-0001", version=2, institution="hosp-a")


@pytest.fixture
def provider() -> InMemoryDataKeyProvider:
    return InMemoryDataKeyProvider()


@pytest.fixture
def envelope(provider: InMemoryDataKeyProvider) -> ShardedEnvelope:
    return ShardedEnvelope(provider, shard_size=SMALL_SHARD)


@dataclass
class AesSpy:
    """Counts AES-GCM shard decryptions (the in-memory KMS unwrap is not counted)."""

    decrypt_calls: list[bytes] = field(default_factory=list)


@pytest.fixture
def aes_spy(monkeypatch: pytest.MonkeyPatch) -> AesSpy:
    spy = AesSpy()
    real = _primitives.AESGCM

    class SpyAESGCM:
        def __init__(self, key: bytes) -> None:
            self._inner = real(key)

        def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            return self._inner.encrypt(nonce, data, aad)

        def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            spy.decrypt_calls.append(nonce)
            return self._inner.decrypt(nonce, data, aad)

        def decrypt_into(self, nonce: bytes, data: bytes, aad: bytes, buf: memoryview) -> None:
            spy.decrypt_calls.append(nonce)
            self._inner.decrypt_into(nonce, data, aad, buf)

    monkeypatch.setattr(_primitives, "AESGCM", SpyAESGCM)
    return spy


@dataclass
class ShardStore:
    """A fetcher over a list of shard ciphertexts that records which indexes were asked."""

    shards: list[bytes | None]
    fetched: list[int] = field(default_factory=list)

    def __call__(self, index: int) -> bytes | None:
        self.fetched.append(index)
        if index >= len(self.shards):
            return None
        return self.shards[index]


@pytest.fixture
def store_of() -> Callable[[list[bytes | None]], ShardStore]:
    return lambda shards: ShardStore(list(shards))
