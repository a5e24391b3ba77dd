"""KMS keys: the records CMK, the audit-and-logs CMK and the ledger signing key.

Guarantees: symmetric keys rotate yearly and wait 30 days before deletion; every key
is protected from accidental deletion by Pulumi; key policies give the account root
only key *administration* (no cryptographic use), and grant each service exactly the
operations it needs, bound by source ARN, calling service or encryption context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.documents import policy_document

DELETION_WINDOW_DAYS = 30
ROTATION_PERIOD_DAYS = 365

# The encryption-context keys every record data key is bound to (app/crypto).
RECORD_CONTEXT_KEYS = ["record_id", "patient_id", "version", "institution"]

# The audit hashing key's data key is bound to this context (app/audit/hash_key.py).
AUDIT_HASH_CONTEXT_KEY = "kms:EncryptionContext:purpose"
AUDIT_HASH_PURPOSE = "audit-patient-ref"
# The patient index key (app/patients/index_key.py): sealed by the audit key too, under a
# context of its own, so neither key's grant can unwrap the other.
PATIENT_INDEX_PURPOSE = "patient-index-ref"

# Administration only, listed action by action: no Encrypt/Decrypt/GenerateDataKey/Sign,
# and no CreateGrant (a grant could hand the root cryptographic use). PutKeyPolicy must
# stay (KMS refuses a policy that would lock the account out of its key); CIS 4.7-style
# alarms watch key policy changes.
KEY_ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:DescribeKey",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:RevokeGrant",
    "kms:RetireGrant",
    "kms:UpdateKeyDescription",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]


@dataclass(frozen=True)
class KeysArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    service_role_arn: pulumi.Input[str]
    trail_arn: pulumi.Input[str]


class Keys(pulumi.ComponentResource):
    records_key: aws.kms.Key
    audit_key: aws.kms.Key
    signing_key: aws.kms.Key

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:keys:Keys", name, None, opts)
        self._name = name
        self._args = args
        root = pulumi.Output.concat("arn:", args.partition, ":iam::", args.account_id, ":root")
        self._admin = {
            "Sid": "KeyAdministrationOnly",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": KEY_ADMIN_ACTIONS,
            "Resource": "*",
        }

        self.records_key = self._symmetric_key(
            "records",
            "Health Hub records: envelope encryption of shards, tables",
            self._records_key_policy(),
        )
        self.audit_key = self._symmetric_key(
            "audit",
            "Health Hub audit and logs: CloudTrail, log groups, alarms, ledger",
            self._audit_key_policy(),
        )
        self.signing_key = aws.kms.Key(
            f"{name}-ledger-signing",
            description="Health Hub ledger: signs audit tree heads (ECDSA P-256)",
            customer_master_key_spec="ECC_NIST_P256",
            key_usage="SIGN_VERIFY",
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=self._signing_key_policy(),
            tags={"hub:concern": "keys"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self._alias("ledger-signing", self.signing_key)

        self.register_outputs(
            {
                "records_key_arn": self.records_key.arn,
                "audit_key_arn": self.audit_key.arn,
                "signing_key_arn": self.signing_key.arn,
            }
        )

    def _symmetric_key(
        self, part: str, description: str, policy: pulumi.Output[str]
    ) -> aws.kms.Key:
        key = aws.kms.Key(
            f"{self._name}-{part}",
            description=description,
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            enable_key_rotation=True,
            rotation_period_in_days=ROTATION_PERIOD_DAYS,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=policy,
            tags={"hub:concern": "keys"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self._alias(part, key)
        return key

    def _alias(self, part: str, key: aws.kms.Key) -> aws.kms.Alias:
        return aws.kms.Alias(
            f"{self._name}-{part}-alias",
            name=f"alias/{self._args.name_prefix}-{part}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _via_dynamodb(self) -> dict[str, Any]:
        """DynamoDB tables encrypted with the key: table creation and reads go through
        DynamoDB's grant, only for principals of this account."""
        a = self._args
        return {
            "Sid": "AccountPrincipalsViaDynamoDB",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:CreateGrant",
                "kms:DescribeKey",
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": f"dynamodb.{a.region}.amazonaws.com",
                    "kms:CallerAccount": a.account_id,
                }
            },
        }

    def _service_via_s3(self) -> dict[str, Any]:
        """SSE-KMS objects (shards; ledger checkpoints): S3 calls KMS for the role."""
        a = self._args
        return {
            "Sid": "ServiceViaS3",
            "Effect": "Allow",
            "Principal": {"AWS": a.service_role_arn},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": f"s3.{a.region}.amazonaws.com",
                    "kms:CallerAccount": a.account_id,
                }
            },
        }

    def _service_principal(self, service: str) -> str:
        return f"{service}.amazonaws.com"

    def _records_key_policy(self) -> pulumi.Output[str]:
        a = self._args
        statements: list[dict[str, Any]] = [
            self._admin,
            {
                # Envelope encryption in app/crypto: a data key per record version, only
                # with the record's full encryption context (CloudTrail logs it on each use).
                "Sid": "ServiceEnvelopeEncryptionWithRecordContext",
                "Effect": "Allow",
                "Principal": {"AWS": a.service_role_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": RECORD_CONTEXT_KEYS},
                    "Null": {f"kms:EncryptionContext:{k}": "false" for k in RECORD_CONTEXT_KEYS},
                },
            },
            self._service_via_s3(),
            self._via_dynamodb(),
        ]
        return policy_document(statements)

    def _audit_key_policy(self) -> pulumi.Output[str]:
        a = self._args
        trail_context = pulumi.Output.concat(
            "arn:", a.partition, ":cloudtrail:*:", a.account_id, ":trail/*"
        )
        log_groups = pulumi.Output.concat(
            "arn:", a.partition, ":logs:", a.region, ":", a.account_id, ":log-group:*"
        )
        statements: list[dict[str, Any]] = [
            self._admin,
            {
                "Sid": "CloudTrailEncryptLogs",
                "Effect": "Allow",
                "Principal": {"Service": self._service_principal("cloudtrail")},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": a.trail_arn},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_context},
                },
            },
            {
                "Sid": "CloudTrailDescribeKey",
                "Effect": "Allow",
                "Principal": {"Service": self._service_principal("cloudtrail")},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceArn": a.trail_arn}},
            },
            {
                "Sid": "CloudWatchLogsEncryptLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{a.region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            },
            {
                # Alarms publish to the KMS-encrypted SNS topic.
                "Sid": "CloudWatchAlarmsPublishEncrypted",
                "Effect": "Allow",
                "Principal": {"Service": self._service_principal("cloudwatch")},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": a.account_id}},
            },
            self._via_dynamodb(),
            {
                # The hub's functions publish security alarms (break-glass, room drift,
                # dead letters) to the KMS-encrypted alarm topic (app/notifications).
                "Sid": "ServicePublishesEncryptedAlarms",
                "Effect": "Allow",
                "Principal": {"AWS": a.service_role_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"sns.{a.region}.amazonaws.com"}},
            },
            {
                "Sid": "ServiceSealsAuditHashKey",
                "Effect": "Allow",
                "Principal": {"AWS": a.service_role_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {AUDIT_HASH_CONTEXT_KEY: AUDIT_HASH_PURPOSE}},
            },
            {
                "Sid": "ServiceSealsPatientIndexKey",
                "Effect": "Allow",
                "Principal": {"AWS": a.service_role_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {AUDIT_HASH_CONTEXT_KEY: PATIENT_INDEX_PURPOSE}},
            },
            self._service_via_s3(),
        ]
        return policy_document(statements)

    def _signing_key_policy(self) -> pulumi.Output[str]:
        statements: list[dict[str, Any]] = [
            self._admin,
            {
                "Sid": "ServiceSignsTreeHeads",
                "Effect": "Allow",
                "Principal": {"AWS": self._args.service_role_arn},
                "Action": "kms:Sign",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256"}},
            },
            {
                "Sid": "ServiceReadsPublicKey",
                "Effect": "Allow",
                "Principal": {"AWS": self._args.service_role_arn},
                "Action": "kms:GetPublicKey",
                "Resource": "*",
            },
            {
                # Anyone in the account (auditors, the verifier) may fetch the public key.
                "Sid": "AccountReadsPublicKey",
                "Effect": "Allow",
                "Principal": {
                    "AWS": pulumi.Output.concat(
                        "arn:", self._args.partition, ":iam::", self._args.account_id, ":root"
                    )
                },
                "Action": ["kms:GetPublicKey", "kms:Verify"],
                "Resource": "*",
            },
        ]
        return policy_document(statements)
