"""Session-scoped fixtures shared by the whole suite.

The moto server runs on a free loopback port, once per session; integration tests talk
to it through ``AWS_ENDPOINT_URL`` (boto3 honours it), never to the internet.

``--aws-backend=moto|localstack`` (default moto) chooses where the integration tier's
S3, KMS, IAM, STS and Lambda live (``aws_backend``). With ``localstack`` they go to
LocalStack through pytest-localstack: a ``RunningSession`` on ``HUB_LOCALSTACK_ENDPOINT``
when it is set (``scripts/localstack_host.py`` sets it), otherwise a LocalStack 4.14
container when a Docker engine answers; neither is a usage error. The services LocalStack
lacks here (Cognito, CloudTrail, API Gateway, CloudWatch, SNS, WAF, and DynamoDB, whose
LocalStack provider needs Java and DynamoDB Local downloaded from hosts this network does
not reach) stay on the session moto server. The tier is ``pytest -m aws_integration``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.emulator.server import EMULATOR_CREDENTIALS as FAKE_CREDENTIALS

# The services the LocalStack tier puts on LocalStack (boto3 names); HUB_LOCALSTACK_SERVICES
# overrides it, e.g. to add dynamodb where LocalStack's DynamoDB works.
LOCALSTACK_SERVICES = ("s3", "kms", "iam", "sts", "lambda")
LOCALSTACK_IMAGE_VERSION = "4.14"  # the last LocalStack release that needs no auth token
LOCALSTACK_START_TIMEOUT_S = 180
# LocalStack takes the account id from a 12-digit access key id (else 000000000000);
# moto's default account is 123456789012. This key makes the two agree, so ARNs built
# for one (a KMS key's policy naming a role) hold on the other.
LOCALSTACK_ACCESS_KEY_ID = "123456789012"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--aws-backend",
        choices=("moto", "localstack"),
        default="moto",
        help="where the aws_integration tier's S3, KMS, IAM, STS and Lambda run: the "
        "session moto server (default) or LocalStack (HUB_LOCALSTACK_ENDPOINT, else a "
        "Docker container through pytest-localstack)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--aws-backend") != "localstack":
        return
    if not os.environ.get("HUB_LOCALSTACK_ENDPOINT") and not _docker_answers():
        raise pytest.UsageError(
            "--aws-backend=localstack needs LocalStack: set HUB_LOCALSTACK_ENDPOINT to a "
            "running LocalStack (`make test-localstack` starts one on this host with "
            "scripts/localstack_host.py), or run where a Docker engine answers so "
            f"pytest-localstack can start localstack/localstack:{LOCALSTACK_IMAGE_VERSION}"
        )


# Fixtures that take their S3/KMS clients from ``aws_backend``: a test using one is in the
# aws_integration tier without marking each test (the record storage tests), except in
# the modules below, whose subject does not depend on the backend; the tier must stay
# within 5 minutes of CI.
AWS_BACKEND_FIXTURES = frozenset({"records"})
NOT_IN_AWS_TIER = {
    "test_record_access_matrix.py": "authorization decisions (Cedar), not storage",
    "test_ledger_doctor_session.py": "the audit ledger, whose tables stay on moto",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses_backend = AWS_BACKEND_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_backend and item.path.name not in NOT_IN_AWS_TIER:
            item.add_marker(pytest.mark.aws_integration)


# What LocalStack community answers for an API it does not emulate (e.g. KMS
# ListKeyRotations in 4.14): such a test is skipped naming the service and operation,
# never passed, and only on the LocalStack backend.
_NOT_EMULATED = "is either not included in your current license plan or has not yet been emulated"


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    try:
        return (yield)
    except Exception as error:
        if _backend_name(pyfuncitem.config) != "localstack":
            raise
        response = getattr(error, "response", None)  # a botocore ClientError's parsed reply
        detail = response.get("Error") if isinstance(response, dict) else None
        message = str(detail.get("Message", "")) if isinstance(detail, dict) else ""
        if _NOT_EMULATED in message:
            operation = getattr(error, "operation_name", "?")
            service = message.split("service ", 1)[-1].split(" ", 1)[0]
            pytest.skip(
                f"LocalStack {LOCALSTACK_IMAGE_VERSION} does not emulate {service} "
                f"{operation} (moto does); see infra/emulator/gaps.py LOCALSTACK_DIFFERENCES"
            )
        raise


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # no engine, no socket, no docker package: all mean "no Docker"
        return False


def _backend_name(config: pytest.Config) -> str:
    return str(config.getoption("--aws-backend"))


@pytest.fixture(autouse=True, scope="session")
def _no_real_aws(pytestconfig: pytest.Config) -> Iterator[None]:
    """Every test runs with fake credentials, so nothing can reach a real account."""
    saved = {k: os.environ.get(k) for k in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    if _backend_name(pytestconfig) == "localstack":
        os.environ["AWS_ACCESS_KEY_ID"] = LOCALSTACK_ACCESS_KEY_ID
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _output_to_a_pipe() -> Iterator[None]:
    """The CLIs' output is checked as a pipe receives it: without ``COLUMNS``, which the
    CLIs honour as a width (infra/cli_output.py). pytest-xdist's workers start with
    ``COLUMNS=80`` in their environment; a run in one process has none."""
    saved = {k: os.environ.pop(k) for k in ("COLUMNS", "LINES") if k in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 for the whole session, started the one way the project
    starts moto (DynamoDB isolation and routing memoisation installed); yields its URL."""
    from infra.emulator.server import start_moto_server

    server, endpoint = start_moto_server()
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass(frozen=True)
class AwsBackend:
    """Where each AWS service is emulated for a test: ``endpoint(service)`` and ``client()``.

    The default backend is the session's moto server for every service. Integration
    tests that exercise S3, KMS, IAM, STS or Lambda take their clients from here (not
    from ``moto_endpoint`` directly), so the LocalStack tier can point those services at
    LocalStack while the services it lacks stay on moto.
    """

    name: str
    default_endpoint: str
    endpoints: Mapping[str, str] = field(default_factory=dict)

    def endpoint(self, service: str) -> str:
        return self.endpoints.get(service, self.default_endpoint)

    def emulator_of(self, service: str) -> str:
        """Which emulator serves ``service`` this session: ``localstack`` or ``moto``."""
        return self.name if service in self.endpoints else "moto"

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3

        return boto3.client(
            service, region_name="ap-east-1", endpoint_url=self.endpoint(service), **kwargs
        )


def localstack_services() -> tuple[str, ...]:
    raw = os.environ.get("HUB_LOCALSTACK_SERVICES", "")
    chosen = tuple(s.strip() for s in raw.split(",") if s.strip())
    return chosen or LOCALSTACK_SERVICES


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[str]:
    """LocalStack's gateway URL, through pytest-localstack, for the whole session.

    ``HUB_LOCALSTACK_ENDPOINT`` set: a ``RunningSession`` on it (its service checks wait
    until S3, IAM, STS and Lambda answer). Otherwise container mode: pytest-localstack
    starts localstack/localstack:4.14 in Docker and stops it at the end.
    """
    from urllib.parse import urlparse

    from pytest_localstack.session import LocalstackSession, RunningSession

    # pytest-localstack 0.8.0's service table predates KMS; LocalStack 4 serves every
    # service on one gateway, so the checked services give the URL KMS uses too.
    checked = ["s3", "iam", "sts", "lambda"]
    running = os.environ.get("HUB_LOCALSTACK_ENDPOINT")
    if running:
        url = urlparse(running)
        if not url.hostname or not url.port:
            raise pytest.UsageError(
                f"HUB_LOCALSTACK_ENDPOINT={running!r}: expected http://host:port"
            )
        session: Any = RunningSession(
            url.hostname,
            services={name: url.port for name in checked},
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            use_ssl=url.scheme == "https",
        )
    else:
        import docker

        session = LocalstackSession(
            docker.from_env(),
            services=checked,
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            localstack_version=LOCALSTACK_IMAGE_VERSION,
            # pytest-localstack writes the legacy "name:port" list; LocalStack 4 wants names.
            container_env={"SERVICES": ",".join(localstack_services())},
        )
    session.start(timeout=LOCALSTACK_START_TIMEOUT_S)
    try:
        yield session.endpoint_url("s3")
    finally:
        session.stop()


@pytest.fixture(scope="session")
def aws_backend(request: pytest.FixtureRequest, moto_endpoint: str) -> AwsBackend:
    """The session's backend: all moto, or LocalStack's services on LocalStack."""
    if _backend_name(request.config) == "moto":
        return AwsBackend(name="moto", default_endpoint=moto_endpoint)
    endpoint = request.getfixturevalue("localstack_endpoint")
    return AwsBackend(
        name="localstack",
        default_endpoint=moto_endpoint,
        endpoints={service: endpoint for service in localstack_services()},
    )
