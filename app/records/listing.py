"""Discovery: a patient's records the caller may read, and the records shared into a group.

Each listing is one audited Cedar decision (``ListPatientRecords`` on the patient;
``ListGroupRecords`` on the group, which only its active members and break-glass holders
for its patient pass), then each record of the page is decided on its own
(``ViewRecord``, unaudited: the listing is the audited act) on state read now, and only
those allowed are returned. Pages come from index items written with the record or the
share (``PATIENT#``, ``GROUPSHARE#``), at most ``limit`` candidates per page; a page may
hold fewer records than that (some filtered out) and still have a next ``cursor``
(opaque, bound to the caller and the listing: :mod:`app.pagination`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import AuditEvent, AuditReceipt, Outcome, patient_reference
from app.breakglass.service import BreakGlassService
from app.errors import NotFound
from app.groups.entities import group_entity
from app.groups.reading import GroupReading
from app.groups.repository import GroupRepository
from app.identity.principal import Principal
from app.pagination import Cursors
from app.records.authorization import RecordAuthorization
from app.records.repository import RecordRepository, RecordState


@dataclass(frozen=True)
class RecordPage:
    records: list[RecordState]
    cursor: str | None
    receipt: AuditReceipt


class RecordListing:
    def __init__(
        self,
        repository: RecordRepository,
        groups: GroupRepository,
        authorization: RecordAuthorization,
        gate: AccessGate,
        break_glass: BreakGlassService,
        hash_key: bytes,
        clock: Callable[[], datetime],
        *,
        reading: GroupReading,
    ):
        self._reading = reading
        self._repo = repository
        self._groups = groups
        self._authz = authorization
        self._gate = gate
        self._break_glass = break_glass
        self._key = hash_key
        self._cursors = Cursors(hash_key)
        self._clock = clock

    def patient_records(
        self, principal: Principal, patient_id: str, *, limit: int, cursor: str | None
    ) -> RecordPage:
        ref = patient_reference(patient_id, self._key)
        allowed = self._gate.check(
            principal,
            Action.LIST_PATIENT_RECORDS,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
        )
        scope = f"patient-records:{principal.sub}:{ref}"
        ids, last = self._repo.patient_records(
            ref, limit=limit, after=self._cursors.decode(scope, cursor)
        )
        return self._page(principal, allowed, ids, scope, last)

    def group_records(
        self, principal: Principal, group_id: str, *, limit: int, cursor: str | None
    ) -> RecordPage:
        loaded = self._groups.load(group_id)
        if loaded is None:
            self._gate.audit.append(
                AuditEvent(
                    action=Action.LIST_GROUP_RECORDS.value,
                    outcome=Outcome.DENY,
                    reason="group-not-found",
                    actor=principal.sub,
                    actor_reg_no=principal.reg_no,
                    institution=principal.institution,
                    resource=f"Group::{group_id}",
                    at=self._clock(),
                )
            )
            raise NotFound("No such group.")
        group, memberships = loaded
        # The patient's consent for the reader's institution, or a recorded exception
        # (app/groups/reading.py): listing a group's records is reading the group.
        context = self._reading.context(
            principal, group, self._break_glass.live_patient_refs(principal)
        )
        allowed = self._gate.check(
            principal,
            Action.LIST_GROUP_RECORDS,
            uid("Group", group_id),
            [group_entity(group, memberships, slice_for=(principal.reg_no or "",))],
            context=context,
            patient_ref=group.patient_ref,
        )
        allowed = self._reading.flagged(allowed, group, context)
        scope = f"group-records:{principal.sub}:{group_id}"
        ids, last = self._repo.group_records(
            group_id, limit=limit, after=self._cursors.decode(scope, cursor)
        )
        return self._page(principal, allowed, ids, scope, last)

    def _page(
        self,
        principal: Principal,
        allowed: Allowed,
        ids: list[str],
        scope: str,
        last: str | None,
    ) -> RecordPage:
        visible = []
        for record_id in ids:
            state = self._repo.load(record_id)
            if state is not None and self._authz.permits(principal, Action.VIEW_RECORD, state):
                visible.append(state)
        event = replace(allowed.event, details={"considered": len(ids), "returned": len(visible)})
        receipt = self._gate.record(Allowed(allowed.decision, event))
        return RecordPage(visible, self._cursors.encode(scope, last), receipt)
