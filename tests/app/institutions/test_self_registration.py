"""Self-registration with proof (phase 3): a claim must match the register, stays pending
with no access at all until the claimed clinic's admin approves it (a platform admin for
a new clinic), and every step is a ledger entry.

The attacker of the threat model (docs/identity.md) knows a doctor's public register
entry: number and name. They get a pending application and nothing else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hub_testkit import CLINIC, INST_A, Hub

from app.errors import Forbidden
from app.identity.principal import Applicant


def apply(hub: Hub, token: str, reg_no: str, name: str, **extra: Any) -> Any:
    return hub.client.post(
        "/registrations",
        headers=hub.bearer(token),
        json={"reg_no": reg_no, "name": name, "institution": CLINIC, **extra},
    )


def clinical_attempts(hub: Hub, token: str) -> list[int]:
    """What an account can do clinically: profile, a new group, break-glass, a record."""
    h = hub.bearer(token)
    return [
        hub.client.get("/me", headers=h).status_code,
        hub.client.post(
            "/groups", headers=h, json={"patient_id": "pt-synthetic-000555", "title": "X"}
        ).status_code,
        hub.client.post(
            "/break-glass",
            headers=h,
            json={
                "patient_id": "pt-synthetic-000555",
                "justification": "Synthetic emergency: test of an applicant",
            },
        ).status_code,
        hub.client.get("/break-glass", headers=h).status_code,
    ]


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_a_matching_claim_is_pending_with_no_access_until_the_clinic_admin_approves(
    hub: Hub,
) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"applicant-{reg_no.lower()}")
    submitted = apply(hub, token, reg_no, name.upper().replace(" ", "  "))  # case, spacing
    assert submitted.status_code == 201, submitted.text
    rid = submitted.json()["registration_id"]
    assert submitted.json()["status"] == "pending"

    assert clinical_attempts(hub, token) == [403, 403, 403, 403]
    me = hub.client.get("/me", headers=hub.bearer(token))
    assert code_of(me) == "registration_pending"
    assert "awaits approval" in me.json()["error"]["message"]
    own = hub.client.get("/registrations/me", headers=hub.bearer(token))
    assert own.status_code == 200 and own.json()["status"] == "pending"

    queue = hub.client.get(
        f"/registrations?institution={CLINIC}", headers=hub.headers("clinic-admin")
    )
    assert queue.status_code == 200
    [listed] = [p for p in queue.json() if p["registration_id"] == rid]
    assert listed["reg_no"] == reg_no and listed["register_entry"]["name_en"] == name

    approved = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("clinic-admin"))
    assert approved.status_code == 200, approved.text
    me = hub.client.get("/me", headers=hub.bearer(token))
    assert me.status_code == 200
    assert me.json()["institution"] == CLINIC and me.json()["roles"] == ["doctor"]
    assert me.json()["reg_no"] == reg_no


def test_claiming_another_doctor_s_number_never_reaches_clinical_access(hub: Hub) -> None:
    """dr-lead's number and register name are public; the attacker uses both."""
    token = hub.new_account(f"impostor-{uuid.uuid4().hex[:6]}")
    submitted = apply(hub, token, "M20001", "Synthetic Doctor 0")
    assert submitted.status_code == 201, submitted.text  # it matches the public register
    rid = submitted.json()["registration_id"]
    assert clinical_attempts(hub, token) == [403, 403, 403, 403]

    # Even an approving admin cannot bind a number a native account already holds.
    approved = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("clinic-admin"))
    assert approved.status_code == 409 and code_of(approved) == "reg_no_already_bound"
    assert clinical_attempts(hub, token) == [403, 403, 403, 403]

    # The clinic's admin, who does not know this person, rejects the claim.
    rejected = hub.client.post(
        f"/registrations/{rid}/reject",
        headers=hub.headers("clinic-admin"),
        json={"reason": "identity_not_confirmed"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert clinical_attempts(hub, token) == [403, 403, 403, 403]
    assert code_of(hub.client.get("/me", headers=hub.bearer(token))) == "registration_rejected"
    # The real doctor is untouched.
    assert hub.client.get("/me", headers=hub.headers("dr-lead")).json()["reg_no"] == "M20001"


def test_an_unbound_number_claimed_by_an_impostor_waits_for_a_human_who_says_no(
    hub: Hub,
) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"impostor-{reg_no.lower()}")
    rid = apply(hub, token, reg_no, name).json()["registration_id"]
    # Another admin cannot approve at a clinic that is not theirs.
    other = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("inst-admin"))
    assert other.status_code == 403
    assert clinical_attempts(hub, token) == [403, 403, 403, 403]


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ({"name": "Somebody Else"}, "name_mismatch"),
        ({"reg_no": "M99997"}, "not_on_register"),
        ({"reg_no": "M20009", "name": "SYNTHETIC Doctor 8"}, "registration_suspended"),
    ],
)
def test_a_claim_that_does_not_match_the_register_is_refused_and_audited(
    hub: Hub, claim: dict[str, str], reason: str
) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"mismatch-{uuid.uuid4().hex[:6]}")
    start = hub.ledger_size()
    refused = apply(hub, token, claim.get("reg_no", reg_no), claim.get("name", name))
    assert refused.status_code == 422 and code_of(refused) == "register_mismatch"
    [entry] = [e for e in hub.audit_entries(start) if e["resource"]["type"] == "practitioner"]
    assert entry["outcome"] == "denied" and entry["reason"] == reason
    assert hub.client.get("/registrations/me", headers=hub.bearer(token)).status_code == 404


def test_every_step_is_a_ledger_entry_and_the_name_is_in_none_of_them(hub: Hub) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"audited-{reg_no.lower()}")
    sub = hub.services.authenticator.applicant(token).sub
    start = hub.ledger_size()
    rid = apply(hub, token, reg_no, name).json()["registration_id"]
    hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("clinic-admin"))
    steps = [
        (e["actor"]["sub"], e["action"], e["outcome"], e["reason"])
        for e in hub.audit_entries(start)
        if e["resource"] == {"type": "practitioner", "id": f"{rid}"}
    ]
    clinic_admin = hub.principal("clinic-admin").sub
    assert steps == [
        (sub, "create", "success", "submitted-pending-review"),
        (clinic_admin, "update", "success", "institution-admin-reviews-own-registrations"),
    ]
    raw = hub.services.ledger.read_range(start, 2**40)
    assert all(name.encode() not in entry for _, entry in raw)
    items = hub.dynamodb.scan(TableName=hub.settings.table_institutions)["Items"]
    assert name not in str(items)


def test_a_new_clinic_is_admitted_only_by_a_platform_admin_s_approval(hub: Hub) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"founder-{reg_no.lower()}")
    clinic = f"new-clinic-{uuid.uuid4().hex[:6]}"
    submitted = hub.client.post(
        "/registrations",
        headers=hub.bearer(token),
        json={
            "reg_no": reg_no,
            "name": name,
            "institution": clinic,
            "new_institution_name": "New Synthetic Clinic",
        },
    )
    assert submitted.status_code == 201, submitted.text
    rid = submitted.json()["registration_id"]
    for admin in ("clinic-admin", "inst-admin"):
        refused = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers(admin))
        assert refused.status_code == 403
    listed = hub.client.get("/registrations", headers=hub.headers("ops-admin")).json()
    assert rid in {p["registration_id"] for p in listed}
    approved = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("ops-admin"))
    assert approved.status_code == 200, approved.text
    institution = hub.services.institutions.repository.institution(clinic)
    assert institution is not None and institution.admitted
    assert (institution.type.value, institution.phase, institution.name) == (
        "private_clinic",
        3,
        "New Synthetic Clinic",
    )
    assert hub.client.get("/me", headers=hub.bearer(token)).json()["institution"] == clinic


def test_one_native_account_per_registration_number(hub: Hub) -> None:
    reg_no, name = hub.spare_number()
    first = hub.new_account(f"first-{reg_no.lower()}")
    second = hub.new_account(f"second-{reg_no.lower()}")
    r1 = apply(hub, first, reg_no, name).json()["registration_id"]
    r2 = apply(hub, second, reg_no, name).json()["registration_id"]  # both may apply
    ok = hub.client.post(f"/registrations/{r1}/approve", headers=hub.headers("clinic-admin"))
    assert ok.status_code == 200
    taken = hub.client.post(f"/registrations/{r2}/approve", headers=hub.headers("clinic-admin"))
    assert taken.status_code == 409 and code_of(taken) == "reg_no_already_bound"


def test_pending_rejected_and_reapplying(hub: Hub) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"again-{reg_no.lower()}")
    rid = apply(hub, token, reg_no, name).json()["registration_id"]
    twice = apply(hub, token, reg_no, name)
    assert twice.status_code == 409 and code_of(twice) == "registration_pending"
    hub.client.post(f"/registrations/{rid}/reject", headers=hub.headers("clinic-admin"), json={})
    decided = hub.client.post(f"/registrations/{rid}/approve", headers=hub.headers("ops-admin"))
    assert decided.status_code == 404  # no longer in the queue
    again = apply(hub, token, reg_no, name)
    assert again.status_code == 201 and again.json()["registration_id"] != rid


def test_only_private_clinics_take_self_registrations(hub: Hub) -> None:
    reg_no, name = hub.spare_number()
    token = hub.new_account(f"wrong-place-{reg_no.lower()}")
    refused = hub.client.post(
        "/registrations",
        headers=hub.bearer(token),
        json={"reg_no": reg_no, "name": name, "institution": INST_A},
    )
    assert refused.status_code == 422 and code_of(refused) == "institution_not_open"
    unknown = hub.client.post(
        "/registrations",
        headers=hub.bearer(token),
        json={"reg_no": reg_no, "name": name, "institution": "no-such-clinic"},
    )
    assert unknown.status_code == 422 and code_of(unknown) == "unknown_institution"


def test_closed_phases_and_federated_accounts_cannot_self_register(hub: Hub) -> None:
    service = hub.services.institutions
    token = hub.new_account(f"closed-{uuid.uuid4().hex[:6]}")
    who = hub.services.authenticator.applicant(token)
    reg_no, name = hub.spare_number()
    service._self_registration = False
    try:
        with pytest.raises(Forbidden) as refused:
            service.submit(who, reg_no, name, CLINIC, None)
        assert refused.value.code == "self_registration_closed"
    finally:
        service._self_registration = True
    with pytest.raises(Forbidden) as federated:
        service.submit(
            Applicant(who.sub, who.username, "HospitalAuthority"), reg_no, name, CLINIC, None
        )
    assert federated.value.code == "federated_account"
