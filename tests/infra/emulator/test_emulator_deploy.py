"""All three phase stacks deploy through the emulator onto moto, with honest records.

The session fixture ``deployed_stacks`` deploys each stack once; these tests read the
records and the emulator itself, so a resource that was only recorded (not created)
would fail them. The ``aws_integration`` ones take their clients from ``aws_backend``, so
under ``--aws-backend=localstack`` they check the S3, KMS, IAM and Lambda resources on
LocalStack and the rest on moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.emulator import DeploymentRecord, deploy, load_record, supported_types
from infra.mockrun import run_program
from infra.stage import STACK_PHASES

STACKS = list(STACK_PHASES)
PHASE1 = "phase1-specialist"


def _client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, endpoint_url=endpoint, region_name="ap-east-1")


@pytest.mark.aws_integration
@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_resource_is_created_with_a_real_id(
    deployed_stacks: dict[str, DeploymentRecord], stack: str
) -> None:
    declared = {(r.type, r.name) for r in run_program(stack).custom_resources()}
    record = deployed_stacks[stack]
    recorded = {(r.type, r.name): r for r in record.resources}
    assert set(recorded) == declared
    assert all(r.id for r in record.resources)
    assert {t for t, _ in declared} <= set(supported_types())


@pytest.mark.aws_integration
@pytest.mark.parametrize("stack", STACKS)
def test_outputs_name_resources_that_exist_on_the_emulator(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any, stack: str
) -> None:
    out = deployed_stacks[stack].outputs
    s3 = aws_backend.client("s3")
    for bucket in (out["shardBucketName"], out["accessLogBucketName"], out["auditBucketName"]):
        s3.head_bucket(Bucket=bucket)
    kms = aws_backend.client("kms")
    for key in ("recordsKeyArn", "auditKeyArn", "signingKeyArn"):
        assert kms.describe_key(KeyId=out[key])["KeyMetadata"]["KeyState"] == "Enabled"
    ddb = aws_backend.client("dynamodb")
    for table in out["tableNames"].values():
        assert ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    # One hub: every stack names the core's pool and API (a layer re-exports them).
    pool = aws_backend.client("cognito-idp").describe_user_pool(UserPoolId=out["userPoolId"])
    assert pool["UserPool"]["Name"] == "hub-p1-doctors"
    api = aws_backend.client("apigateway").get_rest_api(restApiId=out["apiId"])
    assert api["name"] == "hub-p1-api"
    assert out["apiUrl"] == f"https://{out['apiId']}.execute-api.ap-east-1.amazonaws.com/v1"
    lam = aws_backend.client("lambda")
    assert lam.get_function(FunctionName=out["functionName"])["Configuration"]["FunctionName"]
    [function] = [
        r
        for r in deployed_stacks[PHASE1].of_type("aws:lambda/function:Function")
        if r.id == out["functionName"]
    ]
    role_arn = function.inputs["role"]
    role = aws_backend.client("iam").get_role(RoleName=role_arn.split("/")[-1])
    assert role["Role"]["Arn"] == role_arn
    trail = aws_backend.client("cloudtrail").get_trail_status(Name=out["trailArn"])
    assert trail["IsLogging"] is True


def test_phase_stacks_do_not_collide_in_one_emulator(
    deployed_stacks: dict[str, DeploymentRecord],
) -> None:
    ids: dict[tuple[str, str, str], str] = {}
    for stack, record in deployed_stacks.items():
        for r in record.resources:
            # A permission's id is its statement id within its function (the locator).
            key = (r.type, r.id, json.dumps(r.locator, sort_keys=True))
            assert key not in ids or ids[key] == stack, f"{key} deployed by two stacks"
            ids[key] = stack


@pytest.mark.aws_integration
def test_security_settings_reach_the_emulator(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any
) -> None:
    out = deployed_stacks["phase1-specialist"].outputs
    s3 = aws_backend.client("s3")
    shards = out["shardBucketName"]
    rule = s3.get_bucket_encryption(Bucket=shards)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == out["recordsKeyArn"]
    assert s3.get_bucket_versioning(Bucket=shards)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=shards)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    lock = s3.get_object_lock_configuration(Bucket=out["auditBucketName"])
    retention = lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Years"]) == ("COMPLIANCE", 7)
    kms = aws_backend.client("kms")
    assert kms.get_key_rotation_status(KeyId=out["recordsKeyArn"])["KeyRotationEnabled"]
    policy = json.loads(
        kms.get_key_policy(KeyId=out["recordsKeyArn"], PolicyName="default")["Policy"]
    )
    assert policy["Statement"][0]["Sid"] == "KeyAdministrationOnly"
    ddb = aws_backend.client("dynamodb")
    table = out["tableNames"]["records"]
    backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ddb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
    mfa = aws_backend.client("cognito-idp").get_user_pool_mfa_config(UserPoolId=out["userPoolId"])
    assert mfa["MfaConfiguration"] == "ON"


@pytest.mark.aws_integration
def test_conditional_bucket_policies_are_kept_as_declared_not_enforced(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any
) -> None:
    record = deployed_stacks["phase1-specialist"]
    shard_policy = record.resource("storage-shards-policy")
    declared = json.loads(shard_policy.inputs["policy"])
    assert "DenyInsecureTransport" in {s["Sid"] for s in declared["Statement"]}
    assert "DenyInsecureTransport" in shard_policy.state["statementsNotApplied"]
    gap = next(g for g in record.gaps if g.resource == "storage-shards-policy")
    assert "DenyInsecureTransport" in gap.not_enforced
    assert "buckets.denies_insecure_transport" in gap.covered_by
    # The emulator never saw the conditional Deny: over plain HTTP it would refuse every
    # request.
    s3 = aws_backend.client("s3")
    s3.put_object(Bucket=record.outputs["shardBucketName"], Key="probe", Body=b"synthetic")
    log_policy = json.loads(
        s3.get_bucket_policy(Bucket=record.outputs["accessLogBucketName"])["Policy"]
    )
    assert {s["Sid"] for s in log_policy["Statement"]} == {"S3ServerAccessLogDelivery"}


def test_one_hub_one_pool_one_set_of_keys_one_api_all_in_the_core(
    deployed_stacks: dict[str, DeploymentRecord],
) -> None:
    """The deployment records hold one user pool, one set of KMS keys and one REST API,
    all in the core's record; the layers hold only what their phase adds."""
    core_only = {
        "aws:cognito/userPool:UserPool": 1,
        "aws:kms/key:Key": 5,  # records, audit, ledger signing, backup vault, messaging
        "aws:apigateway/restApi:RestApi": 1,
        "aws:dynamodb/table:Table": 6,  # main added the patients table
        # the API, the two triggers; messaging's application service and dispatcher
        "aws:lambda/function:Function": 5,
        "aws:s3/bucket:Bucket": 5,  # shards, access logs, audit, web site, messaging media
        # the hub's one homeserver: its service, database, balancers and security groups
        "aws:ecs/service:Service": 1,
        "aws:rds/instance:Instance": 1,
        "aws:lb/loadBalancer:LoadBalancer": 2,
        "aws:ec2/securityGroup:SecurityGroup": 5,  # the balancers, tasks, database, endpoints
    }
    for type_token, count in core_only.items():
        holders = {
            stack: len(record.of_type(type_token))
            for stack, record in deployed_stacks.items()
            if record.of_type(type_token)
        }
        assert holders == {PHASE1: count}, type_token
    layer_types = {
        # the providers, their client and intake's resource server and clients
        "phase2-hospital-authority": {
            "aws:cognito/identityProvider:IdentityProvider",
            "aws:cognito/userPoolClient:UserPoolClient",
            "aws:cognito/resourceServer:ResourceServer",
        },
        # the web ACL is the core's (one per API stage, from phase 1); the intake clients
        # of the systems phase 3 adds, under phase 2's resource server
        "phase3-private-practice": {"aws:cognito/userPoolClient:UserPoolClient"},
    }
    alarms_and_switch = {
        "aws:sns/topic:Topic",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudwatch/logMetricFilter:LogMetricFilter",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:dynamodb/tableItem:TableItem",
    }
    for stack, added in layer_types.items():
        record = deployed_stacks[stack]
        assert {r.type for r in record.resources} == added | alarms_and_switch, stack
        assert record.outputs["userPoolId"] == deployed_stacks[PHASE1].outputs["userPoolId"]
        assert record.outputs["apiId"] == deployed_stacks[PHASE1].outputs["apiId"]
        for name in ("homeserverUrl", "messagingDatabaseId", "messagingLoadBalancerArn"):
            assert record.outputs[name] == deployed_stacks[PHASE1].outputs[name], (stack, name)


@pytest.mark.aws_integration
def test_gaps_are_recorded_with_a_covering_check(
    deployed_stacks: dict[str, DeploymentRecord],
) -> None:
    record = deployed_stacks[PHASE1]
    by_type: dict[str, set[str]] = {}
    for gap in record.gaps:
        assert gap.not_enforced and gap.reason and gap.covered_by, gap
        by_type.setdefault(gap.type, set()).add(gap.resource)
    names = {r.name for r in record.resources}
    assert all(resources <= names for resources in by_type.values())
    expected = {
        "aws:s3/bucketPolicy:BucketPolicy": {
            r.name for r in record.of_type("aws:s3/bucketPolicy:BucketPolicy")
        },
        "aws:kms/key:Key": {r.name for r in record.of_type("aws:kms/key:Key")},
        "aws:cloudtrail/trail:Trail": {"audit-trail"},
        "aws:apigateway/restApi:RestApi": {"service-api"},
        "aws:lambda/function:Function": {
            r.name for r in record.of_type("aws:lambda/function:Function")
        },
    }
    for type_token, resources in expected.items():
        assert by_type.get(type_token) == resources, type_token
    assert "identity-user-pool" in by_type["aws:cognito/userPool:UserPool"]
    assert "aws:wafv2/webAcl:WebAcl" in by_type  # the core's web ACL guards the one API


@pytest.mark.aws_integration
@pytest.mark.parametrize("stack", ["phase2-hospital-authority", "phase3-private-practice"])
def test_a_layers_gaps_are_its_own(
    deployed_stacks: dict[str, DeploymentRecord], stack: str
) -> None:
    record = deployed_stacks[stack]
    names = {r.name for r in record.resources}
    for gap in record.gaps:
        assert gap.not_enforced and gap.reason and gap.covered_by, gap
        assert gap.resource in names or gap.resource == "*", gap
    waf_gaps = {g.resource for g in record.gaps if g.type == "aws:wafv2/webAcl:WebAcl"}
    assert not waf_gaps  # the web ACL is the core's


@pytest.mark.aws_integration
def test_gaps_name_checks_that_exist(deployed_stacks: dict[str, DeploymentRecord]) -> None:
    from infra.policies.pack import BINDINGS

    rule_names = {b.name for b in BINDINGS}
    verify_source = "".join(p.read_text() for p in Path("infra/verify").glob("*.py"))
    tests_root = Path("tests")
    for record in deployed_stacks.values():
        for gap in record.gaps:
            for check in gap.covered_by:
                if check.startswith("tests/"):
                    path = check.split("::")[0].split(" ")[0]
                    assert (tests_root.parent / path).exists(), check
                    if "::" in check:
                        assert (
                            f"def {check.split('::')[1]}(" in (tests_root.parent / path).read_text()
                        ), check
                elif "." in check:
                    assert f'"{check}"' in verify_source, check
                else:
                    assert check in rule_names, check


def test_redeploy_updates_in_place_and_never_duplicates(
    deployed_stacks: dict[str, DeploymentRecord],
    moto_endpoint: str,
    hub_state_dir: Path,
    inventory: Callable[[str], dict[str, int]],
) -> None:
    first = deployed_stacks[PHASE1]
    # The audit bucket holds objects once the ledger archives heads; moto refuses any
    # Object Lock write to a bucket with objects, so a redeploy must not rewrite an
    # unchanged lock configuration.
    s3 = boto3.client("s3", region_name="ap-east-1", endpoint_url=moto_endpoint)
    s3.put_object(
        Bucket=first.outputs["auditBucketName"],
        Key="redeploy-probe/held",
        Body=b"synthetic",
        ChecksumAlgorithm="SHA256",
    )
    before = inventory(moto_endpoint)
    again = deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=hub_state_dir)
    assert inventory(moto_endpoint) == before
    assert {(r.type, r.name): r.id for r in again.resources} == {
        (r.type, r.name): r.id for r in first.resources
    }
    assert again.outputs == first.outputs


@pytest.mark.aws_integration
@pytest.mark.parametrize("stack", STACKS)
def test_record_json_holds_the_required_fields(
    deployed_stacks: dict[str, DeploymentRecord], hub_state_dir: Path, stack: str
) -> None:
    path = hub_state_dir / "deployments" / f"{stack}.json"
    data = json.loads(path.read_text())
    for key in (
        "stack",
        "outputs",
        "resources",
        "gaps",
        "deployed_at",
        "program_version",
        "release",
        "endpoint_url",
        "region",
        "account_id",
    ):
        assert key in data, key
    assert data["program_version"].startswith("0.")
    for resource in data["resources"]:
        assert {"type", "name", "component", "id", "protect", "inputs"} <= set(resource)
    protected = {r["name"] for r in data["resources"] if r["protect"]}
    components = {r["component"] for r in data["resources"]}
    if stack == PHASE1:
        assert {"keys-records", "storage-shards", "audit-bucket", "identity-user-pool"} <= protected
        assert components >= {"keys", "storage", "identity"}
        function = next(r for r in data["resources"] if r["type"] == "aws:lambda/function:Function")
        assert function["inputs"]["code"] == {"fileArchive": "build/lambda.zip"}
    else:  # a layer protects nothing of its own: the hub's data stores are the core's
        assert protected == set()
        assert {"switch", "monitoring"} <= components
    loaded = load_record(stack, hub_state_dir)
    assert loaded is not None and loaded.to_json() == data
