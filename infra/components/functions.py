"""Lambda functions with their own KMS-encrypted, retained log groups.

Every function of the hub runs the one bundle built from ``app/`` by
``scripts/build_lambda_bundle.py``, with X-Ray tracing on and JSON logs going to a
log group declared here (so retention and encryption are ours, not Lambda's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

LAMBDA_RUNTIME = "python3.12"
LAMBDA_ARCHITECTURE = "arm64"  # the bundle script fetches manylinux aarch64 wheels


@dataclass(frozen=True)
class LoggedFunction:
    function: aws.lambda_.Function
    log_group: aws.cloudwatch.LogGroup


def log_group_arn(
    region: str, partition: pulumi.Input[str], account_id: pulumi.Input[str], log_group_name: str
) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "arn:", partition, ":logs:", region, ":", account_id, ":log-group:", log_group_name
    )


def logged_function(
    name: str,
    *,
    function_name: str,
    handler: str,
    role_arn: pulumi.Input[str],
    bundle: str,
    environment: pulumi.Input[dict[str, pulumi.Input[str]]],
    audit_key_arn: pulumi.Input[str],
    log_retention_days: int,
    parent: pulumi.Resource,
    memory_mb: int = 512,
    timeout_s: int = 29,
    reserved_concurrency: int | None = None,
    depends_on: list[pulumi.Resource] | None = None,
    dead_letter_queue_arn: pulumi.Input[str] | None = None,
) -> LoggedFunction:
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/aws/lambda/{function_name}",
        kms_key_id=audit_key_arn,
        retention_in_days=log_retention_days,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    function = aws.lambda_.Function(
        name,
        name=function_name,
        runtime=LAMBDA_RUNTIME,
        architectures=[LAMBDA_ARCHITECTURE],
        handler=handler,
        role=role_arn,
        code=pulumi.FileArchive(bundle),
        memory_size=memory_mb,
        timeout=timeout_s,
        reserved_concurrent_executions=reserved_concurrency,
        environment={"variables": environment},
        tracing_config={"mode": "Active"},
        dead_letter_config=(
            {"target_arn": dead_letter_queue_arn} if dead_letter_queue_arn is not None else None
        ),
        logging_config={"log_format": "JSON", "log_group": log_group.name},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_group, *(depends_on or [])]),
    )
    return LoggedFunction(function, log_group)
