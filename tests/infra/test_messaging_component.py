"""The messaging component's security properties, over its declared inputs (mock runtime).

Each property is checked on what the component declares, by the policy pack's rule where
the pack has one (the same predicate verify applies to the live deployment); each
``test_switch_off_*`` forces one resource argument that implements a property and shows
the rule failing. moto moves no packets and runs no database or container, so the
network's isolation and the homeserver's configuration are proved here, on the
declaration (``infra/emulator/gaps.py`` names these tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from app.messaging import homeserver
from infra.components.messaging import (
    ALB_TLS13_POLICY,
    CLIENT_PATHS,
    PRIVATE_SUBNETS,
    Messaging,
    MessagingArgs,
)
from infra.controls.result import Status
from infra.mockrun import PreviewMocks, _reset_pulumi_runtime
from infra.policies import rules
from infra.policies.rules import StackResource

ACCOUNT = "111122223333"
PREFIX = "hub-pt"


class Recording(PreviewMocks):
    def of_type(self, typ: str) -> list[Any]:
        return [a for a in self.captured if a.typ == typ]

    def one(self, typ: str, name: str) -> dict[str, Any]:
        (found,) = [a for a in self.captured if a.typ == typ and a.name == name]
        return dict(found.inputs)


MOCKS = Recording(account_id=ACCOUNT)


@pytest.fixture(autouse=True)
def mock_runtime() -> Iterator[None]:
    MOCKS.captured.clear()
    _reset_pulumi_runtime()
    pulumi.runtime.set_mocks(MOCKS, project="hub", stack="messaging-tests", preview=False)
    yield


def forcing(cls: type, **forced: Any) -> type:
    class Forced(cls):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name: str, *args: Any, **kwargs: Any) -> None:
            kwargs.update(forced)
            super().__init__(resource_name, *args, **kwargs)

    return Forced


def declare() -> None:
    """Declare the component and wait until every registration has completed."""

    @pulumi.runtime.test
    def run() -> None:
        role = aws.iam.Role("service-role", name=f"{PREFIX}-service", assume_role_policy="{}")
        Messaging(
            "messaging",
            MessagingArgs(
                name_prefix=PREFIX,
                region="ap-east-1",
                partition="aws",
                account_id=ACCOUNT,
                server_name="hub.example",
                client_hostname="matrix.hub.example",
                appservice_hostname="appservice.hub.example",
                service_role=role,
                lambda_bundle="build/lambda.zip",
                function_environment={"HUB_MODE": "aws"},
                audit_key_arn=f"arn:aws:kms:ap-east-1:{ACCOUNT}:key/audit",
                security_topic_arn=f"arn:aws:sns:ap-east-1:{ACCOUNT}:{PREFIX}-security-alarms",
                access_log_bucket=f"{PREFIX}-access-logs",
                log_retention_days=365,
            ),
        )

    run()


def stack_resources() -> list[StackResource]:
    return [StackResource(a.typ, a.name, dict(a.inputs)) for a in MOCKS.captured]


def statuses(rule: Any, typ: str) -> list[Status]:
    return [rule(typ, dict(a.inputs), a.name).status for a in MOCKS.of_type(typ)]


# --- network ---------------------------------------------------------------------------------


def test_the_private_subnets_have_no_route_to_the_internet() -> None:
    declare()
    subnets = {a.name: dict(a.inputs) for a in MOCKS.of_type("aws:ec2/subnet:Subnet")}
    private = {n for n, i in subnets.items() if i["cidrBlock"] in PRIVATE_SUBNETS}
    assert len(private) == 2 and all(not i["mapPublicIpOnLaunch"] for i in subnets.values())
    associations = [
        dict(a.inputs) for a in MOCKS.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    ]
    routes = [dict(a.inputs) for a in MOCKS.of_type("aws:ec2/route:Route")]
    # Only the public route table has a default route (to the internet gateway), and no
    # private subnet is associated with it; there is no NAT gateway at all.
    assert [r["destinationCidrBlock"] for r in routes] == ["0.0.0.0/0"]
    assert not MOCKS.of_type("aws:ec2/natGateway:NatGateway")
    public_table = routes[0]["routeTableId"]
    # (under the mock runtime a resource's id is its physical name, else its logical one)
    private_associations = [a for a in associations if a["subnetId"] in private]
    assert len(private_associations) == 2
    assert all(a["routeTableId"] != public_table for a in private_associations)
    service = MOCKS.one("aws:ecs/service:Service", "messaging-homeserver")
    assert service["networkConfiguration"]["assignPublicIp"] is False
    database = MOCKS.one(rules.DB_INSTANCE, "messaging-db")
    assert database["publiclyAccessible"] is False


def test_only_the_declared_callers_reach_each_security_group() -> None:
    declare()
    groups = {a.name: dict(a.inputs) for a in MOCKS.of_type("aws:ec2/securityGroup:SecurityGroup")}

    def sources(name: str) -> list[tuple[Any, ...]]:
        return [
            (tuple(r.get("cidrBlocks") or ()), tuple(r.get("securityGroups") or ()), r["fromPort"])
            for r in groups[name]["ingress"]
        ]

    def group(name: str) -> tuple[str]:
        return (str(groups[name]["name"]),)  # its id under the mock runtime

    assert sources("messaging-client-lb-sg") == [(("0.0.0.0/0",), (), 443)]
    assert sources("messaging-homeserver-sg") == [((), group("messaging-client-lb-sg"), 8008)]
    assert sources("messaging-database-sg") == [((), group("messaging-homeserver-sg"), 5432)]
    assert sources("messaging-appservice-lb-sg") == [((), group("messaging-homeserver-sg"), 443)]
    for group in groups.values():
        assert all(e["cidrBlocks"] == ["10.40.0.0/16"] for e in group["egress"])


# --- database --------------------------------------------------------------------------------


def test_database_is_encrypted_private_tls_only_backed_up_and_protected() -> None:
    declare()
    database = MOCKS.one(rules.DB_INSTANCE, "messaging-db")
    assert database["backupRetentionPeriod"] >= 7 and database["deletionProtection"] is True
    assert database["manageMasterUserPassword"] is True and "password" not in database
    assert statuses(rules.database_encrypted_with_customer_kms_key, rules.DB_INSTANCE) == [
        Status.PASS
    ]
    assert statuses(rules.database_not_publicly_accessible, rules.DB_INSTANCE) == [Status.PASS]
    assert [r.status for r in rules.database_requires_tls(stack_resources())] == [Status.PASS]


def test_switch_off_database_encryption_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws.rds, "Instance", forcing(aws.rds.Instance, storage_encrypted=False))
    declare()
    assert statuses(rules.database_encrypted_with_customer_kms_key, rules.DB_INSTANCE) == [
        Status.FAIL
    ]


def test_switch_off_private_database_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws.rds, "Instance", forcing(aws.rds.Instance, publicly_accessible=True))
    declare()
    assert statuses(rules.database_not_publicly_accessible, rules.DB_INSTANCE) == [Status.FAIL]


def test_switch_off_forced_tls_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws.rds, "ParameterGroup", forcing(aws.rds.ParameterGroup, parameters=[]))
    declare()
    assert [r.status for r in rules.database_requires_tls(stack_resources())] == [Status.FAIL]


# --- load balancers ----------------------------------------------------------------------------


def test_listeners_are_tls13_and_only_the_client_paths_reach_the_homeserver() -> None:
    declare()
    listeners = MOCKS.of_type(rules.LB_LISTENER)
    assert len(listeners) == 2
    assert {dict(a.inputs)["sslPolicy"] for a in listeners} == {ALB_TLS13_POLICY}
    assert statuses(rules.load_balancer_listeners_use_tls13, rules.LB_LISTENER) == [Status.PASS] * 2
    client = MOCKS.one(rules.LB_LISTENER, "messaging-client-listener")
    assert client["defaultActions"][0]["fixedResponse"]["statusCode"] == "404"
    (rule,) = [dict(a.inputs) for a in MOCKS.of_type("aws:lb/listenerRule:ListenerRule")]
    assert rule["conditions"][0]["pathPattern"]["values"] == list(CLIENT_PATHS)
    internal = MOCKS.one("aws:lb/loadBalancer:LoadBalancer", "messaging-appservice-lb")
    assert internal["internal"] is True


def test_switch_off_tls13_listener_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        aws.lb, "Listener", forcing(aws.lb.Listener, ssl_policy="ELBSecurityPolicy-2016-08")
    )
    declare()
    assert statuses(rules.load_balancer_listeners_use_tls13, rules.LB_LISTENER) == [Status.FAIL] * 2


# --- the homeserver's configuration --------------------------------------------------------------


def declared_config() -> dict[str, Any]:
    task = MOCKS.one(rules.TASK_DEFINITION, "messaging-task")
    (container,) = json.loads(task["containerDefinitions"])
    env = {v["name"]: v["value"] for v in container["environment"]}
    config: dict[str, Any] = json.loads(env["HUB_HOMESERVER_CONFIG"])
    assert not any("token" in k or "secret" in k for k in env["HUB_APPSERVICE_REGISTRATION"])
    return config


def test_the_declared_homeserver_config_is_closed_and_holds_no_secret() -> None:
    declare()
    config = declared_config()
    assert homeserver.federation_problems(config) == []
    assert config["database"]["name"] == "psycopg2"
    assert config["database"]["args"]["sslmode"] == "verify-full"
    assert "password" not in config["database"]["args"]
    assert "macaroon_secret_key" not in config and "form_secret" not in config
    (provider,) = config["media_storage_providers"]
    assert provider["module"] == homeserver.S3_STORAGE_PROVIDER
    assert statuses(rules.homeserver_federation_closed, rules.TASK_DEFINITION) == [Status.PASS]


def test_switch_off_closed_federation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.components.messaging as component

    real = component.deployed_homeserver_config

    def opened(d: homeserver.DeployedHomeserver) -> dict[str, Any]:
        config = real(d)
        config["listeners"][0]["resources"][0]["names"].append("federation")
        return config

    monkeypatch.setattr(component, "deployed_homeserver_config", opened)
    declare()
    (result,) = [
        rules.homeserver_federation_closed(a.typ, dict(a.inputs), a.name)
        for a in MOCKS.of_type(rules.TASK_DEFINITION)
    ]
    assert result.status is Status.FAIL and "federation" in result.message
