"""The web client's site as the program declares it (infra/components/web_client.py and
the web routes of the sharing API), under Pulumi's mock runtime.

Each property has a test that fails when it is removed: the reader role reads the site and
nothing else; the web routes need no token but reach only S3, never the function; every
file carries the strict policy as metadata and the API maps it onto the response; the
policy names no origin but the stack's own Cognito and shard-bucket endpoints.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra.components.web_client import (
    SECURITY_HEADERS,
    SITE_FILES,
    content_security_policy,
    metadata_key,
)
from infra.mockrun import ProgramRun, run_program

STACK = "phase1-specialist"


@cache
def program() -> ProgramRun:
    return run_program(STACK)


def _one(run: ProgramRun, type_token: str, name: str) -> Any:
    found = [r for r in run.of_type(type_token) if r.name == name]
    assert len(found) == 1, f"{name}: {len(found)} declared"
    return found[0]


def test_the_reader_role_reads_the_site_and_nothing_else() -> None:
    run = program()
    role = _one(run, "aws:iam/role:Role", "web-reader")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "apigateway.amazonaws.com"}]
    policy = json.loads(
        _one(run, "aws:iam/rolePolicy:RolePolicy", "web-reader-policy").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["s3:GetObject"]
    assert statement["Resource"].endswith("/site/*")
    assert statement["Resource"].startswith("arn:aws:s3:::hub-p1-web-")


def test_the_site_bucket_is_private_and_tls_only() -> None:
    run = program()
    block = _one(
        run,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "web-site-public-access-block",
    )
    assert all(
        block.inputs[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    policy = json.loads(
        _one(run, "aws:s3/bucketPolicy:BucketPolicy", "web-site-policy").inputs["policy"]
    )
    assert any(
        s["Effect"] == "Deny"
        and s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in policy["Statement"]
    )


def test_every_file_carries_the_strict_policy_and_the_api_maps_it() -> None:
    run = program()
    objects = run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    keys = {o.inputs["key"] for o in objects}
    assert keys == {f"site/{p}" for p in SITE_FILES} | {"site/config.json"}
    for o in objects:
        metadata = o.inputs["metadata"]
        assert set(metadata) == {metadata_key(h) for h in SECURITY_HEADERS}
        assert metadata["content-security-policy"].startswith("default-src 'none'")
        assert o.inputs["cacheControl"] == "no-cache"
    responses = [
        r
        for r in run.of_type("aws:apigateway/integrationResponse:IntegrationResponse")
        if r.inputs["statusCode"] == "200"
    ]
    assert len(responses) == 2
    for response in responses:
        mapped = response.inputs["responseParameters"]
        for header in SECURITY_HEADERS:
            assert mapped[f"method.response.header.{header}"] == (
                f"integration.response.header.x-amz-meta-{metadata_key(header)}"
            )


def test_the_web_routes_need_no_token_and_reach_only_s3() -> None:
    run = program()
    names = {"service-web-method", "service-web-asset-method"}
    methods = [m for m in run.of_type("aws:apigateway/method:Method") if m.name in names]
    assert {m.inputs["httpMethod"] for m in methods} == {"GET"}
    assert {m.inputs["authorization"] for m in methods} == {"NONE"}
    integrations = [
        i
        for i in run.of_type("aws:apigateway/integration:Integration")
        if i.name in {"service-web-integration", "service-web-asset-integration"}
    ]
    assert len(integrations) == 2
    for i in integrations:
        assert i.inputs["type"] == "AWS"
        assert i.inputs["integrationHttpMethod"] == "GET"
        assert ":s3:path/hub-p1-web-" in i.inputs["uri"]
        assert "/site/" in i.inputs["uri"]
        assert i.inputs["credentials"].endswith(":role/hub-p1-web-reader")
    # every other method stays behind the Cognito authorizer
    others = [m for m in run.of_type("aws:apigateway/method:Method") if m.name not in names]
    assert {m.inputs["authorization"] for m in others if m.name != "service-health-method"} == {
        "COGNITO_USER_POOLS"
    }


def assert_strict(policy: str, shard_bucket: str) -> None:
    """Nothing but this origin, the stack's Cognito endpoint and its shard bucket."""
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "font-src", "manifest-src"):
        assert directives[directive] == "'self'"
    assert directives["img-src"] == "'self' blob:"
    assert directives["connect-src"].split() == [
        "'self'",
        "https://cognito-idp.ap-east-1.amazonaws.com",
        f"https://{shard_bucket}.s3.ap-east-1.amazonaws.com",
    ]
    for directive in ("frame-ancestors", "object-src", "base-uri", "frame-src"):
        assert directives[directive] == "'none'"
    assert "unsafe" not in policy and "*" not in policy and "http:" not in policy


def test_the_policy_allows_only_the_stack_endpoints() -> None:
    assert_strict(content_security_policy("ap-east-1", "hub-p1-shards-1"), "hub-p1-shards-1")
    # the declared objects carry the policy for this stack's own shard bucket
    run = program()
    shard = _one(run, "aws:s3/bucket:Bucket", "storage-shards").inputs["bucket"]
    config = next(
        o
        for o in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if o.inputs["key"] == "site/config.json"
    )
    assert_strict(config.inputs["metadata"]["content-security-policy"], shard)
    site = json.loads(config.inputs["content"])
    assert site["cognitoEndpoint"] == "https://cognito-idp.ap-east-1.amazonaws.com/"
    assert site["maxTokenAgeSeconds"] == 15 * 60


@pytest.mark.parametrize(
    "loosen",
    [
        lambda p: p.replace("script-src 'self'", "script-src 'self' https:"),
        lambda p: p.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
        lambda p: p.replace("connect-src 'self'", "connect-src 'self' https://cdn.example"),
        lambda p: p.replace("frame-ancestors 'none'", "frame-ancestors *"),
    ],
)
def test_switch_off_a_looser_policy_is_caught(loosen: Any) -> None:
    policy = content_security_policy("ap-east-1", "hub-p1-shards-1")
    with pytest.raises(AssertionError):
        assert_strict(loosen(policy), "hub-p1-shards-1")
