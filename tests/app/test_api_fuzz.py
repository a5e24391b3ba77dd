"""The fuzz tier: every operation of the API's document, driven by schemathesis.

``make test-fuzz`` (``pytest -m fuzz``; not in the default run). The document is fetched
as an integrator fetches it: ``GET /openapi.json`` through the local API gateway (the
phase 1 program's REST API, its Cognito authorizer bound to the session's pool), with a
real access token (SRP sign-in, then the TOTP challenge). Every generated request goes
the same way: the gateway (web ACL, routing, throttle, authorizer, payload caps), the
Lambda adapter, the app. The app is the session's service with record storage on (a
versioned shard bucket, the deployment's default shard and record sizes), so the record
routes are fuzzed past their 503 "not configured".

For each operation, schemathesis generates requests from the document, twice:

- **positive**: requests the document says are valid. Checks: no 5xx
  (``not_a_server_error``), the status is documented (``status_code_conformance``), the
  content type and body are the documented ones (``content_type_conformance``,
  ``response_schema_conformance``), and the request is not refused as malformed
  (``positive_data_acceptance``: not 400/422) unless the refusal depends on stored state
  the document cannot state (:data:`REFUSALS_OF_STATE`, each with its reason);
- **negative**: requests the document says are invalid (wrong types, broken patterns,
  oversized values, missing fields). The same checks but acceptance: whatever the app or
  the gateway answers must be a documented status with a documented body, never a 5xx.

The budget is fixed and deterministic: :data:`MAX_EXAMPLES` per operation and mode,
Hypothesis derandomized (its seed derived from the test, so every run sends the same
requests), no example database, no shrinking (a failure is reported as found, with a
curl line to replay it). Two to five minutes on a 2-core machine (docs/api.md).

Principals: each operation is called as the principal the authorization matrix lets
through (:data:`PRINCIPALS`; a doctor otherwise), so the requests reach validation and
the service rather than stopping at a 403; the homeserver's operations are also fuzzed
with the homeserver's own token on their private path (the second test). Nothing is
excluded: an operation with nothing to negate (no parameters, no body) has no negative
mode, and the test says which. The gateway's per-IP rate rule is raised for the tier
(:func:`_rate_rule_raised`) and every operation must have a valid request reach the
service, so a gateway refusing everything cannot make the run pass.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
import schemathesis
from api_contract import CONTRACT, checked
from hub_testkit import INST_A, Gateway, Hub, applicant, gateway_record, switch_intake
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from app.dependencies import build_services
from app.identity.affiliations import IntakeClient
from app.institutions.service import OPERATOR
from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE
from app.main import create_app, create_appservice_app, lambda_handler_for
from infra.emulator.cognito_token import local_token_url
from infra.emulator.gateway import LocalGateway
from infra.emulator.gateway.waf import WebAclEvaluator

pytestmark = pytest.mark.fuzz

# The budget: examples per operation and generation mode (72 operations x 2 modes).
MAX_EXAMPLES = 25

# Who calls each operation (the authorization matrix's allowed column for it); every
# other operation is called by a registered doctor of an admitted institution.
DOCTOR = "dr-lead"
APPLICANT = "<a signed-up account enrolled nowhere>"
# Community-care intake takes a clinic system's client-credentials token with the intake
# scope (the gateway's method requires the scope): one mapped to an admitted institution.
CLINIC_SYSTEM = "<a clinic system's client-credentials token>"
PRINCIPALS: dict[tuple[str, str], str] = {
    ("POST", "/institutions"): "ops-admin",
    ("PATCH", "/institutions/{institution_id}"): "ops-admin",
    ("POST", "/registrations/{registration_id}/approve"): "ops-admin",
    ("POST", "/registrations/{registration_id}/reject"): "ops-admin",
    ("GET", "/institutions/{institution_id}/affiliations"): "inst-admin",
    ("PUT", "/institutions/{institution_id}/affiliations/{reg_no}"): "inst-admin",
    ("DELETE", "/institutions/{institution_id}/affiliations/{reg_no}"): "inst-admin",
    ("GET", "/registrations"): "inst-admin",
    ("POST", "/patients/mrn-links/unlink"): "inst-admin",
    ("POST", "/patients/mrn-links/correct"): "inst-admin",
    ("POST", "/patients/{patient_id}/hkid-corrections"): "inst-admin",
    ("GET", "/audit/export"): "auditor-1",
    ("GET", "/metrics"): "auditor-1",
    ("POST", "/registrations"): APPLICANT,
    ("POST", "/intake/messages"): CLINIC_SYSTEM,
}


def clinic_system_token(hub: Hub) -> str:
    """A client-credentials access token of a clinic system mapped to INST_A, from the
    emulator's token endpoint (moto has none; infra/emulator/cognito_token.py)."""
    cognito = hub.cognito
    domain = f"fuzz-{uuid.uuid4().hex[:10]}"
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=hub.pool_id)
    # declared already when another module of the session did (one per pool, as in AWS)
    with contextlib.suppress(cognito.exceptions.ClientError):
        cognito.create_resource_server(
            UserPoolId=hub.pool_id,
            Identifier=INTAKE_RESOURCE_SERVER,
            Name="intake",
            Scopes=[{"ScopeName": "records.write", "ScopeDescription": "submit"}],
        )
    client = cognito.create_user_pool_client(
        UserPoolId=hub.pool_id,
        ClientName=f"intake-fuzz-{uuid.uuid4().hex[:4]}",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=[INTAKE_WRITE_SCOPE],
    )["UserPoolClient"]
    hub.operator.map_intake_client(
        OPERATOR, IntakeClient(client_id=client["ClientId"], institution=INST_A, system="fuzz")
    )
    switch_intake(hub, "fuzz-intake-layer", [client["ClientId"]])  # a layer declared it
    basic = base64.b64encode(f"{client['ClientId']}:{client['ClientSecret']}".encode()).decode()
    answer = httpx.post(
        local_token_url(hub.endpoint, domain),
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


# The homeserver's operations (app/messaging/router.py): fuzzed through the gateway as a
# doctor (the app refuses that caller) and, with the homeserver's own token, on its
# private path (test_the_homeserver_operations_on_its_private_path).
HOMESERVER_PATHS = {
    "/_matrix/app/v1/transactions/{txn_id}",
    "/_matrix/app/v1/ping",
    "/_matrix/app/unstable/org.hub/uploads",
}

# Refusals of a schema-valid request that depend on what is stored, so no document can
# state them as constraints; a positive request may meet them (its ids are random).
# Anything else refused as malformed (400, 422 invalid_request or another code) means
# the document allows what the app refuses: a finding.
REFUSALS_OF_STATE = {
    "unknown_patient": "the patient id is not in the patient index",
    "invalid_cursor": "a cursor is an opaque token the listing issued, not a format",
    "invalid_proof_request": "a leaf index or tree size beyond the ledger's current size",
    "invalid_hkid": "an HKID's check digit (a checksum, not a pattern)",
    "unknown_institution": "the institution id is not one the hub holds",
    "invalid_public_key": "a P-256 point: base64 of the right length that is on the curve",
    "register_mismatch": "the number and name must match the Medical Council register",
    "invalid_phase": "an institution type's first rollout phase up to the hub's own phase",
    "institution_type_not_open": "the institution type's cohort opens in a later phase",
    "provider_not_multi_hospital": "a provider the hub's federation places by hospital code",
    "practitioner_not_at_institution": "the named doctor is affiliated with that institution",
    "window_invalid": "a metrics window up to now by default, at most 92 days (described)",
    "institution_not_admitted": "the target institution is admitted in this phase",
    # Community-care intake: the body is a clinical message (documented as a string per
    # media type); its own grammar is the adapters' to judge (app/interop), not a schema's
    "invalid_source": "an HL7 v2, CDA R2 or FHIR message valid in its own standard",
    "unsupported_source": "a message kind the adapters convert (ADT A01/A04/A08, ORU R01)",
    "idempotency_key_required": "a message with no identifier of its own sends one",
}

CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _error_code(response: Any) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def positive_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``positive_data_acceptance``, but a refusal of state is not one of
    shape (:data:`REFUSALS_OF_STATE`)."""
    if response.status_code == 422 and _error_code(response) in REFUSALS_OF_STATE:
        return None
    return positive_data_acceptance(ctx, response, case)


# The appservice app the fuzz_gateway fixture built beside the service app (one).
appservice_apps: list[Any] = []


@pytest.fixture(scope="session")
def fuzz_gateway(hub: Hub) -> Iterator[Gateway]:
    """The session's service with record storage on, behind its own local gateway."""
    session = boto3.session.Session(region_name="ap-east-1")
    s3 = session.client("s3", endpoint_url=hub.endpoint)
    bucket = f"hubfuzz-shards-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    service_settings = hub.settings.model_copy(update={"shard_bucket": bucket})
    services = build_services(
        service_settings,
        session=session,
        clock=hub.clock,
        monotonic=hub.monotonic,
        audit=hub.services.audit,
        homeserver_transport=hub.homeserver.transport(),
    )
    app = create_app(service_settings, services=services)
    checked(app, CONTRACT)
    # The homeserver's private path: the same services, the appservice app alone.
    appservice = create_appservice_app(service_settings, services=services)
    checked(appservice, CONTRACT)
    appservice_apps.append(appservice)
    services.ledger.integrate()  # a signed head, so the audit reads have one to serve
    # The throttle is raised as for the session's other gateway (the declared one has its
    # own test); the web ACL, the authorizer and the caps are as declared.
    record = gateway_record(hub, apiThrottleRateLimit=5_000, apiThrottleBurstLimit=5_000)
    # The ledger integrates on demand here, as in the session's other gateway.
    function = lambda_handler_for(app, sign_inline=False)
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        return function(event, context)

    server = LocalGateway(record, handler)
    server.waf = WebAclEvaluator(_rate_rule_raised(server.api.web_acl_rules or ()))
    base_url = server.start()
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            yield Gateway(server, client, record, events)
    finally:
        server.stop()


def _rate_rule_raised(rules: Any) -> list[dict[str, Any]]:
    """The declared web ACL with its per-IP rate rule raised, as the throttle is: the tier
    sends some 3,000 requests from one address in under 5 minutes, over the declared
    2,000, and every later request would be the web ACL's 403, documented, so the rest of
    the run would pass without reaching the service. The rate rule has its own tests
    (tests/infra/emulator); the size rules stay as declared."""
    raised, found = [], False
    for rule in copy.deepcopy(list(rules)):
        rate = rule["statement"].get("rateBasedStatement")
        if rate is not None:
            rate["limit"], found = 10**9, True
        raised.append(rule)
    assert found, "the declared web ACL has no rate rule: review this fixture"
    return raised


def _fuzz(operation: Any, mode: GenerationMode, token: str) -> str | None:
    """Run one operation in one mode (on its schema's base URL or app); the failure
    report, or None."""
    checks = [*CHECKS, positive_data_accepted] if mode is GenerationMode.POSITIVE else CHECKS
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    try:
        run()
    except (AssertionError, BaseExceptionGroup) as failure:
        return f"{operation.label} [{mode.value}]:\n{failure}"
    return None


def test_every_operation_answers_as_its_document_says(hub: Hub, fuzz_gateway: Gateway) -> None:
    base = str(fuzz_gateway.client.base_url).rstrip("/")
    tokens = {
        name: hub.people[name].token or ""
        for name in {DOCTOR, *PRINCIPALS.values()} - {APPLICANT, CLINIC_SYSTEM}
    }
    tokens[APPLICANT] = applicant(hub)
    tokens[CLINIC_SYSTEM] = clinic_system_token(hub)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=hub.headers(DOCTOR))
    schema.config.update(base_url=base)
    # The bearer token is the real one, never generated (the authorizer's refusals have
    # their own tests: test_service_through_gateway.py, the authorization matrix).
    schema.config.generation.update(with_security_parameters=False)

    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {(op.method.upper(), op.path) for op in operations}
    assert set(PRINCIPALS) <= labels, f"not in the document: {set(PRINCIPALS) - labels}"

    failures: list[str] = []
    nothing_to_negate: list[str] = []
    unreached: list[str] = []
    for operation in operations:
        token = tokens[PRINCIPALS.get((operation.method.upper(), operation.path), DOCTOR)]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            before = len(fuzz_gateway.events)
            try:
                failure = _fuzz(operation, mode, token)
                if mode is GenerationMode.POSITIVE and len(fuzz_gateway.events) == before:
                    # every valid request stopped at the gateway: the run proves nothing
                    unreached.append(operation.label)
            except Unsatisfiable:
                # No request the document calls invalid exists: nothing to negate.
                assert mode is GenerationMode.NEGATIVE, operation.label
                assert not operation.body and not list(operation.iter_parameters()), operation.label
                nothing_to_negate.append(operation.label)
                continue
            if failure:
                failures.append(failure)
    print(
        f"fuzzed {len(operations)} operations x 2 modes, {MAX_EXAMPLES} examples each;"
        f" {len(fuzz_gateway.events)} requests reached the service;"
        f" no negative mode (nothing to negate): {sorted(nothing_to_negate)}"
    )
    assert len(operations) >= 60, len(operations)
    assert not unreached, f"no valid request reached the service: {unreached}"
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)


def test_the_homeserver_operations_on_its_private_path(hub: Hub, fuzz_gateway: Gateway) -> None:
    """The homeserver's operations (the Matrix application service API) take its hs_token,
    which the public API's Cognito authorizer refuses: through the gateway the test above
    calls them as a doctor (refused by the app, 403 forbidden, as documented). Here they
    are called as the homeserver calls them, with its token, on the appservice app (in
    AWS an internal load balancer in front of ``app.appservice_handler``, no API
    Gateway), held to the service document's entries for them (the appservice app
    publishes none: ``create_appservice_app``)."""
    document = fuzz_gateway.client.get("/openapi.json", headers=hub.headers(DOCTOR)).json()
    document["paths"] = {k: v for k, v in document["paths"].items() if k in HOMESERVER_PATHS}
    assert set(document["paths"]) == HOMESERVER_PATHS, "the homeserver's routes moved"
    schema = schemathesis.openapi.from_dict(document)
    schema.app = appservice_apps[0]
    schema.config.update(base_url="http://appservice.internal")
    schema.config.generation.update(with_security_parameters=False)
    failures = [
        failure
        for result in schema.get_all_operations()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _fuzz(result.ok(), mode, hub.registration.hs_token))
    ]
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)
    # the token was the homeserver's: its valid requests were served, not refused
    served = {(method, path) for method, path, status, _ in CONTRACT.seen if status == 200}
    assert {
        ("PUT", "/_matrix/app/v1/transactions/{txn_id}"),
        ("POST", "/_matrix/app/v1/ping"),
    } <= served, served
