"""Data-key providers: the in-memory KMS stand-in and the boto3 KMS provider (on moto)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord, KeyServiceUnavailable
from app.crypto.kms import DataKeyProvider, InMemoryDataKeyProvider, KmsDataKeyProvider

CONTEXT = RecordContext(
    record_id="rec-0009", patient_id="pt-0009", version=1, institution="clinic-b"
)
CTX = CONTEXT.encryption_context()


def test_both_providers_implement_the_protocol() -> None:
    assert isinstance(InMemoryDataKeyProvider(), DataKeyProvider)
    assert isinstance(KmsDataKeyProvider(object(), "alias/records"), DataKeyProvider)


def test_in_memory_data_keys_are_fresh_and_unwrap_with_their_context() -> None:
    provider = InMemoryDataKeyProvider()
    first, first_wrapped = provider.generate_data_key(CTX)
    second, _ = provider.generate_data_key(CTX)
    assert len(first) == 32 and first != second
    assert first not in first_wrapped
    assert provider.decrypt_data_key(first_wrapped, CTX) == first


@pytest.mark.parametrize("key", sorted(CTX))
def test_in_memory_unwrap_refuses_any_other_context(key: str) -> None:
    provider = InMemoryDataKeyProvider()
    _, wrapped = provider.generate_data_key(CTX)
    with pytest.raises(InvalidRecord):
        provider.decrypt_data_key(wrapped, {**CTX, key: CTX[key] + "0"})
    with pytest.raises(InvalidRecord):
        provider.decrypt_data_key(wrapped, {k: v for k, v in CTX.items() if k != key})


@pytest.mark.parametrize("position", [0, 4, 8, 20, -1])
def test_in_memory_unwrap_refuses_a_tampered_wrapped_key(position: int) -> None:
    provider = InMemoryDataKeyProvider()
    _, wrapped = provider.generate_data_key(CTX)
    tampered = bytearray(wrapped)
    tampered[position] ^= 0x01
    with pytest.raises(InvalidRecord):
        provider.decrypt_data_key(bytes(tampered), CTX)
    with pytest.raises(InvalidRecord):
        provider.decrypt_data_key(wrapped[:-1], CTX)


def test_in_memory_rotation_wraps_new_keys_with_the_new_version_and_keeps_old_ones() -> None:
    provider = InMemoryDataKeyProvider()
    old_key, old_wrapped = provider.generate_data_key(CTX)
    assert provider.rotate() == 2 and provider.current_version == 2
    new_key, new_wrapped = provider.generate_data_key(CTX)
    assert provider.wrapping_key_version(old_wrapped) == 1
    assert provider.wrapping_key_version(new_wrapped) == 2
    assert provider.decrypt_data_key(old_wrapped, CTX) == old_key
    assert provider.decrypt_data_key(new_wrapped, CTX) == new_key


def test_in_memory_wrapping_keys_are_not_shared_between_providers() -> None:
    _, wrapped = InMemoryDataKeyProvider().generate_data_key(CTX)
    with pytest.raises(InvalidRecord):
        InMemoryDataKeyProvider().decrypt_data_key(wrapped, CTX)


@pytest.fixture
def kms(aws_backend: Any) -> Any:
    # The session's backend (moto server, or LocalStack in the aws_integration tier), not
    # moto's in-process decorator: leaving that resets moto's in-process backends, which
    # the server shares, under every other test.
    return aws_backend.client("kms")


@pytest.mark.aws_integration
def test_kms_provider_seals_and_opens_a_record_with_the_record_context(kms: Any) -> None:
    key_arn = kms.create_key(Description="records")["KeyMetadata"]["Arn"]
    envelope = ShardedEnvelope(KmsDataKeyProvider(kms, key_arn), shard_size=1024)
    data = os.urandom(5000)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    assert envelope.open_all(manifest.to_bytes(), shards.__getitem__, CONTEXT) == data


@pytest.mark.aws_integration
def test_kms_provider_unwrap_refuses_another_context(kms: Any) -> None:
    provider = KmsDataKeyProvider(kms, kms.create_key()["KeyMetadata"]["Arn"])
    _, wrapped = provider.generate_data_key(CTX)
    with pytest.raises(InvalidRecord):
        provider.decrypt_data_key(wrapped, {**CTX, "patient_id": "pt-0010"})


@pytest.mark.aws_integration
def test_kms_provider_pins_its_key_when_unwrapping(kms: Any) -> None:
    mine = KmsDataKeyProvider(kms, kms.create_key()["KeyMetadata"]["Arn"])
    theirs = KmsDataKeyProvider(kms, kms.create_key()["KeyMetadata"]["Arn"])
    _, wrapped = theirs.generate_data_key(CTX)
    with pytest.raises(InvalidRecord):
        mine.decrypt_data_key(wrapped, CTX)


@pytest.mark.aws_integration
def test_kms_records_sealed_before_rotation_still_open(kms: Any) -> None:
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    envelope = ShardedEnvelope(KmsDataKeyProvider(kms, key_arn), shard_size=256)
    data = os.urandom(1000)
    manifest, shards = envelope.seal_all(CONTEXT, data)
    kms.rotate_key_on_demand(KeyId=key_arn)
    assert envelope.open_all(manifest, shards.__getitem__, CONTEXT) == data


class _FailingClient:
    def __init__(self, error: Exception) -> None:
        self._error = error

    def generate_data_key(self, **_: Any) -> Any:
        raise self._error

    def decrypt(self, **_: Any) -> Any:
        raise self._error


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "synthetic"}}, "Decrypt")


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ThrottlingException"),
        _client_error("KMSInternalException"),
        _client_error("DependencyTimeoutException"),
        EndpointConnectionError(endpoint_url="https://kms.ap-east-1.amazonaws.com"),
    ],
)
def test_kms_availability_failures_are_retryable_not_integrity_verdicts(error: Exception) -> None:
    provider = KmsDataKeyProvider(_FailingClient(error), "alias/records")
    with pytest.raises(KeyServiceUnavailable):
        provider.decrypt_data_key(b"blob", CTX)
    with pytest.raises(KeyServiceUnavailable):
        provider.generate_data_key(CTX)


@pytest.mark.parametrize(
    "code",
    [
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "AccessDeniedException",
        "KMSInvalidStateException",
    ],
)
def test_kms_unwrap_refusals_are_the_opaque_error(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider = KmsDataKeyProvider(_FailingClient(_client_error(code)), "alias/records")
    with (
        caplog.at_level("WARNING", logger="app.crypto.kms"),
        pytest.raises(InvalidRecord) as caught,
    ):
        provider.decrypt_data_key(b"blob", CTX)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # Operators see why; the log carries no identifier from the context.
    assert code in caplog.text
    assert not any(CTX[key] in caplog.text for key in ("record_id", "patient_id", "institution"))


def test_kms_provider_requires_a_key_id() -> None:
    with pytest.raises(ValueError):
        KmsDataKeyProvider(object(), "")
