"""What a phase turns on in the one hub is data its layer owns, and the core's service
reads it on the next request (docs/one-hub.md, "What a phase turns on").

The core (phase 1) is deployed on moto and its sharing service is built with the core's
own settings (phase 1: no federated client, self-registration off), exactly what the
core's function is configured with. Then phase 2's and phase 3's layers are deployed
over it and removed again, and the same service, never reconfigured, follows:

- a token minted by phase 2's federated app client (created by phase 2's layer on the
  core's pool) is accepted while phase 2's layer stands, and refused (401) on the next
  request once it is removed, though the token itself is still unexpired;
- self-registration is refused while phase 3's layer is absent and accepted (pending,
  no clinical access) while it stands;
- ``GET /me`` reports the caller's phase: their institution's, not the core's.

moto cannot federate (a recorded gap): the federated doctor is a pool user signed in
through the federated client, whose pool profile is what Cognito records for a
federated user (``EXTERNAL_PROVIDER``, the provider's mapped attributes), as in
tests/app/identity/test_federated_principal.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from app import local
from app.dependencies import build_operator_institutions, build_services
from app.identity.affiliations import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    ProviderMapping,
)
from app.identity.principal import PoolProfile
from app.identity.register import RegisterEntry
from app.institutions.service import OPERATOR, CohortInstitution
from app.main import create_app
from app.settings import Mode, Settings
from infra.emulator import DeploymentRecord, deploy, destroy, load_record

PHASE1 = "phase1-specialist"
PHASE2 = "phase2-hospital-authority"
PHASE3 = "phase3-private-practice"
PROVIDER = "ZZHAFederation"
HOSPITAL = "zz-harbour-general"
CLINIC = "zz-lantau-clinic"
PASSWORD = "Synthetic-Passw0rd!"


class FederatedProfiles:
    """The pool's answer for the federated test account; others as the real pool says."""

    def __init__(self, real: Any):
        self.real = real
        self.federated: dict[str, PoolProfile] = {}

    def profile(self, username: str) -> PoolProfile | None:
        return self.federated.get(username) or self.real.profile(username)


def core_settings(core: DeploymentRecord) -> Settings:
    """The core function's configuration (infra/components/sharing_service.py): phase 1,
    the core's native client only, self-registration off."""
    outputs = core.outputs
    tables = outputs["tableNames"]
    return Settings(
        mode=Mode.LOCAL,
        phase=1,
        stack=PHASE1,
        self_registration=False,
        table_register=tables["register"],
        table_groups=tables["groups"],
        table_records=tables["records"],
        table_ledger=tables["ledger"],
        table_institutions=tables["institutions"],
        table_patients=tables["patients"],
        cognito_user_pool_id=outputs["userPoolId"],
        cognito_client_id=outputs["userPoolClientIds"][0],
        cognito_issuer=outputs["issuer"],
        signing_key_arn=outputs["signingKeyArn"],
        checkpoint_bucket=outputs["auditBucketName"],
        registration_cache_seconds=0,
    )


@pytest.fixture(scope="module")
def core(
    module_account: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, DeploymentRecord]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        state = tmp_path_factory.mktemp("one-hub-switches")
        yield state, deploy(PHASE1, endpoint_url=moto_endpoint, state_dir=state)


def sign_in(cognito: Any, pool: str, client_id: str, username: str) -> str:
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": f"{username}@hub.example"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=username, Password=PASSWORD, Permanent=True
    )
    tokens = local.login(
        cognito,
        pool,
        client_id,
        username,
        PASSWORD,
        authenticator=local.AuthenticatorApp(),
        flow="admin_password",
    )
    return str(tokens["AccessToken"])


def test_the_core_service_follows_the_layers_switches(
    core: tuple[Path, DeploymentRecord], moto_endpoint: str
) -> None:
    state, record = core
    settings = core_settings(record)
    session = boto3.session.Session(region_name="ap-east-1")
    services = build_services(settings, session=session)
    profiles = FederatedProfiles(services.authenticator.profiles)
    services.authenticator.profiles = profiles
    client = TestClient(create_app(settings, services=services))
    cognito = session.client("cognito-idp")
    pool = settings.cognito_user_pool_id

    # The hub's data: an HA hospital placed by hospital code, a private clinic, and two
    # synthetic register entries (a federated HA doctor, a phase 3 applicant).
    operator = build_operator_institutions(
        session.client("dynamodb"),
        services.register,
        institutions_table=settings.table_institutions,
        ledger_table=settings.table_ledger,
        phase=3,
    )
    operator.seed(
        OPERATOR,
        [
            CohortInstitution(
                Institution(
                    HOSPITAL, HOSPITAL, InstitutionType.HA_HOSPITAL, 2, InstitutionStatus.ADMITTED
                ),
                PROVIDER,
                "ZZH",
            ),
            CohortInstitution(
                Institution(
                    CLINIC, CLINIC, InstitutionType.PRIVATE_CLINIC, 3, InstitutionStatus.ADMITTED
                )
            ),
        ],
        [ProviderMapping(PROVIDER, claim="hospital_code", group_roles={"HA-Clinician": "doctor"})],
    )
    services.register.put_entries(
        [
            RegisterEntry("M27101", "CHAN Tai Man", "陳大文", "Synthetic Road", ("MBBS",)),
            RegisterEntry("M27102", "LEE Siu Ming", "李小明", "Synthetic Road", ("MBBS",)),
        ],
        "2026-01-01T00:00:00+00:00",
    )

    def apply(token: str) -> Any:
        return client.post(
            "/registrations",
            headers={"Authorization": f"Bearer {token}"},
            json={"reg_no": "M27102", "name": "LEE Siu Ming", "institution": CLINIC},
        )

    native = settings.cognito_client_id
    first_applicant = sign_in(cognito, pool, native, f"applicant-{uuid.uuid4().hex[:8]}")

    phase2 = deploy(PHASE2, endpoint_url=moto_endpoint, state_dir=state)
    try:
        [federated_client] = [c for c in phase2.outputs["userPoolClientIds"] if c != native]
        username = f"{PROVIDER}_{uuid.uuid4().hex[:10]}"
        ha_token = sign_in(cognito, pool, federated_client, username)
        profiles.federated[username] = PoolProfile(
            PROVIDER, {"reg_no": "M27101", "hospital_code": "ZZH", "groups": "[HA-Clinician]"}
        )
        bearer = {"Authorization": f"Bearer {ha_token}"}

        # Phase 2 on: the federated client's token is accepted, and the caller's phase is
        # their institution's (2), though the core's service is configured for phase 1.
        me = client.get("/me", headers=bearer)
        assert me.status_code == 200, me.text
        assert (me.json()["institution"], me.json()["phase"]) == (HOSPITAL, 2)

        # Phase 3 off: self-registration is refused.
        closed = apply(first_applicant)
        assert closed.status_code == 403, closed.text
        assert closed.json()["error"]["code"] == "self_registration_closed"

        phase3 = deploy(PHASE3, endpoint_url=moto_endpoint, state_dir=state)
        try:
            # Phase 3 on: the same applicant's claim is accepted, pending, with no access.
            opened = apply(first_applicant)
            assert opened.status_code == 201, opened.text
            assert opened.json()["status"] == "pending"
            refused = client.get("/me", headers={"Authorization": f"Bearer {first_applicant}"})
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "registration_pending"
        finally:
            assert destroy(PHASE3, endpoint_url=moto_endpoint, state_dir=state).complete
        assert phase3.stack == PHASE3

        # Phase 3 removed: closed again from the next request.
        second_applicant = sign_in(cognito, pool, native, f"applicant-{uuid.uuid4().hex[:8]}")
        again = apply(second_applicant)
        assert again.status_code == 403, again.text
        assert again.json()["error"]["code"] == "self_registration_closed"
        assert client.get("/me", headers=bearer).status_code == 200
    finally:
        if load_record(PHASE3, state) is None:
            assert destroy(PHASE2, endpoint_url=moto_endpoint, state_dir=state).complete

    # Phase 2 removed: the same, still unexpired token is refused on the next request.
    gone = client.get("/me", headers=bearer)
    assert gone.status_code == 401, gone.text
