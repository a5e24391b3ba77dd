"""The patient index key of a deployment: generated once by KMS, kept only sealed.

The index keeps HKIDs and MRNs only as HMAC-SHA256 references under this key
(:mod:`app.patients.index`), so the key must be the same on every instance and never sit
in clear in configuration, state or logs. It is a 256-bit KMS data key under the audit
CMK, bound to the encryption context ``purpose=patient-index-ref`` (a context of its own:
the audit hashing key's cannot unwrap it, and the CMK's key policy and the service role
name both), sealed in the patients table (:mod:`app.sealed_keys`). It is a different key
from the audit hashing key: an audit reference (``pt1-``) and an index reference
(``hk1-``/``mr1-``) can never be joined without both.
"""

from __future__ import annotations

from typing import Any

from app.sealed_keys import load_or_create_sealed_key

ENCRYPTION_CONTEXT = {"purpose": "patient-index-ref"}
ITEM_KEY = {"pk": {"S": "CONFIG#patient-index-key"}, "sk": {"S": "v1"}}


def load_or_create_index_key(dynamodb: Any, kms: Any, table: str, key_arn: str) -> bytes:
    """Return the deployment's patient index key, creating it on first use.

    Args:
        dynamodb: a boto3 DynamoDB client.
        kms: a boto3 KMS client.
        table: the patients table's name.
        key_arn: the audit CMK's ARN.
    """
    return load_or_create_sealed_key(
        dynamodb, kms, table, key_arn, item_key=ITEM_KEY, context=ENCRYPTION_CONTEXT
    )
