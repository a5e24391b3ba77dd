"""The service's outward contract: /health open, OpenAPI published, errors in one shape."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hub_testkit import Hub

from app.main import create_app


def test_health_needs_no_token(hub: Hub) -> None:
    assert hub.client.get("/health").json() == {"status": "ok"}


def test_openapi_document_is_published_with_bearer_security(hub: Hub) -> None:
    doc = hub.client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                assert "security" not in operation
            else:
                assert operation.get("security"), f"{method.upper()} {path} has no security"


def test_unknown_route_is_a_json_error(hub: Hub) -> None:
    r = hub.client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "No such route."}}


def test_validation_errors_name_fields_not_values(hub: Hub) -> None:
    r = hub.client.post(
        "/groups",
        json={"patient_id": "HKID A123456(7) secret", "title": "x"},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert "A123456" not in r.text and "patient_id" in r.text


def test_unexpected_errors_are_opaque(hub: Hub) -> None:
    app: FastAPI = create_app(hub.settings, services=hub.services)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("patient pt-synthetic-000042 has condition X")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "The service could not complete the request.",
        }
    }


def test_record_routes_without_record_storage_answer_503(hub: Hub) -> None:
    """Local mode may run without record storage (the session hub has none): a signed-in
    request is a clear 503, an anonymous one still a 401."""
    assert hub.services.records is None
    path = "/records/" + "0" * 32
    assert hub.client.get(path).status_code == 401
    r = hub.client.get(path, headers=hub.headers("dr-lead"))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "records_not_configured"
