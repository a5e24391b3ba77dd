"""The service under test, once per session: moto tables, a Cognito pool, real tokens.

Everything is created once (pool, users, logins, register import) so the matrix and
attack tests stay fast. Every person signs in as a real client does: SRP, then the TOTP
challenge (enrolled at the first sign-in; moto checks the codes). The domain clock and
the cache clock are fakes the tests can move; token time checks keep the real clock,
since moto signs with the real time.

Messaging is on, against a scripted homeserver (``fake_homeserver.FakeHomeserver``): the
groups mirror into their rooms, and the homeserver's routes take its token. The real
Synapse runs only in ``tests/app/messaging``.

``gateway`` serves the same app through the local API gateway, built from the phase 1
program's declaration (its REST API, authorizer scopes, binary media types, caps), with
the declared pool bound to this session's pool; ``api`` runs a test both ways.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from api_contract import CONTRACT, checked
from fake_homeserver import FakeHomeserver
from fastapi.testclient import TestClient
from hub_testkit import (
    ADMITTED,
    CLINIC,
    NOT_ADMITTED,
    PASSWORD,
    PEOPLE,
    FakeClock,
    FakeMonotonic,
    Gateway,
    Hub,
    Person,
    World,
    applicant,
    build_group,
    build_referrals,
    build_world,
    consent_patients,
    gateway_record,
    pending_registration,
    register_patients,
    spare_affiliation,
    start_grant,
    synthetic_register,
)

from app import local
from app.dependencies import build_operator_institutions, build_services
from app.identity.affiliations import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    account_key,
    affiliation_key,
    staff_member,
)
from app.identity.directory import enrol_user_pool
from app.identity.register import import_register
from app.institutions.service import OPERATOR, CohortInstitution
from app.main import create_app, lambda_handler_for
from app.messaging.appservice import AppServiceRegistration
from app.messaging.identifiers import MatrixNames
from app.settings import Settings
from infra.emulator.gateway import LocalGateway

# The moto server logs every request; keep test output readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def hub(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    registration = AppServiceRegistration.generate(MatrixNames("hub.local"), "http://127.0.0.1:9")
    registration_file = registration.write(tmp_path_factory.mktemp("appservice") / "as.yaml")
    try:
        session = boto3.session.Session(region_name="ap-east-1")
        dynamodb = session.client("dynamodb")
        cognito = session.client("cognito-idp")
        prefix = f"hubtest-{uuid.uuid4().hex[:6]}"
        names = {k: f"{prefix}-{k}" for k in local.TABLE_KEYS}
        local.create_service_tables(dynamodb, names)
        pool_id, client_id = local.create_user_pool(cognito, prefix)
        # The ledger signs tree heads with a KMS P-256 key and archives them in a bucket.
        signing_key = session.client("kms").create_key(
            KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"
        )["KeyMetadata"]["Arn"]
        # Referrals seal the clinical question under the records key (record storage
        # itself stays off here: no shard bucket; tests/app/records adds it).
        records_key = session.client("kms").create_key(Description="hubtest records key")[
            "KeyMetadata"
        ]["Arn"]
        session.client("s3").create_bucket(
            Bucket=f"{prefix}-audit",
            CreateBucketConfiguration={"LocationConstraint": "ap-east-1"},
            ObjectLockEnabledForBucket=True,
        )
        settings = Settings(
            mode="local",
            phase=3,
            stack="test",
            self_registration=True,
            table_register=names["register"],
            table_groups=names["groups"],
            table_records=names["records"],
            table_ledger=names["ledger"],
            table_institutions=names["institutions"],
            table_patients=names["patients"],
            cognito_user_pool_id=pool_id,
            cognito_client_id=client_id,
            cognito_issuer=f"https://cognito-idp.ap-east-1.amazonaws.com/{pool_id}",
            registration_cache_seconds=60,
            signing_key_arn=signing_key,
            checkpoint_bucket=f"{prefix}-audit",
            # Tokens are minted once per session and the suite can outlast the declared
            # 15 minutes; the age check has its own tests (test_jwt_attacks.py).
            max_token_age_seconds=3600,
            records_key_arn=records_key,
            matrix_homeserver_url="http://homeserver.test",
            matrix_server_name="hub.local",
            matrix_registration_file=str(registration_file),
        )
        clock, monotonic = FakeClock(), FakeMonotonic()
        homeserver = FakeHomeserver("hub.local")
        services = build_services(
            settings,
            session=session,
            clock=clock,
            monotonic=monotonic,
            homeserver_transport=homeserver.transport(),
        )
        people = {k: Person(**{**v.__dict__}) for k, v in PEOPLE.items()}
        general, specialist = synthetic_register(list(people.values()))
        import_register(services.register, general, specialist)
        authenticator = local.AuthenticatorApp()
        operator = build_operator_institutions(
            dynamodb,
            services.register,
            institutions_table=names["institutions"],
            ledger_table=names["ledger"],
            phase=3,
            clock=clock,
        )
        operator.seed(
            OPERATOR,
            [
                CohortInstitution(Institution(i, f"{i} (synthetic)", kind, phase, admitted))
                for i, kind, phase, admitted in (
                    (
                        ADMITTED[0],
                        InstitutionType.SPECIALIST_ALLIANCE,
                        1,
                        InstitutionStatus.ADMITTED,
                    ),
                    (
                        ADMITTED[1],
                        InstitutionType.SPECIALIST_ALLIANCE,
                        1,
                        InstitutionStatus.ADMITTED,
                    ),
                    (CLINIC, InstitutionType.PRIVATE_CLINIC, 3, InstitutionStatus.ADMITTED),
                )
            ],
            [],
        )
        for p in people.values():
            # Pool groups and custom attributes as before; the service now reads neither.
            local.create_user(
                cognito,
                pool_id,
                p.username,
                PASSWORD,
                groups=p.groups,
                reg_no=p.reg_no,
                institution=p.institution,
            )
            tokens = local.login(
                cognito, pool_id, client_id, p.username, PASSWORD, authenticator=authenticator
            )
            p.token, p.id_token = tokens["AccessToken"], tokens["IdToken"]
            _enrol_person(cognito, pool_id, dynamodb, names["institutions"], operator, p)
        enrol_user_pool(
            cognito,
            pool_id,
            services.directory,
            services.register,
            services.institutions.repository,
        )
        app = create_app(settings, services=services)
        checked(app, CONTRACT)  # every response is held to the API's own document
        with TestClient(app) as client:
            # The lifespan started the ledger's background sequencer; the service tests
            # integrate on demand instead (its timing has its own test), so no thread
            # keeps calling the emulator behind other tests' measurements.
            services.ledger.stop()
            handle = Hub(
                endpoint=moto_endpoint,
                settings=settings,
                services=services,
                client=client,
                app=app,
                clock=clock,
                monotonic=monotonic,
                cognito=cognito,
                dynamodb=dynamodb,
                pool_id=pool_id,
                client_id=client_id,
                people=people,
                authenticator=authenticator,
                operator=operator,
                homeserver=homeserver,
                registration=registration,
            )
            # Groups, records and referrals name patients the index knows.
            register_patients(handle)
            # ... who have consented to sharing with the test institutions.
            consent_patients(handle)
            yield handle
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


def _enrol_person(
    cognito: Any, pool_id: str, dynamodb: Any, table: str, operator: Any, p: Person
) -> None:
    """Bind the person's account and affiliate them (the operator path), or, for the
    people who must be refused (institution not admitted, number not on the register),
    write the same items directly: the operator path would rightly refuse them."""
    user = cognito.admin_get_user(UserPoolId=pool_id, Username=p.username)
    sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    member = p.reg_no or staff_member(sub)
    if p.institution != NOT_ADMITTED and p.register_status is not None:
        operator.set_affiliation(OPERATOR, p.institution, member, p.groups, bind_sub=sub)
        return
    items = [
        {
            **account_key(sub),
            "member": member,
            "institution": p.institution,
            "status": "active",
        },
        {**affiliation_key(p.institution, member), "roles": list(p.groups), "status": "active"},
    ]
    for item in items:
        dynamodb.put_item(
            TableName=table,
            Item={
                k: {"L": [{"S": r} for r in v]} if isinstance(v, list) else {"S": v}
                for k, v in item.items()
            },
        )


@pytest.fixture(autouse=True)
def api_document_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test during which the app answered a status (or an error code) its
    OpenAPI document does not list for the operation (tests/app/api_contract.py)."""
    before = len(CONTRACT.violations)
    yield
    new = CONTRACT.violations[before:]
    assert not new, "the API answered outside its document:\n" + "\n".join(map(str, new))


@pytest.fixture(scope="session")
def world(hub: Hub) -> World:
    """Shared world: only tests that expect a refusal (no state change) may use it."""
    return build_world(hub)


@pytest.fixture
def fresh_world(hub: Hub, world: World) -> World:
    """The shared world with a new open group and a new live grant, for cells that change
    state; the closed group and the expired grant are never changed, so they are shared."""
    gid = build_group(hub)
    return World(
        gid,
        world.closed_group_id,
        start_grant(hub, "dr-bg-live"),
        world.expired_grant_id,
        *build_referrals(hub, gid),
        applicant(hub),
        pending_registration(hub),
        spare_affiliation(hub),
    )


@pytest.fixture(scope="session")
def gateway(hub: Hub) -> Iterator[Gateway]:
    # The shared gateway's throttle is raised (a test stage's capacity) so the matrix is
    # not throttled; the declared throttle has its own test.
    record = gateway_record(hub, apiThrottleRateLimit=5_000, apiThrottleBurstLimit=5_000)
    # The session's ledger integrates on demand (see the hub fixture), not inline.
    function = lambda_handler_for(hub.app, sign_inline=False)
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        return function(event, context)

    server = LocalGateway(record, handler)
    base_url = server.start()
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            yield Gateway(server, client, record, events)
    finally:
        server.stop()


@pytest.fixture(params=["direct", "gateway"])
def api(request: pytest.FixtureRequest, hub: Hub) -> httpx.Client:
    """An HTTP client on the app served directly, or through the local gateway."""
    if request.param == "direct":
        return hub.client
    gateway: Gateway = request.getfixturevalue("gateway")
    return gateway.client
