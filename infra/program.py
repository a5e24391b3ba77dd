"""The Pulumi program: one hub, declared as a core and layers, from a Stage.

``declare`` is called by the entry point (``infra/__main__.py``) under the Pulumi engine,
and by the preview, the tests and the emulator under Pulumi's mock runtime. It takes a
parsed, validated ``Stage`` and never reads configuration itself.

Phase 1's stack (``phase1-specialist``) declares the core (:func:`declare_core`): keys,
shard storage, tables, audit trail, user pool, the sharing service and its API, the
hub's one messaging homeserver (and the functions beside it), monitoring. Phases 2 and 3
declare a layer (:func:`declare_layer`): they read the core's outputs through a
``pulumi.StackReference`` and add only what their phase adds (phase 2: the identity
providers and their app client on the core pool), their own alarms, and the layer's
switch in the core's institutions table (the data that says the phase is on). A layer
never declares a pool, a key, a table, an API or a homeserver of its own; destroying it
turns its phase off again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from app.intake.scopes import INTAKE_WRITE_SCOPE
from infra.components.audit_trail import AuditTrail, AuditTrailArgs, log_retention_days, trail_arn
from infra.components.backup import Backups, BackupsArgs
from infra.components.identity import (
    ACCESS_TOKEN_MINUTES,
    Federation,
    FederationArgs,
    Identity,
    IdentityArgs,
)
from infra.components.intake import Intake, IntakeArgs, IntakeSystemArgs
from infra.components.keys import Keys, KeysArgs
from infra.components.layer_switch import LayerSwitch, LayerSwitchArgs
from infra.components.messaging import Messaging, MessagingArgs
from infra.components.monitoring import LAYER_ALARMS, Monitoring, MonitoringArgs
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
from infra.stage import CORE_STACK, Stage

# Operational logs (Lambda, API access) are kept a year; the trail's own group follows
# the audit retention.
OPERATIONAL_LOG_RETENTION_DAYS = 365
# The Matrix server name (doctors are @doc-<reg no>:hub.example). The hub has one
# homeserver, the core's, so its balancers' hostnames name no phase.
MESSAGING_SERVER_NAME = "hub.example"


# The core's outputs a layer re-exports unchanged (so every stack names the pool, its
# clients and the API, as the local.json contract says), and reads itself.
CORE_OUTPUTS = (
    "region",
    "apiUrl",
    "apiId",
    "apiStageArn",
    "userPoolId",
    "userPoolArn",
    "issuer",
    "shardBucketName",
    "accessLogBucketName",
    "auditBucketName",
    "recordsKeyArn",
    "auditKeyArn",
    "signingKeyArn",
    "tableNames",
    "trailArn",
    "trailLogGroupName",
    "functionName",
    "webBucketName",
    "webUrl",
    "alarmRetentionDays",
    "backupVaultName",
    "userPoolDomain",
    # The one homeserver and what the service's functions reach beside it (the core's
    # security topic is the one the service publishes its alarms to).
    "securityTopicArn",
    "messagingKeyArn",
    "homeserverUrl",
    "messagingDatabaseId",
    "messagingMediaBucketName",
    "notificationTopicArn",
    "outboxDeadLetterQueueUrl",
    "outboxDeadLetterQueueArn",
    "messagingAppserviceSecretArn",
    "messagingLoadBalancerArn",
)


def declare(
    stage: Stage, oidc_client_secrets: Mapping[str, pulumi.Input[str]] | None = None
) -> dict[str, pulumi.Input[object]]:
    """Declare ``stage``'s stack (the core for phase 1, a layer above) and return its
    outputs."""
    if stage.is_layer:
        return declare_layer(stage, oidc_client_secrets)
    return declare_core(stage, oidc_client_secrets)


def declare_layer(
    stage: Stage, oidc_client_secrets: Mapping[str, pulumi.Input[str]] | None = None
) -> dict[str, pulumi.Input[object]]:
    """Declare phase 2's or 3's layer over the core (read through a StackReference)."""
    core = pulumi.StackReference(CORE_STACK)

    def from_core(name: str) -> pulumi.Output[Any]:
        return core.require_output(name)

    caller = aws.get_caller_identity_output()
    prefix = stage.name_prefix
    tables = from_core("tableNames")
    client_ids: pulumi.Input[object] = from_core("userPoolClientIds")
    layer_clients: list[pulumi.Input[str]] = []
    if stage.phase == 2 and stage.federation:
        federation = Federation(
            "federation",
            FederationArgs(
                name_prefix=prefix,
                user_pool_id=from_core("userPoolId"),
                callback_urls=stage.oauth_callback_urls,
                federation=stage.federation,
                oidc_client_secrets=dict(oidc_client_secrets or {}),
            ),
        )
        client_ids = pulumi.Output.all(from_core("userPoolClientIds"), federation.client.id).apply(
            lambda values: [*values[0], values[1]]
        )
        layer_clients.append(federation.client.id)
    # Community-care intake (phase 2 on): phase 2's layer declares the pool's resource
    # server ``hub-intake`` and its file's clinic systems' clients; phase 3's layer adds the
    # clients of the systems its file adds, under phase 2's resource server (the rollout
    # order has phase 2 standing first). The core's API already admits the scope.
    intake = (
        Intake(
            "intake",
            IntakeArgs(
                name_prefix=prefix,
                user_pool_id=from_core("userPoolId"),
                systems=[IntakeSystemArgs(s.name, s.institution_id) for s in stage.intake_systems],
                resource_server=stage.phase == 2,
            ),
        )
        if stage.features.community_care_intake and (stage.phase == 2 or stage.intake_systems)
        else None
    )
    # No web ACL here: the core's (main: a web ACL in every phase) already guards the one
    # API stage, and a stage takes one web ACL.
    LayerSwitch(
        "switch",
        LayerSwitchArgs(
            stack=stage.stack,
            phase=stage.phase,
            institutions_table_name=tables.apply(lambda t: str(t["institutions"])),
            features=stage.features,
            cohort=stage.institution_ids(),
            client_ids=layer_clients,
            intake_client_ids=[c.id for c in intake.clients.values()] if intake else [],
        ),
    )
    Monitoring(
        "monitoring",
        MonitoringArgs(
            name_prefix=prefix,
            account_id=caller.account_id,
            log_group_name=from_core("trailLogGroupName"),
            audit_key_arn=from_core("auditKeyArn"),
            subscription=stage.alarm_subscription,
            alarms=LAYER_ALARMS[stage.phase],
            describe=f"Phase {stage.phase} layer",
            part_prefix="layer",
        ),
    )
    outputs: dict[str, pulumi.Input[object]] = {name: from_core(name) for name in CORE_OUTPUTS}
    outputs.update(
        {
            "phase": stage.phase,
            "coreStack": CORE_STACK,
            "userPoolClientIds": client_ids,
        }
    )
    if intake is not None:
        domain = from_core("userPoolDomain")
        outputs.update(
            {
                "intakeClients": intake.outputs(),
                "intakeDomain": domain,
                # The core pool domain's token endpoint (client-credentials grant).
                "intakeTokenUrl": pulumi.Output.concat(
                    "https://", domain, f".auth.{stage.region}.amazoncognito.com", "/oauth2/token"
                ),
            }
        )
    return outputs


def declare_core(
    stage: Stage, oidc_client_secrets: Mapping[str, pulumi.Input[str]] | None = None
) -> dict[str, pulumi.Input[object]]:
    """Declare the core (phase 1's stack) and return the stack outputs."""
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
            client_hostname=f"matrix.{MESSAGING_SERVER_NAME}",
            appservice_hostname=f"appservice.{MESSAGING_SERVER_NAME}",
            service_role=service_role.role,
            lambda_bundle=stage.lambda_bundle,
            function_environment=service_environment(service_args),
            audit_key_arn=keys.audit_key.arn,
            security_topic_arn=monitoring.topic.arn,
            access_log_bucket=storage.log_bucket.id,
            log_retention_days=OPERATIONAL_LOG_RETENTION_DAYS,
        ),
    )
    # Messages are backed up as the records are: the homeserver database and its media.
    backups.cover("messaging", [messaging.database.arn, messaging.media_bucket.arn])
    # Community-care intake: the core's API declares POST /intake/messages with the intake
    # scope in every phase. API Gateway's authorizationScopes are plain strings, so the
    # method needs no resource server; until phase 2's layer declares ``hub-intake`` and
    # its clients on this pool, no token can carry the scope and the method admits nobody.
    service = SharingService(
        "service",
        dataclasses.replace(
            service_args,
            extra_environment=messaging.environment,
            intake_scopes=(INTAKE_WRITE_SCOPE,),
        ),
    )

    return {
        "phase": stage.phase,
        "region": stage.region,
        "apiUrl": service.api_url,
        "apiId": service.api.id,
        "apiStageArn": service.stage.arn,
        "userPoolArn": identity.user_pool.arn,
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
        # The pool's domain: its token endpoint is where phase 2's intake clients (the
        # client-credentials grant) get their tokens.
        "userPoolDomain": identity.domain.domain,
    }
