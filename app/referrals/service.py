"""Referral operations: each decided by Cedar, committed with its ledger entry.

Every transition follows the same path, so no route can skip a step:

1. read the referral (one strongly consistent query) and its consultation group;
2. decide with Cedar over exactly that state (a deny is audited and is a 403 naming the
   deciding policy);
3. compute the next state with the pure lifecycle (:mod:`app.referrals.lifecycle`; an
   impossible transition is a 409);
4. commit the referral (conditioned on the version read), its history item, any index
   row and any group membership change, with the ledger entry, in one transaction.

Each entry states the transition as coded facts (:mod:`app.audit.facts`: operation,
urgency, target institution and department, the actor's department, the group, the
rollout phase) so the pilot metrics are computed from the ledger alone.

Refusals before a policy can run (no legal basis stated, a target institution not
admitted, a named doctor who is not at the target institution, an unknown referral)
are 4xx errors with their own codes, and each is a ``denied`` ledger entry too. Whether
an institution is admitted is asked of one function (``is_admitted``), so the source
of admission can change without touching this module.

The clinical question and a decline note are sealed (:mod:`app.referrals.sealing`) and
opened only for a request allowed to view the referral; they never enter the ledger,
a log line or an error message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import (
    NO_GROUP_ID,
    no_group_entity,
    principal_entity,
    simple_entity,
    uid,
)
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.audit.facts import (
    ConsentOverride,
    FactKey,
    LegalBasis,
    Operation,
    Urgency,
    department_code,
)
from app.consent.model import ConsentRegistry
from app.crypto.errors import InvalidRecord
from app.dynamo import serialize
from app.errors import Conflict, InvalidRequest, NotFound
from app.groups import membership as sm
from app.groups.entities import group_entity
from app.groups.membership import (
    ConsultationGroup,
    GroupStatus,
    InvalidTransition,
    MemberRole,
    Membership,
    MembershipChange,
    MembershipState,
)
from app.groups.repository import ConcurrentChange as GroupConcurrentChange
from app.groups.repository import GroupRepository
from app.groups.service import GroupService
from app.identity.directory import DoctorDirectory
from app.identity.principal import Principal
from app.identity.registration import RegistrationStatus
from app.patients.index import PatientRegistry, UnknownPatient
from app.records.errors import RecordIntegrityError, RecordsNotConfigured
from app.records.service import RecordService
from app.referrals import lifecycle as lc
from app.referrals.entities import referral_entity
from app.referrals.fhir import referral_bundle
from app.referrals.letter import referral_letter
from app.referrals.lifecycle import (
    DeclineReason,
    PatientNotice,
    Referral,
    ReferralStatus,
    Target,
    Transition,
)
from app.referrals.repository import ConcurrentChange, ReferralRepository, StoredReferral
from app.referrals.sealing import ReferralSealer, SealedField


def referral_facts(
    referral: Referral, operation: Operation, actor_specialties: Sequence[str]
) -> dict[str, str]:
    """The coded facts a transition's ledger entry states (the metrics read them)."""
    facts = {
        FactKey.OP.value: operation.value,
        FactKey.URGENCY.value: referral.urgency.value,
        FactKey.TO_INSTITUTION.value: referral.target.institution,
        FactKey.TO_DEPARTMENT.value: referral.to_department,
        FactKey.DEPARTMENT.value: department_code(actor_specialties),
        FactKey.GROUP.value: referral.group_id,
        FactKey.PHASE.value: str(referral.phase),
    }
    if operation is Operation.REFERRAL_SEND:
        facts[FactKey.LEGAL_BASIS.value] = referral.legal_basis.value
    if referral.decline_reason is not None and operation is Operation.REFERRAL_DECLINE:
        facts[FactKey.DECLINE_REASON.value] = referral.decline_reason.value
    return facts


@dataclass(frozen=True)
class ReferralRequest:
    """What a referrer states (validated shapes; the service checks the substance)."""

    patient_id: str
    target: Target
    urgency: Urgency
    question: str
    legal_basis: LegalBasis | None
    patient_notice: PatientNotice
    group_id: str | None = None
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReferralView:
    referral: Referral
    question: str
    history: list[dict[str, Any]]


class ReferralService:
    def __init__(
        self,
        repository: ReferralRepository,
        groups: GroupService,
        group_repository: GroupRepository,
        records: RecordService | None,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        sealer: ReferralSealer,
        directory: DoctorDirectory,
        register: Any,
        is_admitted: Callable[[str], bool],
        hash_key: bytes,
        clock: Callable[[], datetime],
        *,
        patients: PatientRegistry,
        consents: ConsentRegistry,
    ):
        self._consents = consents
        self._repo = repository
        self._groups = groups
        self._group_repo = group_repository
        self._records = records
        self._gate = gate
        self._audit = audit
        self._sealer = sealer
        self._directory = directory
        self._register = register
        self._is_admitted = is_admitted
        self._key = hash_key
        self._clock = clock
        self._patients = patients

    # -- shared steps -------------------------------------------------------------------

    def _refuse(
        self,
        principal: Principal,
        action: Action,
        referral_id: str,
        code: str,
        error: Exception,
        *,
        patient_ref: str | None = None,
    ) -> Exception:
        """Audit a refusal (a ``denied`` entry naming ``code``) and return the error."""
        self._gate.audit.append(
            AuditEvent(
                action=action.value,
                outcome=Outcome.DENY,
                reason=code,
                actor=principal.sub,
                actor_reg_no=principal.reg_no,
                institution=principal.institution,
                resource=f"Referral::{referral_id}",
                patient_ref=patient_ref,
                actor_roles=tuple(sorted(principal.roles)),
                at=self._clock(),
            )
        )
        return error

    def _load(self, principal: Principal, referral_id: str, action: Action) -> StoredReferral:
        stored = self._repo.load(referral_id)
        if stored is None:
            raise self._refuse(
                principal, action, referral_id, "referral-not-found", NotFound("No such referral.")
            )
        return stored

    def _group(self, group_id: str) -> tuple[ConsultationGroup, list[Membership]] | None:
        return self._group_repo.load(group_id)

    def _decide(
        self,
        principal: Principal,
        action: Action,
        referral: Referral,
        group: tuple[ConsultationGroup, Sequence[Membership]] | None,
        *,
        legal_basis: str = "",
        notice: str = "",
        consent_active: bool | None = None,
    ) -> Allowed:
        if group is None:
            group_id, entity = NO_GROUP_ID, no_group_entity()
        else:
            group_id = group[0].group_id
            entity = group_entity(group[0], group[1], slice_for=(principal.reg_no or "",))
        context: dict[str, Any] = {
            "group": {"__entity": uid("Group", group_id)},
            "specialties": sorted({s.strip().lower() for s in principal.specialties}),
            "legal_basis": legal_basis,
            "patient_notice": notice,
        }
        if consent_active is not None:
            # Sending only: the patient's consent for the institution addressed.
            context["consent_active"] = consent_active
        return self._gate.check(
            principal,
            action,
            uid("Referral", referral.referral_id),
            [referral_entity(referral), entity],
            context=context,
            patient_ref=referral.patient_ref,
        )

    def _event(
        self, allowed: Allowed, referral: Referral, operation: Operation, principal: Principal
    ) -> AuditEvent:
        return replace(
            allowed.event,
            resource=f"Referral::{referral.referral_id}",
            facts=referral_facts(referral, operation, principal.specialties),
        )

    def _commit(
        self,
        items: Sequence[dict[str, Any]],
        event: AuditEvent,
    ) -> AuditReceipt:
        try:
            return self._repo.transact(items, self._audit, event)
        except ConcurrentChange as exc:
            raise Conflict(
                "The referral changed meanwhile; retry.", code="concurrent_change"
            ) from exc

    @staticmethod
    def _transition(fn: Callable[[], tuple[Referral, Transition]]) -> tuple[Referral, Transition]:
        try:
            return fn()
        except lc.InvalidTransition as exc:
            raise Conflict(code=exc.code) from exc

    def _check_target(
        self, principal: Principal, action: Action, referral_id: str, target: Target, ref: str
    ) -> str:
        """The target's department code, or an audited 422 (not admitted, wrong place)."""
        if not self._is_admitted(target.institution):
            raise self._refuse(
                principal,
                action,
                referral_id,
                "institution-not-admitted",
                InvalidRequest(
                    "The target institution is not admitted to the hub in this phase.",
                    code="institution_not_admitted",
                ),
                patient_ref=ref,
            )
        if not target.practitioner:
            return department_code([target.specialty])
        doctor = self._directory.doctor(target.practitioner)
        entry = self._register.entry(target.practitioner)
        if (
            doctor is None
            or entry is None
            or entry.status is not RegistrationStatus.ACTIVE
            or doctor.institution != target.institution
        ):
            raise self._refuse(
                principal,
                action,
                referral_id,
                "practitioner-not-at-institution",
                InvalidRequest(
                    "The named doctor cannot receive referrals at that institution.",
                    code="practitioner_not_at_institution",
                ),
                patient_ref=ref,
            )
        if target.specialty:
            return department_code([target.specialty])
        return department_code(entry.specialties)

    def _question(self, stored: StoredReferral, field: SealedField) -> str | None:
        r = stored.referral
        try:
            return self._sealer.open(
                stored.sealed,
                referral_id=r.referral_id,
                patient_ref=r.patient_ref,
                institution=r.from_institution,
                field=field,
            )
        except InvalidRecord as exc:
            raise RecordIntegrityError() from exc

    # -- send ---------------------------------------------------------------------------

    def send(self, principal: Principal, request: ReferralRequest) -> tuple[Referral, AuditReceipt]:
        referral_id = uuid.uuid4().hex
        ref = patient_reference(request.patient_id, self._key)
        action = Action.SEND_REFERRAL
        if request.legal_basis is None:
            raise self._refuse(
                principal,
                action,
                referral_id,
                "legal-basis-required",
                InvalidRequest(
                    "A referral discloses patient data: state its legal basis "
                    "(referral_for_care with the patient informed or consenting, or emergency).",
                    code="legal_basis_required",
                ),
                patient_ref=ref,
            )
        to_department = self._check_target(principal, action, referral_id, request.target, ref)
        now = self._clock()
        assert principal.reg_no is not None or not principal.clinical
        referral = Referral(
            referral_id=referral_id,
            patient_id=request.patient_id,
            patient_ref=ref,
            group_id=request.group_id or "",
            referrer=principal.reg_no or "",
            from_institution=principal.institution,
            from_department=department_code(principal.specialties),
            urgency=request.urgency,
            legal_basis=request.legal_basis,
            patient_notice=request.patient_notice,
            target=request.target,
            to_department=to_department,
            status=ReferralStatus.REQUESTED,
            created_at=now,
            # The referrer's institution's phase (data, read with it on this request).
            phase=principal.phase,
            attachments=tuple(dict.fromkeys(request.attachments)),
        )
        if request.group_id:
            group = self._group(request.group_id)
            if group is None:
                raise self._refuse(
                    principal,
                    action,
                    referral_id,
                    "group-not-found",
                    NotFound("No such group."),
                    patient_ref=ref,
                )
        else:
            # The group this referral will open: decided on before it exists, so a
            # refused referral leaves no group behind.
            group = self._prospective_group(principal, request.patient_id, ref, now)
        registered = self._patients.is_registered(request.patient_id)
        # A referral discloses the patient to the institution addressed: the patient's
        # consent for it, read now (an unknown patient is refused below, 422).
        consent_active = (
            not registered
            or self._consents.consent_decision(
                request.patient_id, request.target.institution
            ).allowed
        )
        allowed = self._decide(
            principal,
            action,
            referral,
            group,
            legal_basis=request.legal_basis.value,
            notice=request.patient_notice.value,
            consent_active=consent_active,
        )
        if not consent_active:
            # Only an emergency basis sends without consent (referrals.cedar); flagged.
            allowed = Allowed(
                allowed.decision,
                replace(
                    allowed.event,
                    facts={
                        **allowed.event.facts,
                        FactKey.CONSENT_OVERRIDE.value: ConsentOverride.EMERGENCY_REFERRAL.value,
                    },
                ),
            )
        if not registered:
            raise self._refuse(
                principal,
                action,
                referral_id,
                "patient-not-indexed",
                UnknownPatient(),
                patient_ref=ref,
            )
        if request.attachments and self._records is None:
            raise RecordsNotConfigured()
        if not request.group_id:
            state, _ = self._groups.create(
                principal, request.patient_id, "Referral case", f"referral {referral_id}"
            )
            group = (state.group, state.memberships)
            referral = replace(referral, group_id=state.group.group_id)
        assert group is not None
        for record_id in referral.attachments:
            self._share(principal, record_id, referral.group_id)
        sealed = self._sealer.seal(
            request.question,
            referral_id=referral_id,
            patient_ref=ref,
            institution=principal.institution,
            field=SealedField.QUESTION,
        )
        referral, transition = self._transition(lambda: lc.send(referral))
        items = [
            self._repo.referral_put(referral, sealed),
            self._repo.history_put(transition),
            *self._repo.index_puts(referral, outgoing=True),
            *self._sender_still_member(principal, referral.group_id),
        ]
        event = self._event(allowed, referral, Operation.REFERRAL_SEND, principal)
        if FactKey.CONSENT_OVERRIDE.value in allowed.event.facts:
            event = replace(event, facts={**event.facts, **allowed.event.facts})
        receipt = self._commit(items, event)
        return referral, receipt

    def _prospective_group(
        self, principal: Principal, patient_id: str, ref: str, now: datetime
    ) -> tuple[ConsultationGroup, list[Membership]]:
        group = ConsultationGroup(
            group_id=NO_GROUP_ID,
            patient_id=patient_id,
            patient_ref=ref,
            institution=principal.institution,
            title="",
            purpose="",
            status=GroupStatus.OPEN,
            created_by=principal.reg_no or "",
            created_at=now,
        )
        lead = Membership(
            group_id=NO_GROUP_ID,
            reg_no=principal.reg_no or "",
            role=MemberRole.LEAD,
            state=MembershipState.ACTIVE,
            institution=principal.institution,
            invited_by=principal.reg_no or "",
            invited_at=now,
            joined_at=now,
        )
        return group, [lead]

    def _share(self, principal: Principal, record_id: str, group_id: str) -> None:
        assert self._records is not None
        try:
            self._records.share(principal, record_id, group_id)
        except Conflict as exc:
            if exc.code != "already_shared":
                raise

    def _sender_still_member(self, principal: Principal, group_id: str) -> list[dict[str, Any]]:
        """Conditions: the group is still open and the sender's membership unchanged."""
        loaded = self._group(group_id)
        mine = None
        if loaded is not None:
            mine = next((m for m in loaded[1] if m.reg_no == principal.reg_no), None)
        if loaded is None or mine is None:
            raise Conflict("The group changed meanwhile; retry.", code="concurrent_change")
        table = self._group_repo.table_name
        return [
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": "META"}),
                    "ConditionExpression": "#s = :open",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":open": {"S": GroupStatus.OPEN.value}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": f"MEMBER#{mine.reg_no}"}),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(mine.version)}},
                }
            },
        ]

    # -- reads --------------------------------------------------------------------------

    def _viewed(self, principal: Principal, referral_id: str) -> tuple[StoredReferral, Allowed]:
        stored = self._load(principal, referral_id, Action.VIEW_REFERRAL)
        group = self._group(stored.referral.group_id)
        allowed = self._decide(principal, Action.VIEW_REFERRAL, stored.referral, group)
        return stored, allowed

    def get(self, principal: Principal, referral_id: str) -> tuple[ReferralView, AuditReceipt]:
        stored, allowed = self._viewed(principal, referral_id)
        question = self._question(stored, SealedField.QUESTION) or ""
        history = sorted(
            (
                {
                    "operation": str(h["operation"]),
                    "actor": str(h["actor"]),
                    "at": str(h["at"]),
                    "to_status": str(h["to_status"]),
                }
                for h in stored.history
            ),
            key=lambda h: h["at"],
        )
        view = ReferralView(stored.referral, question, history)
        return view, self._gate.record(allowed)

    def fhir(self, principal: Principal, referral_id: str) -> tuple[dict[str, Any], AuditReceipt]:
        stored, allowed = self._viewed(principal, referral_id)
        bundle = referral_bundle(
            stored.referral, self._question(stored, SealedField.QUESTION) or ""
        )
        return bundle, self._gate.record(allowed)

    def letter(self, principal: Principal, referral_id: str) -> tuple[bytes, AuditReceipt]:
        stored, allowed = self._viewed(principal, referral_id)
        pdf = referral_letter(
            stored.referral,
            self._question(stored, SealedField.QUESTION) or "",
            generated_at=self._clock().strftime("%Y-%m-%d %H:%M UTC"),
        )
        return pdf, self._gate.record(allowed)

    def listing(
        self, principal: Principal, box: str, limit: int
    ) -> tuple[list[Referral], AuditReceipt]:
        """The principal's outgoing referrals, or the incoming ones they may view (each
        filtered by the ``ViewReferral`` policy itself, not by a second rule here)."""
        allowed = self._gate.check(
            principal,
            Action.LIST_REFERRALS,
            uid("Service", "hub"),
            [simple_entity("Service", "hub")],
            details={"box": box},
        )
        if box == "outgoing":
            pk = f"REFERRALS#FROM#{principal.reg_no}"
        else:
            pk = f"REFERRALS#TO#{principal.institution}"
        referrals = self._repo.referrals(self._repo.list_ids(pk, limit))
        visible = [r for r in referrals if self._may_view_without_group(principal, r)]
        return visible, self._gate.record(allowed)

    def _may_view_without_group(self, principal: Principal, r: Referral) -> bool:
        if r.target.institution != principal.institution and r.referrer != principal.reg_no:
            return False  # redirected away since it was listed here
        decision = self._gate.authorizer.decide(
            uid("User", principal.sub),
            Action.VIEW_REFERRAL,
            uid("Referral", r.referral_id),
            [
                principal_entity(principal),
                referral_entity(r),
                no_group_entity(),
            ],
            {
                "group": {"__entity": uid("Group", NO_GROUP_ID)},
                "specialties": sorted({s.strip().lower() for s in principal.specialties}),
                "legal_basis": "",
                "patient_notice": "",
            },
        )
        return decision.allowed

    # -- the receiving side ---------------------------------------------------------------

    def accept(self, principal: Principal, referral_id: str) -> tuple[Referral, AuditReceipt]:
        stored = self._load(principal, referral_id, Action.ACCEPT_REFERRAL)
        referral = stored.referral
        group = self._group(referral.group_id)
        allowed = self._decide(principal, Action.ACCEPT_REFERRAL, referral, group)
        if group is None:
            raise Conflict("The referral's group no longer exists.", code="group_missing")
        now = self._clock()
        reg_no = principal.reg_no or ""
        current = next((m for m in group[1] if m.reg_no == reg_no), None)
        membership: tuple[Membership, MembershipChange] | None = None
        try:
            if current is None or current.state not in sm.CURRENT:
                membership = sm.invite(
                    group[0],
                    current,
                    reg_no=reg_no,
                    role=MemberRole.INVITED_EXPERT,
                    institution=principal.institution,
                    actor=referral.referrer,
                    at=now,
                    direct=True,
                )
            elif current.state is MembershipState.INVITED:
                membership = sm.accept(group[0], current, at=now)
            elif group[0].status is not GroupStatus.OPEN:
                raise InvalidTransition("group_closed")
        except InvalidTransition as exc:
            raise Conflict(
                "The referral's consultation group is closed; the referrer must refer again.",
                code=exc.code,
            ) from exc
        # Access the referral granted (a direct add, not an invitation accepted) ends
        # when the referral completes.
        granted = membership is not None and (current is None or current.state not in sm.CURRENT)
        referral, transition = self._transition(
            lambda: lc.accept(referral, by=reg_no, at=now, granted_membership=granted)
        )
        items = [
            self._repo.referral_put(referral, stored.sealed),
            self._repo.history_put(transition),
        ]
        if referral.legal_basis is LegalBasis.EMERGENCY:
            # The emergency basis lets the accepting doctor read the group and its
            # shared records without the patient's consent while the referral is in
            # progress (consent.cedar); the reads are flagged in the ledger.
            items.append(self._repo.emergency_put(referral))
        event = self._event(allowed, referral, Operation.REFERRAL_ACCEPT, principal)
        return referral, self._commit_with_group(referral.group_id, membership, items, event)

    def _commit_with_group(
        self,
        group_id: str,
        membership: tuple[Membership, MembershipChange] | None,
        items: list[dict[str, Any]],
        event: AuditEvent,
    ) -> AuditReceipt:
        if membership is None:
            return self._commit(items, event)
        try:
            return self._group_repo.record_changes(
                group_id, [membership], items, self._audit, event
            )
        except GroupConcurrentChange as exc:
            raise Conflict(
                "The referral or its group changed meanwhile; retry.", code="concurrent_change"
            ) from exc

    def decline(
        self, principal: Principal, referral_id: str, reason: DeclineReason, note: str | None
    ) -> tuple[Referral, AuditReceipt]:
        stored = self._load(principal, referral_id, Action.DECLINE_REFERRAL)
        allowed = self._decide(
            principal,
            Action.DECLINE_REFERRAL,
            stored.referral,
            self._group(stored.referral.group_id),
        )
        now = self._clock()
        referral, transition = self._transition(
            lambda: lc.decline(stored.referral, by=principal.reg_no or "", at=now, reason=reason)
        )
        sealed = dict(stored.sealed)
        if note:
            sealed.update(
                self._sealer.seal(
                    note,
                    referral_id=referral.referral_id,
                    patient_ref=referral.patient_ref,
                    institution=referral.from_institution,
                    field=SealedField.NOTE,
                )
            )
        items = [self._repo.referral_put(referral, sealed), self._repo.history_put(transition)]
        event = self._event(allowed, referral, Operation.REFERRAL_DECLINE, principal)
        return referral, self._commit(items, event)

    def redirect(
        self, principal: Principal, referral_id: str, target: Target
    ) -> tuple[Referral, AuditReceipt]:
        stored = self._load(principal, referral_id, Action.REDIRECT_REFERRAL)
        allowed = self._decide(
            principal,
            Action.REDIRECT_REFERRAL,
            stored.referral,
            self._group(stored.referral.group_id),
        )
        to_department = self._check_target(
            principal, Action.REDIRECT_REFERRAL, referral_id, target, stored.referral.patient_ref
        )
        now = self._clock()
        referral, transition = self._transition(
            lambda: lc.redirect(
                stored.referral,
                by=principal.reg_no or "",
                at=now,
                target=target,
                to_department=to_department,
            )
        )
        items = [
            self._repo.referral_put(referral, stored.sealed),
            self._repo.history_put(transition),
            *self._repo.index_puts(referral, outgoing=False),
        ]
        event = self._event(allowed, referral, Operation.REFERRAL_REDIRECT, principal)
        return referral, self._commit(items, event)

    def cancel(self, principal: Principal, referral_id: str) -> tuple[Referral, AuditReceipt]:
        stored = self._load(principal, referral_id, Action.CANCEL_REFERRAL)
        allowed = self._decide(
            principal,
            Action.CANCEL_REFERRAL,
            stored.referral,
            self._group(stored.referral.group_id),
        )
        referral, transition = self._transition(
            lambda: lc.cancel(stored.referral, by=principal.reg_no or "", at=self._clock())
        )
        items = [
            self._repo.referral_put(referral, stored.sealed),
            self._repo.history_put(transition),
        ]
        event = self._event(allowed, referral, Operation.REFERRAL_CANCEL, principal)
        return referral, self._commit(items, event)

    def complete(self, principal: Principal, referral_id: str) -> tuple[Referral, AuditReceipt]:
        """Complete an accepted referral; the membership it granted ends with it."""
        stored = self._load(principal, referral_id, Action.COMPLETE_REFERRAL)
        group = self._group(stored.referral.group_id)
        allowed = self._decide(principal, Action.COMPLETE_REFERRAL, stored.referral, group)
        now = self._clock()
        referral, transition = self._transition(
            lambda: lc.complete(stored.referral, by=principal.reg_no or "", at=now)
        )
        membership = None
        if (
            referral.granted_membership
            and group is not None
            and group[0].status is GroupStatus.OPEN
        ):
            current = next((m for m in group[1] if m.reg_no == referral.accepted_by), None)
            if current is not None and current.state is MembershipState.ACTIVE:
                membership = sm.remove(group[0], current, actor=principal.reg_no or "", at=now)
        items = [
            self._repo.referral_put(referral, stored.sealed),
            self._repo.history_put(transition),
        ]
        event = self._event(allowed, referral, Operation.REFERRAL_COMPLETE, principal)
        return referral, self._commit_with_group(referral.group_id, membership, items, event)


__all__ = ["ReferralRequest", "ReferralService", "ReferralView", "referral_facts"]
