"""The institutions table's listings read every page (a partition larger than a page loses
nothing at the boundary) and its writes commit with their audit event or not at all."""

from __future__ import annotations

import uuid

import pytest
from hub_testkit import INST_A, Hub

from app.audit.events import AuditEvent, Outcome
from app.identity.affiliations import Institution, InstitutionStatus, InstitutionType
from app.institutions.repository import ConcurrentChange, InstitutionRepository


def paged(hub: Hub) -> InstitutionRepository:
    return InstitutionRepository(hub.dynamodb, hub.settings.table_institutions, page_size=2)


def test_listings_cross_page_boundaries(hub: Hub) -> None:
    whole = hub.services.institutions.repository
    assert len(whole.list_institutions()) >= 3
    assert [i.id for i in paged(hub).list_institutions()] == [
        i.id for i in whole.list_institutions()
    ]
    affiliations = whole.list_affiliations(INST_A)
    assert len(affiliations) > 2
    assert paged(hub).list_affiliations(INST_A) == affiliations
    assert paged(hub).pending() == whole.pending()


def test_a_failed_condition_writes_neither_the_change_nor_its_audit_entry(hub: Hub) -> None:
    repository = hub.services.institutions.repository
    clinic = f"repo-{uuid.uuid4().hex[:6]}"
    existing = Institution(
        INST_A, "Clash", InstitutionType.SPECIALIST_ALLIANCE, 1, InstitutionStatus.REMOVED
    )
    new = Institution(clinic, "New", InstitutionType.PRIVATE_CLINIC, 3, InstitutionStatus.ADMITTED)
    start = hub.ledger_size()
    event = AuditEvent("AdmitInstitution", Outcome.ALLOW, "test", "service:test-suite")
    with pytest.raises(ConcurrentChange):
        repository.commit(
            hub.services.audit,
            event,
            [repository.new_institution(new, "now"), repository.new_institution(existing, "now")],
        )
    assert repository.institution(clinic) is None
    assert repository.institution(INST_A).status is InstitutionStatus.ADMITTED  # type: ignore[union-attr]
    assert hub.ledger_size() == start
