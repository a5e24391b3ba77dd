"""Patient index operations: each decided by Cedar, committed with its audit entry.

Every change follows one path:

1. decide with Cedar on the principal's institution (:data:`Action` ``RegisterPatient``,
   ``LinkPatientMrn``, ``UnlinkPatientMrn``, ``CorrectPatientIndex``; a deny is audited
   and answered 403);
2. turn the HKID/MRN into keyed references under the index key (the clear values go no
   further than this function's frame);
3. load the index and compute the change with the pure core (:mod:`app.patients.index`;
   a refused change is a 409 with its code, and nothing is written);
4. commit the index events, their uniqueness items and the audit entry in one DynamoDB
   transaction (:meth:`DynamoPatientIndexRepository.transaction_items`); if another
   change got there first the whole decision is retried on the new state, a few times,
   then answered 409 ``concurrent_change``.

The audit entry names the institution as resource, the patient by the audit reference
(``pt1-``, :func:`app.audit.events.patient_reference`) and the change by code (event
kind, sequence number, coded reason): no HKID, MRN or index reference is in the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from app.access.engine import Action
from app.access.entities import institution_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.audit.facts import FactKey, Operation
from app.errors import NotFound
from app.identity.principal import Principal
from app.patients import index as core
from app.patients.hkid import Hkid, parse_hkid
from app.patients.index import (
    ChangeReason,
    IndexConflict,
    IndexEvent,
    PatientIndex,
    UnknownPatient,
)
from app.patients.repository import DynamoPatientIndexRepository, concurrent_change

# The ledger fact that names each change (the index event of a registration is its first).
OPERATIONS = {
    core.EventKind.PATIENT_REGISTERED: Operation.PATIENT_REGISTER,
    core.EventKind.MRN_LINKED: Operation.PATIENT_LINK_MRN,
    core.EventKind.MRN_UNLINKED: Operation.PATIENT_UNLINK_MRN,
    core.EventKind.MRN_LINK_CORRECTED: Operation.PATIENT_CORRECT_LINK,
    core.EventKind.HKID_CORRECTED: Operation.PATIENT_CORRECT_HKID,
}

# How often a change is decided again after losing a race for the index's next sequence.
ATTEMPTS = 4


def derived_index_key(secret: bytes) -> bytes:
    """The index key of a deployment that configures its audit secret instead of KMS
    (local mode, or ``HUB_AUDIT_HASH_KEY``): a domain-separated HMAC of that secret, so an
    index reference and an audit reference are never computed under the same key."""
    return hmac.new(secret, b"hub-patient-index/key/v1", hashlib.sha256).digest()


def new_patient_id() -> str:
    return f"pt-{uuid.uuid4().hex}"


Decide = Callable[[PatientIndex], list[IndexEvent]]


class PatientIndexService:
    def __init__(
        self,
        repository: DynamoPatientIndexRepository,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        index_key: bytes,
        hash_key: bytes,
        clock: Callable[[], datetime],
    ):
        self._repo = repository
        self._gate = gate
        self._audit = audit
        self._index_key = index_key
        self._hash_key = hash_key
        self._clock = clock

    # -- what other domains ask ---------------------------------------------------------

    def is_registered(self, patient_id: str) -> bool:
        """Whether the index knows ``patient_id`` (one strongly consistent read)."""
        return self._repo.is_registered(patient_id)

    # -- shared steps -------------------------------------------------------------------

    def _check(self, principal: Principal, action: Action) -> Allowed:
        institution = principal.institution
        return self._gate.check(
            principal, action, uid("Institution", institution), [institution_entity(institution)]
        )

    def _hkid_ref(self, hkid: str) -> str:
        return core.hkid_reference(parse_hkid(hkid), self._index_key)

    def _mrn_ref(self, principal: Principal, mrn: str) -> str:
        return core.mrn_reference(principal.institution, mrn, self._index_key)

    def _commit(self, allowed: Allowed, decide: Decide) -> tuple[IndexEvent, AuditReceipt]:
        """Decide on the index as stored and commit with the audit entry; retry a lost race."""
        for _ in range(ATTEMPTS):
            events = decide(self._repo.load())
            last = events[-1]
            event = replace(
                allowed.event,
                patient_ref=patient_reference(last.patient_id, self._hash_key),
                facts={FactKey.OP.value: OPERATIONS[events[0].kind].value},
                details={
                    "index_change": last.kind.value,
                    "index_seq": last.seq,
                    "reason": last.reason.value,
                },
            )
            try:
                receipt = self._audit.transact_append(event, self._repo.transaction_items(events))
            except AuditedTransactionConflict:
                continue
            return last, receipt
        raise concurrent_change()

    # -- operations ---------------------------------------------------------------------

    def register(
        self,
        principal: Principal,
        *,
        hkid: str | None,
        mrn: str | None,
        patient_id: str | None = None,
    ) -> tuple[str, AuditReceipt]:
        """Register a new patient with their HKID and/or this institution's MRN.

        ``patient_id`` is issued here (``pt-`` + a random UUID); seeding passes its own.

        Raises:
            IndexConflict: ``hkid_already_registered`` (find them instead),
                ``mrn_linked_to_another_patient``.
        """
        allowed = self._check(principal, Action.REGISTER_PATIENT)
        hkid_ref = self._hkid_ref(hkid) if hkid is not None else None
        mrn_ref = self._mrn_ref(principal, mrn) if mrn is not None else None
        pid = patient_id or new_patient_id()

        def decide(index: PatientIndex) -> list[IndexEvent]:
            now = self._clock()
            index, registered = core.register_patient(
                index, patient_id=pid, hkid_ref=hkid_ref, actor=principal.sub, at=now
            )
            if mrn_ref is None:
                return [registered]
            _, linked = core.link_mrn(
                index,
                patient_id=pid,
                institution=principal.institution,
                mrn_ref=mrn_ref,
                actor=principal.sub,
                at=now,
                reason=ChangeReason.REGISTRATION,
            )
            return [registered, linked]

        _, receipt = self._commit(allowed, decide)
        return pid, receipt

    def find(
        self, principal: Principal, *, hkid: str | None, mrn: str | None
    ) -> tuple[str, AuditReceipt]:
        """The patient an HKID, or this institution's MRN, names now.

        Raises:
            NotFound: ``unknown_patient`` (the refusal is audited too).
        """
        allowed = self._check(principal, Action.FIND_PATIENT)
        if hkid is not None:
            found = self._repo.patient_of_hkid(self._hkid_ref(hkid))
        else:
            assert mrn is not None
            found = self._repo.patient_of_mrn(principal.institution, self._mrn_ref(principal, mrn))
        if found is None:
            self._audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="patient-not-indexed")
            )
            raise NotFound("No patient in the index matches.", code="unknown_patient")
        event: AuditEvent = replace(
            allowed.event, patient_ref=patient_reference(found, self._hash_key)
        )
        return found, self._audit.append(event)

    def resolve_submitted(
        self, principal: Principal, *, hkid: Hkid | None, mrn: str | None
    ) -> tuple[str, bool]:
        """The patient a submitted message names (community-care intake): by the
        institution's MRN when linked, else by the HKID, linking the MRN to that patient
        (``record_filed``, audited like any link). Returns (patient id, linked now).

        Never registers: a patient neither identifier finds is refused (422
        ``unknown_patient``); the institution's staff register them (``POST /patients``).

        Raises:
            UnknownPatient: neither the MRN nor the HKID is in the index (audited).
            IndexConflict: ``identity_mismatch``: the MRN is linked to one patient and the
                HKID registered to another (audited; the institution's admins correct the
                link, ``POST /patients/mrn-links/correct``).
        """
        allowed = self._check(principal, Action.FIND_PATIENT)
        by_mrn = (
            self._repo.patient_of_mrn(principal.institution, self._mrn_ref(principal, mrn))
            if mrn is not None
            else None
        )
        by_hkid = (
            self._repo.patient_of_hkid(core.hkid_reference(hkid, self._index_key))
            if hkid is not None
            else None
        )
        if by_mrn is not None and by_hkid is not None and by_mrn != by_hkid:
            self._audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="identity-mismatch")
            )
            raise IndexConflict(
                "identity_mismatch",
                "The message's MRN and HKID name different patients in the index; the "
                "institution's administrators correct the link "
                "(POST /patients/mrn-links/correct).",
            )
        found = by_mrn or by_hkid
        if found is None:
            self._audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="patient-not-indexed")
            )
            raise UnknownPatient()
        self._audit.append(
            replace(allowed.event, patient_ref=patient_reference(found, self._hash_key))
        )
        if by_mrn is not None or mrn is None:
            return found, False
        self.link(principal, found, mrn=mrn, reason=ChangeReason.RECORD_FILED)
        return found, True

    def link(
        self, principal: Principal, patient_id: str, *, mrn: str, reason: ChangeReason
    ) -> tuple[IndexEvent, AuditReceipt]:
        """Link this institution's MRN to a registered patient.

        Raises:
            IndexConflict: ``unknown_patient``, ``already_linked``,
                ``mrn_linked_to_another_patient``.
        """
        allowed = self._check(principal, Action.LINK_PATIENT_MRN)
        mrn_ref = self._mrn_ref(principal, mrn)
        return self._commit(
            allowed,
            lambda index: [
                core.link_mrn(
                    index,
                    patient_id=patient_id,
                    institution=principal.institution,
                    mrn_ref=mrn_ref,
                    actor=principal.sub,
                    at=self._clock(),
                    reason=reason,
                )[1]
            ],
        )

    def unlink(
        self, principal: Principal, *, mrn: str, reason: ChangeReason
    ) -> tuple[IndexEvent, AuditReceipt]:
        """End this institution's MRN's active link (its history is kept).

        Raises:
            IndexConflict: ``mrn_not_linked``.
        """
        allowed = self._check(principal, Action.UNLINK_PATIENT_MRN)
        mrn_ref = self._mrn_ref(principal, mrn)
        return self._commit(
            allowed,
            lambda index: [
                core.unlink_mrn(
                    index,
                    institution=principal.institution,
                    mrn_ref=mrn_ref,
                    actor=principal.sub,
                    at=self._clock(),
                    reason=reason,
                )[1]
            ],
        )

    def correct_link(
        self, principal: Principal, *, mrn: str, to_patient_id: str, reason: ChangeReason
    ) -> tuple[IndexEvent, AuditReceipt]:
        """Move this institution's MRN from the wrong patient to ``to_patient_id``.

        Raises:
            IndexConflict: ``unknown_patient``, ``mrn_not_linked``, ``same_patient``.
        """
        allowed = self._check(principal, Action.CORRECT_PATIENT_INDEX)
        mrn_ref = self._mrn_ref(principal, mrn)
        return self._commit(
            allowed,
            lambda index: [
                core.correct_mrn_link(
                    index,
                    institution=principal.institution,
                    mrn_ref=mrn_ref,
                    to_patient_id=to_patient_id,
                    actor=principal.sub,
                    at=self._clock(),
                    reason=reason,
                )[1]
            ],
        )

    def correct_hkid(
        self, principal: Principal, patient_id: str, *, hkid: str, reason: ChangeReason
    ) -> tuple[IndexEvent, AuditReceipt]:
        """Record the right HKID for a patient; the log keeps the reference replaced.

        Raises:
            IndexConflict: ``unknown_patient``, ``same_hkid``, ``hkid_already_registered``.
        """
        allowed = self._check(principal, Action.CORRECT_PATIENT_INDEX)
        hkid_ref = self._hkid_ref(hkid)
        return self._commit(
            allowed,
            lambda index: [
                core.correct_hkid(
                    index,
                    patient_id=patient_id,
                    hkid_ref=hkid_ref,
                    actor=principal.sub,
                    at=self._clock(),
                    reason=reason,
                )[1]
            ],
        )


__all__ = ["IndexConflict", "PatientIndexService", "derived_index_key", "new_patient_id"]
