"""Redeploy, destroy, unknown types, region refusal and secret redaction.

Tests that create or delete resources run in a fresh moto account (``fresh_account``)
so the session's shared deployment stays intact.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra.components.tables import TABLE_SPECS
from infra.config_source import read_stage_file
from infra.emulator import (
    DeploymentRecord,
    EmulatorMocks,
    LayerStands,
    UnsupportedResourceType,
    deploy,
    destroy,
    load_record,
)
from infra.emulator import engine as emulator_engine
from infra.emulator.provision import Context, provisioner_for
from infra.mockrun import StackNotDeployed, run_program
from infra.stage import RegionRefused

Inventory = Callable[[str], dict[str, int]]
Client = Callable[[str, str], Any]

PHASE1 = "phase1-specialist"
PHASE2 = "phase2-hospital-authority"
PHASE3 = "phase3-private-practice"


def test_lost_record_redeploy_then_destroy_with_and_without_force(
    module_account: str,
    moto_endpoint: str,
    tmp_path: Path,
    inventory: Inventory,
    aws_client: Client,
) -> None:
    first = deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=tmp_path / "a")
    before = inventory(moto_endpoint)
    # A lost state directory: everything with a physical name is found again. Only KMS
    # keys (which have none) are created anew, and their aliases move to the new keys.
    record = deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=tmp_path / "b")
    after = inventory(moto_endpoint)
    keys = sum(1 for r in first.resources if r.type == "aws:kms/key:Key")
    assert keys == 5  # records, audit, ledger signing, backup vault, messaging
    assert after.pop("enabled_keys") == before.pop("enabled_keys") + keys
    assert after == before
    assert record.outputs["userPoolId"] == first.outputs["userPoolId"]
    assert record.outputs["apiId"] == first.outputs["apiId"]
    out = record.outputs

    result = destroy(PHASE1, endpoint_url=moto_endpoint, state_dir=tmp_path / "b")
    kept = dict(result.kept)
    protected = {r.name for r in record.resources if r.protect}
    assert protected <= set(kept)
    assert "protected" in kept["storage-shards"]
    # a protected bucket keeps its encryption and public access block
    assert "configures a protected resource" in kept["storage-shards-encryption"]
    assert "storage-access-logs" not in kept and not result.failed
    s3 = aws_client("s3", moto_endpoint)
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {
        out["shardBucketName"],
        out["auditBucketName"],
    }
    s3.get_bucket_encryption(Bucket=out["shardBucketName"])
    s3.get_public_access_block(Bucket=out["shardBucketName"])
    assert len(aws_client("dynamodb", moto_endpoint).list_tables()["TableNames"]) == len(
        TABLE_SPECS
    )
    assert aws_client("lambda", moto_endpoint).list_functions()["Functions"] == []
    assert aws_client("apigateway", moto_endpoint).get_rest_apis()["items"] == []
    remaining = load_record(PHASE1, tmp_path / "b")
    assert remaining is not None and remaining.status == "partially-destroyed"
    assert {r.name for r in remaining.resources} == set(kept)

    forced = destroy(PHASE1, endpoint_url=moto_endpoint, state_dir=tmp_path / "b", force=True)
    assert forced.complete and forced.record_removed, forced.failed
    assert load_record(PHASE1, tmp_path / "b") is None
    # (record "a" named the same buckets, tables and pool: they are gone too)
    assert s3.list_buckets()["Buckets"] == []
    assert aws_client("dynamodb", moto_endpoint).list_tables()["TableNames"] == []
    pools = aws_client("cognito-idp", moto_endpoint).list_user_pools(MaxResults=60)["UserPools"]
    assert pools == []
    kms = aws_client("kms", moto_endpoint)
    for key in ("recordsKeyArn", "auditKeyArn", "signingKeyArn"):
        assert kms.describe_key(KeyId=out[key])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_an_unknown_resource_type_is_an_error_naming_it(
    module_account: str, moto_endpoint: str, aws_client: Client
) -> None:
    # (Queues and VPCs are provisioned since messaging declares them; a state machine
    # is declared by nothing.)
    def declare_with_a_state_machine(stage: Any, secrets: Any) -> dict[str, Any]:
        aws.sfn.StateMachine(
            "unsupported-machine",
            name="hub-p1-machine",
            role_arn=f"arn:aws:iam::{module_account}:role/none",
            definition="{}",
        )
        return {}

    ctx = Context(moto_endpoint, "ap-east-1")
    mocks = EmulatorMocks(ctx)
    with pytest.raises(Exception):  # noqa: B017 - the runtime wraps it; checked below
        run_program(PHASE1, mocks=mocks, declare_fn=declare_with_a_state_machine)
    assert isinstance(mocks.errors[0], UnsupportedResourceType)
    assert "aws:sfn/stateMachine:StateMachine" in str(mocks.errors[0])
    assert "unsupported-machine" in str(mocks.errors[0])
    machines = aws_client("stepfunctions", moto_endpoint).list_state_machines()
    assert machines.get("stateMachines", []) == []
    with pytest.raises(UnsupportedResourceType, match="aws:ec2/natGateway:NatGateway"):
        provisioner_for("aws:ec2/natGateway:NatGateway")


def test_region_refusal_stops_before_any_api_call(
    fresh_account: str,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_client: Client,
) -> None:
    calls: list[str] = []

    class CountingContext(Context):
        def client(self, service: str) -> Any:
            calls.append(service)
            return super().client(service)

    monkeypatch.setattr(emulator_engine, "Context", CountingContext)
    config = read_stage_file(PHASE1)
    config["aws:region"] = "us-east-1"
    with pytest.raises(RegionRefused, match="ap-east-1"):
        deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=tmp_path, config=config)
    assert calls == []
    assert aws_client("s3", moto_endpoint).list_buckets()["Buckets"] == []
    assert aws_client("kms", moto_endpoint).list_keys()["Keys"] == []
    assert load_record(PHASE1, tmp_path) is None


@pytest.fixture(scope="module")
def core_state(
    module_account: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The core deployed once on the module's account; layers are deployed over it."""
    state = tmp_path_factory.mktemp("one-hub")
    deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=state)
    return state


def test_secrets_never_reach_the_record(
    core_state: Path, moto_endpoint: str, aws_client: Client
) -> None:
    config = copy.deepcopy(read_stage_file(PHASE2))
    secret = "synthetic-oidc-client-secret-4f1c"
    config["hub:federation"].append(
        {
            "institutionId": "lion-rock-oncology",
            "name": "LionRockOidc",
            "protocol": "OIDC",
            "issuer": "https://login.lion-rock.example",
            "clientId": "hub-client",
        }
    )
    config["hub:oidcClientSecrets"] = {"LionRockOidc": secret}
    record = deploy(PHASE2, endpoint_url=moto_endpoint, state_dir=core_state, config=config)
    try:
        text = DeploymentRecord.path_for(record.stack, core_state).read_text()
        assert secret not in text
        provider = record.resource("federation-idp-lion-rock-oncology")
        # the runtime marks the whole mapping secret, so the record keeps none of it
        assert provider.inputs["providerDetails"] == "[secret]"
        # the secret did reach the emulator, where the IdP needs it
        details = aws_client("cognito-idp", moto_endpoint).describe_identity_provider(
            UserPoolId=record.outputs["userPoolId"], ProviderName="LionRockOidc"
        )["IdentityProvider"]["ProviderDetails"]
        assert secret in details.values(), sorted(details)
        assert json.loads(text)["stack"] == PHASE2
    finally:
        destroy(PHASE2, endpoint_url=moto_endpoint, state_dir=core_state)


def _switches(aws_client: Client, endpoint: str, table: str) -> set[str]:
    items = aws_client("dynamodb", endpoint).query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "LAYER"}},
        ConsistentRead=True,
    )["Items"]
    return {i["sk"]["S"] for i in items}


def _client_names(cognito: Any, pool: str) -> set[str]:
    listed = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=60)["UserPoolClients"]
    return {str(c["ClientName"]) for c in listed}


def test_layers_stand_on_the_core_and_leave_it_as_they_found_it(
    core_state: Path,
    moto_endpoint: str,
    tmp_path: Path,
    inventory: Inventory,
    aws_client: Client,
) -> None:
    before = inventory(moto_endpoint)
    # a layer without its core: refused before any AWS call, nothing deployed
    with pytest.raises(StackNotDeployed, match=f"deploy {PHASE1} first"):
        deploy(PHASE2, endpoint_url=moto_endpoint, state_dir=tmp_path)
    assert inventory(moto_endpoint) == before
    assert load_record(PHASE2, tmp_path) is None

    core = load_record(PHASE1, core_state)
    assert core is not None
    pool, table = core.outputs["userPoolId"], core.outputs["tableNames"]["institutions"]
    phase2 = deploy(PHASE2, endpoint_url=moto_endpoint, state_dir=core_state)
    phase3 = deploy(PHASE3, endpoint_url=moto_endpoint, state_dir=core_state)
    cognito = aws_client("cognito-idp", moto_endpoint)
    providers = cognito.list_identity_providers(UserPoolId=pool)["Providers"]
    assert {p["ProviderName"] for p in providers} == {"HospitalAuthority", "NTECluster"}
    assert _switches(aws_client, moto_endpoint, table) == {PHASE2, PHASE3}
    assert phase2.outputs["userPoolId"] == phase3.outputs["userPoolId"] == pool
    intake_p2, intake_p3 = (
        "hub-p2-intake-cms-harbour-cardiac",
        "hub-p3-intake-cms-peak-family-clinic",
    )
    assert {intake_p2, intake_p3} <= _client_names(cognito, pool)

    # the core cannot go while a layer stands; nor phase 2 while phase 3 stands on it
    with pytest.raises(LayerStands, match=f"destroy {PHASE3}, {PHASE2} first"):
        destroy(PHASE1, endpoint_url=moto_endpoint, state_dir=core_state, force=True)
    with pytest.raises(LayerStands, match=f"while {PHASE3} stands"):
        destroy(PHASE2, endpoint_url=moto_endpoint, state_dir=core_state)
    assert load_record(PHASE1, core_state) is not None

    # removing a layer turns its phase off again: its switch, its providers; the web ACL
    # is the core's (one per API stage, from phase 1) and stays
    assert destroy(PHASE3, endpoint_url=moto_endpoint, state_dir=core_state).complete
    assert _switches(aws_client, moto_endpoint, table) == {PHASE2}
    # phase 3's intake client went with its layer; phase 2's stay with theirs
    assert intake_p2 in _client_names(cognito, pool)
    assert intake_p3 not in _client_names(cognito, pool)
    assert len(aws_client("wafv2", moto_endpoint).list_web_acls(Scope="REGIONAL")["WebACLs"]) == 1
    assert destroy(PHASE2, endpoint_url=moto_endpoint, state_dir=core_state).complete
    assert _switches(aws_client, moto_endpoint, table) == set()
    assert cognito.list_identity_providers(UserPoolId=pool)["Providers"] == []
    clients = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=60)["UserPoolClients"]
    assert [c["ClientName"] for c in clients] == ["hub-p1-web"]
    # and the core, alone again, may go
    assert destroy(PHASE1, endpoint_url=moto_endpoint, state_dir=core_state, force=True).complete


def test_component_resources_are_not_sent_to_aws() -> None:
    mocks = EmulatorMocks(Context("http://127.0.0.1:9", "ap-east-1"))
    args = pulumi.runtime.MockResourceArgs(
        typ="hub:keys:Keys", name="keys", inputs={}, provider="", resource_id="", custom=False
    )
    assert mocks.new_resource(args) == ("keys-component", {})
