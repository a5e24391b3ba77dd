"""The web client's site through the local gateway, as the program declares it: the two
S3 integrations (``GET /web``, ``GET /web/{asset+}``) read only the declared bucket's
``site/`` keys, map the object's metadata onto the security headers, answer 404 for
anything missing, need no token (and never reach the function), and the emulator's
origin stands in for exactly the AWS origins the site names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from infra.components.web_client import metadata_key, security_headers
from infra.emulator.gateway import GatewayRequest, LocalGateway, record_from_program
from infra.emulator.gateway.declared import DeclaredApi
from infra.emulator.record import DeploymentRecord
from infra.emulator.web_site import aws_stand_ins

POOL = "ap-east-1_websitetests"
SHARDS = "hub-p1-shards-123456789012"
EMULATOR = "http://127.0.0.1:5999"


@pytest.fixture(scope="module")
def record() -> DeploymentRecord:
    return record_from_program("phase1-specialist", user_pool_id=POOL, endpoint_url=EMULATOR)


def never_called(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise AssertionError("the function must not serve the site")


class Bucket:
    """A fake S3: objects by (bucket, key), and every read it was asked for."""

    def __init__(self, bucket: str, objects: Mapping[str, tuple[bytes, str]]) -> None:
        self.bucket = bucket
        metadata = {
            f"x-amz-meta-{metadata_key(k)}": v
            for k, v in security_headers("ap-east-1", SHARDS).items()
        }
        self.objects = {
            key: (body, {"Content-Type": media, "Cache-Control": "no-cache", **metadata})
            for key, (body, media) in objects.items()
        }
        self.reads: list[tuple[str, str]] = []

    def __call__(self, bucket: str, key: str) -> tuple[bytes, Mapping[str, str]] | None:
        self.reads.append((bucket, key))
        return self.objects.get(key) if bucket == self.bucket else None


def site_bucket(record: DeploymentRecord) -> str:
    reads = [m.s3_read for m in DeclaredApi.from_record(record).methods.values() if m.s3_read]
    assert len(reads) == 2
    (bucket,) = {r.bucket for r in reads}
    return bucket


def get(gateway: LocalGateway, path: str) -> Any:
    # a browser's request: every phase's web ACL blocks one without a User-Agent
    browser = [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156 (synthetic)")]
    return gateway.handle(GatewayRequest("GET", path, "", browser, b"", "198.51.100.9"))


def test_only_keys_under_the_declared_prefix_are_served(record: DeploymentRecord) -> None:
    bucket = Bucket(
        site_bucket(record),
        {
            "site/index.html": (b"<!doctype html>", "text/html; charset=utf-8"),
            "site/assets/hub.js": (b"export {}", "text/javascript; charset=utf-8"),
            "secret.txt": (b"not the site", "text/plain"),
        },
    )
    gateway = LocalGateway(record, never_called, s3_reader=bucket)
    index = get(gateway, "/v1/web/")
    assert index.status == 200 and index.body == b"<!doctype html>"
    script = get(gateway, "/v1/web/assets/hub.js")
    assert script.status == 200 and dict(script.headers)["content-type"].startswith(
        "text/javascript"
    )
    headers = dict(script.headers)
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-cache"
    for path in ("/v1/web/../secret.txt", "/v1/web/nothing.js", "/v1/web/site/index.html"):
        missing = get(gateway, path)
        assert missing.status == 404, path
        assert json.loads(missing.body) == {"message": "Not Found"}
    assert {key for _, key in bucket.reads} <= {
        "site/index.html",
        "site/assets/hub.js",
        "site/nothing.js",
        "site/site/index.html",
    }
    assert {b for b, _ in bucket.reads} == {bucket.bucket}
    # the rest of the API still wants a token
    assert get(gateway, "/v1/me").status == 401


def test_the_emulator_stands_in_for_exactly_the_declared_endpoints(
    record: DeploymentRecord,
) -> None:
    config = {
        "cognitoEndpoint": "https://cognito-idp.ap-east-1.amazonaws.com/",
        "elsewhere": "https://cognito-idp.eu-west-1.amazonaws.com/",
    }
    bucket = Bucket(
        site_bucket(record),
        {"site/config.json": (json.dumps(config).encode(), "application/json")},
    )
    stand_ins = aws_stand_ins(
        "ap-east-1", SHARDS, cognito_endpoint=EMULATOR, s3_endpoint=EMULATOR + "/"
    )
    gateway = LocalGateway(record, never_called, s3_reader=bucket, aws_endpoints=stand_ins)
    served = get(gateway, "/v1/web/config.json")
    assert served.status == 200
    body = json.loads(served.body)
    assert body["cognitoEndpoint"] == EMULATOR + "/"
    assert body["elsewhere"] == config["elsewhere"]  # any other origin is left alone
    connect = next(
        d
        for d in dict(served.headers)["content-security-policy"].split("; ")
        if d.startswith("connect-src")
    )
    assert connect.split() == ["connect-src", "'self'", EMULATOR, EMULATOR]
    assert int(dict(served.headers)["content-length"]) == len(served.body)

    untouched = LocalGateway(record, never_called, s3_reader=bucket)
    assert (
        "amazonaws.com"
        in dict(get(untouched, "/v1/web/config.json").headers)["content-security-policy"]
    )
