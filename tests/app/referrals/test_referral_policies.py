"""The referral and metrics policies on their own, each property with its switch-off.

Every refusal below is shown twice: with the shipped policies it denies, naming the
deciding policy; with that one policy removed from the set (the switch-off), the same
request is allowed. So each property is carried by the policy named, and a test fails
if it goes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.access.engine import Action, Authorizer, Decision, load_policy_text
from app.access.entities import uid

POLICIES, SCHEMA = load_policy_text()
SHIPPED = Authorizer()


def without(policy_id: str) -> Authorizer:
    """The shipped policies minus the one annotated ``@id(policy_id)``."""
    pattern = re.compile(r'@id\("' + re.escape(policy_id) + r'"\)[^;]*;', re.DOTALL)
    text, removed = pattern.subn("", POLICIES)
    assert removed == 1, policy_id
    return Authorizer(text, SCHEMA)


def user(
    reg_no: str = "M1", roles: tuple[str, ...] = ("doctor",), inst: str = "a"
) -> dict[str, Any]:
    return {
        "uid": uid("User", f"sub-{reg_no or 'x'}"),
        "attrs": {
            "reg_no": reg_no,
            "institution": inst,
            "roles": list(roles),
            "clinical": bool({"doctor", "specialist"} & set(roles)),
            "registration_ok": True,
        },
        "parents": [uid("Institution", inst)],
    }


def group(members: tuple[str, ...] = ("M1",), status: str = "open") -> dict[str, Any]:
    return {
        "uid": uid("Group", "g"),
        "attrs": {
            "institution": "a",
            "status": status,
            "patient": "pt1-p",
            "leads": [],
            "members": list(members),
            "invited": [],
        },
        "parents": [],
    }


def referral(**changes: str) -> dict[str, Any]:
    attrs = {
        "from_institution": "a",
        "referrer": "M1",
        "to_institution": "b",
        "to_specialty": "general surgery",
        "to_practitioner": "",
        "accepted_by": "",
        "status": "requested",
        "urgency": "urgent",
        "patient": "pt1-p",
        **changes,
    }
    return {"uid": uid("Referral", "r"), "attrs": attrs, "parents": []}


def decide(
    authorizer: Authorizer,
    action: Action,
    principal: dict[str, Any],
    resource: dict[str, Any],
    *,
    members: tuple[str, ...] = ("M1",),
    specialties: tuple[str, ...] = (),
    legal_basis: str = "",
    notice: str = "",
    consent_active: bool | None = True,
) -> Decision:
    # The patient's consent covers the institution addressed unless a test says not
    # (None: the service did not state it).
    context: dict[str, Any] = {
        "group": {"__entity": uid("Group", "g")},
        "specialties": list(specialties),
        "legal_basis": legal_basis,
        "patient_notice": notice,
    }
    if consent_active is not None:
        context["consent_active"] = consent_active
    entities = [principal, resource, group(members)]
    return authorizer.decide(principal["uid"], action, resource["uid"], entities, context)


SEND_OK = {"legal_basis": "referral_for_care", "notice": "informed"}


def test_a_member_refers_with_a_legal_basis() -> None:
    d = decide(SHIPPED, Action.SEND_REFERRAL, user(), referral(), **SEND_OK)
    assert d.allowed and d.reasons == ("member-sends-referral-from-group",)
    emergency = decide(
        SHIPPED,
        Action.SEND_REFERRAL,
        user(),
        referral(urgency="emergency"),
        legal_basis="emergency",
    )
    assert emergency.allowed


@pytest.mark.parametrize("consent_active", [False, None])
def test_without_consent_only_an_emergency_referral_is_sent(consent_active: bool | None) -> None:
    refused = decide(
        SHIPPED, Action.SEND_REFERRAL, user(), referral(), consent_active=consent_active, **SEND_OK
    )
    assert not refused.allowed
    assert refused.reasons == ("referral-needs-consent-for-the-institution-addressed",)
    emergency = decide(
        SHIPPED,
        Action.SEND_REFERRAL,
        user(),
        referral(urgency="emergency"),
        legal_basis="emergency",
        consent_active=consent_active,
    )
    assert emergency.allowed


@pytest.mark.parametrize(
    ("policy", "resource", "context"),
    [
        ("referral-needs-a-legal-basis", referral(), {}),
        (
            "referral-for-care-needs-patient-informed-or-consenting",
            referral(),
            {"legal_basis": "referral_for_care", "notice": "none"},
        ),
        (
            "emergency-basis-only-for-emergency-referrals",
            referral(urgency="routine"),
            {"legal_basis": "emergency"},
        ),
    ],
)
def test_the_legal_basis_is_required_and_each_rule_is_carried_by_its_policy(
    policy: str, resource: dict[str, Any], context: dict[str, str]
) -> None:
    refused = decide(SHIPPED, Action.SEND_REFERRAL, user(), resource, **context)
    assert not refused.allowed and policy in refused.reasons
    switched_off = decide(without(policy), Action.SEND_REFERRAL, user(), resource, **context)
    assert switched_off.allowed


def test_only_members_of_the_open_group_refer() -> None:
    assert not decide(
        SHIPPED, Action.SEND_REFERRAL, user(), referral(), members=(), **SEND_OK
    ).allowed
    other_inst = user(inst="c")
    assert not decide(SHIPPED, Action.SEND_REFERRAL, other_inst, referral(), **SEND_OK).allowed


def test_the_addressed_side_decides_and_a_wrong_institution_does_not() -> None:
    surgeon = user("M9", inst="b")
    for action in (Action.ACCEPT_REFERRAL, Action.DECLINE_REFERRAL, Action.REDIRECT_REFERRAL):
        ok = decide(SHIPPED, action, surgeon, referral(), specialties=("general surgery",))
        assert ok.allowed and ok.reasons == ("addressed-clinician-decides-referral",)
        # Same specialty, wrong institution; right institution, wrong specialty.
        assert not decide(
            SHIPPED, action, user("M9", inst="c"), referral(), specialties=("general surgery",)
        ).allowed
        assert not decide(SHIPPED, action, surgeon, referral(), specialties=("cardiology",)).allowed
        # Named doctor: only that doctor.
        named = referral(to_practitioner="M8")
        assert not decide(SHIPPED, action, surgeon, named, specialties=("general surgery",)).allowed
        assert decide(SHIPPED, action, user("M8", inst="b"), named).allowed
        # Decided already.
        assert not decide(
            SHIPPED, action, surgeon, referral(status="accepted"), specialties=("general surgery",)
        ).allowed


def test_the_referrer_never_decides_their_own_referral() -> None:
    self_addressed = referral(to_institution="a", to_practitioner="M1")
    policy = "referrer-does-not-decide-own-referral"
    refused = decide(SHIPPED, Action.ACCEPT_REFERRAL, user(), self_addressed)
    assert not refused.allowed and policy in refused.reasons
    assert decide(without(policy), Action.ACCEPT_REFERRAL, user(), self_addressed).allowed


def test_viewing_is_limited_to_the_parties() -> None:
    assert decide(SHIPPED, Action.VIEW_REFERRAL, user(), referral(), members=()).allowed
    member = user("M5", inst="c")
    assert decide(SHIPPED, Action.VIEW_REFERRAL, member, referral(), members=("M5",)).allowed
    assert not decide(SHIPPED, Action.VIEW_REFERRAL, member, referral(), members=()).allowed
    addressed = user("M9", inst="b")
    pending = decide(
        SHIPPED,
        Action.VIEW_REFERRAL,
        addressed,
        referral(),
        members=(),
        specialties=("general surgery",),
    )
    assert pending.allowed
    declined = decide(
        SHIPPED,
        Action.VIEW_REFERRAL,
        addressed,
        referral(status="declined"),
        members=(),
        specialties=("general surgery",),
    )
    assert not declined.allowed


def test_auditors_get_no_referral_content_even_as_members() -> None:
    auditor = user("M1", roles=("auditor", "doctor"))
    refused = decide(SHIPPED, Action.VIEW_REFERRAL, auditor, referral())
    assert not refused.allowed and "auditors-get-no-clinical-access" in refused.reasons
    assert decide(
        without("auditors-get-no-clinical-access"), Action.VIEW_REFERRAL, auditor, referral()
    ).allowed


def test_metrics_auditors_everywhere_admins_their_own_institution() -> None:
    def metrics(
        principal: dict[str, Any], resource: dict[str, Any], authorizer: Authorizer = SHIPPED
    ) -> bool:
        return authorizer.decide(
            principal["uid"], Action.VIEW_METRICS, resource["uid"], [principal, resource], {}
        ).allowed

    institution = {"uid": uid("Institution", "a"), "attrs": {}, "parents": []}
    elsewhere = {"uid": uid("Institution", "b"), "attrs": {}, "parents": []}
    everything = {"uid": uid("Service", "metrics"), "attrs": {}, "parents": []}
    admin = user("", roles=("institution_admin",))
    auditor = user("", roles=("auditor",))
    assert metrics(admin, institution)
    assert not metrics(admin, elsewhere) and not metrics(admin, everything)
    assert metrics(auditor, elsewhere) and metrics(auditor, everything)
    assert not metrics(user(), institution)  # clinicians see no institution metrics
    assert not metrics(
        admin, institution, without("institution-admin-views-own-institution-metrics")
    )
