"""Building blocks for private S3 buckets, shared by shard storage and the audit trail.

Every bucket made here is versioned, blocks all four kinds of public access, enforces
bucket-owner object ownership (ACLs disabled) and has default encryption. The caller
chooses SSE-KMS with its CMK; only the server-access-log bucket may use SSE-S3,
because S3 server access logging cannot deliver to an SSE-KMS default-encrypted
bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PrivateBucket:
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration


def private_bucket(
    name: str,
    *,
    bucket_name: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str] | None,
    parent: pulumi.Resource,
    purpose: str,
    object_lock: bool = False,
    protect: bool = False,
) -> PrivateBucket:
    """Declare a private bucket and its security settings as children of ``parent``.

    Args:
        kms_key_arn: the CMK for SSE-KMS; ``None`` only for the access-log bucket (SSE-S3).
        purpose: tag ``hub:purpose``; the policy pack exempts ``s3-access-logs`` from SSE-KMS.
    """
    opts = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        name,
        bucket=bucket_name,
        object_lock_enabled=object_lock or None,
        force_destroy=False,
        tags={"hub:purpose": purpose},
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=opts,
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )
    if kms_key_arn is None:
        rule: aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict = {
            "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
        }
    else:
        rule = {
            "apply_server_side_encryption_by_default": {
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": kms_key_arn,
            },
            "bucket_key_enabled": True,
        }
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[rule],
        opts=opts,
    )
    return PrivateBucket(bucket, versioning, public_access_block, ownership, encryption)


def access_logging(
    name: str,
    *,
    bucket: aws.s3.Bucket,
    log_bucket: pulumi.Input[str],
    prefix: str,
    parent: pulumi.Resource,
) -> aws.s3.BucketLogging:
    return aws.s3.BucketLogging(
        name,
        bucket=bucket.id,
        target_bucket=log_bucket,
        target_prefix=prefix,
        opts=pulumi.ResourceOptions(parent=parent),
    )
