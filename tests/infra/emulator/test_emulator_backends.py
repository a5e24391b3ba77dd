"""Per-service endpoints: the emulator and verify can put each AWS service on its own
emulator, and the LocalStack tier really does.

The ``aws_integration`` tests read the session deployment (``deployed_stacks``) through
``aws_backend``: under the default moto backend they check that nothing is split; under
``--aws-backend=localstack`` that S3, KMS, IAM and Lambda resources exist on LocalStack
and not on moto, that the rest stayed on moto, and that the differences between the two
emulators are recorded as gaps. The other tests run the routing itself against small
stand-ins, without LocalStack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.emulator import DeploymentRecord
from infra.emulator.gaps import LOCALSTACK, LOCALSTACK_DIFFERENCES
from infra.emulator.provision import Context, is_localstack
from infra.verify.clients import ClientFactory

PHASE1 = "phase1-specialist"
FUNCTION = "aws:lambda/function:Function"


def _moto(service: str, moto_endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=moto_endpoint, region_name="ap-east-1")


def _missing_on(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError:
        return True
    return False


@pytest.mark.aws_integration
def test_each_service_is_created_on_its_backend(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any, moto_endpoint: str
) -> None:
    record = deployed_stacks[PHASE1]
    out = record.outputs
    assert record.endpoints == dict(aws_backend.endpoints)
    probes = {
        "s3": ("head_bucket", {"Bucket": out["shardBucketName"]}),
        "kms": ("describe_key", {"KeyId": out["recordsKeyArn"]}),
        "lambda": ("get_function", {"FunctionName": out["functionName"]}),
        "dynamodb": ("describe_table", {"TableName": out["tableNames"]["records"]}),
        "cognito-idp": ("describe_user_pool", {"UserPoolId": out["userPoolId"]}),
    }
    for service, (operation, kwargs) in probes.items():
        getattr(aws_backend.client(service), operation)(**kwargs)  # exists where routed
        on_moto = not _missing_on(getattr(_moto(service, moto_endpoint), operation), **kwargs)
        assert on_moto == (aws_backend.emulator_of(service) == "moto"), service
    # LocalStack's DynamoDB is unavailable here (gaps.dynamodb_unavailable): tables stay
    # on moto unless HUB_LOCALSTACK_SERVICES routes them.
    assert aws_backend.emulator_of("cognito-idp") == "moto"


@pytest.mark.aws_integration
def test_both_emulators_agree_on_the_account(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any, moto_endpoint: str
) -> None:
    """ARNs built for one emulator (a key policy naming a role) must hold on the other."""
    backend_account = aws_backend.client("sts").get_caller_identity()["Account"]
    moto_account = _moto("sts", moto_endpoint).get_caller_identity()["Account"]
    assert backend_account == moto_account == deployed_stacks[PHASE1].account_id
    key = aws_backend.client("kms").describe_key(
        KeyId=deployed_stacks[PHASE1].outputs["recordsKeyArn"]
    )
    assert key["KeyMetadata"]["Arn"].split(":")[4] == moto_account


@pytest.mark.aws_integration
def test_localstack_differences_are_recorded_only_where_localstack_serves(
    deployed_stacks: dict[str, DeploymentRecord], aws_backend: Any
) -> None:
    record = deployed_stacks[PHASE1]
    localstack_gaps = {
        (g.type, g.resource, g.property) for g in record.gaps if LOCALSTACK in g.reason
    }
    on_localstack = aws_backend.name == "localstack"
    functions = {r.name for r in record.of_type(FUNCTION)}
    policies = {r.name for r in record.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    expected = (
        {(FUNCTION, name, "state") for name in functions}
        | {(FUNCTION, name, "code") for name in functions}
        | {("aws:s3/bucketPolicy:BucketPolicy", name, "policy (evaluation)") for name in policies}
        | {("aws:cloudtrail/trail:Trail", "audit-trail", "s3BucketName")}
    )
    if on_localstack:
        # key policy and conditional-statement gaps name LocalStack as the emulator too
        assert expected <= localstack_gaps
        assert {g for g in localstack_gaps if g[0] == "aws:kms/key:Key"}
    else:
        assert localstack_gaps == set()


def test_every_localstack_difference_names_checks_that_exist() -> None:
    """The catalogue of moto/LocalStack differences names only checks that exist."""
    from infra.policies.pack import BINDINGS

    rule_names = {b.name for b in BINDINGS}
    verify_source = "".join(p.read_text() for p in Path("infra/verify").glob("*.py"))
    assert {g.type for g in LOCALSTACK_DIFFERENCES} >= {
        "aws:dynamodb/table:Table",
        "aws:lambda/function:Function",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:cloudtrail/trail:Trail",
    }
    for gap in LOCALSTACK_DIFFERENCES:
        assert gap.not_enforced and gap.reason and gap.covered_by, gap
        assert LOCALSTACK in gap.reason, gap
        for check in gap.covered_by:
            if check.startswith("tests/"):
                path, _, test = check.partition("::")
                assert Path(path.split(" ")[0]).exists(), check
                assert not test or f"def {test}(" in Path(path).read_text(), check
            elif "." in check:
                assert f'"{check}"' in verify_source, check
            else:
                assert check in rule_names, check


# ------------------------------------------------------------------ routing, no LocalStack


def test_context_routes_each_service_to_its_endpoint() -> None:
    ctx = Context("http://127.0.0.1:1", "ap-east-1", {"s3": "http://127.0.0.1:2"})
    assert ctx.endpoint_for("s3") == "http://127.0.0.1:2"
    assert ctx.endpoint_for("cloudtrail") == "http://127.0.0.1:1"
    assert ctx.client("s3").meta.endpoint_url == "http://127.0.0.1:2"
    assert ctx.client("kms").meta.endpoint_url == "http://127.0.0.1:1"
    assert ctx.client("s3", on="cloudtrail").meta.endpoint_url == "http://127.0.0.1:1"


def test_verify_clients_route_each_service_to_its_endpoint() -> None:
    clients = ClientFactory("http://127.0.0.1:1", endpoints={"kms": "http://127.0.0.1:2"})
    assert clients("kms").meta.endpoint_url == "http://127.0.0.1:2"
    assert clients("dynamodb").meta.endpoint_url == "http://127.0.0.1:1"


class _Health(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        found = self.path == "/_localstack/health"
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(self.body if found else b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_localstack_is_recognised_by_its_health_route(
    health_server: tuple[str, type[_Health]],
) -> None:
    url, handler = health_server
    handler.body = json.dumps({"services": {"s3": "running"}}).encode()
    assert is_localstack(url)
    assert Context(None, "ap-east-1", {"s3": url}).served_by_localstack("s3")


def test_an_endpoint_without_localstacks_health_route_is_not_localstack(
    health_server: tuple[str, type[_Health]], moto_endpoint: str
) -> None:
    url, handler = health_server
    handler.body = b'{"status": "ok"}'  # answers, but is not LocalStack's document
    assert not is_localstack(url)
    assert not is_localstack(moto_endpoint)
    assert not is_localstack("http://127.0.0.1:9")  # nothing listens on the discard port
    assert not Context(moto_endpoint, "ap-east-1").served_by_localstack("s3")
