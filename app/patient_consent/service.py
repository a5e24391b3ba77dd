"""Recording, withdrawing and reading a patient's sharing consents; answering whether one
is in force.

Every change follows one path:

1. decide with Cedar on the principal's institution (``RecordConsent``,
   ``WithdrawConsent``, ``ViewConsents`` in consent.cedar: the institution's clinicians
   and administrators record the patient's decision; a deny is audited and is a 403);
2. the patient must be in the index (else an audited deny and 422 ``unknown_patient``);
3. the pure model (:mod:`app.consent.model`) builds or withdraws the consent (a refused
   change is a 422/409 with its code and nothing is written);
4. the consent items and the audit entry commit in one DynamoDB transaction.

The ledger entry names the patient only by the audit reference (``pt1-``,
:func:`app.audit.events.patient_reference`), states the operation and who gave the
consent (``patient`` or ``substitute``, with the SDM's basis) as coded facts, and the
consent ids and institutions in its details. A substitute decision maker is recorded by
the keyed reference of their HKID under the index key (``hk1-``), never the HKID.

:meth:`ConsentService.consent_decision` is what groups and records ask on every request
that opens or shares: one strongly consistent query of the patient's consents, decided
at the service clock's now.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import institution_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditedTransactionConflict,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.audit.facts import FactKey, Operation
from app.consent import model
from app.consent.model import (
    ConsentConflict,
    ConsentDecision,
    SdmRelationship,
    SharingConsent,
    SubstituteBasis,
    SubstituteDecisionMaker,
)
from app.consent.repository import DynamoConsentRepository
from app.errors import NotFound
from app.identity.principal import Principal
from app.patients.hkid import parse_hkid
from app.patients.index import PatientRegistry, UnknownPatient, hkid_reference


@dataclass(frozen=True)
class Substitute:
    """A substitute decision maker as the request names them (the HKID goes no further
    than :meth:`ConsentService._sdm`, which keeps only its keyed reference)."""

    hkid: str
    relationship: SdmRelationship
    basis: SubstituteBasis


def new_consent_id() -> str:
    return f"cs-{uuid.uuid4().hex}"


class ConsentService:
    def __init__(
        self,
        repository: DynamoConsentRepository,
        patients: PatientRegistry,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        index_key: bytes,
        hash_key: bytes,
        clock: Callable[[], datetime],
    ):
        self._repo = repository
        self._patients = patients
        self._gate = gate
        self._audit = audit
        self._index_key = index_key
        self._hash_key = hash_key
        self._clock = clock

    # -- what groups and records ask ----------------------------------------------------

    def consent_decision(self, patient_id: str, institution: str) -> ConsentDecision:
        """Whether the patient's consent for ``institution`` is in force now, and why."""
        return model.decide(self._repo.consents(patient_id), patient_id, institution, self._clock())

    # -- shared steps -------------------------------------------------------------------

    def _check(self, principal: Principal, action: Action, patient_id: str) -> Allowed:
        institution = principal.institution
        allowed = self._gate.check(
            principal,
            action,
            uid("Institution", institution),
            [institution_entity(institution)],
            patient_ref=patient_reference(patient_id, self._hash_key),
        )
        if not self._patients.is_registered(patient_id):
            self._audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="patient-not-indexed")
            )
            raise UnknownPatient()
        return allowed

    def _sdm(self, substitute: Substitute | None) -> SubstituteDecisionMaker | None:
        if substitute is None:
            return None
        return SubstituteDecisionMaker(
            sdm_ref=hkid_reference(parse_hkid(substitute.hkid), self._index_key),
            relationship=substitute.relationship,
            basis=substitute.basis,
        )

    @staticmethod
    def _given_by_facts(sdm: SubstituteDecisionMaker | None) -> dict[str, str]:
        if sdm is None:
            return {FactKey.CONSENT_GIVEN_BY.value: "patient"}
        return {
            FactKey.CONSENT_GIVEN_BY.value: "substitute",
            FactKey.SDM_BASIS.value: sdm.basis.value,
        }

    def _commit(
        self,
        allowed: Allowed,
        items: Sequence[dict[str, Any]],
        facts: dict[str, str],
        details: dict[str, str | int | list[str]],
    ) -> AuditReceipt:
        event = replace(allowed.event, facts=facts, details=details)
        try:
            return self._audit.transact_append(event, items)
        except AuditedTransactionConflict:
            raise ConsentConflict(
                "concurrent_change", "The patient's consents changed meanwhile; retry."
            ) from None

    # -- operations ---------------------------------------------------------------------

    def grant(
        self,
        principal: Principal,
        patient_id: str,
        *,
        institutions: Sequence[str],
        valid_until: datetime | None,
        substitute: Substitute | None = None,
    ) -> tuple[list[SharingConsent], AuditReceipt]:
        """Record the patient's (or an SDM's) consent to sharing with each institution,
        from now until ``valid_until`` (``None``: indefinitely); one consent per
        institution, so each can be withdrawn on its own.

        Raises:
            UnknownPatient: the index does not know the patient (422).
            InvalidConsent: a bad institution id, an end not after now, an SDM whose
                relationship the basis does not admit (422).
        """
        allowed = self._check(principal, Action.RECORD_CONSENT, patient_id)
        sdm = self._sdm(substitute)
        now = self._clock()
        consents = [
            model.give_consent(
                consent_id=new_consent_id(),
                patient_ref=patient_id,
                institution=institution,
                given_at=now,
                valid_until=valid_until,
                recorded_by=principal.sub,
                given_by=sdm,
            )
            for institution in dict.fromkeys(institutions)
        ]
        receipt = self._commit(
            allowed,
            [self._repo.new_item(patient_id, c) for c in consents],
            {FactKey.OP.value: Operation.CONSENT_GRANT.value, **self._given_by_facts(sdm)},
            {
                "consents": [c.consent_id for c in consents],
                "institutions": [c.institution for c in consents],
                "indefinite": "yes" if valid_until is None else "no",
            },
        )
        return consents, receipt

    def withdraw(
        self,
        principal: Principal,
        patient_id: str,
        consent_id: str,
        *,
        substitute: Substitute | None = None,
    ) -> tuple[SharingConsent, AuditReceipt]:
        """Withdraw one consent from now on; the next request it covered is refused.

        Raises:
            UnknownPatient: the index does not know the patient (422).
            NotFound: ``consent_not_found``.
            ConsentConflict: ``already_withdrawn``, ``concurrent_change`` (409).
        """
        allowed = self._check(principal, Action.WITHDRAW_CONSENT, patient_id)
        stored = self._repo.get(patient_id, consent_id)
        if stored is None:
            self._audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="consent-not-found")
            )
            raise NotFound("No such consent for this patient.", code="consent_not_found")
        sdm = self._sdm(substitute)
        withdrawn = model.withdraw_consent(
            stored, at=self._clock(), withdrawn_by=principal.sub, via=sdm
        )
        receipt = self._commit(
            allowed,
            [self._repo.withdrawal_item(patient_id, withdrawn)],
            {FactKey.OP.value: Operation.CONSENT_WITHDRAW.value, **self._given_by_facts(sdm)},
            {"consents": [consent_id], "institutions": [withdrawn.institution]},
        )
        return withdrawn, receipt

    def consents(
        self, principal: Principal, patient_id: str
    ) -> tuple[list[SharingConsent], AuditReceipt]:
        """Every consent of the patient, withdrawn and expired ones included (audited)."""
        allowed = self._check(principal, Action.VIEW_CONSENTS, patient_id)
        found = sorted(self._repo.consents(patient_id), key=lambda c: (c.given_at, c.consent_id))
        return found, self._gate.record(allowed)
