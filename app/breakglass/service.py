"""Break-glass: time-boxed emergency access to one patient's groups, loudly recorded.

A clinician states a justification and receives a grant for one patient lasting at
most four hours (``HUB_BREAK_GLASS_MAX_MINUTES``, capped at 240). Starting a grant
commits, in one transaction: the grant, its audit event (the decision and the grant
id, expiry and a SHA-256 of the justification: the text itself may mention the
patient, so it stays in the encrypted groups table and never enters the audit trail),
and an alarm event in the outbox for the privacy officer. A warning log line names
the grant and the doctor, never the patient. The holder (only) can end it early.

Grants are stored by :class:`~app.breakglass.repository.BreakGlassRepository` and never
deleted (ending one sets ``ended_at``). A grant is live while ``now < expires_at`` and it
has not been ended; the clock is injectable, and the access gate is fed only live
grants, read strongly consistent.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate
from app.audit.events import AuditReceipt, TransactionalAuditTrail, patient_reference
from app.breakglass.grants import BreakGlassGrant
from app.breakglass.repository import BreakGlassRepository, GrantAlreadyEnded
from app.errors import Conflict, NotFound
from app.identity.principal import Principal
from app.outbox import outbox_item

log = logging.getLogger(__name__)


class BreakGlassService:
    def __init__(
        self,
        repository: BreakGlassRepository,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        hash_key: bytes,
        clock: Callable[[], datetime],
        max_minutes: int = 240,
    ):
        self._repo = repository
        self._gate = gate
        self._audit = audit
        self._key = hash_key
        self._clock = clock
        self._max = min(max_minutes, 240)

    def now(self) -> datetime:
        return self._clock()

    def grants(self, reg_no: str) -> list[BreakGlassGrant]:
        return self._repo.grants(reg_no)

    def live_patient_refs(self, principal: Principal) -> list[str]:
        if principal.reg_no is None:
            return []
        now = self._clock()
        return sorted({g.patient_ref for g in self.grants(principal.reg_no) if g.live(now)})

    def start(
        self, principal: Principal, patient_id: str, justification: str, minutes: int
    ) -> tuple[BreakGlassGrant, AuditReceipt]:
        minutes = max(1, min(minutes, self._max))
        ref = patient_reference(patient_id, self._key)
        now = self._clock()
        grant = BreakGlassGrant(
            grant_id=uuid.uuid4().hex,
            reg_no=principal.reg_no or "",
            patient_id=patient_id,
            patient_ref=ref,
            started_at=now,
            expires_at=now + timedelta(minutes=minutes),
            ended_at=None,
        )
        allowed = self._gate.check(
            principal,
            Action.START_BREAK_GLASS,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
            details={
                "grant_id": grant.grant_id,
                "expires_at": grant.expires_at.isoformat(),
                "minutes": minutes,
                "justification_sha256": hashlib.sha256(justification.encode()).hexdigest(),
            },
        )
        alarm = outbox_item(
            "break_glass_alarm",
            now,
            {
                "grant_id": grant.grant_id,
                "actor_reg_no": grant.reg_no,
                "institution": principal.institution,
                "patient_ref": ref,
                "expires_at": grant.expires_at.isoformat(),
            },
        )
        receipt = self._repo.start(grant, justification, alarm, self._audit, allowed.event)
        log.warning("BREAK-GLASS grant %s started by %s", grant.grant_id, grant.reg_no)
        return grant, receipt

    def end(self, principal: Principal, grant_id: str) -> tuple[BreakGlassGrant, AuditReceipt]:
        own = {g.grant_id: g for g in self.grants(principal.reg_no or "")}
        grant = own.get(grant_id)
        if grant is None:
            # Someone else's grant id and a made-up one look the same.
            raise NotFound()
        allowed = self._gate.check(
            principal,
            Action.END_BREAK_GLASS,
            uid("Patient", grant.patient_ref),
            [simple_entity("Patient", grant.patient_ref)],
            patient_ref=grant.patient_ref,
            details={"grant_id": grant_id},
        )
        now = self._clock()
        if not grant.live(now):
            raise Conflict("The grant has already ended.", code="grant_not_live")
        try:
            receipt = self._repo.end(grant, now, self._audit, allowed.event)
        except GrantAlreadyEnded as exc:
            raise Conflict("The grant has already ended.", code="grant_not_live") from exc
        return replace(grant, ended_at=now), receipt
