"""AWS Backup: the vault, its key and lock, the plan and what it selects.

Guarantees: recovery points sit in one ``ap-east-1`` vault encrypted under a KMS key of
its own (rotating yearly, administration-only for the account root, cryptographic use
only through AWS Backup for principals of this account); the vault lock refuses a
recovery point kept shorter than the shortest documented retention or longer than the
longest (Cap. 486 DPP2: a shredded record leaves the backups after that at most); the
plan has one rule per data class of docs/disaster-recovery.md and its selections name
every service table and the shard and audit buckets by ARN, and (:meth:`Backups.cover`)
messaging's homeserver database and media bucket; AWS Backup acts through a role only it
can assume, and only on behalf of this account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.documents import assume_role_policy, policy_document
from infra.components.keys import DELETION_WINDOW_DAYS, KEY_ADMIN_ACTIONS, ROTATION_PERIOD_DAYS


@dataclass(frozen=True)
class BackupRule:
    """One data class: how long its recovery points are kept, and why (the runbook)."""

    data_class: str
    retention_days: int


# The data classes of docs/disaster-recovery.md, each kept 35 days: the ledger's own
# retention is the audit's (a backup only bridges to the last good state), the audit
# bucket keeps its objects under Object Lock for the audit retention anyway, and the
# records (manifests and shards) and operational tables are kept no longer so that a
# crypto-shredded version leaves every backup 35 days after the shred at most.
BACKUP_RULES: tuple[BackupRule, ...] = (
    BackupRule("ledger", 35),
    BackupRule("audit-objects", 35),
    BackupRule("records", 35),
    BackupRule("operational", 35),
    # Messaging (infra/components/messaging.py): the homeserver's database (rooms, message
    # events, memberships) and its media bucket (attachments), kept as the records are.
    BackupRule("messages", 35),
)
MIN_RETENTION_DAYS = min(r.retention_days for r in BACKUP_RULES)
MAX_RETENTION_DAYS = max(r.retention_days for r in BACKUP_RULES)
# Daily at 02:00 Hong Kong time (18:00 UTC), after the evening clinics.
SCHEDULE = "cron(0 18 * * ? *)"
# After this many days the lock can no longer be changed or removed (compliance mode).
LOCK_CHANGEABLE_DAYS = 3

BACKUP_MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)


@dataclass(frozen=True)
class BackupsArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    table_arns: Mapping[str, pulumi.Input[str]]
    bucket_arns: Sequence[pulumi.Input[str]]


class Backups(pulumi.ComponentResource):
    key: aws.kms.Key
    vault: aws.backup.Vault
    plan: aws.backup.Plan
    role: aws.iam.Role

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:backup:Backups", name, None, opts)
        self._name = name
        self._args = args
        self.key = aws.kms.Key(
            f"{name}-vault-key",
            description="Health Hub backups: encrypts the AWS Backup vault's recovery points",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            enable_key_rotation=True,
            rotation_period_in_days=ROTATION_PERIOD_DAYS,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=self._key_policy(),
            tags={"hub:concern": "backup"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.kms.Alias(
            f"{name}-vault-key-alias",
            name=f"alias/{args.name_prefix}-backup",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vault = aws.backup.Vault(
            f"{name}-vault",
            name=f"{args.name_prefix}-backup",
            kms_key_arn=self.key.arn,
            tags={"hub:concern": "backup"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.backup.VaultLockConfiguration(
            f"{name}-vault-lock",
            backup_vault_name=self.vault.name,
            min_retention_days=MIN_RETENTION_DAYS,
            max_retention_days=MAX_RETENTION_DAYS,
            changeable_for_days=LOCK_CHANGEABLE_DAYS,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.plan = aws.backup.Plan(
            f"{name}-plan",
            name=f"{args.name_prefix}-backup",
            rules=[
                {
                    "rule_name": rule.data_class,
                    "target_vault_name": self.vault.name,
                    "schedule": SCHEDULE,
                    "lifecycle": {"delete_after": rule.retention_days},
                }
                for rule in BACKUP_RULES
            ],
            tags={"hub:concern": "backup"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=f"{args.name_prefix}-backup",
            assume_role_policy=assume_role_policy(
                "backup.amazonaws.com", source_account=args.account_id
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-role-{policy.rsplit('/', 1)[-1]}",
                role=self.role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", args.partition, ":iam::aws:policy/", policy
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy in BACKUP_MANAGED_POLICIES
        ]
        self._attachments = attachments
        aws.backup.Selection(
            f"{name}-selection",
            name=f"{args.name_prefix}-tables-and-buckets",
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            resources=[*args.table_arns.values(), *args.bucket_arns],
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        self.register_outputs(
            {"vault_arn": self.vault.arn, "plan_id": self.plan.id, "key_arn": self.key.arn}
        )

    def cover(self, label: str, resources: Sequence[pulumi.Input[str]]) -> aws.backup.Selection:
        """A further selection of this plan (every rule applies), for data stores declared
        after the backups, e.g. messaging's database and media bucket (RDS and S3 ARNs)."""
        return aws.backup.Selection(
            f"{self._name}-selection-{label}",
            name=f"{self._args.name_prefix}-{label}",
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            resources=list(resources),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._attachments),
        )

    def _key_policy(self) -> pulumi.Output[str]:
        a = self._args
        root = pulumi.Output.concat("arn:", a.partition, ":iam::", a.account_id, ":root")
        statements: list[dict[str, Any]] = [
            {
                "Sid": "KeyAdministrationOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": KEY_ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                # AWS Backup encrypts and reads recovery points for the account's principals
                # (its service role), only when it calls KMS itself.
                "Sid": "AccountPrincipalsViaBackup",
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
                        "kms:ViaService": f"backup.{a.region}.amazonaws.com",
                        "kms:CallerAccount": a.account_id,
                    }
                },
            },
        ]
        return policy_document(statements)
