"""Verification against live deployments on the session moto server.

All three phase stacks, deployed through the emulator as one hub (the core and its two
layers), verify with zero failed checks: each layer with the core it references, the core
as the layers standing on it leave it (``infra.emulator.hub.verification_target``).
Switch-off tests then change one setting in the emulator (rotation off, public access
block removed or loosened, trail logging stopped, PITR off, MFA off, ...) and assert that
verify fails on exactly that check and nothing else changes; each restores the setting
in a ``finally`` block so the shared deployment stays compliant for other tests.

Tests marked ``aws_integration`` also run under ``--aws-backend=localstack``, with the
keys, buckets, roles and functions on LocalStack and the other services on moto.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console

from infra.emulator.hub import verification_target
from infra.stage import STACK_PHASES, Stage
from infra.verify import verify_stack
from infra.verify.clients import ClientFactory
from infra.verify.model import VerifyReport
from infra.verify.report import render_table

pytestmark = pytest.mark.integration

SWITCH_OFF_STACK = "phase1-specialist"


@pytest.fixture(scope="session")
def verify_deployments(deployed_stacks: dict[str, Any]) -> dict[str, Any]:
    """The three stacks, deployed once per session by the shared ``deployed_stacks``."""
    return deployed_stacks


@pytest.fixture(scope="session")
def hub_targets(
    verify_deployments: dict[str, Any], hub_state_dir: Path
) -> dict[str, tuple[Any, Stage]]:
    """Each stack's hub view and hub stage, as ``hub verify`` checks it."""
    return {
        stack: verification_target(record, hub_state_dir)
        for stack, record in verify_deployments.items()
    }


def _describe_failures(report: VerifyReport) -> list[str]:
    return [f"{c.id} on {c.resource}: {c.evidence}" for c in report.failed]


@pytest.fixture(scope="module")
def verify_clients(moto_endpoint: str, aws_backend: Any) -> ClientFactory:
    """One client factory for the module: making boto3 clients costs more than using them.

    Under ``--aws-backend=localstack`` the services LocalStack covers go to LocalStack."""
    return ClientFactory(endpoint_url=moto_endpoint, endpoints=aws_backend.endpoints)


@pytest.fixture(scope="module")
def stack_reports(
    hub_targets: dict[str, tuple[Any, Stage]], verify_clients: ClientFactory
) -> dict[str, VerifyReport]:
    """Each stack's report, verified once for the module before any switch-off."""
    return {
        stack: verify_stack(view, stage=stage, clients=verify_clients)
        for stack, (view, stage) in hub_targets.items()
    }


@pytest.mark.aws_integration
@pytest.mark.aws_integration
@pytest.mark.parametrize("stack", list(STACK_PHASES))
def test_deployed_stack_verifies_with_zero_failed_checks(
    stack: str, stack_reports: dict[str, VerifyReport]
) -> None:
    report = stack_reports[stack]
    assert report.failed == [], _describe_failures(report)
    assert report.passed
    ids = {c.id for c in report.checks}
    # every area was checked against the live deployment
    for area in (
        "keys.",
        "buckets.",
        "trail.",
        "dynamodb.",
        "cognito.",
        "api.",
        "lambda.",
        "logs.",
    ):
        assert any(i.startswith(area) for i in ids), area


def test_verify_makes_its_own_clients_for_an_endpoint(
    hub_targets: dict[str, tuple[Any, Stage]], moto_endpoint: str
) -> None:
    """The public entry point, as the CLI calls it: a record and an endpoint URL."""
    view, stage = hub_targets[SWITCH_OFF_STACK]
    report = verify_stack(view, stage=stage, endpoint_url=moto_endpoint)
    assert report.passed
    assert report.endpoint == moto_endpoint


@pytest.mark.aws_integration
@pytest.mark.aws_integration
def test_gap_evidence_is_labelled(
    verify_deployments: dict[str, Any],
    stack_reports: dict[str, VerifyReport],
    verify_clients: ClientFactory,
) -> None:
    """Where the record carries a gap, evidence says the declared value was checked."""
    record = verify_deployments[SWITCH_OFF_STACK]
    tls = stack_reports[SWITCH_OFF_STACK].result("api.tls_policy", record.outputs["apiId"])
    live_policy = (
        verify_clients("apigateway")
        .get_rest_api(restApiId=record.outputs["apiId"])
        .get("securityPolicy")
    )
    if live_policy is None:
        assert "as declared (emulator gap" in tls.evidence
    else:
        assert "(live)" in tls.evidence


def test_verify_on_the_emulator_asks_moto_for_nothing_it_lacks(
    hub_targets: dict[str, tuple[Any, Stage]],
    verify_clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """moto (in this process) logs a traceback for every action it has not implemented
    (``list_backup_selections`` was one, about a dozen at each ``make run``): verifying
    the three stacks on the emulator makes none, and the backup check still passes on
    the declared selection the record's gap keeps."""
    with caplog.at_level(logging.ERROR, logger="werkzeug"):
        reports = {
            stack: verify_stack(view, stage=stage, clients=verify_clients)
            for stack, (view, stage) in hub_targets.items()
        }
    errors = [r.getMessage() + str(r.exc_info and r.exc_info[1]) for r in caplog.records]
    assert not [e for e in errors if "not been implemented" in e], errors
    for stack, report in reports.items():
        assert report.passed, (stack, _describe_failures(report))
        coverage = [c for c in report.checks if c.id == "backup.plan_coverage"]
        assert all("selection as declared (emulator gap" in c.evidence for c in coverage)
    assert any(c.id == "backup.plan_coverage" for r in reports.values() for c in r.checks)


def test_federation_follows_the_phase(stack_reports: dict[str, VerifyReport]) -> None:
    """Phase 2's layer puts its providers on the core's pool: while it stands, the core's
    pool is checked for them too (and for nothing else)."""
    [p1] = [c for c in stack_reports["phase1-specialist"].checks if c.id == "cognito.federation"]
    [p2] = [
        c for c in stack_reports["phase2-hospital-authority"].checks if c.id == "cognito.federation"
    ]
    assert p1.resource == p2.resource  # one pool
    assert "HospitalAuthority (SAML)" in p1.evidence
    assert "HospitalAuthority (SAML)" in p2.evidence


def test_intake_channel_follows_the_layers(stack_reports: dict[str, VerifyReport]) -> None:
    """The layers put intake's clients on the core's one pool (phase 2's two and the one
    phase 3 adds): every stack's check expects all three, and each passes."""
    checks = [
        next(c for c in stack_reports[stack].checks if c.id == "cognito.intake_channel")
        for stack in STACK_PHASES
    ]
    assert len({c.resource for c in checks}) == 1  # one pool
    for check in checks:
        assert check.status == "pass", check.evidence
        assert "3 intake client(s)" in check.evidence


def test_the_core_alone_expects_no_provider(
    verify_deployments: dict[str, Any], tmp_path: Path
) -> None:
    """Without a layer deployed, the core's stage lists no provider: the providers phase 2
    put on the pool would fail the core's check (so a removed layer must take them)."""
    from infra.emulator.hub import hub_stage

    record = verify_deployments["phase1-specialist"]
    record.save(tmp_path)  # a state dir holding the core only
    assert hub_stage("phase1-specialist", tmp_path).federation == ()


def test_table_shows_the_verdict(stack_reports: dict[str, VerifyReport]) -> None:
    """The written reports (JSON, Markdown, HTML, PDF, history) are tested in
    tests/infra/compliance; here the terminal table of a live report."""
    console = Console(record=True, width=160)
    render_table(stack_reports[SWITCH_OFF_STACK], console)
    assert f"{SWITCH_OFF_STACK}: verified" in console.export_text()


def test_declared_key_specs_are_the_baseline(verify_deployments: dict[str, Any]) -> None:
    """The keys the program declares are what keys.spec_and_usage demands."""
    from infra.verify.baseline import KEY_SPECS

    names = {"records": "keys-records", "audit": "keys-audit", "signing": "keys-ledger-signing"}
    for record in [verify_deployments["phase1-specialist"]]:  # the hub's keys: the core's
        declared = {r.name: r.inputs for r in record.resources if r.type == "aws:kms/key:Key"}
        for label, name in names.items():
            spec = (declared[name]["customerMasterKeySpec"], declared[name]["keyUsage"])
            assert spec == KEY_SPECS[label], (record.stack, name)


# ------------------------------------------------------------------ switch-offs


def _statuses(report: VerifyReport) -> dict[tuple[str, str], str]:
    return {(c.id, c.resource): c.status for c in report.checks}


@pytest.fixture(scope="module")
def baseline(stack_reports: dict[str, VerifyReport]) -> VerifyReport:
    """The switch-off stack's report before any switch-off: compliant."""
    report = stack_reports[SWITCH_OFF_STACK]
    assert report.failed == [], _describe_failures(report)
    return report


def _switch_off(
    target: tuple[Any, Stage],
    clients: ClientFactory,
    baseline: VerifyReport,
    mutate: Callable[[ClientFactory], None],
    restore: Callable[[ClientFactory], None],
) -> VerifyReport:
    """The report after ``mutate``. ``restore`` runs whatever happens, and must bring
    every check back to the baseline."""
    record, stage = target
    try:
        mutate(clients)
        after = verify_stack(record, stage=stage, clients=clients)
    finally:
        restore(clients)
    restored = verify_stack(record, stage=stage, clients=clients)
    assert _statuses(restored) == _statuses(baseline)
    return after


def _changed(before: VerifyReport, after: VerifyReport) -> dict[tuple[str, str], str]:
    old = _statuses(before)
    return {key: status for key, status in _statuses(after).items() if old.get(key) != status}


ALL_FLAGS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


# The functions beside the API's, named after the stack prefix (the triggers in
# infra/components/identity.py, messaging's in infra/components/messaging.py).
TRIGGERS = ("pre-sign-up", "pre-token")
MESSAGING_FUNCTIONS = ("appservice", "outbox-dispatcher")


def _switch_offs(
    outputs: dict[str, Any],
) -> Iterator[tuple[str, Any, Any, str, str | tuple[str, ...]]]:
    """(name, mutate, restore, check id, the resource or resources it fails) for each
    switch-off."""
    records_key = outputs["recordsKeyArn"]
    shards = outputs["shardBucketName"]
    trail = outputs["trailArn"]
    table = outputs["tableNames"]["records"]
    pool = outputs["userPoolId"]
    function = outputs["functionName"]
    prefix = function.removesuffix("-api")
    log_group = f"/aws/lambda/{function}"
    api_id = outputs["apiId"]
    client = (outputs.get("userPoolClientIds") or [""])[0]
    yield (
        "rotation off",
        lambda c: c("kms").disable_key_rotation(KeyId=records_key),
        lambda c: c("kms").enable_key_rotation(KeyId=records_key, RotationPeriodInDays=365),
        "keys.rotation_enabled",
        f"records key {records_key}",
    )
    yield (
        "public access block removed",
        lambda c: c("s3").delete_public_access_block(Bucket=shards),
        lambda c: c("s3").put_public_access_block(
            Bucket=shards, PublicAccessBlockConfiguration=ALL_FLAGS
        ),
        "buckets.public_access_block",
        shards,
    )
    yield (
        "public access block loosened",
        lambda c: c("s3").put_public_access_block(
            Bucket=shards,
            PublicAccessBlockConfiguration={**ALL_FLAGS, "RestrictPublicBuckets": False},
        ),
        lambda c: c("s3").put_public_access_block(
            Bucket=shards, PublicAccessBlockConfiguration=ALL_FLAGS
        ),
        "buckets.public_access_block",
        shards,
    )
    yield (
        "trail logging stopped",
        lambda c: c("cloudtrail").stop_logging(Name=trail),
        lambda c: c("cloudtrail").start_logging(Name=trail),
        "trail.logging",
        trail,
    )
    yield (
        "PITR off",
        lambda c: c("dynamodb").update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
        ),
        lambda c: c("dynamodb").update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        ),
        "dynamodb.pitr",
        table,
    )
    yield (
        "MFA off",
        lambda c: c("cognito-idp").set_user_pool_mfa_config(
            UserPoolId=pool, MfaConfiguration="OFF"
        ),
        lambda c: c("cognito-idp").set_user_pool_mfa_config(
            UserPoolId=pool, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
        ),
        "cognito.mfa_on",
        pool,
    )
    yield (
        "users may write their institution",
        lambda c: _client_writes(c, pool, client, ["email", "name", "custom:institution_id"]),
        lambda c: _client_writes(c, pool, client, None),
        "cognito.client_write_attributes",
        pool,
    )
    yield (
        "deletion protection off",
        lambda c: c("dynamodb").update_table(TableName=table, DeletionProtectionEnabled=False),
        lambda c: c("dynamodb").update_table(TableName=table, DeletionProtectionEnabled=True),
        "dynamodb.deletion_protection",
        table,
    )
    yield (
        "versioning suspended",
        lambda c: c("s3").put_bucket_versioning(
            Bucket=shards, VersioningConfiguration={"Status": "Suspended"}
        ),
        lambda c: c("s3").put_bucket_versioning(
            Bucket=shards, VersioningConfiguration={"Status": "Enabled"}
        ),
        "buckets.versioning",
        shards,
    )
    yield (
        "function made public",
        lambda c: c("lambda").add_permission(
            FunctionName=function,
            StatementId="switch-off-public",
            Action="lambda:InvokeFunction",
            Principal="*",
        ),
        lambda c: c("lambda").remove_permission(
            FunctionName=function, StatementId="switch-off-public"
        ),
        "lambda.no_public_policy",
        function,
    )
    yield (
        "log retention removed",
        lambda c: c("logs").delete_retention_policy(logGroupName=log_group),
        lambda c: c("logs").put_retention_policy(logGroupName=log_group, retentionInDays=365),
        "logs.encrypted_retained",
        log_group,
    )
    saved: dict[str, Any] = {}

    def give_root_decrypt(c: ClientFactory) -> None:
        kms = c("kms")
        saved["key_policy"] = kms.get_key_policy(KeyId=records_key, PolicyName="default")["Policy"]
        policy = json.loads(saved["key_policy"])
        root = f"arn:aws:iam::{records_key.split(':')[4]}:root"
        policy["Statement"].append(
            {
                "Sid": "SwitchOffRootDecrypts",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        )
        kms.put_key_policy(KeyId=records_key, PolicyName="default", Policy=json.dumps(policy))

    def restore_key_policy(c: ClientFactory) -> None:
        if "key_policy" in saved:
            c("kms").put_key_policy(
                KeyId=records_key, PolicyName="default", Policy=saved["key_policy"]
            )

    yield (
        "root may decrypt",
        give_root_decrypt,
        restore_key_policy,
        "keys.policy_root_admin_only",
        f"records key {records_key}",
    )

    def unbind_trust(c: ClientFactory) -> None:
        iam = c("iam")
        role = c("lambda").get_function_configuration(FunctionName=function)["Role"]
        saved["role"] = role.rsplit("/", 1)[-1]
        saved["trust"] = iam.get_role(RoleName=saved["role"])["Role"]["AssumeRolePolicyDocument"]
        document = (
            saved["trust"] if isinstance(saved["trust"], dict) else json.loads(saved["trust"])
        )
        document = json.loads(json.dumps(document))
        for statement in document["Statement"]:
            statement.pop("Condition", None)
        iam.update_assume_role_policy(RoleName=saved["role"], PolicyDocument=json.dumps(document))

    def restore_trust(c: ClientFactory) -> None:
        if "trust" in saved:
            trust = saved["trust"]
            c("iam").update_assume_role_policy(
                RoleName=saved["role"],
                PolicyDocument=trust if isinstance(trust, str) else json.dumps(trust),
            )

    # Messaging's functions run as the API's service role: its trust is theirs too.
    yield (
        "service trust unbound",
        unbind_trust,
        restore_trust,
        "lambda.role_trust_bound_to_source",
        (function, *(f"{prefix}-{name}" for name in MESSAGING_FUNCTIONS)),
    )

    def narrow_function_events(c: ClientFactory) -> None:
        ct = c("cloudtrail")
        selectors = ct.get_event_selectors(TrailName=trail)["AdvancedEventSelectors"]
        saved["selectors"] = selectors
        narrowed = json.loads(json.dumps(selectors))
        for selector in narrowed:
            for field in selector["FieldSelectors"]:
                if field["Field"] == "resources.ARN" and any(
                    ":function:" in v for v in field.get("StartsWith", [])
                ):
                    # every function but the API's (the triggers, messaging's application
                    # service and dispatcher): the API function's invocations go unrecorded
                    arn_prefix = field.pop("StartsWith")[0]
                    field["Equals"] = [
                        f"{arn_prefix}{name}" for name in (*TRIGGERS, *MESSAGING_FUNCTIONS)
                    ]
        ct.put_event_selectors(TrailName=trail, AdvancedEventSelectors=narrowed)

    def restore_selectors(c: ClientFactory) -> None:
        if "selectors" in saved:
            c("cloudtrail").put_event_selectors(
                TrailName=trail, AdvancedEventSelectors=saved["selectors"]
            )

    yield (
        "API function invocations unrecorded",
        narrow_function_events,
        restore_selectors,
        "trail.function_events",
        function,
    )

    def stage_arn(c: ClientFactory) -> str:
        meta = c("apigateway").meta
        return f"arn:{meta.partition}:apigateway:{meta.region_name}::/restapis/{api_id}/stages/v1"

    def detach_web_acl(c: ClientFactory) -> None:
        wafv2 = c("wafv2")
        arn = stage_arn(c)
        saved["web_acl"] = wafv2.get_web_acl_for_resource(ResourceArn=arn)["WebACL"]["ARN"]
        wafv2.disassociate_web_acl(ResourceArn=arn)

    def reattach_web_acl(c: ClientFactory) -> None:
        if "web_acl" in saved:
            c("wafv2").associate_web_acl(WebACLArn=saved["web_acl"], ResourceArn=stage_arn(c))

    yield (
        "web ACL detached (phase 1)",
        detach_web_acl,
        reattach_web_acl,
        "api.waf_attached",
        f"{api_id} stage v1",
    )

    audit_bucket = outputs.get("auditBucketName", "")

    def drop_lifecycle(c: ClientFactory) -> None:
        s3 = c("s3")
        saved["lifecycle"] = s3.get_bucket_lifecycle_configuration(Bucket=audit_bucket)["Rules"]
        s3.delete_bucket_lifecycle(Bucket=audit_bucket)

    def restore_lifecycle(c: ClientFactory) -> None:
        if "lifecycle" in saved:
            c("s3").put_bucket_lifecycle_configuration(
                Bucket=audit_bucket, LifecycleConfiguration={"Rules": saved["lifecycle"]}
            )

    yield (
        "audit lifecycle removed",
        drop_lifecycle,
        restore_lifecycle,
        "buckets.audit_lifecycle",
        audit_bucket,
    )

    vault = outputs.get("backupVaultName", "")

    def unlock_vault(c: ClientFactory) -> None:
        backup = c("backup")
        saved["vault"] = backup.describe_backup_vault(BackupVaultName=vault)
        backup.delete_backup_vault_lock_configuration(BackupVaultName=vault)

    def relock_vault(c: ClientFactory) -> None:
        if "vault" in saved:
            c("backup").put_backup_vault_lock_configuration(
                BackupVaultName=vault,
                MinRetentionDays=saved["vault"]["MinRetentionDays"],
                MaxRetentionDays=saved["vault"]["MaxRetentionDays"],
            )

    yield ("backup vault lock removed", unlock_vault, relock_vault, "backup.plan_coverage", vault)

    trail_group = outputs.get("trailLogGroupName", "")
    sg_filter = "security-group-changes"  # CIS 4.10

    def drop_cis_filter(c: ClientFactory) -> None:
        # Every filter for the event class (the shared session account may hold another
        # deployment's too): the log group no longer counts security-group changes.
        logs = c("logs")
        found = [
            f
            for f in logs.describe_metric_filters(logGroupName=trail_group)["metricFilters"]
            if f["filterName"].endswith(sg_filter)
        ]
        assert found, f"no {sg_filter} filter on {trail_group}"
        saved["cis_filter"] = found
        for f in found:
            logs.delete_metric_filter(logGroupName=trail_group, filterName=f["filterName"])

    def restore_cis_filter(c: ClientFactory) -> None:
        for f in saved.get("cis_filter", []):
            c("logs").put_metric_filter(
                logGroupName=trail_group,
                filterName=f["filterName"],
                filterPattern=f["filterPattern"],
                metricTransformations=f["metricTransformations"],
            )

    yield (
        "CIS filter deleted",
        drop_cis_filter,
        restore_cis_filter,
        "monitoring.cis_metric_alarms",
        trail_group,
    )

    def data_trace(value: str) -> Callable[[ClientFactory], None]:
        def patch(c: ClientFactory) -> None:
            c("apigateway").update_stage(
                restApiId=api_id,
                stageName="v1",
                patchOperations=[
                    {"op": "replace", "path": "/*/*/logging/dataTrace", "value": value}
                ],
            )

        return patch

    yield (
        "data trace on",
        data_trace("true"),
        data_trace("false"),
        "api.no_data_trace",
        f"{api_id} stage v1",
    )
    yield from _messaging_switch_offs(outputs)


def _messaging_switch_offs(outputs: dict[str, Any]) -> Iterator[tuple[str, Any, Any, str, str]]:
    """The homeserver's database, its load balancer and its configuration."""
    database = outputs["messagingDatabaseId"]
    balancer = outputs["messagingLoadBalancerArn"]
    # The hub's one homeserver is the core's: named after the core's prefix (that of the
    # API function every stack's outputs name), whichever stack is verified.
    prefix = str(outputs["functionName"]).removesuffix("-api")
    family = f"{prefix}-homeserver"
    parameters = f"{prefix}-messaging-db"

    def public(value: bool) -> Callable[[ClientFactory], None]:
        return lambda c: c("rds").modify_db_instance(
            DBInstanceIdentifier=database, PubliclyAccessible=value, ApplyImmediately=True
        )

    yield (
        "database made public",
        public(True),
        public(False),
        "messaging.database_not_public",
        database,
    )

    def force_ssl(value: str) -> Callable[[ClientFactory], None]:
        return lambda c: c("rds").modify_db_parameter_group(
            DBParameterGroupName=parameters,
            Parameters=[
                {
                    "ParameterName": "rds.force_ssl",
                    "ParameterValue": value,
                    "ApplyMethod": "immediate",
                }
            ],
        )

    yield (
        "database accepts plain text",
        force_ssl("0"),
        force_ssl("1"),
        "messaging.database_requires_tls",
        database,
    )

    def ssl_policy(policy: str) -> Callable[[ClientFactory], None]:
        def patch(c: ClientFactory) -> None:
            elbv2 = c("elbv2")
            (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
            elbv2.modify_listener(ListenerArn=listener["ListenerArn"], SslPolicy=policy)

        return patch

    yield (
        "listener allows TLS 1.2",
        ssl_policy("ELBSecurityPolicy-TLS-1-2-2017-01"),
        ssl_policy("ELBSecurityPolicy-TLS13-1-3-2021-06"),
        "messaging.listener_tls13",
        f"{balancer.rsplit('/', 2)[-2] if balancer else ''}:443",
    )
    saved_definition: dict[str, Any] = {}
    keep = ("family", "requiresCompatibilities", "networkMode", "cpu", "memory")

    def open_federation(c: ClientFactory) -> None:
        ecs = c("ecs")
        definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        saved_definition.update(definition)
        containers = json.loads(json.dumps(definition["containerDefinitions"]))
        for variable in containers[0]["environment"]:
            if variable["name"] == "HUB_HOMESERVER_CONFIG":
                config = json.loads(variable["value"])
                del config["federation_domain_whitelist"]  # Synapse's default: everyone
                variable["value"] = json.dumps(config)
        ecs.register_task_definition(
            containerDefinitions=containers, **{k: definition[k] for k in keep if k in definition}
        )

    def close_federation(c: ClientFactory) -> None:
        # As a redeploy of the program does: a new revision with the declared definition.
        if saved_definition:
            c("ecs").register_task_definition(
                containerDefinitions=saved_definition["containerDefinitions"],
                **{k: saved_definition[k] for k in keep if k in saved_definition},
            )

    yield (
        "federation opened",
        open_federation,
        close_federation,
        "messaging.federation_closed",
        family,
    )


SWITCH_OFF_NAMES = [
    s[0]
    for s in _switch_offs(
        {
            "recordsKeyArn": "",
            "shardBucketName": "",
            "trailArn": "",
            "tableNames": {"records": ""},
            "userPoolId": "",
            "functionName": "",
            "apiId": "",
            "userPoolClientIds": [""],
            "messagingDatabaseId": "",
            "messagingLoadBalancerArn": "",
        }
    )
]

_SAVED_CLIENTS: dict[str, dict[str, Any]] = {}
_CLIENT_SETTINGS = (
    "ClientName",
    "ExplicitAuthFlows",
    "AllowedOAuthFlows",
    "AllowedOAuthFlowsUserPoolClient",
    "AllowedOAuthScopes",
    "CallbackURLs",
    "SupportedIdentityProviders",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
    "AuthSessionValidity",
    "ReadAttributes",
    "WriteAttributes",
)


def _client_writes(clients: ClientFactory, pool: str, client: str, write: list[str] | None) -> None:
    """Set the client's write attributes (None: put back what it had). UpdateUserPoolClient
    resets what it is not given, so every setting is passed along."""
    cognito = clients("cognito-idp")
    if client not in _SAVED_CLIENTS:
        described = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)
        _SAVED_CLIENTS[client] = {
            k: v for k, v in described["UserPoolClient"].items() if k in _CLIENT_SETTINGS
        }
    settings = dict(_SAVED_CLIENTS[client])
    if write is not None:
        settings["WriteAttributes"] = write
    cognito.update_user_pool_client(UserPoolId=pool, ClientId=client, **settings)


@pytest.mark.aws_integration
@pytest.mark.parametrize("name", SWITCH_OFF_NAMES)
def test_switch_off_fails_exactly_that_check(
    name: str,
    hub_targets: dict[str, tuple[Any, Stage]],
    verify_clients: ClientFactory,
    baseline: VerifyReport,
) -> None:
    target = hub_targets[SWITCH_OFF_STACK]
    [(_, mutate, restore, check_id, resources)] = [
        s for s in _switch_offs(dict(target[0].outputs)) if s[0] == name
    ]
    after = _switch_off(target, verify_clients, baseline, mutate, restore)
    expected = {
        (check_id, r): "fail" for r in ((resources,) if isinstance(resources, str) else resources)
    }
    assert _changed(baseline, after) == expected, _describe_failures(after)


# ------------------------------------------------------------------ a bare deployment


class _BareRecord:
    """A record for resources made by hand with no security settings at all."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.stack = "phase1-specialist"
        self.outputs = outputs
        self.resources: list[Any] = []
        self.gaps: list[Any] = []


def test_bare_resources_fail_every_check_that_reads_them(moto_endpoint: str) -> None:
    """Resources created with AWS defaults only: each check fails on what AWS reports as
    absent (no policy, no public access block...), never on an unreadable call."""
    # A separate moto account keeps these resources out of the shared deployment.
    sts = boto3.session.Session().client("sts", endpoint_url=moto_endpoint)
    credentials = sts.assume_role(
        RoleArn="arn:aws:iam::210099990001:role/verify-bare", RoleSessionName="verify-tests"
    )["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="ap-east-1",
    )
    clients = ClientFactory(endpoint_url=moto_endpoint, session=session)
    key = clients("kms").create_key()["KeyMetadata"]["Arn"]
    clients("s3").create_bucket(
        Bucket="verify-bare-bucket", CreateBucketConfiguration={"LocationConstraint": "ap-east-1"}
    )
    clients("dynamodb").create_table(
        TableName="verify-bare-table",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    clients("logs").create_log_group(logGroupName="/verify/bare")
    record = _BareRecord(
        {
            "region": "ap-east-1",
            "recordsKeyArn": key,
            "auditKeyArn": key,
            "shardBucketName": "verify-bare-bucket",
            "tableNames": {"records": "verify-bare-table"},
            "trailLogGroupName": "/verify/bare",
        }
    )
    report = verify_stack(record, clients=clients)
    failed = {(c.id, c.resource) for c in report.failed}
    records_key = f"records key {key}"
    for expected in [
        ("keys.rotation_enabled", records_key),
        ("keys.policy_root_admin_only", records_key),  # the default policy: root kms:*
        ("buckets.default_encryption", "verify-bare-bucket"),
        ("buckets.versioning", "verify-bare-bucket"),
        ("buckets.public_access_block", "verify-bare-bucket"),
        ("buckets.denies_insecure_transport", "verify-bare-bucket"),
        ("buckets.requires_sse_kms_puts", "verify-bare-bucket"),
        ("buckets.access_logging", "verify-bare-bucket"),
        ("dynamodb.customer_key_encryption", "verify-bare-table"),
        ("dynamodb.pitr", "verify-bare-table"),
        ("dynamodb.deletion_protection", "verify-bare-table"),
        ("logs.encrypted_retained", "/verify/bare"),
    ]:
        assert expected in failed, expected
    assert not any("could not read" in c.evidence for c in report.checks), [
        c.evidence for c in report.checks if "could not read" in c.evidence
    ]
    passed = {c.id for c in report.checks if c.status == "pass"}
    assert passed <= {"keys.enabled", "keys.spec_and_usage", "buckets.ownership_enforced"}
