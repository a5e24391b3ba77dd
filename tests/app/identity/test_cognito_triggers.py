"""Cognito trigger handlers, called directly (moto does not invoke triggers)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

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
    }
)


@pytest.fixture(autouse=True)
def admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ADMITTED_INSTITUTIONS", '["harbour-cardiac-alliance"]')


def sign_up_event(
    reg_no: Any = "M10001", institution: Any = "harbour-cardiac-alliance"
) -> dict[str, Any]:
    attributes = {"email": "dr.synthetic@hub.example"}
    if reg_no is not None:
        attributes["custom:mchk_reg_no"] = reg_no
    if institution is not None:
        attributes["custom:institution_id"] = institution
    return {
        "triggerSource": "PreSignUp_SignUp",
        "request": {"userAttributes": attributes},
        "response": {},
    }


def test_active_registered_doctor_may_sign_up_but_is_not_auto_confirmed() -> None:
    event = pre_sign_up(sign_up_event(), register=REGISTER)
    assert event["response"] == {
        "autoConfirmUser": False,
        "autoVerifyEmail": False,
        "autoVerifyPhone": False,
    }


@pytest.mark.parametrize(
    ("reg_no", "institution", "reason"),
    [
        (None, "harbour-cardiac-alliance", "registration_number_missing"),
        ("12345; drop", "harbour-cardiac-alliance", "registration_number_malformed"),
        ("M99999", "harbour-cardiac-alliance", "not_on_register"),
        ("M10002", "harbour-cardiac-alliance", "registration_suspended"),
        ("M10003", "harbour-cardiac-alliance", "registration_removed"),
        ("M10001", "peak-family-clinic", "institution_not_admitted"),
        ("M10001", None, "institution_not_admitted"),
    ],
)
def test_sign_up_is_refused(reg_no: Any, institution: Any, reason: str) -> None:
    with pytest.raises(RegistrationRefused) as refused:
        pre_sign_up(sign_up_event(reg_no, institution), register=REGISTER)
    assert refused.value.reason == reason


def test_registration_numbers_are_normalised() -> None:
    practitioner = check_registration(
        " m10001 ",
        "harbour-cardiac-alliance",
        register=REGISTER,
        admitted_institutions=["harbour-cardiac-alliance"],
    )
    assert practitioner.reg_no == "M10001"


def token_event(groups: list[str], reg_no: str = "M10001") -> dict[str, Any]:
    event = sign_up_event(reg_no)
    event["triggerSource"] = "TokenGeneration_Authentication"
    event["request"]["groupConfiguration"] = {"groupsToOverride": groups}
    return event


def test_pre_token_adds_institution_registration_and_role_claims() -> None:
    event = pre_token_generation(
        token_event(["specialist", "doctor", "not-a-role"]), register=REGISTER
    )
    details = event["response"]["claimsAndScopeOverrideDetails"]
    expected = {
        "institution_id": "harbour-cardiac-alliance",
        "mchk_reg_no": "M10001",
        "hub_roles": "doctor specialist",
    }
    assert details["idTokenGeneration"]["claimsToAddOrOverride"] == expected
    assert details["accessTokenGeneration"]["claimsToAddOrOverride"] == expected


def test_suspended_doctor_gets_no_new_tokens() -> None:
    with pytest.raises(RegistrationRefused, match="registration_suspended"):
        pre_token_generation(token_event(["doctor"], "M10002"), register=REGISTER)


def test_refusals_carry_no_personal_data() -> None:
    event = sign_up_event("M99999")
    with pytest.raises(RegistrationRefused) as refused:
        pre_sign_up(copy.deepcopy(event), register=REGISTER)
    assert "M99999" not in str(refused.value)
    assert "dr.synthetic" not in str(refused.value)
