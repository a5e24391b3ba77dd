"""Whole-stack runs of the program under the mock runtime, one per phase stack."""

from __future__ import annotations

from collections import Counter

import pytest

from infra.config_source import read_stage_file
from infra.mockrun import PreviewMocks, ProgramRun, run_program
from infra.stage import STACK_PHASES, RegionRefused

STACKS = list(STACK_PHASES)


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {stack: run_program(stack) for stack in STACKS}


def counts(run: ProgramRun) -> Counter[str]:
    return Counter(r.type for r in run.custom_resources())


EXPECTED_EVERY_PHASE = {
    # records, audit, ledger signing, backup vault; and messaging's (database, media,
    # secrets, queue, topic)
    "aws:kms/key:Key": 5,
    "aws:kms/alias:Alias": 5,
    # shards, access logs, audit archive, the web client's site; and the homeserver's media
    "aws:s3/bucket:Bucket": 5,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 5,
    "aws:s3/bucketPolicy:BucketPolicy": 5,
    # the web client's site: four built files and config.json (infra/components/web_client.py)
    "aws:s3/bucketObjectv2:BucketObjectv2": 5,
    "aws:dynamodb/table:Table": 6,  # register, groups, records, ledger, institutions, patients
    "aws:cloudtrail/trail:Trail": 1,
    "aws:cognito/userPool:UserPool": 1,
    "aws:cognito/userGroup:UserGroup": 5,
    # the API, the two Cognito triggers; the application service and the dispatcher
    "aws:lambda/function:Function": 5,
    "aws:apigateway/restApi:RestApi": 1,
    "aws:apigateway/stage:Stage": 1,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 15,
    "aws:wafv2/webAcl:WebAcl": 1,
    "aws:wafv2/webAclAssociation:WebAclAssociation": 1,
    # security alarms; doctors' notifications
    "aws:sns/topic:Topic": 2,
    # messaging: the homeserver, its database, its two load balancers
    "aws:ecs/service:Service": 1,
    "aws:rds/instance:Instance": 1,
    "aws:lb/loadBalancer:LoadBalancer": 2,
    "aws:backup/vault:Vault": 1,
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": 1,
    "aws:backup/plan:Plan": 1,
    "aws:backup/selection:Selection": 1,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 4,  # AWS Backup's managed policies
}


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_declares_the_full_deployment(runs: dict[str, ProgramRun], stack: str) -> None:
    declared = counts(runs[stack])
    for typ, expected in EXPECTED_EVERY_PHASE.items():
        assert declared[typ] == expected, typ
    components = set(runs[stack].by_component())
    assert components == {
        "keys",
        "storage",
        "tables",
        "audit",
        "backup",
        "identity",
        "web",
        "service",
        "monitoring",
        "messaging",
    }


def test_federation_only_from_phase_2(runs: dict[str, ProgramRun]) -> None:
    """Phase 1: one native client. From phase 2: the providers, and a federated client
    of their own beside the native one (which never lists them)."""
    idp = "aws:cognito/identityProvider:IdentityProvider"
    client_type = "aws:cognito/userPoolClient:UserPoolClient"
    assert counts(runs["phase1-specialist"])[idp] == 0
    assert [c.name for c in runs["phase1-specialist"].of_type(client_type)] == [
        "identity-web-client"
    ]
    for stack in ("phase2-hospital-authority", "phase3-private-practice"):
        providers = runs[stack].of_type(idp)
        assert len(providers) == len(read_stage_file(stack)["hub:federation"]) > 0
        native = runs[stack].named("identity-web-client")
        federated = runs[stack].named("identity-federated-client")
        assert native.inputs["supportedIdentityProviders"] == ["COGNITO"]
        assert set(federated.inputs["supportedIdentityProviders"]) == {
            p.inputs["providerName"] for p in providers
        }
        assert len(runs[stack].outputs["userPoolClientIds"]) == 2


def test_waf_in_every_phase_and_self_registration_only_in_phase_3(
    runs: dict[str, ProgramRun],
) -> None:
    for stack, run in runs.items():
        phase3 = stack == "phase3-private-practice"
        assert run.of_type("aws:wafv2/webAcl:WebAcl"), stack
        assert run.of_type("aws:wafv2/webAclAssociation:WebAclAssociation"), stack
        pool = run.of_type("aws:cognito/userPool:UserPool")[0]
        admin_only = pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"]
        assert admin_only is not phase3, stack


def test_capacity_follows_the_stage(runs: dict[str, ProgramRun]) -> None:
    for run in runs.values():
        capacity = run.stage.capacity
        api = run.named("service-api-function")
        assert api.inputs["reservedConcurrentExecutions"] == capacity.lambda_reserved_concurrency
        settings = run.named("service-throttling").inputs["settings"]
        assert settings["throttlingRateLimit"] == capacity.api_throttle_rate_limit
        assert settings["throttlingBurstLimit"] == capacity.api_throttle_burst_limit


def test_phase_and_self_registration_reach_the_service(runs: dict[str, ProgramRun]) -> None:
    """Admission is data (the institutions table), never an environment variable."""
    for run in runs.values():
        env = run.named("service-api-function").inputs["environment"]["variables"]
        assert env["HUB_PHASE"] == str(run.stage.phase)
        assert env["HUB_SELF_REGISTRATION"] == str(run.stage.features.self_registration).lower()
        assert "HUB_ADMITTED_INSTITUTIONS" not in env
        assert env["HUB_TABLE_INSTITUTIONS"] == f"hub-p{run.stage.phase}-institutions"


@pytest.mark.parametrize("stack", STACKS)
def test_keys_audit_stores_tables_and_pool_are_protected(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs[stack]
    must_protect = ["aws:kms/key:Key", "aws:dynamodb/table:Table", "aws:cognito/userPool:UserPool"]
    for typ in must_protect:
        assert all(r.protect for r in run.of_type(typ)), typ
    assert run.named("audit-bucket").protect and run.named("storage-shards").protect


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(runs: dict[str, ProgramRun], stack: str) -> None:
    outputs = runs[stack].outputs
    for name in (
        "phase",
        "apiUrl",
        "userPoolId",
        "userPoolClientIds",
        "issuer",
        "shardBucketName",
        "auditBucketName",
        "recordsKeyArn",
        "auditKeyArn",
        "signingKeyArn",
        "tableNames",
        "trailArn",
    ):
        assert outputs.get(name), name
    assert outputs["phase"] == STACK_PHASES[stack]
    assert outputs["issuer"].endswith(outputs["userPoolId"])
    assert outputs["apiUrl"].startswith("https://")


# Types whose physical name is account- or region-unique.
NAMED_TYPES = {
    "aws:dynamodb/table:Table",
    "aws:iam/role:Role",
    "aws:lambda/function:Function",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:kms/alias:Alias",
    "aws:cloudtrail/trail:Trail",
    "aws:sns/topic:Topic",
    "aws:cognito/userPool:UserPool",
    "aws:apigateway/restApi:RestApi",
    "aws:wafv2/webAcl:WebAcl",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
}


def test_stacks_do_not_collide_on_physical_names(runs: dict[str, ProgramRun]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for stack, run in runs.items():
        for resource in run.custom_resources():
            if resource.type == "aws:s3/bucket:Bucket":
                name = resource.inputs["bucket"]
            elif resource.type in NAMED_TYPES:
                name = resource.inputs["name"]
            else:
                continue
            key = (resource.type, str(name))
            assert key not in seen, f"{key} in {stack} and {seen.get(key)}"
            seen[key] = stack


def test_region_refusal_end_to_end_declares_nothing() -> None:
    config = dict(read_stage_file("phase3-private-practice"))
    config["aws:region"] = "us-west-2"
    mocks = PreviewMocks()
    with pytest.raises(RegionRefused, match=r"Cap\. 486"):
        run_program("phase3-private-practice", config, mocks=mocks)
    assert mocks.captured == []
