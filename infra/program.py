"""The Pulumi program: declares one phase's complete ap-east-1 deployment from a Stage.

``declare`` is called by the entry point (``infra/__main__.py``) under the Pulumi engine,
and by the preview, the tests and the emulator under Pulumi's mock runtime. It takes a
parsed, validated ``Stage`` and never reads configuration itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra.components.audit_trail import AuditTrail, AuditTrailArgs, log_retention_days, trail_arn
from infra.components.backup import Backups, BackupsArgs
from infra.components.identity import ACCESS_TOKEN_MINUTES, Identity, IdentityArgs
from infra.components.keys import Keys, KeysArgs
from infra.components.messaging import Messaging, MessagingArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.shard_storage import ShardStorage, ShardStorageArgs
from infra.components.sharing_service import (
    ServiceRole,
    SharingService,
    SharingServiceArgs,
    WebRoutes,
    service_environment,
)
from infra.components.tables import ServiceTables, ServiceTablesArgs
from infra.components.web_client import WebClient, WebClientArgs
from infra.stage import Stage

# Operational logs (Lambda, API access) are kept a year; the trail's own group follows
# the audit retention.
OPERATIONAL_LOG_RETENTION_DAYS = 365
# The Matrix server name (doctors are @doc-<reg no>:hub.example) and the balancers' names.
# Fixed until the three stacks become one core (one homeserver for the hub) plus layers.
MESSAGING_SERVER_NAME = "hub.example"


def declare(
    stage: Stage, oidc_client_secrets: Mapping[str, pulumi.Input[str]] | None = None
) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of ``stage`` and return the stack outputs."""
    caller = aws.get_caller_identity_output()
    partition = aws.get_partition_output().partition
    account_id = caller.account_id
    prefix = stage.name_prefix

    service_role = ServiceRole("service", prefix, account_id)
    keys = Keys(
        "keys",
        KeysArgs(
            name_prefix=prefix,
            region=stage.region,
            partition=partition,
            account_id=account_id,
            service_role_arn=service_role.role.arn,
            trail_arn=trail_arn(partition, stage.region, account_id, prefix),
        ),
    )
    storage = ShardStorage(
        "storage",
        ShardStorageArgs(
            name_prefix=prefix,
            account_id=account_id,
            partition=partition,
            records_key_arn=keys.records_key.arn,
            web_origins=stage.web_origins,
        ),
    )
    tables = ServiceTables(
        "tables",
        ServiceTablesArgs(
            name_prefix=prefix,
            records_key_arn=keys.records_key.arn,
            audit_key_arn=keys.audit_key.arn,
        ),
    )
    audit = AuditTrail(
        "audit",
        AuditTrailArgs(
            name_prefix=prefix,
            region=stage.region,
            partition=partition,
            account_id=account_id,
            audit_key_arn=keys.audit_key.arn,
            retention_years=stage.audit_retention_years,
            access_log_bucket=storage.log_bucket.id,
            shard_bucket_arn=storage.shard_bucket.arn,
            table_arns=[t.arn for t in tables.tables.values()],
        ),
    )
    backups = Backups(
        "backup",
        BackupsArgs(
            name_prefix=prefix,
            region=stage.region,
            partition=partition,
            account_id=account_id,
            table_arns={k: t.arn for k, t in tables.tables.items()},
            bucket_arns=[storage.shard_bucket.arn, audit.bucket.arn],
        ),
    )
    identity = Identity(
        "identity",
        IdentityArgs(
            name_prefix=prefix,
            region=stage.region,
            partition=partition,
            account_id=account_id,
            phase=stage.phase,
            self_registration=stage.features.self_registration,
            callback_urls=stage.oauth_callback_urls,
            register_table_name=tables.tables["register"].name,
            register_table_arn=tables.tables["register"].arn,
            institutions_table_name=tables.tables["institutions"].name,
            institutions_table_arn=tables.tables["institutions"].arn,
            audit_key_arn=keys.audit_key.arn,
            lambda_bundle=stage.lambda_bundle,
            log_retention_days=OPERATIONAL_LOG_RETENTION_DAYS,
            federation=stage.federation,
            oidc_client_secrets=dict(oidc_client_secrets or {}),
        ),
    )
    web = WebClient(
        "web",
        WebClientArgs(
            name_prefix=prefix,
            region=stage.region,
            account_id=account_id,
            site_dir=stage.web_bundle,
            shard_bucket_name=storage.shard_bucket.bucket,
            user_pool_id=identity.user_pool.id,
            user_pool_client_id=identity.client.id,
            access_token_validity_seconds=ACCESS_TOKEN_MINUTES * 60,
            access_log_bucket=storage.log_bucket.id,
        ),
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            name_prefix=prefix,
            account_id=account_id,
            log_group_name=audit.log_group.name,
            audit_key_arn=keys.audit_key.arn,
            subscription=stage.alarm_subscription,
        ),
    )

    service_args = SharingServiceArgs(
        name_prefix=prefix,
        region=stage.region,
        partition=partition,
        account_id=account_id,
        phase=stage.phase,
        stack=stage.stack,
        role=service_role.role,
        capacity=stage.capacity,
        waf=stage.features.waf,
        lambda_bundle=stage.lambda_bundle,
        self_registration=stage.features.self_registration,
        table_names={k: t.name for k, t in tables.tables.items()},
        table_arns={k: t.arn for k, t in tables.tables.items()},
        shard_bucket_name=storage.shard_bucket.bucket,
        shard_bucket_arn=storage.shard_bucket.arn,
        checkpoint_bucket_name=audit.bucket.bucket,
        checkpoint_bucket_arn=audit.bucket.arn,
        records_key_arn=keys.records_key.arn,
        audit_key_arn=keys.audit_key.arn,
        signing_key_arn=keys.signing_key.arn,
        user_pool_id=identity.user_pool.id,
        user_pool_arn=identity.user_pool.arn,
        user_pool_client_id=identity.client.id,
        user_pool_federated_client_id=(
            identity.federated_client.id if identity.federated_client else ""
        ),
        issuer=identity.issuer,
        log_retention_days=OPERATIONAL_LOG_RETENTION_DAYS,
        access_token_validity_seconds=ACCESS_TOKEN_MINUTES * 60,
        web=WebRoutes(bucket_name=web.bucket.bucket, reader_role_arn=web.reader_role.arn),
    )
    messaging = Messaging(
        "messaging",
        MessagingArgs(
            name_prefix=prefix,
            region=stage.region,
            partition=partition,
            account_id=account_id,
            server_name=MESSAGING_SERVER_NAME,
            client_hostname=f"matrix.p{stage.phase}.{MESSAGING_SERVER_NAME}",
            appservice_hostname=f"appservice.p{stage.phase}.{MESSAGING_SERVER_NAME}",
            service_role=service_role.role,
            lambda_bundle=stage.lambda_bundle,
            function_environment=service_environment(service_args),
            audit_key_arn=keys.audit_key.arn,
            security_topic_arn=monitoring.topic.arn,
            access_log_bucket=storage.log_bucket.id,
            log_retention_days=OPERATIONAL_LOG_RETENTION_DAYS,
        ),
    )
    service = SharingService(
        "service", dataclasses.replace(service_args, extra_environment=messaging.environment)
    )

    return {
        "phase": stage.phase,
        "region": stage.region,
        "apiUrl": service.api_url,
        "apiId": service.api.id,
        "userPoolId": identity.user_pool.id,
        "userPoolClientIds": identity.client_ids(),
        "issuer": identity.issuer,
        "shardBucketName": storage.shard_bucket.bucket,
        "accessLogBucketName": storage.log_bucket.bucket,
        "auditBucketName": audit.bucket.bucket,
        "recordsKeyArn": keys.records_key.arn,
        "auditKeyArn": keys.audit_key.arn,
        "signingKeyArn": keys.signing_key.arn,
        "tableNames": {k: t.name for k, t in tables.tables.items()},
        "trailArn": audit.trail.arn,
        "trailLogGroupName": audit.log_group.name,
        "functionName": service.function.name,
        "webBucketName": web.bucket.bucket,
        "webUrl": pulumi.Output.concat(service.api_url, "/web/"),
        "alarmRetentionDays": log_retention_days(stage.audit_retention_years),
        "securityTopicArn": monitoring.topic.arn,
        "messagingKeyArn": messaging.key.arn,
        "homeserverUrl": messaging.client_url,
        "messagingDatabaseId": messaging.database.identifier,
        "messagingMediaBucketName": messaging.media_bucket.bucket,
        "notificationTopicArn": messaging.notification_topic.arn,
        "outboxDeadLetterQueueUrl": messaging.dead_letter_queue.url,
        "outboxDeadLetterQueueArn": messaging.dead_letter_queue.arn,
        "messagingAppserviceSecretArn": messaging.appservice_secret.arn,
        "messagingLoadBalancerArn": messaging.client_balancer.arn,
        "backupVaultName": backups.vault.name,
    }
