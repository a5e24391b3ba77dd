"""The patient's sharing consent through the API: recorded, read as FHIR Consent,
withdrawn, expiring; and opening a group refused without it, on the next request after a
withdrawal or an expiry.

Each test registers its own patient (the session's patients consented at start-up) and
its own synthetic HKIDs for substitute decision makers.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hub_testkit import INST_A, INST_B, Hub

from app.access.engine import Action, Authorizer
from app.access.entities import institution_entity, principal_entity, uid
from app.audit.events import patient_reference
from app.consent.fhir import consent_from_fhir
from app.consent.model import SdmRelationship, SubstituteBasis
from app.patients.hkid import compute_check_digit


def new_patient(hub: Hub) -> str:
    """A patient the index knows (an MRN of INST_A) with no consent at all."""
    patient_id = f"pt-consent-{uuid.uuid4().hex[:12]}"
    hub.services.patients.register(
        hub.principal("dr-lead"), hkid=None, mrn=patient_id, patient_id=patient_id
    )
    return patient_id


def new_hkid() -> str:
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"Z{digits}({compute_check_digit('Z', digits)})"


def grant(hub: Hub, patient_id: str, who: str = "dr-lead", **body: Any) -> Any:
    body.setdefault("institutions", [INST_A])
    return hub.client.post(f"/patients/{patient_id}/consents", json=body, headers=hub.headers(who))


def granted(hub: Hub, patient_id: str, **body: Any) -> list[dict[str, Any]]:
    r = grant(hub, patient_id, **body)
    assert r.status_code == 201, r.text
    return list(r.json()["consents"])


def withdraw(hub: Hub, patient_id: str, consent_id: str, who: str = "dr-lead", **body: Any) -> Any:
    return hub.client.post(
        f"/patients/{patient_id}/consents/{consent_id}/withdraw",
        json=body,
        headers=hub.headers(who),
    )


def open_group(hub: Hub, patient_id: str, who: str = "dr-lead") -> Any:
    return hub.client.post(
        "/groups",
        json={"patient_id": patient_id, "title": "Synthetic consent case"},
        headers=hub.headers(who),
    )


def consent_id(resource: dict[str, Any]) -> str:
    return str(resource["identifier"][0]["value"])


# -- enforcement: opening a group ------------------------------------------------------


def test_no_consent_refuses_opening_a_group_audited(hub: Hub) -> None:
    patient = new_patient(hub)
    start = hub.ledger_size()
    r = open_group(hub, patient)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "consent_required"
    assert patient not in r.text
    (entry,) = hub.audit_entries(start)
    assert entry["outcome"] == "denied"
    assert entry["reason"] == "sharing-needs-patient-consent"
    assert entry["resource"]["patient_ref"] == patient_reference(patient, hub.services.groups._key)
    assert patient not in repr(entry)


def test_consent_for_the_institution_allows_and_only_it(hub: Hub) -> None:
    patient = new_patient(hub)
    granted(hub, patient, institutions=[INST_B])
    # INST_B's consent does not cover a clinician of INST_A.
    assert open_group(hub, patient).status_code == 403
    assert open_group(hub, patient, "dr-member").status_code == 201
    granted(hub, patient, institutions=[INST_A])
    assert open_group(hub, patient).status_code == 201


def test_withdrawal_refuses_the_next_request(hub: Hub) -> None:
    patient = new_patient(hub)
    (resource,) = granted(hub, patient)
    assert open_group(hub, patient).status_code == 201
    start = hub.ledger_size()
    r = withdraw(hub, patient, consent_id(resource))
    assert r.status_code == 200, r.text
    assert r.json()["consent"]["status"] == "inactive"
    (entry,) = hub.audit_entries(start)
    assert entry["facts"] == {"op": "consent.withdraw", "consent_given_by": "patient"}
    assert patient not in repr(entry)
    r = open_group(hub, patient)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    # Withdrawn once is withdrawn: a second withdrawal is a conflict and changes nothing.
    again = withdraw(hub, patient, consent_id(resource))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_withdrawn"


def test_consent_for_a_period_expires(hub: Hub) -> None:
    patient = new_patient(hub)
    until = datetime.now(UTC) + timedelta(hours=1)
    (resource,) = granted(hub, patient, valid_until=until.isoformat())
    assert resource["provision"]["period"]["end"] == until.isoformat()
    assert open_group(hub, patient).status_code == 201
    hub.clock.offset = timedelta(hours=1, minutes=1)
    try:
        r = open_group(hub, patient)
        assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    finally:
        hub.clock.offset = timedelta(0)


def test_a_period_must_end_after_now_and_carry_its_zone(hub: Hub) -> None:
    patient = new_patient(hub)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = grant(hub, patient, valid_until=past)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_consent"
    r = grant(hub, patient, valid_until="2031-01-01T00:00:00")
    assert r.status_code == 422
    assert hub.services.consents.consent_decision(patient, INST_A).allowed is False


# -- who gave it -----------------------------------------------------------------------


def test_substitute_decision_maker_and_basis_are_recorded(hub: Hub) -> None:
    patient = new_patient(hub)
    hkid = new_hkid()
    start = hub.ledger_size()
    (resource,) = granted(
        hub,
        patient,
        substitute={"hkid": hkid, "relationship": "parent", "basis": "minor"},
    )
    consent = consent_from_fhir(resource)
    assert consent.given_by is not None
    assert consent.given_by.basis is SubstituteBasis.MINOR
    assert consent.given_by.relationship is SdmRelationship.PARENT
    assert consent.given_by.sdm_ref.startswith("hk1-")
    assert resource["performer"][0]["type"] == "RelatedPerson"
    (entry,) = hub.audit_entries(start)
    assert entry["facts"] == {
        "op": "consent.grant",
        "consent_given_by": "substitute",
        "sdm_basis": "minor",
    }
    compact = hkid.replace("(", "").replace(")", "")
    stored = hub.dynamodb.query(
        TableName=hub.settings.table_patients,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CONSENT#{patient}"}},
        ConsistentRead=True,
    )["Items"]
    assert len(stored) == 1
    for text in (repr(entry), repr(stored), repr(resource)):
        assert compact not in text and hkid not in text
    assert open_group(hub, patient).status_code == 201


def test_substitute_relationship_must_fit_the_basis(hub: Hub) -> None:
    patient = new_patient(hub)
    r = grant(
        hub,
        patient,
        substitute={"hkid": new_hkid(), "relationship": "family_member", "basis": "minor"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_consent"
    assert hub.services.consents.consent_decision(patient, INST_A).allowed is False


def test_consents_read_as_fhir_consent(hub: Hub) -> None:
    patient = new_patient(hub)
    granted(hub, patient, institutions=[INST_A, INST_B])
    r = hub.client.get(f"/patients/{patient}/consents", headers=hub.headers("inst-admin"))
    assert r.status_code == 200, r.text
    resources = r.json()["consents"]
    assert {consent_from_fhir(c).institution for c in resources} == {INST_A, INST_B}
    assert all(c["resourceType"] == "Consent" and c["status"] == "active" for c in resources)


# -- who may record it -----------------------------------------------------------------


@pytest.mark.parametrize("who", ["auditor-1", "ops-admin"])
def test_only_the_institutions_clinicians_and_admins_record_consent(hub: Hub, who: str) -> None:
    patient = new_patient(hub)
    r = grant(hub, patient, who)
    assert r.status_code == 403
    assert hub.services.consents.consent_decision(patient, INST_A).allowed is False
    r = hub.client.get(f"/patients/{patient}/consents", headers=hub.headers(who))
    assert r.status_code == 403


def test_unknown_patient_and_unknown_consent(hub: Hub) -> None:
    r = grant(hub, "pt-nobody-knows-this-one")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_patient"
    patient = new_patient(hub)
    r = withdraw(hub, patient, "cs-" + "0" * 32)
    assert r.status_code == 404 and r.json()["error"]["code"] == "consent_not_found"


def test_anonymous_is_refused(hub: Hub) -> None:
    r = hub.client.post("/patients/pt-x01/consents", json={"institutions": [INST_A]})
    assert r.status_code == 401


# -- the policy fails closed -----------------------------------------------------------


def test_a_request_without_the_consent_fact_is_refused(hub: Hub) -> None:
    """A caller that forgot ``context.consent_active`` is refused by the consent policy
    itself (its ``has`` test), not let through: Cedar skips a policy whose evaluation
    errors, so a forbid reading a missing attribute would fail open."""
    authorizer = Authorizer()
    lead = hub.principal("dr-lead")
    entities = [principal_entity(lead), institution_entity(INST_A)]

    def create_group(context: dict[str, Any]) -> Any:
        return authorizer.decide(
            uid("User", lead.sub),
            Action.CREATE_GROUP,
            uid("Institution", INST_A),
            entities,
            context,
        )

    assert create_group({"consent_active": True}).allowed
    for context in ({"consent_active": False}, {}):
        decision = create_group(context)
        assert not decision.allowed
        assert decision.reasons == ("sharing-needs-patient-consent",)
