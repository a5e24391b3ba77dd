"""Format 2 entries: coded facts from a closed vocabulary, and format 1 left byte-stable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from app.audit.events import AuditEvent, Outcome
from app.audit.facts import InvalidFacts, department_code, validate_facts
from app.ledger.entries import Action, Actor, AuditEntry, Resource, ResourceType
from app.ledger.errors import InvalidEntry
from app.ledger.fhir import audit_event_resource, validate
from app.ledger.trail import entry_for

SUB = "0b7c7f0e-1f7a-4c1e-9f3e-2d6a1b9c8e01"
FACTS = {"op": "referral.send", "urgency": "urgent", "to_institution": "victoria-general"}


def _entry(**changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "sequence": 7,
        "timestamp_ms": 1_795_599_000_000,
        "actor": Actor(SUB, ("doctor",), "M20001", "harbour-cardiac-alliance"),
        "action": Action.CREATE,
        "resource": Resource(ResourceType.REFERRAL, "5f0c1d2e3b4a", "pt1-" + "ab" * 32),
        "outcome": "success",
        "reason": "clinician-sends-referral",
        "request_id": "req-1",
    }
    fields.update(changes)
    return AuditEntry(**fields)


def test_an_entry_without_facts_is_format_1_and_keeps_its_bytes() -> None:
    entry = _entry()
    assert entry.version == 1
    assert b'"facts"' not in entry.to_bytes()
    assert b'"version":1' in entry.to_bytes()


def test_facts_make_a_format_2_entry_that_round_trips() -> None:
    entry = _entry(facts=FACTS)
    raw = entry.to_bytes()
    assert entry.version == 2
    assert json.loads(raw)["facts"] == FACTS
    again = AuditEntry.from_bytes(raw)
    assert again == entry and again.facts == FACTS
    assert again.leaf_hash() == entry.leaf_hash()


@pytest.mark.parametrize(
    "facts",
    [
        {"clinical_question": "chest pain"},  # not in the vocabulary
        {"op": "referral.gossip"},
        {"urgency": "whenever"},
        {"to_institution": "Victoria General Hospital"},
        {"department": "Cardiology and everything else"},
        {"decline_reason": "patient is a friend of mine"},
        {"group": "A123456(7) has spaces"},
        {"phase": "12"},
        {"op": 3},
        {f"op{i}": "x" for i in range(11)},
    ],
)
def test_facts_outside_the_vocabulary_or_not_codes_are_refused(facts: dict[str, Any]) -> None:
    with pytest.raises(InvalidEntry) as caught:
        _entry(facts=facts)
    for value in facts.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(caught.value)


def test_the_version_must_follow_the_facts() -> None:
    with pytest.raises(InvalidEntry):
        _entry(version=2)
    raw = _entry(facts=FACTS).to_dict()
    with pytest.raises(InvalidEntry):
        AuditEntry.from_dict({**raw, "version": 1})
    without = {k: v for k, v in raw.items() if k != "facts"}
    with pytest.raises(InvalidEntry):
        AuditEntry.from_dict(without)  # version 2 must carry facts
    with pytest.raises(InvalidEntry):
        AuditEntry.from_dict({**raw, "facts": {}})


def test_the_trail_copies_facts_and_still_drops_details() -> None:
    event = AuditEvent(
        action="SendReferral",
        outcome=Outcome.ALLOW,
        reason="clinician-sends-referral",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource="Referral::5f0c1d2e3b4a",
        details={"note": "ids only, never copied"},
        facts=FACTS,
        at=datetime(2026, 11, 5, 9, 30, tzinfo=UTC),
    )
    entry = entry_for(event, 3, "req-9")
    assert entry.facts == FACTS
    assert entry.action is Action.CREATE
    assert entry.resource.type is ResourceType.REFERRAL
    assert b"never copied" not in entry.to_bytes()


def test_a_bad_fact_fails_the_event_rather_than_being_logged_loosely() -> None:
    event = AuditEvent(
        action="SendMessage",
        outcome=Outcome.ALLOW,
        reason="member-sends-message",
        actor=SUB,
        resource="Message::m1",
        facts={"op": "message.send", "text": "Synthetic: please review"},
    )
    with pytest.raises(InvalidEntry):
        entry_for(event, 0)


def test_facts_ride_in_the_fhir_audit_event() -> None:
    entry = _entry(facts=FACTS)
    resource = audit_event_resource(entry, entry.to_bytes(), 7)
    validate(resource)
    details = {d["type"]: d["valueString"] for d in resource["entity"][0]["detail"][2:]}
    assert details == {"request-id": "req-1", **{f"fact-{k}": v for k, v in FACTS.items()}}


def test_validate_facts_and_department_codes() -> None:
    assert validate_facts({"op": "message.send", "group": "abc123"}) == {
        "op": "message.send",
        "group": "abc123",
    }
    with pytest.raises(InvalidFacts):
        validate_facts(["op"])
    assert department_code(["Clinical Oncology", "cardiology"]) == "clinical-oncology"
    assert department_code(["emergency medicine"]) == "emergency-medicine"
    assert department_code([]) == "general"
    assert department_code(["  ", "1"]) == "general"
