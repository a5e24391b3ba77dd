"""Deployment secrets generated once by KMS and kept only sealed in a DynamoDB item.

The audit hashing key (:mod:`app.audit.hash_key`) and the patient index key
(:mod:`app.patients.index_key`) are both HMAC keys that must be the same on every
instance of the service and never sit in clear in configuration, state or logs. On first
start the service asks KMS for a 256-bit data key bound to the key's own encryption
context (``purpose=...``, which the CMK's key policy and the service role name) and stores
only the ciphertext with a conditional put; every later start, on any instance, reads the
item and decrypts it. A race between two first starts is settled by the condition: the
loser adopts the winner's key.

Guarantees: one key per (table, item); the plaintext exists only in process memory; KMS
logs (CloudTrail) every unwrap with its context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def load_or_create_sealed_key(
    dynamodb: Any,
    kms: Any,
    table: str,
    key_arn: str,
    *,
    item_key: Mapping[str, Any],
    context: Mapping[str, str],
) -> bytes:
    """Return the key stored sealed at ``item_key``, creating it on first use.

    Args:
        dynamodb: a boto3 DynamoDB client.
        kms: a boto3 KMS client.
        table: the table that keeps the sealed key.
        key_arn: the CMK that seals it.
        item_key: the item's primary key (DynamoDB typed form).
        context: the KMS encryption context the key is bound to.
    """
    item = _read(dynamodb, table, item_key)
    if item is None:
        generated = kms.generate_data_key(
            KeyId=key_arn, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        try:
            dynamodb.put_item(
                TableName=table,
                Item={**item_key, "sealed_key": {"B": generated["CiphertextBlob"]}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return bytes(generated["Plaintext"])
        except dynamodb.exceptions.ConditionalCheckFailedException:
            item = _read(dynamodb, table, item_key)
            if item is None:  # pragma: no cover - the condition failed, so the item exists
                raise
    plaintext = kms.decrypt(
        CiphertextBlob=item["sealed_key"]["B"], KeyId=key_arn, EncryptionContext=dict(context)
    )["Plaintext"]
    return bytes(plaintext)


def _read(dynamodb: Any, table: str, item_key: Mapping[str, Any]) -> dict[str, Any] | None:
    response = dynamodb.get_item(TableName=table, Key=dict(item_key), ConsistentRead=True)
    item = response.get("Item")
    return dict(item) if item else None
