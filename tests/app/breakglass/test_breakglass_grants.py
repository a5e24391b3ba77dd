"""Break-glass grants are read from every page of a doctor's partition.

A doctor's grants were read with one query page: past a page (1 MB in production) the
newest grants vanished, so a live grant could stop opening records and could not be
ended. Here pages hold two grants, and a doctor with five still sees, uses and ends all.
"""

from __future__ import annotations

import uuid

from hub_testkit import INST_B, Hub

from app.breakglass.repository import BreakGlassRepository
from app.breakglass.service import BreakGlassService
from app.identity.principal import Principal


def test_grants_live_refs_and_ending_cross_page_boundaries(hub: Hub) -> None:
    # A doctor of our own (synthetic ZZ number): no other test sees these grants.
    doctor = Principal(
        sub=str(uuid.uuid4()),
        username="dr-bg-pages",
        institution=INST_B,
        roles=frozenset({"doctor"}),
        reg_no=f"ZZ{uuid.uuid4().int % 10**6:06d}",
    )
    repository = BreakGlassRepository(hub.dynamodb, hub.settings.table_groups, page_size=2)
    service = BreakGlassService(
        repository, hub.services.gate, hub.services.audit, hub.services.groups._key, hub.clock
    )
    started = [
        service.start(doctor, f"pt-pages-{i}", "Synthetic emergency: page boundary test", 30)[0]
        for i in range(5)
    ]

    assert {g.grant_id for g in service.grants(doctor.reg_no or "")} == {
        g.grant_id for g in started
    }
    assert service.live_patient_refs(doctor) == sorted(g.patient_ref for g in started)
    # Whichever grant sorts last (on the last page) can still be ended by its holder.
    last = max(started, key=lambda g: g.grant_id)
    ended, _ = service.end(doctor, last.grant_id)
    assert ended.ended_at is not None
    assert last.patient_ref not in service.live_patient_refs(doctor)
    assert len(service.live_patient_refs(doctor)) == 4
