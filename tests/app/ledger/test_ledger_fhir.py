"""Ledger entries as FHIR R4 AuditEvent (IHE BALP): every action, with and without a
patient, validates with fhir.resources and carries the right profile and codes."""

from __future__ import annotations

import pytest

from app.ledger.entries import Action, Actor, AuditEntry, Outcome, Resource, ResourceType, Role
from app.ledger.fhir import BALP, audit_event_resource, validate

REF = "pt1-" + "c" * 64


def entry(action: Action, patient: bool, outcome: Outcome = Outcome.SUCCESS) -> AuditEntry:
    return AuditEntry(
        sequence=12,
        timestamp_ms=1795599000123,
        actor=Actor(
            "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab",
            (Role.DOCTOR,),
            "M20001",
            "harbour-cardiac-alliance",
        ),
        action=action,
        resource=Resource(ResourceType.RECORD, "rec-1", REF if patient else None),
        outcome=outcome,
        reason="member-views-open-group",
        request_id="req-1",
    )


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("patient", [False, True])
def test_every_action_is_a_valid_audit_event(action: Action, patient: bool) -> None:
    e = entry(action, patient)
    resource = audit_event_resource(e, e.to_bytes(), 12)
    validate(resource)
    assert resource["id"] == "ledger-12" and resource["recorded"] == "2026-11-25T09:30:00.123000Z"
    roles = {x["role"]["code"] for x in resource["entity"]}
    assert ("1" in roles) is patient  # the patient entity, by keyed reference only
    profile = resource.get("meta", {}).get("profile", [""])[0]
    if action in (Action.LOGIN, Action.LOGOUT, Action.EXPORT):
        assert profile == ""
    else:
        assert profile.startswith(BALP) and ("Patient" in profile) is patient


@pytest.mark.parametrize(
    ("action", "stem", "code", "interaction"),
    [
        (Action.CREATE, "Create", "C", "create"),
        (Action.READ, "Read", "R", "read"),
        (Action.UPDATE, "Update", "U", "update"),
        (Action.SHRED, "Delete", "D", "delete"),
        (Action.QUERY, "Query", "E", "search-type"),
    ],
)
def test_balp_rest_patterns(action: Action, stem: str, code: str, interaction: str) -> None:
    e = entry(action, True)
    resource = audit_event_resource(e, e.to_bytes(), 12)
    assert resource["meta"]["profile"] == [f"{BALP}Patient{stem}"]
    assert resource["action"] == code
    assert resource["subtype"][0]["code"] == interaction
    assert resource["type"]["code"] == "rest"


def test_denials_are_failures_with_their_reason() -> None:
    e = entry(Action.READ, False, Outcome.DENIED)
    resource = audit_event_resource(e, e.to_bytes(), 12)
    assert resource["outcome"] == "4" and resource["outcomeDesc"] == "member-views-open-group"
    validate(resource)


def test_a_misshapen_event_is_rejected_by_the_validator() -> None:
    e = entry(Action.READ, False)
    resource = audit_event_resource(e, e.to_bytes(), 12)
    resource["outcome"] = 42
    resource["agent"] = "nobody"
    with pytest.raises(ValueError):
        validate(resource)
