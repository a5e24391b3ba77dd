"""Shard storage: the S3 bucket that holds encrypted record shards, and its log bucket.

Guarantees: shards are SSE-KMS with the records CMK (bucket keys on) on top of the
service's own AES-256-GCM envelope; the bucket is versioned, private, owner-enforced,
access-logged, and its policy refuses plain HTTP, TLS older than 1.2, and any put that
does not ask for SSE-KMS with the records key. Noncurrent versions expire, so a
crypto-shredded version does not linger as ciphertext forever.

Doctors' clients put and get shards directly, through presigned URLs the service issues
(``app/records/shards.py``): a browser client does so from the hub's own web origins only.
The bucket's CORS rule allows exactly those origins (the stage's OAuth callback URLs'
origins, ``Stage.web_origins``), PUT and GET, and the headers a presigned shard PUT signs;
with no origin, no CORS rule is declared and browsers cannot reach the bucket at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.buckets import access_logging, private_bucket
from infra.components.documents import deny_insecure_transport, policy_document

NONCURRENT_VERSION_DAYS = 30
ACCESS_LOG_RETENTION_DAYS = 400
KMS_KEY_ID_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"
# What a browser sends with a presigned shard PUT (app/records/shards.py signs them all).
CORS_ALLOWED_HEADERS = (
    "content-length",
    "if-none-match",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-checksum-crc64nvme",
)
CORS_EXPOSED_HEADERS = ("ETag", "x-amz-version-id", "x-amz-checksum-crc64nvme")
CORS_MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class ShardStorageArgs:
    name_prefix: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    records_key_arn: pulumi.Input[str]
    # Origins (scheme://host[:port]) a browser client of the hub is served from.
    web_origins: Sequence[str] = ()


class ShardStorage(pulumi.ComponentResource):
    shard_bucket: aws.s3.Bucket
    log_bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: ShardStorageArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("hub:storage:ShardStorage", name, None, opts)
        self._name = name
        self._args = args

        logs = private_bucket(
            f"{name}-access-logs",
            bucket_name=pulumi.Output.concat(args.name_prefix, "-access-logs-", args.account_id),
            kms_key_arn=None,
            parent=self,
            purpose="s3-access-logs",
        )
        self.log_bucket = logs.bucket
        self._log_bucket_policy(logs.bucket)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=logs.bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": ACCESS_LOG_RETENTION_DAYS},
                    "noncurrent_version_expiration": {"noncurrent_days": 30},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs.versioning]),
        )

        shards = private_bucket(
            f"{name}-shards",
            bucket_name=pulumi.Output.concat(args.name_prefix, "-shards-", args.account_id),
            kms_key_arn=args.records_key_arn,
            parent=self,
            purpose="record-shards",
            protect=True,
        )
        self.shard_bucket = shards.bucket
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-shards-lifecycle",
            bucket=shards.bucket.id,
            rules=[
                {
                    "id": "expire-noncurrent-shards",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                },
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[shards.versioning]),
        )
        access_logging(
            f"{name}-shards-logging",
            bucket=shards.bucket,
            log_bucket=logs.bucket.id,
            prefix="shards/",
            parent=self,
        )
        self._shard_bucket_policy(shards.bucket, depends_on=[shards.public_access_block])
        if args.web_origins:
            self._shard_bucket_cors(shards.bucket, args.web_origins)

        self.register_outputs(
            {
                "shard_bucket_name": self.shard_bucket.bucket,
                "shard_bucket_arn": self.shard_bucket.arn,
                "log_bucket_name": self.log_bucket.bucket,
            }
        )

    def _shard_bucket_policy(
        self, bucket: aws.s3.Bucket, depends_on: list[pulumi.Resource]
    ) -> aws.s3.BucketPolicy:
        objects = pulumi.Output.concat(bucket.arn, "/*")
        statements: list[dict[str, Any]] = [
            *deny_insecure_transport(bucket.arn),
            {
                "Sid": "DenyPutWithoutSseKms",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
            {
                "Sid": "DenyPutWithoutEncryptionHeader",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            },
            {
                "Sid": "DenyPutWithAnotherKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEqualsIfExists": {
                        KMS_KEY_ID_HEADER: self._args.records_key_arn,
                    }
                },
            },
        ]
        return aws.s3.BucketPolicy(
            f"{self._name}-shards-policy",
            bucket=bucket.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _shard_bucket_cors(
        self, bucket: aws.s3.Bucket, origins: Sequence[str]
    ) -> aws.s3.BucketCorsConfiguration:
        # Never "*": only the hub's own web origins, only what presigned URLs do.
        return aws.s3.BucketCorsConfiguration(
            f"{self._name}-shards-cors",
            bucket=bucket.id,
            cors_rules=[
                {
                    "id": "hub-web-client",
                    "allowed_methods": ["GET", "PUT"],
                    "allowed_origins": sorted(set(origins)),
                    "allowed_headers": list(CORS_ALLOWED_HEADERS),
                    "expose_headers": list(CORS_EXPOSED_HEADERS),
                    "max_age_seconds": CORS_MAX_AGE_SECONDS,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_bucket_policy(self, bucket: aws.s3.Bucket) -> aws.s3.BucketPolicy:
        # With ACLs disabled (BucketOwnerEnforced), S3 log delivery is authorised by policy.
        statements: list[dict[str, Any]] = [
            *deny_insecure_transport(bucket.arn),
            {
                "Sid": "S3ServerAccessLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                "Condition": {"StringEquals": {"aws:SourceAccount": self._args.account_id}},
            },
        ]
        return aws.s3.BucketPolicy(
            f"{self._name}-access-logs-policy",
            bucket=bucket.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )
