"""Whole-stack runs of the program under the mock runtime, one per phase stack: the core
(phase 1) and the layers over it (phases 2, 3; their StackReference answered with the
core's previewed outputs)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from infra.config_source import read_stage_file
from infra.mockrun import PreviewMocks, ProgramRun, run_program
from infra.stage import CORE_STACK, STACK_PHASES, RegionRefused

STACKS = list(STACK_PHASES)


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {stack: run_program(stack) for stack in STACKS}


def counts(run: ProgramRun) -> Counter[str]:
    return Counter(r.type for r in run.custom_resources())


EXPECTED_CORE = {
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
    # the tables and buckets; messaging's database and media bucket
    "aws:backup/selection:Selection": 2,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 4,  # AWS Backup's managed policies
}
LAYERS = ["phase2-hospital-authority", "phase3-private-practice"]
# What only the core holds: a layer declaring one of these would start a second hub.
CORE_ONLY = {
    "aws:kms/key:Key",
    "aws:s3/bucket:Bucket",
    "aws:dynamodb/table:Table",
    "aws:cloudtrail/trail:Trail",
    "aws:cognito/userPool:UserPool",
    "aws:lambda/function:Function",
    "aws:apigateway/restApi:RestApi",
    "aws:iam/role:Role",
    # the hub's one homeserver (infra/components/messaging.py): its network, service,
    # database, media bucket (above), secrets, balancers and the functions' queue
    "aws:ec2/vpc:Vpc",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ecs/cluster:Cluster",
    "aws:ecs/service:Service",
    "aws:ecs/taskDefinition:TaskDefinition",
    "aws:rds/instance:Instance",
    "aws:secretsmanager/secret:Secret",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/listener:Listener",
    "aws:sqs/queue:Queue",
}
# The homeserver's outputs a layer re-exports (verify, the local platform and the local
# gateway read a layer's messaging through them).
MESSAGING_OUTPUTS = (
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


def test_the_core_declares_the_whole_hub(runs: dict[str, ProgramRun]) -> None:
    declared = counts(runs[CORE_STACK])
    for typ, expected in EXPECTED_CORE.items():
        assert declared[typ] == expected, typ
    components = set(runs[CORE_STACK].by_component())
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


def test_layers_declare_only_what_their_phase_adds(runs: dict[str, ProgramRun]) -> None:
    assert set(runs["phase2-hospital-authority"].by_component()) == {
        "federation",
        "intake",
        "switch",
        "monitoring",
    }
    assert set(runs["phase3-private-practice"].by_component()) == {
        "intake",
        "switch",
        "monitoring",
    }
    for stack in LAYERS:
        assert not CORE_ONLY & set(counts(runs[stack])), stack


def test_layers_build_on_the_core_outputs(runs: dict[str, ProgramRun]) -> None:
    """Every resource a layer attaches to the hub names the core's resource."""
    core = runs[CORE_STACK].outputs
    phase2, phase3 = (runs[s] for s in LAYERS)
    for provider in phase2.of_type("aws:cognito/identityProvider:IdentityProvider"):
        assert provider.inputs["userPoolId"] == core["userPoolId"]
    assert phase2.named("federation-federated-client").inputs["userPoolId"] == core["userPoolId"]
    for run in (phase2, phase3):
        item = run.named("switch-item").inputs
        assert item["tableName"] == core["tableNames"]["institutions"]
        assert run.named("monitoring-alarms").inputs["kmsMasterKeyId"] == core["auditKeyArn"]
        filters = run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
        assert {f.inputs["logGroupName"] for f in filters} == {core["trailLogGroupName"]}


def test_federation_is_phase_2s_layer(runs: dict[str, ProgramRun]) -> None:
    """The core: one native client. Phase 2's layer: the providers, and a federated client
    of their own on the core pool beside the native one (which never lists them)."""
    idp = "aws:cognito/identityProvider:IdentityProvider"
    client_type = "aws:cognito/userPoolClient:UserPoolClient"
    core = runs[CORE_STACK]
    assert counts(core)[idp] == 0
    assert [c.name for c in core.of_type(client_type)] == ["identity-web-client"]
    assert core.named("identity-web-client").inputs["supportedIdentityProviders"] == ["COGNITO"]
    layer = runs["phase2-hospital-authority"]
    providers = layer.of_type(idp)
    assert len(providers) == len(read_stage_file(layer.stage.stack)["hub:federation"]) > 0
    federated = layer.named("federation-federated-client")
    assert set(federated.inputs["supportedIdentityProviders"]) == {
        p.inputs["providerName"] for p in providers
    }
    assert layer.outputs["userPoolClientIds"] == [
        *core.outputs["userPoolClientIds"],
        federated.id,
    ]
    assert counts(runs["phase3-private-practice"])[idp] == 0  # not declared twice


def test_waf_in_front_of_the_one_api_from_phase_1(runs: dict[str, ProgramRun]) -> None:
    """The API faces the internet from phase 1: the core declares its web ACL; a layer
    declares none (an API stage takes one web ACL, and it is the core's)."""
    core = runs[CORE_STACK]
    assert len(core.of_type("aws:wafv2/webAcl:WebAcl")) == 1
    assert len(core.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")) == 1
    for stack in LAYERS:
        assert not runs[stack].of_type("aws:wafv2/webAcl:WebAcl"), stack
        assert not runs[stack].of_type("aws:wafv2/webAclAssociation:WebAclAssociation"), stack


def test_the_hub_has_one_homeserver_and_it_is_the_cores(runs: dict[str, ProgramRun]) -> None:
    """Messaging is the core's: one homeserver, its database and media for the whole hub
    (a phase 1 specialist and a phase 2 doctor meet in one room); a layer declares none
    and re-exports the core's messaging outputs, so what reads a layer's outputs (verify,
    the local platform) finds the one homeserver."""
    core = runs[CORE_STACK]
    assert len(core.of_type("aws:ecs/service:Service")) == 1
    assert len(core.of_type("aws:rds/instance:Instance")) == 1
    # One homeserver: its hostnames name no phase.
    assert core.outputs["homeserverUrl"] == "https://matrix.hub.example"
    env = core.named("service-api-function").inputs["environment"]["variables"]
    assert env["HUB_MATRIX_HOMESERVER_URL"] == core.outputs["homeserverUrl"]
    assert env["HUB_MATRIX_SERVER_NAME"] == "hub.example"
    for stack in LAYERS:
        run = runs[stack]
        assert "messaging" not in set(run.by_component()), stack
        for name in MESSAGING_OUTPUTS:
            assert core.outputs.get(name), name
            assert run.outputs[name] == core.outputs[name], (stack, name)
        # The layer's alarms go to its own topic; the service's security topic stays the
        # core's (the one the core's functions may publish to).
        layer_topic = run.named("monitoring-alarms").state["arn"]
        assert layer_topic and run.outputs["securityTopicArn"] != layer_topic, stack


def test_the_core_pool_leaves_sign_up_to_the_switch(runs: dict[str, ProgramRun]) -> None:
    """A layer cannot change the core's pool: the pool allows sign-up and the pre sign-up
    trigger (and the service) refuse it unless phase 3's switch is on; the core's own
    stage keeps self-registration off (docs/one-hub.md)."""
    core = runs[CORE_STACK]
    pool = core.of_type("aws:cognito/userPool:UserPool")[0]
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is False
    assert pool.inputs["lambdaConfig"]["preSignUp"]
    trigger = core.named("identity-pre-sign-up").inputs["environment"]["variables"]
    assert trigger["HUB_SELF_REGISTRATION"] == "false"
    assert trigger["HUB_TABLE_INSTITUTIONS"] == "hub-p1-institutions"


def test_each_layer_owns_its_switch(runs: dict[str, ProgramRun]) -> None:
    """What a phase turns on is an item its layer declares (deploy writes it, destroy
    removes it), never a setting of the core."""
    assert not runs[CORE_STACK].of_type("aws:dynamodb/tableItem:TableItem")
    for stack in LAYERS:
        run = runs[stack]
        item = json.loads(run.named("switch-item").inputs["item"])
        assert item["pk"] == {"S": "LAYER"} and item["sk"] == {"S": stack}
        assert item["phase"] == {"N": str(STACK_PHASES[stack])}
        assert item["selfRegistration"] == {"BOOL": run.stage.features.self_registration}
        assert item["waf"] == {"BOOL": run.stage.features.waf}
        assert [c["S"] for c in item["cohort"]["L"]] == list(run.stage.institution_ids())
    # Phase 2's switch carries the federated client it declared on the core's pool, so
    # the service accepts that client's tokens exactly while the switch stands.
    phase2 = runs["phase2-hospital-authority"]
    item = json.loads(phase2.named("switch-item").inputs["item"])
    federated = phase2.named("federation-federated-client")
    assert item["federation"] == {"BOOL": True}
    assert [c["S"] for c in item["clientIds"]["L"]] == [federated.id]
    item = json.loads(runs["phase3-private-practice"].named("switch-item").inputs["item"])
    assert item["federation"] == {"BOOL": False} and item["clientIds"] == {"L": []}
    assert item["selfRegistration"] == {"BOOL": True}
    # Each layer's switch lists the clinic systems' clients its intake declared, so the
    # service takes their submissions exactly while the switch stands.
    for stack in LAYERS:
        run = runs[stack]
        item = json.loads(run.named("switch-item").inputs["item"])
        declared = {
            r.id
            for r in run.of_type("aws:cognito/userPoolClient:UserPoolClient")
            if r.name.startswith("intake-client-")
        }
        assert declared, stack
        assert item["communityCareIntake"] == {"BOOL": True}
        assert {c["S"] for c in item["intakeClientIds"]["L"]} == declared, stack


def test_capacity_is_the_cores(runs: dict[str, ProgramRun]) -> None:
    run = runs[CORE_STACK]
    capacity = run.stage.capacity
    api = run.named("service-api-function")
    assert api.inputs["reservedConcurrentExecutions"] == capacity.lambda_reserved_concurrency
    settings = run.named("service-throttling").inputs["settings"]
    assert settings["throttlingRateLimit"] == capacity.api_throttle_rate_limit
    assert settings["throttlingBurstLimit"] == capacity.api_throttle_burst_limit


def test_the_service_is_the_cores(runs: dict[str, ProgramRun]) -> None:
    """Admission is data (the institutions table), never an environment variable."""
    run = runs[CORE_STACK]
    env = run.named("service-api-function").inputs["environment"]["variables"]
    assert env["HUB_PHASE"] == "1"
    assert env["HUB_SELF_REGISTRATION"] == "false"
    assert "HUB_ADMITTED_INSTITUTIONS" not in env
    assert env["HUB_TABLE_INSTITUTIONS"] == "hub-p1-institutions"


def test_core_keys_audit_stores_tables_and_pool_are_protected(runs: dict[str, ProgramRun]) -> None:
    run = runs[CORE_STACK]
    must_protect = ["aws:kms/key:Key", "aws:dynamodb/table:Table", "aws:cognito/userPool:UserPool"]
    for typ in must_protect:
        assert all(r.protect for r in run.of_type(typ)), typ
    assert run.named("audit-bucket").protect and run.named("storage-shards").protect


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(runs: dict[str, ProgramRun], stack: str) -> None:
    """Every stack names the hub's pool, clients and API; layers re-export the core's."""
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
    core = runs[CORE_STACK].outputs
    for name in ("apiUrl", "userPoolId", "recordsKeyArn", "tableNames"):
        assert outputs[name] == core[name], name


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
