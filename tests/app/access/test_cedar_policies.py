"""The Cedar policies on their own: they type-check, decide with reasons, and fail closed."""

from __future__ import annotations

from typing import Any

import pytest

from app.access.engine import NO_PERMIT, Action, Authorizer, Decision, PolicyError
from app.access.entities import uid

AUTHORIZER = Authorizer()


def user(
    reg_no: str = "M1", roles: tuple[str, ...] = ("doctor",), inst: str = "i1"
) -> dict[str, Any]:
    clinical = bool({"doctor", "specialist"} & set(roles))
    return {
        "uid": uid("User", f"sub-{reg_no}"),
        "attrs": {
            "reg_no": reg_no,
            "institution": inst,
            "roles": list(roles),
            "clinical": clinical,
            "registration_ok": True,
        },
        "parents": [uid("Institution", inst)],
    }


def group(
    status: str = "open", members: tuple[str, ...] = ("M1",), leads: tuple[str, ...] = ("M0",)
) -> dict[str, Any]:
    return {
        "uid": uid("Group", "g"),
        "attrs": {
            "institution": "i1",
            "status": status,
            "patient": "pref:p",
            "leads": list(leads),
            "members": [*members, *leads],
            "invited": [],
        },
        "parents": [],
    }


def decide(
    action: Action, principal: dict[str, Any], resource: dict[str, Any], **context: Any
) -> Decision:
    ctx = {"break_glass_patients": [], "target": "", **context}
    if action in (Action.VIEW_GROUP, Action.LIST_GROUP_RECORDS):
        # Reading a group needs the patient's consent (consent.cedar); these tests are
        # about membership, so it is stated in force unless a test says otherwise.
        ctx.setdefault("consent_active", True)
    return AUTHORIZER.decide(principal["uid"], action, resource["uid"], [principal, resource], ctx)


def test_member_view_is_allowed_with_its_reason() -> None:
    d = decide(Action.VIEW_GROUP, user(), group())
    assert d.allowed and d.reasons == ("member-views-open-group",)


def test_default_deny_names_no_permit() -> None:
    d = decide(Action.VIEW_GROUP, user("M9"), group())
    assert not d.allowed and d.reasons == (NO_PERMIT,)


def test_forbid_beats_permit_and_is_named() -> None:
    p = user(roles=("doctor", "auditor"))
    d = decide(Action.VIEW_GROUP, p, group())
    assert not d.allowed and d.reasons == ("auditors-get-no-clinical-access",)


def test_registration_guardrail_holds_even_if_authentication_were_skipped() -> None:
    p = user()
    p["attrs"]["registration_ok"] = False
    d = decide(Action.VIEW_GROUP, p, group())
    assert not d.allowed and d.reasons == ("registration-must-be-active",)


def test_closed_group_admits_no_one() -> None:
    assert not decide(Action.VIEW_GROUP, user(), group("closed")).allowed
    assert not decide(Action.CLOSE_GROUP, user("M0"), group("closed")).allowed


def test_break_glass_opens_only_the_named_patient() -> None:
    outsider = user("M9")
    assert decide(Action.VIEW_GROUP, outsider, group(), break_glass_patients=["pref:p"]).allowed
    assert not decide(
        Action.VIEW_GROUP, outsider, group(), break_glass_patients=["pref:other"]
    ).allowed
    # Break-glass is for viewing; it manages nothing.
    assert not decide(
        Action.INVITE_MEMBER, outsider, group(), break_glass_patients=["pref:p"]
    ).allowed


@pytest.mark.parametrize("role", ["institution_admin", "auditor", "platform_admin"])
def test_non_clinical_roles_get_no_clinical_access(role: str) -> None:
    p = user("", roles=(role,))
    p["attrs"]["reg_no"] = ""
    for action in (Action.VIEW_GROUP, Action.INVITE_MEMBER, Action.CLOSE_GROUP):
        assert not decide(action, p, group(members=("",))).allowed, (role, action)


def test_institution_admin_governs_only_its_own_institution() -> None:
    admin = user("", roles=("institution_admin",))
    assert decide(Action.REMOVE_MEMBER, admin, group(), target="M1").allowed
    foreign = user("", roles=("institution_admin",), inst="i2")
    assert not decide(Action.REMOVE_MEMBER, foreign, group(), target="M1").allowed


def test_policies_that_do_not_type_check_stop_the_service() -> None:
    broken = (
        'permit (principal, action == Hub::Action::"ViewGroup", resource) '
        'when { resource.colour == "red" };'
    )
    with pytest.raises(PolicyError):
        Authorizer(policies=broken)


def test_evaluation_errors_deny() -> None:
    p = user()
    del p["attrs"]["clinical"]  # an entity missing an attribute the policies read
    d = decide(Action.VIEW_GROUP, p, group())
    assert not d.allowed and d.reasons == ("evaluation-error",)


def test_reading_a_group_needs_consent_and_fails_closed() -> None:
    """viewing-group-needs-patient-consent: a member is refused without consent, and a
    request that does not state consent at all is refused too."""
    for action in (Action.VIEW_GROUP, Action.LIST_GROUP_RECORDS):
        refused = decide(action, user(), group(), consent_active=False)
        assert not refused.allowed
        assert refused.reasons == ("viewing-group-needs-patient-consent",)
        unstated = AUTHORIZER.decide(
            user()["uid"],
            action,
            group()["uid"],
            [user(), group()],
            {"break_glass_patients": [], "target": ""},
        )
        assert not unstated.allowed


def test_reading_a_group_without_consent_on_a_recorded_basis() -> None:
    """Break-glass for the patient, or an emergency referral's basis for this very group."""
    assert decide(
        Action.VIEW_GROUP, user(), group(), consent_active=False, break_glass_patients=["pref:p"]
    ).allowed
    here = {"__entity": uid("Group", "g")}
    elsewhere = {"__entity": uid("Group", "other")}
    assert decide(
        Action.VIEW_GROUP, user(), group(), consent_active=False, emergency_groups=[here]
    ).allowed
    assert not decide(
        Action.VIEW_GROUP, user(), group(), consent_active=False, emergency_groups=[elsewhere]
    ).allowed
    # The basis stands in for consent only: a non-member is still not a reader.
    assert not decide(
        Action.VIEW_GROUP, user("M9"), group(), consent_active=False, emergency_groups=[here]
    ).allowed


def test_intake_systems_only_file_records() -> None:
    """A clinic system's principal creates records and finds/links patients; the
    guardrail refuses it everything else even where a permit would allow it."""
    system = user("", roles=("intake_system",))
    system["attrs"]["clinical"] = False
    patient = {"uid": uid("Patient", "pref:p"), "attrs": {}, "parents": []}
    created = AUTHORIZER.decide(
        system["uid"], Action.CREATE_RECORD, patient["uid"], [system, patient], {}
    )
    assert created.allowed and created.reasons == ("intake-system-files-patient-record",)
    viewed = decide(Action.VIEW_GROUP, system, group())
    assert not viewed.allowed
    # ViewProfile is permitted to every principal (governance.cedar): the guardrail is
    # what refuses it to a clinic system.
    service = {"uid": uid("Service", "hub"), "attrs": {}, "parents": []}
    profile = AUTHORIZER.decide(
        system["uid"], Action.VIEW_PROFILE, service["uid"], [system, service], {}
    )
    assert not profile.allowed and profile.reasons == ("intake-systems-only-file-records",)
    institution = {"uid": uid("Institution", "i1"), "attrs": {}, "parents": []}
    for action in (Action.FIND_PATIENT, Action.LINK_PATIENT_MRN):
        assert AUTHORIZER.decide(
            system["uid"], action, institution["uid"], [system, institution], {}
        ).allowed
    registered = AUTHORIZER.decide(
        system["uid"], Action.REGISTER_PATIENT, institution["uid"], [system, institution], {}
    )
    assert not registered.allowed
