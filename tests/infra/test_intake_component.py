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


def test_phase_one_has_no_intake_channel() -> None:
    record = declared("phase1-specialist")
    assert not of_type(record, "resourceServer:ResourceServer")
    assert not [r for r in record.resources if "intake" in r.name]
    assert "intakeClients" not in record.outputs
    for client in of_type(record, "userPoolClient:UserPoolClient"):
        assert INTAKE_WRITE_SCOPE not in (client.inputs.get("allowedOauthScopes") or [])


@pytest.mark.parametrize(
    ("stack", "systems"),
    [
        ("phase2-hospital-authority", {"cms-victoria-general", "cms-harbour-cardiac"}),
        (
            "phase3-private-practice",
            {"cms-victoria-general", "cms-harbour-cardiac", "cms-peak-family-clinic"},
        ),
    ],
)
def test_intake_clients_are_client_credentials_only(stack: str, systems: set[str]) -> None:
    record = declared(stack)
    (server,) = of_type(record, "resourceServer:ResourceServer")
    assert server.inputs["identifier"] == INTAKE_RESOURCE_SERVER
    assert [s["scopeName"] for s in server.inputs["scopes"]] == ["records.write"]
    clients = {
        r.inputs["name"].rsplit("-intake-", 1)[1]: r.inputs
        for r in of_type(record, "userPoolClient:UserPoolClient")
        if "-intake-" in str(r.inputs.get("name"))
    }
    assert set(clients) == systems
    for inputs in clients.values():
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


def test_the_api_admits_the_intake_scope_on_one_method_only() -> None:
    record = declared("phase2-hospital-authority")
    methods = {r.name: r.inputs for r in of_type(record, "method:Method")}
    intake = methods["service-intake-messages-method"]
    assert intake["httpMethod"] == "POST"
    assert intake["authorization"] == "COGNITO_USER_POOLS"
    assert intake["authorizationScopes"] == [INTAKE_WRITE_SCOPE]
    for name in ("service-proxy-method", "service-root-method"):
        assert methods[name]["authorizationScopes"] == list(API_AUTHORIZATION_SCOPES)
    paths = {r.inputs.get("pathPart") for r in of_type(record, "resource:Resource")}
    assert {"intake", "messages"} <= paths
