"""The audit hashing key of a deployment: generated once by KMS, kept only sealed.

Audit events refer to patients by HMAC-SHA256 under this key, so the key must be the
same for every instance of the service and must never sit in plain text in
configuration, state or logs. On first start the service asks KMS (the audit CMK) for a
256-bit data key bound to the encryption context ``purpose=audit-patient-ref`` and
stores only its ciphertext in the ledger table with a conditional put; every later
start, on any instance, reads that item and decrypts it. A race between two first
starts is settled by the condition: the loser adopts the winner's key.

The mechanism is :mod:`app.sealed_keys`, shared with the patient index key.

Guarantees: one key per deployment; the plaintext exists only in process memory; KMS
logs (CloudTrail) every unwrap with its context.
"""

from __future__ import annotations

from typing import Any

from app.sealed_keys import load_or_create_sealed_key

ENCRYPTION_CONTEXT = {"purpose": "audit-patient-ref"}
ITEM_KEY = {"pk": {"S": "CONFIG#audit-hash-key"}, "sk": {"S": "v1"}}


def load_or_create_audit_hash_key(dynamodb: Any, kms: Any, table: str, key_arn: str) -> bytes:
    """Return the deployment's audit hashing key, creating it on first use.

    Args:
        dynamodb: a boto3 DynamoDB client.
        kms: a boto3 KMS client.
        table: the ledger table's name.
        key_arn: the audit CMK's ARN.
    """
    return load_or_create_sealed_key(
        dynamodb, kms, table, key_arn, item_key=ITEM_KEY, context=ENCRYPTION_CONTEXT
    )
