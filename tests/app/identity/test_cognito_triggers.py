"""Cognito trigger handlers, called directly (moto does not invoke triggers), with
synthetic SAML and OIDC assertions mapped onto the pool the way Cognito maps them
(``app.identity.federation``, the mapping the identity component declares).

The hub of this module: a Hospital Authority identity provider covering two hospitals by
hospital code (roles from its group claim), a single-institution OIDC provider whose
roles come from affiliations, and a native clinic account."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.identity.affiliations import (
    Account,
    AccountStatus,
    Affiliation,
    AffiliationStatus,
    EnrolmentRefused,
    HubLayer,
    Institution,
    InstitutionStatus,
    InstitutionType,
    MappingAffiliations,
    ProviderMapping,
)
from app.identity.federation import GRANTING_ATTRIBUTES, attribute_mapping, map_assertion
from app.identity.registration import (
    MappingRegister,
    Practitioner,
    RegistrationRefused,
    RegistrationStatus,
    check_registration,
)
from app.identity.triggers import pre_sign_up, pre_token_generation

REGISTER = MappingRegister(
    {
        "M10001": Practitioner("M10001", RegistrationStatus.ACTIVE, "cardiology"),
        "M10002": Practitioner("M10002", RegistrationStatus.SUSPENDED),
        "M10003": Practitioner("M10003", RegistrationStatus.REMOVED),
        "M10004": Practitioner("M10004", RegistrationStatus.ACTIVE),
        "M10005": Practitioner("M10005", RegistrationStatus.ACTIVE),
    }
)
HA = ProviderMapping(
    "HospitalAuthority",
    claim="hospital_code",
    group_roles={
        "HA-Clinician": "doctor",
        "HA-Specialist": "specialist",
        # An identity provider vouches for clinicians only: this one is ignored.
        "HA-IT-Admin": "platform_admin",
    },
)
CLINIC_IDP = ProviderMapping("SaiKungClinicIdP", institution="sai-kung-medical-centre")


def institution(ident: str, kind: InstitutionType, status: str = "admitted") -> Institution:
    return Institution(ident, ident, kind, 2, InstitutionStatus(status))


def hub(**changes: Any) -> MappingAffiliations:
    data: dict[str, Any] = {
        "institutions": [
            institution("victoria-general", InstitutionType.HA_HOSPITAL),
            institution("tuen-mun-riverside", InstitutionType.HA_HOSPITAL),
            institution("queen-anne-hospital", InstitutionType.HA_HOSPITAL, "removed"),
            institution("sai-kung-medical-centre", InstitutionType.PRIVATE_CLINIC),
        ],
        "affiliations": [
            Affiliation("sai-kung-medical-centre", "M10004", ("doctor",), AffiliationStatus.ACTIVE),
            Affiliation("sai-kung-medical-centre", "M10005", ("doctor",), AffiliationStatus.ACTIVE),
        ],
        "accounts": [
            Account("sub-native", "M10005", "sai-kung-medical-centre", AccountStatus.ACTIVE),
            Account("sub-pending", "M10001", "sai-kung-medical-centre", AccountStatus.PENDING),
        ],
        "providers": [HA, CLINIC_IDP],
        "hospital_codes": {
            ("HospitalAuthority", "VGH"): "victoria-general",
            ("HospitalAuthority", "TMR"): "tuen-mun-riverside",
            ("HospitalAuthority", "QAH"): "queen-anne-hospital",
        },
    }
    data.update(changes)
    return MappingAffiliations(**data)


SAML_MAPPING = attribute_mapping("SAML", HA.required_claims())
OIDC_MAPPING = attribute_mapping("OIDC", CLINIC_IDP.required_claims())


def saml_assertion(
    reg_no: str | None = "M10001",
    code: str | None = "VGH",
    groups: tuple[str, ...] = ("HA-Clinician", "HA-Specialist"),
) -> dict[str, Any]:
    """A synthetic SAML assertion's attributes, as the HA identity provider releases them."""
    claims: dict[str, Any] = {
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "dr@ha.example",
        "http://schemas.xmlsoap.org/claims/Group": list(groups),
    }
    if reg_no is not None:
        claims["urn:hk:mchk:reg_no"] = reg_no
    if code is not None:
        claims["urn:hk:ha:hospital_code"] = code
    return claims


def federated_event(
    provider: str, pool_attributes: dict[str, str], source: str = "TokenGeneration_HostedAuth"
) -> dict[str, Any]:
    attributes = {
        "sub": "0f6e1c9a-1111-4222-8333-944455556666",
        "cognito:user_status": "EXTERNAL_PROVIDER",
        "identities": f'[{{"providerName": "{provider}", "userId": "synthetic-1"}}]',
        **pool_attributes,
    }
    return {
        "triggerSource": source,
        "userName": f"{provider}_synthetic-1",
        "request": {"userAttributes": attributes, "groupConfiguration": {"groupsToOverride": []}},
        "response": {},
    }


def native_event(sub: str, extra: dict[str, str] | None = None, source: str = "") -> dict[str, Any]:
    attributes = {"sub": sub, "email": "dr.synthetic@hub.example", **(extra or {})}
    return {
        "triggerSource": source or "TokenGeneration_Authentication",
        "userName": "dr-native",
        "request": {
            "userAttributes": attributes,
            # The pool's groups: the hub decides roles, so these do not count.
            "groupConfiguration": {"groupsToOverride": ["platform_admin"]},
        },
        "response": {},
    }


def claims(event: dict[str, Any]) -> dict[str, Any]:
    details = event["response"]["claimsAndScopeOverrideDetails"]
    assert details["idTokenGeneration"] == details["accessTokenGeneration"]
    return {
        **details["accessTokenGeneration"]["claimsToAddOrOverride"],
        "groups": details["groupOverrideDetails"]["groupsToOverride"],
    }


def issue(event: dict[str, Any], affiliations: MappingAffiliations | None = None) -> dict[str, Any]:
    return claims(
        pre_token_generation(event, register=REGISTER, affiliations=affiliations or hub())
    )


def refusal(event: dict[str, Any], affiliations: MappingAffiliations | None = None) -> str:
    with pytest.raises((EnrolmentRefused, RegistrationRefused)) as refused:
        pre_token_generation(event, register=REGISTER, affiliations=affiliations or hub())
    return str(refused.value.reason)


# -- federation: one provider, many hospitals ---------------------------------------------


def test_ha_doctor_is_placed_by_hospital_code_with_roles_from_the_group_claim() -> None:
    event = federated_event("HospitalAuthority", map_assertion(SAML_MAPPING, saml_assertion()))
    assert issue(event) == {
        "institution_id": "victoria-general",
        "mchk_reg_no": "M10001",
        "hub_roles": "doctor specialist",
        "groups": ["doctor", "specialist"],
    }


def test_the_same_provider_places_another_hospital_s_doctor_there() -> None:
    assertion = saml_assertion(reg_no="M10004", code="tmr", groups=("HA-Clinician",))
    event = federated_event("HospitalAuthority", map_assertion(SAML_MAPPING, assertion))
    got = issue(event)
    assert got["institution_id"] == "tuen-mun-riverside" and got["hub_roles"] == "doctor"


def test_a_provider_group_claim_cannot_grant_administrative_roles() -> None:
    assertion = saml_assertion(groups=("HA-IT-Admin",))
    event = federated_event("HospitalAuthority", map_assertion(SAML_MAPPING, assertion))
    assert refusal(event) == "no_role"


def test_the_specialist_role_needs_the_specialist_register() -> None:
    assertion = saml_assertion(reg_no="M10004", groups=("HA-Clinician", "HA-Specialist"))
    event = federated_event("HospitalAuthority", map_assertion(SAML_MAPPING, assertion))
    assert issue(event)["hub_roles"] == "doctor"


@pytest.mark.parametrize(
    ("provider", "assertion", "reason"),
    [
        ("UnknownIdP", saml_assertion(), "provider_not_mapped"),
        ("HospitalAuthority", saml_assertion(code=None), "hospital_code_missing"),
        ("HospitalAuthority", saml_assertion(code="XYZ"), "hospital_not_mapped"),
        ("HospitalAuthority", saml_assertion(code="QAH"), "institution_not_admitted"),
        ("HospitalAuthority", saml_assertion(reg_no=None), "registration_number_missing"),
        ("HospitalAuthority", saml_assertion(reg_no="M99999"), "not_on_register"),
        ("HospitalAuthority", saml_assertion(reg_no="M10002"), "registration_suspended"),
        ("HospitalAuthority", saml_assertion(groups=()), "no_role"),
    ],
)
def test_an_unplaceable_federated_doctor_gets_no_token(
    provider: str, assertion: dict[str, Any], reason: str
) -> None:
    event = federated_event(provider, map_assertion(SAML_MAPPING, assertion))
    assert refusal(event) == reason


def test_the_refusal_says_what_is_wrong_in_words() -> None:
    event = federated_event(
        "HospitalAuthority", map_assertion(SAML_MAPPING, saml_assertion(code="XYZ"))
    )
    with pytest.raises(EnrolmentRefused) as refused:
        pre_token_generation(event, register=REGISTER, affiliations=hub())
    assert str(refused.value) == (
        "hospital_not_mapped: your identity provider's hospital code maps to no "
        "institution admitted to the hub"
    )


def test_an_institution_admin_s_removal_wins_over_the_provider() -> None:
    removed = Affiliation("victoria-general", "M10001", ("doctor",), AffiliationStatus.REMOVED)
    event = federated_event("HospitalAuthority", map_assertion(SAML_MAPPING, saml_assertion()))
    assert refusal(event, hub(affiliations=[removed])) == "affiliation_removed"


def test_a_hospital_admitted_later_places_its_doctors_at_once() -> None:
    event = federated_event(
        "HospitalAuthority", map_assertion(SAML_MAPPING, saml_assertion(code="PYN"))
    )
    assert refusal(event) == "hospital_not_mapped"
    later = hub()
    later.institutions["pamela-youde-east"] = institution(
        "pamela-youde-east", InstitutionType.HA_HOSPITAL
    )
    later.hospital_codes[("HospitalAuthority", "PYN")] = "pamela-youde-east"
    assert issue(event, later)["institution_id"] == "pamela-youde-east"


# -- federation: one provider, one institution (OIDC), roles from affiliations ------------


def oidc_event(reg_no: str = "M10004") -> dict[str, Any]:
    assertion = {"email": "dr@clinic.example", "mchk_reg_no": reg_no, "groups": ["anything"]}
    return federated_event("SaiKungClinicIdP", map_assertion(OIDC_MAPPING, assertion))


def test_oidc_provider_of_one_institution_takes_roles_from_the_affiliation() -> None:
    assert OIDC_MAPPING == {"email": "email", "custom:idp_reg_no": "mchk_reg_no"}
    got = issue(oidc_event())
    assert got["institution_id"] == "sai-kung-medical-centre" and got["hub_roles"] == "doctor"


def test_oidc_doctor_without_an_affiliation_has_no_role() -> None:
    assert refusal(oidc_event("M10001")) == "no_role"


# -- native accounts ------------------------------------------------------------------


def test_native_account_roles_come_from_its_affiliation_not_the_pool_groups() -> None:
    got = issue(native_event("sub-native"))
    assert got == {
        "institution_id": "sai-kung-medical-centre",
        "mchk_reg_no": "M10005",
        "hub_roles": "doctor",
        "groups": ["doctor"],
    }


def test_native_account_attributes_decide_nothing() -> None:
    written = {
        "custom:mchk_reg_no": "M10001",
        "custom:institution_id": "victoria-general",
        "custom:specialty": "cardiology",
        "custom:idp_reg_no": "M10001",
        "custom:hospital_code": "VGH",
        "custom:idp_groups": "[HA-Clinician]",
    }
    assert issue(native_event("sub-native", written)) == issue(native_event("sub-native"))


@pytest.mark.parametrize(
    ("sub", "reason"),
    [("sub-pending", "registration_pending"), ("sub-stranger", "account_not_enrolled")],
)
def test_native_account_without_an_active_enrolment_gets_no_token(sub: str, reason: str) -> None:
    assert refusal(native_event(sub)) == reason


# -- pre sign-up ----------------------------------------------------------------------


# The switches the layers' deploys write into the core's institutions table.
PHASE2_ON = HubLayer("phase2-hospital-authority", 2, frozenset({"federated-client"}), True)
PHASE3_ON = HubLayer("phase3-private-practice", 3, self_registration=True)


@pytest.fixture(autouse=True)
def _core_stage_without_self_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    # The core (phase 1) deploys the trigger with self-registration off.
    monkeypatch.setenv("HUB_SELF_REGISTRATION", "false")


def test_native_sign_up_is_open_only_while_phase_3s_switch_stands() -> None:
    """The core's pool allows sign-up (a layer cannot change it); the trigger refuses a
    native sign-up unless phase 3's layer is switched on, read from the table now."""
    event = native_event("", source="PreSignUp_SignUp")
    for layers in ([], [PHASE2_ON]):
        with pytest.raises(EnrolmentRefused, match="self_registration_closed"):
            pre_sign_up(copy.deepcopy(event), register=REGISTER, affiliations=hub(layers=layers))
    opened = pre_sign_up(
        copy.deepcopy(event), register=REGISTER, affiliations=hub(layers=[PHASE2_ON, PHASE3_ON])
    )
    assert opened["response"]["autoConfirmUser"] is False
    # Accounts an operator creates (seeding, staff) are not self-registrations.
    created = native_event("", source="PreSignUp_AdminCreateUser")
    assert pre_sign_up(created, register=REGISTER, affiliations=hub())["response"]


def test_native_sign_up_is_never_auto_confirmed() -> None:
    event = native_event("", source="PreSignUp_SignUp")
    assert pre_sign_up(event, register=REGISTER, affiliations=hub(layers=[PHASE3_ON]))[
        "response"
    ] == {
        "autoConfirmUser": False,
        "autoVerifyEmail": False,
        "autoVerifyPhone": False,
    }


@pytest.mark.parametrize("attribute", sorted(GRANTING_ATTRIBUTES))
def test_native_sign_up_may_not_set_a_granting_attribute(attribute: str) -> None:
    event = native_event("", {attribute: "M10001"}, source="PreSignUp_SignUp")
    with pytest.raises(EnrolmentRefused, match="granting_attribute_written"):
        pre_sign_up(event, register=REGISTER, affiliations=hub(layers=[PHASE3_ON]))


def test_federated_sign_up_is_resolved_before_the_account_exists() -> None:
    ok = federated_event(
        "HospitalAuthority",
        map_assertion(SAML_MAPPING, saml_assertion()),
        source="PreSignUp_ExternalProvider",
    )
    del ok["request"]["userAttributes"]["identities"]  # not there on the first sign-in
    assert (
        pre_sign_up(ok, register=REGISTER, affiliations=hub())["response"]["autoConfirmUser"]
        is False
    )
    bad = copy.deepcopy(ok)
    bad["request"]["userAttributes"]["custom:hospital_code"] = "XYZ"
    with pytest.raises(EnrolmentRefused, match="hospital_not_mapped"):
        pre_sign_up(bad, register=REGISTER, affiliations=hub())


# -- the registration check itself ----------------------------------------------------


def test_registration_numbers_are_normalised() -> None:
    assert check_registration(" m10001 ", register=REGISTER).reg_no == "M10001"


def test_refusals_carry_no_personal_data() -> None:
    event = federated_event(
        "HospitalAuthority", map_assertion(SAML_MAPPING, saml_assertion(reg_no="M99999"))
    )
    with pytest.raises(RegistrationRefused) as refused:
        pre_token_generation(copy.deepcopy(event), register=REGISTER, affiliations=hub())
    assert "M99999" not in str(refused.value)
    assert "dr@ha.example" not in str(refused.value)
