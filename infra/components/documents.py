"""Policy documents shared by several components, built as plain JSON-able data.

Kept as data (not ``aws.iam.get_policy_document`` invokes) so the policy pack and the
post-deploy checks read the same statements the program declares.
"""

from __future__ import annotations

from typing import Any

import pulumi

# S3 over interface VPC endpoints (PrivateLink) does not negotiate TLS 1.3, so requiring
# 1.3 at the bucket would cut the service off from its own shards when it runs inside a VPC.
# Doctors meet TLS 1.3 at the API (SecurityPolicy_TLS13_1_3_2025_09); the bucket, which
# only the service role reaches, requires at least TLS 1.2.
MIN_S3_TLS_VERSION = "1.2"


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The two transport statements every bucket policy here carries."""
    resources = [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": MIN_S3_TLS_VERSION}},
        },
    ]


def assume_role_policy(
    service: str,
    *,
    source_account: pulumi.Input[str],
    source_arn: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """A trust policy letting ``service`` assume the role only on behalf of this account
    (and, given ``source_arn``, of that one resource): without the condition any account
    could have the service act with this role (the confused deputy)."""
    bound: dict[str, Any] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        bound["aws:SourceArn"] = source_arn
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": bound},
    }
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [statement]})


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})
