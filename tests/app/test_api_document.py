"""The API's own document describes the API: every status with the service's error body and
codes, examples, described headers; /docs and /redoc work with no network; the contract
check (tests/app/api_contract.py) catches an undocumented answer."""

from __future__ import annotations

import base64
import itertools
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from api_contract import ContractLog, DocumentedResponses
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hub_testkit import Hub
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from app.errors import Conflict, NotFound
from app.groups.schemas import InviteBody
from app.identity.principal import REFUSAL_REASONS
from app.institutions.schemas import AdmitBody, UpdateInstitutionBody
from app.interop import ACCEPTED_MEDIA_TYPES
from app.main import DOCS_ASSETS, PUBLIC_PATHS
from app.openapi import (
    ERROR_BODY_REF,
    GATEWAY_ANSWERS,
    GATEWAY_MESSAGE_REF,
    document_api,
    documented_statuses,
    errors,
)
from app.patient_index.schemas import FindPatientBody, RegisterPatientBody
from app.records.schemas import CommitBody, PublicKeyBody
from app.referrals.schemas import SendReferralBody, TargetBody

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
# Community-care intake (app/intake/router.py): a clinic system's client-credentials token,
# whose refusals are its own (no doctor's registration to refuse).
MACHINE_OPERATIONS = {("/intake/messages", "post")}


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
            assert media["examples"], (method, path, status)
            service = {k: v for k, v in media["examples"].items() if "error" in v["value"]}
            gateway = {k: v for k, v in media["examples"].items() if k not in service}
            # API Gateway's own answers (its {"message"} body), beside the service's
            assert {k: v["value"] for k, v in gateway.items()} == {
                f"gateway: {m}": {"message": m} for m in GATEWAY_ANSWERS.get(int(status), ())
            }, (method, path, status)
            expected = [{"$ref": ERROR_BODY_REF}] if service else []
            if gateway:
                expected.append({"$ref": GATEWAY_MESSAGE_REF})
            schema = media["schema"]
            assert schema.get("anyOf", [schema]) == expected, (method, path, status)
            for code, example in service.items():
                assert example["value"]["error"]["code"] == code
                assert set(example["value"]["error"]) == {"code", "message"}
                assert int(status) >= 400


def test_api_gateway_answers_are_documented_on_every_operation(
    document: dict[str, Any],
) -> None:
    """What a client of the deployed API can get from API Gateway itself (the web ACL,
    an unknown route, the caps, the throttle; 401 where the authorizer runs) is in the
    document too, so a client (and the fuzz tier) holds every answer to it."""
    for path, method, operation in _operations(document):
        for status in ("403", "413", "429"):
            assert status in operation["responses"], (method, path, status)
        assert ("401" in operation["responses"]) == (path != "/health"), (method, path)


def test_optional_parameters_are_documented_as_sent_never_null(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            variants = schema.get("anyOf", [schema])
            assert all(v.get("type") != "null" for v in variants), (method, path, parameter)
            assert schema.get("default", "") is not None, (method, path, parameter)


def test_authenticated_operations_list_401_403_and_the_refusals(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if path == "/health":
            # its own answers, and API Gateway's (no authorizer: no 401)
            assert set(operation["responses"]) == {"200", "500", "403", "413", "429"}
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
        if (path, method) in MACHINE_OPERATIONS:
            assert {"unknown_client", "institution_not_admitted", "access_denied"} <= statuses[
                "403"
            ], (method, path)
            assert operation["security"] == [
                {"IntakeClientCredentials": ["hub-intake/records.write"]}
            ], (method, path)
        elif (path, method) in APPLICANT_OPERATIONS:
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


def test_the_intake_route_documents_the_machine_grant_and_each_media_type(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["IntakeClientCredentials"]
    flow = scheme["flows"]["clientCredentials"]
    assert scheme["type"] == "oauth2" and set(flow["scopes"]) == {"hub-intake/records.write"}
    assert flow["tokenUrl"].endswith("/oauth2/token") and "doctor" in scheme["description"]
    operation = document["paths"]["/intake/messages"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == set(ACCEPTED_MEDIA_TYPES)
    assert all(media["examples"] for media in content.values())
    statuses = documented_statuses(document, "/intake/messages", "post")
    assert {"content_type_required", "invalid_source", "unsupported_source"} <= statuses["422"]
    assert "unknown_patient" in statuses["422"] and "identity_mismatch" in statuses["409"]
    assert {"415", "413"} <= set(statuses)
    assert {"records_not_configured", "ledger_busy"} <= statuses["503"]


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
        "intake",
    ):
        schemas = importlib.import_module(f"app.{module}.schemas")
        for model in vars(schemas).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            if "json_schema_extra" not in model.__dict__.get("model_config", {}):
                continue  # no examples of its own (a dict or a callable that sets them)
            for example in model.model_json_schema().get("examples", []):
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


# --- constraints the app enforces are the document's --------------------------------------


def _documented(model: type[Any], body: dict[str, Any]) -> bool:
    """Whether ``body`` is valid by the model's schema as the document states it."""
    return not list(Draft202012Validator(model.model_json_schema()).iter_errors(body))


def _validated(model: type[Any], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


# (model, body, accepted): each rule the app applies beyond field types, on both sides of
# it. The document must say what the app does (the fuzz tier found these unstated).
_SPECIALTY = {"institution": "harbour-x", "specialty": "cardiology"}
_HOSPITAL = {"id": "x-hosp", "name": "X Hospital", "type": "ha_hospital"}
_LEGAL = {"basis": "referral_for_care", "patient": "informed"}
_REFERRAL = {
    "patient_id": "pt-6dde7bc9f14d",
    "target": _SPECIALTY,
    "urgency": "urgent",
    "clinical_question": "Synthetic question",
}
BODY_RULES: list[tuple[Any, dict[str, Any], bool]] = [
    # a referral's target names a specialty or a doctor
    (TargetBody, {"institution": "harbour-x"}, False),
    (TargetBody, {"institution": "harbour-x", "specialty": ""}, False),
    (TargetBody, _SPECIALTY, True),
    (TargetBody, {"institution": "harbour-x", "practitioner": "ZZ12345"}, True),
    # registering a patient takes an HKID, an MRN or both; a lookup exactly one
    (RegisterPatientBody, {}, False),
    (RegisterPatientBody, {"mrn": "HN-1"}, True),
    (RegisterPatientBody, {"mrn": "HN-1", "hkid": "A1234563"}, True),
    (FindPatientBody, {}, False),
    (FindPatientBody, {"mrn": "HN-1", "hkid": "A1234563"}, False),
    (FindPatientBody, {"hkid": "A1234563"}, True),
    # the manifest is ASCII (canonical JSON)
    (CommitBody, {"manifest": '{"a":"\\u00f4"}'}, True),  # escaped: ASCII
    (CommitBody, {"manifest": '{"a":"\u00f4"}'}, False),  # the character itself
    # keys are whole base64 (what b64decode(validate=True) decodes)
    (PublicKeyBody, {"public_key": "QUJD"}, True),
    (PublicKeyBody, {"public_key": "QUI="}, True),
    (PublicKeyBody, {"public_key": "=="}, False),
    (PublicKeyBody, {"public_key": "IF"}, False),
    # an invitation gives member or invited_expert: a group has one lead
    (InviteBody, {"reg_no": "ZZ12345", "role": "invited_expert"}, True),
]
# Rules the service applies after the model (so only the document and the service say
# them; the model admits the body): the document must still refuse it.
SERVICE_RULES: list[tuple[Any, dict[str, Any], bool]] = [
    (InviteBody, {"reg_no": "ZZ12345", "role": "lead"}, False),  # role_not_invitable
    (UpdateInstitutionBody, {}, False),  # nothing_to_change
    (UpdateInstitutionBody, {"status": "suspended"}, True),
    # hospital_code_incomplete: the provider and its hospital code go together
    (AdmitBody, {**_HOSPITAL, "provider": "ha-idp"}, False),
    (AdmitBody, {**_HOSPITAL, "hospital_code": "QEH"}, False),
    (AdmitBody, {**_HOSPITAL, "provider": "ha-idp", "hospital_code": "QEH"}, True),
    (AdmitBody, _HOSPITAL, True),
    # legal_basis_required: a referral states its legal basis (audited when it does not)
    (SendReferralBody, _REFERRAL, False),
    (SendReferralBody, {**_REFERRAL, "legal_basis": _LEGAL}, True),
]


@pytest.mark.parametrize(("model", "body", "accepted"), BODY_RULES)
def test_the_document_states_the_rules_the_models_apply(
    model: type[Any], body: dict[str, Any], accepted: bool
) -> None:
    assert _validated(model, body) is accepted
    assert _documented(model, body) is accepted


@pytest.mark.parametrize(("model", "body", "accepted"), SERVICE_RULES)
def test_the_document_states_the_rules_the_services_apply(
    model: type[Any], body: dict[str, Any], accepted: bool
) -> None:
    assert _documented(model, body) is accepted


def test_documented_base64_is_exactly_what_the_routes_decode() -> None:
    """Every string of base64's alphabet (and a stray character) up to 8 long: the
    document's pattern admits it if and only if the routes' decoder takes it, or the
    model refuses it first (the pattern is the model's)."""
    pattern = re.compile(PublicKeyBody.model_json_schema()["properties"]["public_key"]["pattern"])
    for n in range(9):
        for chars in itertools.product("AQ+/=x", repeat=n):
            value = "".join(chars)
            documented = bool(pattern.match(value))
            assert _validated(PublicKeyBody, {"public_key": value}) is documented, value
            if documented:
                base64.b64decode(value, validate=True)  # the route decodes it
