"""Institutions and affiliations through the API: who may change them, and that a change
takes effect on the next request with no deploy. (Anonymous and wrong-principal cases of
every route: tests/app/test_authorization_matrix.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hub_testkit import INST_A, INST_B, Hub

from app.errors import InvalidRequest
from app.identity.affiliations import InstitutionType, ProviderMapping
from app.institutions.service import OPERATOR, InstitutionService


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


def doctor_at(hub: Hub, institution: str) -> tuple[str, str]:
    """A new doctor enrolled at ``institution``: (access token, registration number)."""
    reg_no, _ = hub.spare_number()
    username = f"dr-{reg_no.lower()}-{uuid.uuid4().hex[:4]}"
    token = hub.new_account(username)
    hub.enrol(username, institution, ("doctor",), reg_no)
    return token, reg_no


def test_an_institution_admitted_through_the_api_works_on_the_next_request(hub: Hub) -> None:
    clinic = f"api-clinic-{uuid.uuid4().hex[:6]}"
    admitted = hub.client.post(
        "/institutions",
        headers=hub.headers("ops-admin"),
        json={"id": clinic, "name": "API Clinic (synthetic)", "type": "private_clinic"},
    )
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["phase"] == 3 and admitted.json()["audit_receipt"]
    token, _ = doctor_at(hub, clinic)
    assert hub.client.get("/me", headers=hub.bearer(token)).json()["institution"] == clinic
    listed = hub.client.get("/institutions", headers=hub.bearer(token)).json()
    assert clinic in {i["id"] for i in listed}

    removed = hub.client.patch(
        f"/institutions/{clinic}", headers=hub.headers("ops-admin"), json={"status": "removed"}
    )
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    refused = hub.client.get("/me", headers=hub.bearer(token))
    assert refused.status_code == 403 and code_of(refused) == "institution_not_admitted"
    assert "not admitted" in refused.json()["error"]["message"]
    # Listing removed institutions is a platform admin's view.
    assert (
        hub.client.get("/institutions?status=removed", headers=hub.headers("dr-lead")).status_code
        == 403
    )
    every = hub.client.get("/institutions?status=all", headers=hub.headers("ops-admin")).json()
    assert {i["id"]: i["status"] for i in every}[clinic] == "removed"


def test_an_affiliation_removed_by_the_institution_admin_is_refused_on_the_next_request(
    hub: Hub,
) -> None:
    token, reg_no = doctor_at(hub, INST_A)
    assert hub.client.get("/me", headers=hub.bearer(token)).status_code == 200
    removed = hub.client.delete(
        f"/institutions/{INST_A}/affiliations/{reg_no}", headers=hub.headers("inst-admin")
    )
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    refused = hub.client.get("/me", headers=hub.bearer(token))
    assert code_of(refused) == "affiliation_removed"
    again = hub.client.put(
        f"/institutions/{INST_A}/affiliations/{reg_no}",
        headers=hub.headers("inst-admin"),
        json={"roles": ["doctor"]},
    )
    assert again.status_code == 200
    assert hub.client.get("/me", headers=hub.bearer(token)).status_code == 200


def test_roles_come_from_the_affiliation(hub: Hub) -> None:
    token, reg_no = doctor_at(hub, INST_A)
    hub.client.put(
        f"/institutions/{INST_A}/affiliations/{reg_no}",
        headers=hub.headers("ops-admin"),
        json={"roles": ["doctor", "institution_admin"]},
    )
    me = hub.client.get("/me", headers=hub.bearer(token)).json()
    assert me["roles"] == ["doctor", "institution_admin"]


@pytest.mark.parametrize(
    ("who", "institution", "roles", "reason"),
    [
        # An institution admin gives clinical roles at their own institution only.
        (
            "inst-admin",
            INST_A,
            ["institution_admin"],
            "institution-admins-grant-clinical-roles-only",
        ),
        ("inst-admin", INST_B, ["doctor"], "no-permitting-policy"),
        # Through the API, nobody grants the platform or audit roles.
        ("ops-admin", INST_A, ["auditor"], "api-never-grants-platform-or-audit-roles"),
        ("ops-admin", INST_A, ["platform_admin"], "api-never-grants-platform-or-audit-roles"),
        ("dr-lead", INST_A, ["doctor"], "no-permitting-policy"),
    ],
)
def test_who_may_set_an_affiliation(
    hub: Hub, who: str, institution: str, roles: list[str], reason: str
) -> None:
    reg_no, _ = hub.spare_number()
    start = hub.ledger_size()
    refused = hub.client.put(
        f"/institutions/{institution}/affiliations/{reg_no}",
        headers=hub.headers(who),
        json={"roles": roles},
    )
    assert refused.status_code == 403
    assert reason in refused.json()["error"]["message"]
    [entry] = [e for e in hub.audit_entries(start) if e["outcome"] == "denied"]
    assert entry["actor"]["sub"] == hub.principal(who).sub
    _, affiliation = hub.services.institutions.repository.standing(institution, reg_no)
    assert affiliation is None


def test_an_affiliation_names_a_number_on_the_register(hub: Hub) -> None:
    refused = hub.client.put(
        f"/institutions/{INST_A}/affiliations/M99996",
        headers=hub.headers("inst-admin"),
        json={"roles": ["doctor"]},
    )
    assert refused.status_code == 422 and code_of(refused) == "not_on_register"


def test_admission_validates_type_phase_and_duplicates(hub: Hub) -> None:
    def post(body: dict[str, Any]) -> Any:
        return hub.client.post("/institutions", headers=hub.headers("ops-admin"), json=body)

    twice = post({"id": INST_A, "name": "Again", "type": "specialist_alliance"})
    assert twice.status_code == 409 and code_of(twice) == "institution_exists"
    early = post(
        {"id": f"x-{uuid.uuid4().hex[:6]}", "name": "X Y", "type": "ha_hospital", "phase": 1}
    )
    assert early.status_code == 422 and code_of(early) == "invalid_phase"
    unmapped = post(
        {
            "id": f"x-{uuid.uuid4().hex[:6]}",
            "name": "X Y",
            "type": "ha_hospital",
            "provider": "NoSuchIdP",
            "hospital_code": "NSH",
        }
    )
    assert unmapped.status_code == 422 and code_of(unmapped) == "provider_not_multi_hospital"
    bad = post({"id": "Not An Id", "name": "X", "type": "clinic"})
    assert bad.status_code == 422 and code_of(bad) == "invalid_request"


def test_a_phase_1_hub_admits_no_clinic(hub: Hub) -> None:
    phase1 = InstitutionService(
        hub.services.institutions.repository,
        hub.services.gate,
        hub.services.audit,
        hub.services.register,
        hub.clock,
        phase=1,
        self_registration=False,
    )
    with pytest.raises(InvalidRequest) as refused:
        phase1.admit(
            hub.principal("ops-admin"), "too-early", "Too Early", InstitutionType.PRIVATE_CLINIC
        )
    assert refused.value.code == "institution_type_not_open"


def test_a_hospital_admitted_under_a_multi_hospital_provider_maps_its_code(hub: Hub) -> None:
    hub.operator.seed(OPERATOR, [], [ProviderMapping("HAHospitals", claim="hospital_code")])
    hospital = f"ha-{uuid.uuid4().hex[:6]}"
    code = uuid.uuid4().hex[:6].upper()
    admitted = hub.client.post(
        "/institutions",
        headers=hub.headers("ops-admin"),
        json={
            "id": hospital,
            "name": "HA Hospital (synthetic)",
            "type": "ha_hospital",
            "provider": "HAHospitals",
            "hospital_code": code,
        },
    )
    assert admitted.status_code == 201, admitted.text
    mapping, mapped = hub.services.institutions.repository.provider("HAHospitals", code)
    assert mapping is not None and mapped == hospital
    taken = hub.client.post(
        "/institutions",
        headers=hub.headers("ops-admin"),
        json={
            "id": f"{hospital}-2",
            "name": "Another",
            "type": "ha_hospital",
            "provider": "HAHospitals",
            "hospital_code": code,
        },
    )
    assert taken.status_code == 409  # one code, one hospital
    assert hub.services.institutions.repository.institution(f"{hospital}-2") is None


def test_every_change_is_a_ledger_entry(hub: Hub) -> None:
    start = hub.ledger_size()
    clinic = f"audit-clinic-{uuid.uuid4().hex[:6]}"
    ops = hub.headers("ops-admin")
    hub.client.post(
        "/institutions", headers=ops, json={"id": clinic, "name": "A B", "type": "private_clinic"}
    )
    hub.client.patch(f"/institutions/{clinic}", headers=ops, json={"status": "suspended"})
    reg_no, _ = hub.spare_number()
    hub.client.put(
        f"/institutions/{INST_A}/affiliations/{reg_no}", headers=ops, json={"roles": ["doctor"]}
    )
    hub.client.delete(f"/institutions/{INST_A}/affiliations/{reg_no}", headers=ops)
    changes = [
        (e["action"], e["resource"]["type"], e["resource"]["id"])
        for e in hub.audit_entries(start)
        if e["actor"]["sub"] == hub.principal("ops-admin").sub
    ]
    assert changes == [
        ("create", "institution", clinic),
        ("update", "institution", clinic),
        ("update", "membership", f"{INST_A}:{reg_no}"),
        ("revoke", "membership", f"{INST_A}:{reg_no}"),
    ]
