"""Community-care intake as the program declares it (infra/components/intake.py, the
sharing service's intake method): what each phase's stack holds, as declared inputs."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE
from infra.components.sharing_service import API_AUTHORIZATION_SCOPES
from infra.emulator.gateway import record_from_program

POOL = "ap-east-1_intaketest"


@functools.cache
def declared(stack: str) -> Any:
    return record_from_program(stack, user_pool_id=POOL, endpoint_url="http://127.0.0.1:9")


def of_type(record: Any, suffix: str) -> list[Any]:
    return [r for r in record.resources if r.type.endswith(suffix)]


def intake_clients(record: Any) -> dict[str, Any]:
    return {
        r.inputs["name"].rsplit("-intake-", 1)[1]: r
        for r in of_type(record, "userPoolClient:UserPoolClient")
        if "-intake-" in str(r.inputs.get("name"))
    }


def test_the_core_declares_no_intake_channel() -> None:
    """The core (phase 1) declares no resource server and no intake client: nothing can
    obtain the intake scope until phase 2's layer stands (its API method is below)."""
    record = declared("phase1-specialist")
    assert not of_type(record, "resourceServer:ResourceServer")
    assert not intake_clients(record)
    assert "intakeClients" not in record.outputs
    for client in of_type(record, "userPoolClient:UserPoolClient"):
        assert INTAKE_WRITE_SCOPE not in (client.inputs.get("allowedOauthScopes") or [])


@pytest.mark.parametrize(
    ("stack", "systems", "resource_servers"),
    [
        # phase 2's layer: the resource server and its file's systems
        ("phase2-hospital-authority", {"cms-victoria-general", "cms-harbour-cardiac"}, 1),
        # phase 3's layer: only the systems it adds, under phase 2's resource server
        ("phase3-private-practice", {"cms-peak-family-clinic"}, 0),
    ],
)
def test_intake_clients_are_client_credentials_only(
    stack: str, systems: set[str], resource_servers: int
) -> None:
    record = declared(stack)  # the core's declaration, then the layer's
    servers = of_type(record, "resourceServer:ResourceServer")
    assert len(servers) == resource_servers
    for server in servers:
        assert server.component == "intake"
        assert server.inputs["identifier"] == INTAKE_RESOURCE_SERVER
        assert [s["scopeName"] for s in server.inputs["scopes"]] == ["records.write"]
        assert server.inputs["userPoolId"] == POOL  # the core's pool
    clients = intake_clients(record)
    assert set(clients) == systems
    assert {c["name"] for c in record.outputs["intakeClients"]} == systems
    for client in clients.values():
        inputs = client.inputs
        assert client.component == "intake"  # the layer's, not the core's
        assert inputs["userPoolId"] == POOL
        assert inputs["generateSecret"] is True
        assert inputs["allowedOauthFlows"] == ["client_credentials"]
        assert inputs["allowedOauthScopes"] == [INTAKE_WRITE_SCOPE]
        assert not inputs.get("callbackUrls")
        assert inputs["accessTokenValidity"] == 15
    # No other client of the pool is granted the intake scope.
    others = [
        r
        for r in of_type(record, "userPoolClient:UserPoolClient")
        if "-intake-" not in str(r.inputs.get("name"))
    ]
    assert others and all(
        INTAKE_WRITE_SCOPE not in (r.inputs.get("allowedOauthScopes") or []) for r in others
    )
    assert record.outputs["intakeTokenUrl"].endswith(".amazoncognito.com/oauth2/token")
    assert record.outputs["intakeDomain"] in record.outputs["intakeTokenUrl"]


@pytest.mark.parametrize("stack", ["phase1-specialist", "phase2-hospital-authority"])
def test_the_api_admits_the_intake_scope_on_one_method_only(stack: str) -> None:
    """The core's API declares the intake method in every phase (API Gateway's scopes
    are strings: it needs no resource server to name one)."""
    record = declared(stack)
    methods = {r.name: r.inputs for r in of_type(record, "method:Method")}
    intake = methods["service-intake-messages-method"]
    assert intake["httpMethod"] == "POST"
    assert intake["authorization"] == "COGNITO_USER_POOLS"
    assert intake["authorizationScopes"] == [INTAKE_WRITE_SCOPE]
    for name in ("service-proxy-method", "service-root-method"):
        assert methods[name]["authorizationScopes"] == list(API_AUTHORIZATION_SCOPES)
    paths = {r.inputs.get("pathPart") for r in of_type(record, "resource:Resource")}
    assert {"intake", "messages"} <= paths
