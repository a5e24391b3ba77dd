"""The API's own document describes the API: every status with the service's error body and
codes, examples, described headers; /docs and /redoc work with no network; the contract
check (tests/app/api_contract.py) catches an undocumented answer."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from api_contract import ContractLog, DocumentedResponses
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hub_testkit import Hub

from app.errors import Conflict, NotFound
from app.identity.principal import REFUSAL_REASONS
from app.main import DOCS_ASSETS, PUBLIC_PATHS
from app.openapi import document_api, documented_statuses, errors

METHODS = {"get", "post", "put", "delete", "patch"}
# The operations that take CurrentApplicant (app/institutions/router.py), not CurrentPrincipal.
APPLICANT_OPERATIONS = {("/registrations", "post"), ("/registrations/me", "get")}
# The homeserver's operations (app/messaging/router.py): its hs_token, not a Cognito token.
# Those that record room events in the ledger carry receipts and may answer ledger_busy.
HOMESERVER_OPERATIONS = {
    ("/_matrix/app/v1/transactions/{txn_id}", "put"): True,
    ("/_matrix/app/unstable/org.hub/uploads", "post"): True,
    ("/_matrix/app/v1/ping", "post"): False,
}


@pytest.fixture(scope="module")
def document(hub: Hub) -> dict[str, Any]:
    return dict(hub.client.get("/openapi.json").json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in METHODS
    ]


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return dict(document["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    return schema


def test_every_error_status_uses_the_service_error_body_with_its_codes(
    document: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        assert "500" in responses, (method, path)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
            assert media["examples"], (method, path, status)
            for code, example in media["examples"].items():
                assert example["value"]["error"]["code"] == code
                assert set(example["value"]["error"]) == {"code", "message"}
                assert int(status) >= 400


def test_authenticated_operations_list_401_403_and_the_refusals(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if path == "/health":
            assert set(operation["responses"]) == {"200", "500"}
            continue
        statuses = documented_statuses(document, path, method)
        assert statuses["401"] == {"unauthenticated"}, (method, path)
        if (path, method) in HOMESERVER_OPERATIONS:
            # a wrong hs_token; with messaging off, every homeserver route is a 503
            assert "forbidden" in statuses["403"], (method, path)
            assert "messaging_not_configured" in statuses["503"], (method, path)
            audited = HOMESERVER_OPERATIONS[(path, method)]
            assert ("ledger_busy" in statuses["503"]) is audited, (method, path)
            assert ("service_unavailable" in statuses["503"]) is audited, (method, path)
            headers = operation["responses"]["200"].get("headers", {})
            assert ("Audit-Receipt" in headers) is audited, (method, path)
            continue
        if (path, method) in APPLICANT_OPERATIONS:
            # self-registration: an account need not be enrolled, only known
            assert "user_unknown" in statuses["403"], (method, path)
            assert "account_not_enrolled" not in statuses["403"], (method, path)
        else:
            assert set(REFUSAL_REASONS) <= statuses["403"], (method, path)
        assert "ledger_busy" in statuses["503"], (method, path)  # any audited action
        # AWS throttling or unreachable after botocore's retries (app/errors.py)
        assert "service_unavailable" in statuses["503"], (method, path)
        assert "identity_provider_unavailable" in statuses["503"], (method, path)
        success = next(s for s in statuses if int(s) < 300)
        headers = operation["responses"][success]["headers"]
        assert {"Audit-Receipt", "Audit-Tree-Head", "X-Request-ID"} <= set(headers)


def test_parameters_imply_422_and_services_their_own_statuses(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        statuses = documented_statuses(document, path, method)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "invalid_request" in statuses["422"], (method, path)
    assert (
        "records_not_configured"
        in documented_statuses(document, "/records/{record_id}", "get")["503"]
    )
    upload = documented_statuses(document, "/patients/{patient_id}/records", "post")
    assert {"411", "413", "415", "409", "503"} <= set(upload)
    assert "unsupported_content_type" in upload["415"]
    assert "referrals_not_configured" in documented_statuses(document, "/referrals", "get")["503"]
    close = documented_statuses(document, "/groups/{group_id}/close", "post")
    assert {"not_found"} <= close["404"] and "group_closed" in close["409"]


def test_request_and_success_bodies_have_examples(document: dict[str, Any]) -> None:
    def has_example(media: dict[str, Any]) -> bool:
        if "example" in media or "examples" in media:
            return True
        schema = _schema(document, media.get("schema", {}))
        if schema.get("type") == "array":
            schema = _schema(document, schema.get("items", {}))
        return bool(schema.get("examples") or schema.get("example"))

    missing = []
    for path, method, operation in _operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not has_example(body):
            missing.append(f"request {method.upper()} {path}")
        for status, response in operation["responses"].items():
            if int(status) >= 300:
                continue
            for media_type, media in response.get("content", {}).items():
                binary = media.get("schema", {}).get("format") == "binary"
                if not binary and not has_example(media):
                    missing.append(f"response {status} {media_type} {method.upper()} {path}")
    assert missing == []


def test_header_parameters_and_response_headers_are_described(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header":
                assert parameter.get("description"), (method, path, parameter["name"])
        for response in operation["responses"].values():
            for name, header in response.get("headers", {}).items():
                assert header.get("description"), (method, path, name)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["description"]


def test_every_schema_example_is_a_valid_instance_of_its_model() -> None:
    import importlib

    from pydantic import BaseModel

    checked = 0
    for module in (
        "access",
        "breakglass",
        "groups",
        "records",
        "referrals",
        "metrics",
        "institutions",
        "patient_index",
        "messaging",
        "notifications",
    ):
        schemas = importlib.import_module(f"app.{module}.schemas")
        for model in vars(schemas).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            extra = model.model_config.get("json_schema_extra")
            examples = extra.get("examples", []) if isinstance(extra, dict) else []
            if "examples" not in model.__dict__.get("model_config", {}).get(
                "json_schema_extra", {}
            ):
                continue
            for example in examples:
                model.model_validate(example)
                checked += 1
    assert checked >= 20


# --- /docs and /redoc with no network ---------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_service(hub: Hub, page: str) -> None:
    response = hub.client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    parser = _Assets()
    parser.feed(response.text)
    urls = [*parser.urls, *re.findall(r"url: ?'([^']+)'", response.text)]
    assert urls and all(url.startswith("/") and "//" not in url for url in urls), urls
    for url in urls:
        asset = hub.client.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert not re.search(r"https?://(?!www\.w3\.org)", response.text)
    if page == "/docs":
        assert f"{DOCS_ASSETS}/swagger-ui-bundle.js" in parser.urls
        assert '"validatorUrl": null' in response.text  # no badge fetched from swagger.io


def test_docs_need_no_token_on_the_app_and_are_public_paths(hub: Hub) -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        assert path in PUBLIC_PATHS and hub.client.get(path).status_code == 200


def test_through_api_gateway_the_document_needs_a_signed_in_caller(hub: Hub, gateway: Any) -> None:
    """Behind API Gateway only GET /health is open (the program declares no other public
    method; docs/api.md says why): the document is served to a signed-in caller."""
    client: httpx.Client = gateway.client
    anonymous = client.get("/openapi.json")
    assert anonymous.status_code == 401 and anonymous.json() == {"message": "Unauthorized"}
    assert client.get("/docs").status_code == 401
    signed_in = client.get("/openapi.json", headers=hub.headers("dr-lead"))
    assert signed_in.status_code == 200 and signed_in.json()["info"]["title"]


# --- the contract check can fail -----------------------------------------------------------------


def _tiny_app(declared: dict[int | str, dict[str, Any]]) -> tuple[FastAPI, ContractLog]:
    from app.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things/{thing_id}/close", responses=declared)
    def close(thing_id: str) -> dict[str, str]:
        if thing_id == "gone":
            raise NotFound("No such thing.")
        raise Conflict(code="thing_closed")

    document_api(app)
    log = ContractLog()
    app.add_middleware(DocumentedResponses, log=log, fastapi_app=app)
    return app, log


def test_an_undocumented_status_or_code_is_a_violation() -> None:
    app, log = _tiny_app(errors(NotFound("No such thing.")))
    with TestClient(app) as client:
        assert client.post("/things/gone/close").status_code == 404
        assert log.violations == []
        assert client.post("/things/t1/close").status_code == 409  # not declared
    [violation] = log.violations
    assert (violation.status, violation.code) == (409, "thing_closed")
    # declaring the status with another code is still a violation: codes are checked too
    app, log = _tiny_app(errors(NotFound("No such thing."), Conflict(code="other")))
    with TestClient(app) as client:
        client.post("/things/t1/close")
    assert [(v.status, v.code) for v in log.violations] == [(409, "thing_closed")]
    # declared: no violation
    app, log = _tiny_app(errors(NotFound("No such thing."), Conflict(code="thing_closed")))
    with TestClient(app) as client:
        client.post("/things/t1/close")
    assert log.violations == [] and log.checked == 1
