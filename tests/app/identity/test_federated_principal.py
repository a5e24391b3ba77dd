"""A federated doctor of a multi-hospital provider, as the service sees them on every
request: placed through the hospital-code mapping in the institutions table, with roles
from the provider's group claim; one whose hospital is not mapped is refused with a clear
error.

moto cannot federate (a recorded gap), so the account is a pool user whose profile says
what Cognito records for a federated user: ``EXTERNAL_PROVIDER`` with its provider, and
the attributes the provider's mapping wrote (``app.identity.federation.map_assertion``
of a synthetic SAML assertion)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hub_testkit import Hub

from app.access.auth import Authentication
from app.errors import Forbidden
from app.identity.affiliations import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    ProviderMapping,
)
from app.identity.federation import attribute_mapping, map_assertion
from app.identity.principal import Authenticator, PoolProfile, TtlCache
from app.institutions.service import OPERATOR, CohortInstitution

PROVIDER = f"HAFederation{uuid.uuid4().hex[:4]}"
MAPPING = ProviderMapping(PROVIDER, claim="hospital_code", group_roles={"HA-Clinician": "doctor"})


class FederatedProfiles:
    """The pool's answer for federated test accounts; others as the real pool says."""

    def __init__(self, real: Any):
        self.real = real
        self.federated: dict[str, PoolProfile] = {}

    def profile(self, username: str) -> PoolProfile | None:
        return self.federated.get(username) or self.real.profile(username)


@pytest.fixture(scope="module")
def federation(hub: Hub) -> dict[str, Any]:
    hospitals = {
        "HGH": f"harbour-general-{uuid.uuid4().hex[:4]}",
        "KWH": f"kowloon-west-{uuid.uuid4().hex[:4]}",
    }
    hub.operator.seed(
        OPERATOR,
        [
            CohortInstitution(
                Institution(
                    ident, ident, InstitutionType.HA_HOSPITAL, 2, InstitutionStatus.ADMITTED
                ),
                PROVIDER,
                code,
            )
            for code, ident in hospitals.items()
        ],
        [MAPPING],
    )
    profiles = FederatedProfiles(hub.services.authenticator.profiles)
    authenticator = Authenticator(
        verifier=hub.services.authenticator.verifier,
        profiles=profiles,
        register=hub.services.register,
        affiliations=hub.services.institutions.repository,
        cache_seconds=0,
    )
    authentication = Authentication(
        authenticator, hub.services.gate, hub.services.directory, TtlCache(0)
    )
    return {"hospitals": hospitals, "profiles": profiles, "authentication": authentication}


def federated_doctor(hub: Hub, federation: dict[str, Any], code: str, reg_no: str) -> str:
    username = f"{PROVIDER}_{uuid.uuid4().hex[:10]}"
    token = hub.new_account(username)
    saml = {
        "urn:hk:mchk:reg_no": reg_no,
        "urn:hk:ha:hospital_code": code,
        "http://schemas.xmlsoap.org/claims/Group": ["HA-Clinician", "HA-Payroll"],
    }
    pool_attributes = map_assertion(attribute_mapping("SAML", MAPPING.required_claims()), saml)
    federation["profiles"].federated[username] = PoolProfile(
        PROVIDER,
        {"reg_no": pool_attributes["custom:idp_reg_no"],
         "hospital_code": pool_attributes["custom:hospital_code"],
         "groups": pool_attributes["custom:idp_groups"]},
    )  # fmt: skip
    return token


def test_a_federated_doctor_gets_the_hospital_and_role_their_provider_asserts(
    hub: Hub, federation: dict[str, Any]
) -> None:
    for code, hospital in federation["hospitals"].items():
        reg_no, _ = hub.spare_number()
        token = federated_doctor(hub, federation, code, reg_no)
        principal = federation["authentication"].principal(token)
        assert (principal.institution, principal.roles, principal.reg_no) == (
            hospital,
            frozenset({"doctor"}),
            reg_no,
        )


def test_one_with_no_mapping_is_refused_with_a_clear_error(
    hub: Hub, federation: dict[str, Any]
) -> None:
    reg_no, _ = hub.spare_number()
    token = federated_doctor(hub, federation, "QMH", reg_no)
    start = hub.ledger_size()
    with pytest.raises(Forbidden) as refused:
        federation["authentication"].principal(token)
    assert refused.value.code == "hospital_not_mapped"
    assert refused.value.message == (
        "Access refused (hospital_not_mapped): your identity provider's hospital code maps "
        "to no institution admitted to the hub."
    )
    [entry] = hub.audit_entries(start)
    assert (entry["action"], entry["outcome"], entry["reason"]) == (
        "login",
        "denied",
        "hospital_not_mapped",
    )


def test_the_service_rechecks_on_every_request(hub: Hub, federation: dict[str, Any]) -> None:
    code, hospital = next(iter(federation["hospitals"].items()))
    reg_no, _ = hub.spare_number()
    token = federated_doctor(hub, federation, code, reg_no)
    assert federation["authentication"].principal(token).institution == hospital
    # An institution admin's removal wins over the provider, from the next request.
    hub.operator.set_affiliation(OPERATOR, hospital, reg_no, ("doctor",))
    hub.operator.remove_affiliation(OPERATOR, hospital, reg_no)
    with pytest.raises(Forbidden) as removed:
        federation["authentication"].principal(token)
    assert removed.value.code == "affiliation_removed"
