"""Audit trail: a CloudTrail trail into an Object Lock bucket, mirrored to CloudWatch Logs.

Guarantees: the trail is multi-region, includes global service events, validates log
files (digest chain), encrypts with the audit CMK and records management events plus
data events on the shard bucket, the service's tables and the stack's Lambda functions,
and CloudTrail Insights (API call and error rates). Its bucket keeps every
object in COMPLIANCE-mode Object Lock for the configured years (nobody, root included,
can shorten that), and also receives the ledger's signed checkpoints. The log group is
KMS-encrypted with the audit key and retained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.buckets import access_logging, private_bucket
from infra.components.documents import assume_role_policy, deny_insecure_transport, policy_document

# CloudWatch Logs accepts only these retention values (days).
_VALID_RETENTION_DAYS = (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def log_retention_days(years: int) -> int:
    """The shortest retention CloudWatch Logs allows that covers ``years`` (max 10 years)."""
    wanted = years * 365
    return next((d for d in _VALID_RETENTION_DAYS if d >= wanted), _VALID_RETENTION_DAYS[-1])


@dataclass(frozen=True)
class AuditTrailArgs:
    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]
    retention_years: int
    access_log_bucket: pulumi.Input[str]
    shard_bucket_arn: pulumi.Input[str]
    table_arns: Sequence[pulumi.Input[str]]


def trail_name(name_prefix: str) -> str:
    return f"{name_prefix}-trail"


def trail_arn(
    partition: pulumi.Input[str], region: str, account_id: pulumi.Input[str], name_prefix: str
) -> pulumi.Output[str]:
    """Known before the trail exists, so key and bucket policies can bind to it."""
    return pulumi.Output.concat(
        "arn:",
        partition,
        ":cloudtrail:",
        region,
        ":",
        account_id,
        ":trail/",
        trail_name(name_prefix),
    )


class AuditTrail(pulumi.ComponentResource):
    trail: aws.cloudtrail.Trail
    bucket: aws.s3.Bucket
    log_group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:audit:AuditTrail", name, None, opts)
        self._name = name
        self._args = args
        self._trail_arn = trail_arn(args.partition, args.region, args.account_id, args.name_prefix)

        store = private_bucket(
            f"{name}-bucket",
            bucket_name=pulumi.Output.concat(args.name_prefix, "-audit-", args.account_id),
            kms_key_arn=args.audit_key_arn,
            parent=self,
            purpose="audit-trail",
            object_lock=True,
            protect=True,
        )
        self.bucket = store.bucket
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=store.bucket.id,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": "COMPLIANCE", "years": args.retention_years}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[store.versioning]),
        )
        retention_days = args.retention_years * 365
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=store.bucket.id,
            rules=[
                {
                    # Object Lock keeps every object for the retention; after it, the
                    # objects go (DPP2: no longer than necessary). Expiring sooner would
                    # ask S3 to delete what the lock must keep.
                    "id": "expire-after-audit-retention",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": retention_days + 1},
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[store.versioning]),
        )
        access_logging(
            f"{name}-bucket-logging",
            bucket=store.bucket,
            log_bucket=args.access_log_bucket,
            prefix="audit/",
            parent=self,
        )
        bucket_policy = self._bucket_policy(store.bucket, [store.public_access_block])

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-log-group",
            name=f"/hub/{args.name_prefix}/cloudtrail",
            kms_key_id=args.audit_key_arn,
            retention_in_days=log_retention_days(args.retention_years),
            opts=pulumi.ResourceOptions(parent=self),
        )
        delivery_role, delivery_policy = self._logs_delivery_role()
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=trail_name(args.name_prefix),
            s3_bucket_name=store.bucket.id,
            s3_key_prefix="cloudtrail",
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=args.audit_key_arn,
            cloud_watch_logs_group_arn=pulumi.Output.concat(self.log_group.arn, ":*"),
            cloud_watch_logs_role_arn=delivery_role.arn,
            advanced_event_selectors=self._event_selectors(),
            # Unusual write-call volumes and error rates (a scripted export, a key
            # being probed) surface without anyone writing a query.
            insight_selectors=[
                {"insight_type": "ApiCallRateInsight"},
                {"insight_type": "ApiErrorRateInsight"},
            ],
            tags={"hub:concern": "audit"},
            # CloudTrail validates bucket, key and role access when the trail is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket_policy, delivery_policy]),
        )
        self.register_outputs(
            {
                "trail_arn": self.trail.arn,
                "bucket_name": self.bucket.bucket,
                "log_group_name": self.log_group.name,
            }
        )

    def _event_selectors(self) -> list[aws.cloudtrail.TrailAdvancedEventSelectorArgsDict]:
        a = self._args
        return [
            {
                "name": "management-events",
                "field_selectors": [{"field": "eventCategory", "equals": ["Management"]}],
            },
            {
                "name": "shard-object-events",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    {
                        "field": "resources.ARN",
                        "starts_withs": [pulumi.Output.concat(a.shard_bucket_arn, "/")],
                    },
                ],
            },
            {
                # Every invocation of the stack's functions (the API, the Cognito
                # triggers): who or what invoked which function, when.
                "name": "function-invoke-events",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::Lambda::Function"]},
                    {
                        "field": "resources.ARN",
                        "starts_withs": [
                            pulumi.Output.concat(
                                "arn:",
                                a.partition,
                                ":lambda:",
                                a.region,
                                ":",
                                a.account_id,
                                ":function:",
                                a.name_prefix,
                                "-",
                            )
                        ],
                    },
                ],
            },
            {
                "name": "service-table-events",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::DynamoDB::Table"]},
                    {"field": "resources.ARN", "equals": list(a.table_arns)},
                ],
            },
        ]

    def _bucket_policy(
        self, bucket: aws.s3.Bucket, depends_on: list[pulumi.Resource]
    ) -> aws.s3.BucketPolicy:
        statements: list[dict[str, Any]] = [
            *deny_insecure_transport(bucket.arn),
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket.arn,
                "Condition": {"StringEquals": {"aws:SourceArn": self._trail_arn}},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(
                    bucket.arn, "/cloudtrail/AWSLogs/", self._args.account_id, "/*"
                ),
                "Condition": {
                    "StringEquals": {
                        "aws:SourceArn": self._trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            },
        ]
        return aws.s3.BucketPolicy(
            f"{self._name}-bucket-policy",
            bucket=bucket.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _logs_delivery_role(self) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        a = self._args
        role = aws.iam.Role(
            f"{self._name}-logs-role",
            name=f"{a.name_prefix}-cloudtrail-logs",
            assume_role_policy=assume_role_policy(
                "cloudtrail.amazonaws.com", source_account=a.account_id, source_arn=self._trail_arn
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-logs-role-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "DeliverTrailToLogGroup",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": pulumi.Output.concat(self.log_group.arn, ":log-stream:*"),
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, policy
