"""The local gateway's limits, throttle and web ACL, on records built from the program.

No service here: a stub function stands behind the gateway, and the records come from
the program's declaration (``record_from_program``), so each test exercises exactly what
a stack declares. Switch-off tests rebuild the record with one declared property removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from infra.components import sharing_service
from infra.emulator.gateway import (
    DeclaredApi,
    GatewayRequest,
    LocalGateway,
    UnsupportedApi,
    record_from_program,
)
from infra.emulator.gateway.events import http_response, matches_binary
from infra.emulator.gateway.waf import UnsupportedWafStatement, WafRequest, WebAclEvaluator
from infra.emulator.record import DeploymentRecord

POOL = "ap-east-1_gatewaytests"
PHASE1, PHASE3 = "phase1-specialist", "phase3-private-practice"
UA = ("user-agent", "hub-tests")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(stack: str) -> DeploymentRecord:
    return record_from_program(stack, user_pool_id=POOL, endpoint_url="http://127.0.0.1:9")


def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}


def gateway(rec: DeploymentRecord, handler: Callable[..., Any] = ok, **kwargs: Any) -> LocalGateway:
    return LocalGateway(rec, handler, **kwargs)


def request(
    path: str, method: str = "GET", body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> GatewayRequest:
    return GatewayRequest(method, path, "", [UA, *(headers or [])], body, "198.51.100.7")


@pytest.fixture(scope="module")
def phase1() -> DeploymentRecord:
    return record(PHASE1)


@pytest.fixture(scope="module")
def phase3() -> DeploymentRecord:
    return record(PHASE3)


# ---- routing ---------------------------------------------------------------------------


def test_routes_follow_api_gateway_precedence(phase1: DeploymentRecord) -> None:
    api = DeclaredApi.from_record(phase1)
    # The core's API declares the intake method in every phase (its scope is a string;
    # phase 2's layer declares the resource server that defines it).
    assert set(api.resources.values()) == {
        "/",
        "/health",
        "/{proxy+}",
        "/web",
        "/web/{asset+}",
        "/intake",
        "/intake/messages",
    }
    health = api.route("/health", "GET")
    assert not isinstance(health, str) and health is not None
    assert health.method.resource_path == "/health" and health.method.authorizer is None
    proxied = api.route("/groups/g1/accept", "POST")
    assert not isinstance(proxied, str) and proxied is not None
    assert proxied.path_parameters == {"proxy": "groups/g1/accept"}
    assert proxied.method.scopes == sharing_service.API_AUTHORIZATION_SCOPES
    assert api.route("/health", "POST") == "/health"  # declared resource, no such method
    root = api.route("/", "DELETE")
    assert not isinstance(root, str) and root is not None and root.method.resource_path == "/"


def test_a_record_without_a_rest_api_is_refused(phase1: DeploymentRecord) -> None:
    bare = DeploymentRecord.from_json(phase1.to_json())
    bare.resources = [r for r in bare.resources if "apigateway" not in r.type]
    with pytest.raises(UnsupportedApi, match="one REST API"):
        LocalGateway(bare, ok)


# ---- caps and timeouts -------------------------------------------------------------------


def test_lambda_response_over_6_mb_is_a_502(phase1: DeploymentRecord) -> None:
    def large(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 100)}

    server = gateway(phase1, large)
    response = server.handle(request("/v1/health"))
    assert response.status == 502 and json.loads(response.body) == {
        "message": "Internal server error"
    }


@pytest.mark.parametrize(
    "answer",
    [{"statusCode": "two hundred"}, {"statusCode": 200, "extra": 1}, "not a dict"],
)
def test_a_malformed_proxy_response_is_a_502(phase1: DeploymentRecord, answer: Any) -> None:
    response = gateway(phase1, lambda event, context: answer).handle(request("/v1/health"))
    assert response.status == 502


def test_a_function_error_is_a_502(phase1: DeploymentRecord) -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    assert gateway(phase1, crash).handle(request("/v1/health")).status == 502


def _sleeper(seconds: float) -> Callable[..., Any]:
    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(seconds)
        return ok(event, context)

    return slow


def test_the_integration_timeout_is_a_504(phase1: DeploymentRecord) -> None:
    declared = DeclaredApi.from_record(phase1).functions[0]
    assert declared.timeout_s == 29  # as the program declares it
    server = gateway(phase1, _sleeper(0.5), integration_timeout_s=0.1)
    response = server.handle(request("/v1/health"))
    assert response.status == 504
    assert json.loads(response.body) == {"message": "Endpoint request timed out"}


def test_the_declared_function_timeout_is_a_502(phase1: DeploymentRecord) -> None:
    shorter = DeploymentRecord.from_json(phase1.to_json())
    function = shorter.resource("service-api-function")
    function.inputs = {**function.inputs, "timeout": 0.1}  # as if the program declared it
    response = gateway(shorter, _sleeper(0.5)).handle(request("/v1/health"))
    assert response.status == 502


# ---- the stage's throttle ------------------------------------------------------------------


def test_the_declared_throttle_admits_the_burst_then_the_rate(phase1: DeploymentRecord) -> None:
    api = DeclaredApi.from_record(phase1)
    assert api.throttle is not None
    rate, burst = api.throttle.rate_per_s, api.throttle.burst
    assert (rate, burst) == (50, 100)  # stages/Pulumi.phase1-specialist.yaml
    clock = Clock()
    server = gateway(phase1, clock=clock)
    statuses = [server.handle(request("/v1/health")).status for _ in range(burst + 1)]
    assert statuses[:burst] == [200] * burst
    assert statuses[burst] == 429
    refused = server.handle(request("/v1/health"))
    assert json.loads(refused.body) == {"message": "Too Many Requests"}
    clock.now += 1.0  # one second refills `rate` tokens
    again = [server.handle(request("/v1/health")).status for _ in range(int(rate) + 1)]
    assert again == [200] * int(rate) + [429]


# ---- the phase 3 web ACL -------------------------------------------------------------------


def test_phase_1_and_phase_3_both_have_the_declared_web_acl(
    phase1: DeploymentRecord, phase3: DeploymentRecord
) -> None:
    for record in (phase1, phase3):
        waf = gateway(record).waf
        assert waf is not None, record.stack
        assert any("AWSManagedRulesKnownBadInputsRuleSet" in n for n in waf.not_emulated)


def test_record_uploads_over_8_kb_pass_and_other_large_bodies_are_blocked(
    phase3: DeploymentRecord,
) -> None:
    server = gateway(phase3)
    body = b"\x00" * 128 + b"DICM" + b"\x01" * (20 * 1024)
    dicom = [("content-type", "application/dicom")]
    for path in ("/v1/patients/pt-1/records", "/v1/records/r1/versions", "/v1/intake/messages"):
        passed = server.handle(request(path, "POST", body, dicom))
        assert passed.status == 401, path  # past the web ACL: the authorizer answers
    # Only the intake route itself, not a path that merely starts like it.
    nearby = server.handle(request("/v1/intake/messages/x", "POST", body, dicom))
    assert nearby.status == 403
    blocked = server.handle(
        request("/v1/groups", "POST", b"{" + b" " * 9000 + b"}", [("content-type", "x/json")])
    )
    assert blocked.status == 403 and json.loads(blocked.body) == {"message": "Forbidden"}
    small = server.handle(request("/v1/groups", "POST", b"{}", [("content-type", "x/json")]))
    assert small.status == 401


def test_switch_off_the_managed_body_size_rule_without_overrides_blocks_an_upload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sharing_service, "WAF_COUNTED_MANAGED_RULES", {})
    server = gateway(record(PHASE3))
    body = b"\x00" * 128 + b"DICM" + b"\x01" * (20 * 1024)
    response = server.handle(
        request("/v1/patients/pt-1/records", "POST", body, [("content-type", "application/dicom")])
    )
    assert response.status == 403
    assert server.waf is not None
    verdict = server.waf.evaluate(
        WafRequest("POST", "/v1/patients/pt-1/records", "", [UA], body, "198.51.100.7")
    )
    assert verdict.rule == "AWSManagedRulesCommonRuleSet:SizeRestrictions_BODY"


def test_the_rate_based_rule_blocks_an_ip_over_its_limit(phase3: DeploymentRecord) -> None:
    clock = Clock()
    rules = DeclaredApi.from_record(phase3).web_acl_rules
    assert rules is not None
    limit = next(r for r in rules if r["name"] == "per-ip-rate-limit")["statement"][
        "rateBasedStatement"
    ]["limit"]
    server = gateway(phase3, clock=clock)

    def tick() -> int:
        # 20 requests a second: within the core stage's throttle (the core's web ACL
        # guards the one API), and the limit's 2000 still fall in one 5-minute window
        clock.now += 0.05
        return server.handle(request("/v1/health")).status

    assert {tick() for _ in range(limit)} == {200}
    assert tick() == 403
    other = GatewayRequest("GET", "/v1/health", "", [UA], b"", "198.51.100.8")
    assert server.handle(other).status == 200  # aggregated per source IP
    clock.now += 301  # the five-minute window has passed
    assert server.handle(request("/v1/health")).status == 200


def test_a_request_without_user_agent_is_blocked_by_the_common_rule_set(
    phase3: DeploymentRecord,
) -> None:
    server = gateway(phase3)
    bare = GatewayRequest("GET", "/v1/health", "", [], b"", "198.51.100.9")
    assert server.handle(bare).status == 403


def test_an_unknown_waf_statement_is_refused_not_passed() -> None:
    rule = {
        "name": "geo",
        "priority": 0,
        "action": {"block": {}},
        "statement": {"geoMatchStatement": {"countryCodes": ["XX"]}},
    }
    with pytest.raises(UnsupportedWafStatement, match="geoMatchStatement"):
        WebAclEvaluator([rule])


# ---- binary media types ------------------------------------------------------------------


def test_binary_media_type_matching_and_the_first_accept_rule() -> None:
    declared = ("application/dicom", "image/*")
    assert matches_binary("image/png", declared) and matches_binary("application/dicom", declared)
    assert not matches_binary("application/fhir+json; charset=utf-8", declared)
    answer = {"statusCode": 200, "body": "AAEC", "isBase64Encoded": True}
    as_bytes = http_response(answer, accept="image/png, */*", binary_media_types=declared)
    assert as_bytes.body == b"\x00\x01\x02"
    as_text = http_response(answer, accept="*/*, image/png", binary_media_types=declared)
    assert as_text.body == b"AAEC"
