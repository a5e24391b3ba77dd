"""Institutions, affiliations and self-registrations: each change decided by Cedar and
committed with its audit event.

Every operation follows the same path (as consultation groups do):

1. read the state it decides on, strongly consistent;
2. decide with Cedar (``institutions.cedar``): a deny is audited and raised as 403;
3. validate the change (a bad one is 422, an impossible one 409);
4. commit the change and its audit event in one transaction, conditioned on the state
   read in step 1 (a concurrent change is a 409, never a lost update).

Reads (listings) append their allow event directly. Nothing a change decides is cached
anywhere: the per-request check (:mod:`app.identity.principal`) reads the same items, so
an institution admitted, suspended or removed, or an affiliation set or removed, takes
effect on the next request.

Self-registration (:mod:`app.institutions.registrations`): an applicant is an
authenticated native account with no enrolment; their steps (submit, and a reviewer's
approve or reject) are ledger entries, refusals included. The applicant's name is compared
with the register and never stored or audited.

The service is built for one *channel*: ``api`` (HTTP requests) or ``operator`` (the
operator CLI, with AWS credentials, acting as :data:`OPERATOR`). The channel goes into
every decision's context; only the operator channel may bind accounts, map identity
providers or grant administrative roles other than institution admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import institution_entity, simple_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import AuditEvent, AuditReceipt, Outcome, TransactionalAuditTrail
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
from app.identity.affiliations import (
    FIRST_PHASE_FOR_TYPE,
    Account,
    AccountStatus,
    Affiliation,
    AffiliationStatus,
    HubSwitches,
    Institution,
    InstitutionStatus,
    InstitutionType,
    IntakeClient,
    ProviderMapping,
    is_practitioner,
)
from app.identity.principal import Applicant, Principal
from app.identity.registration import RegistrationStatus
from app.institutions.registrations import PendingRegistration, RejectionReason, name_matches
from app.institutions.repository import ConcurrentChange, InstitutionRepository

API = "api"
OPERATOR_CHANNEL = "operator"
# The operator CLI's principal: a platform admin of no institution, known to the ledger
# as a named service (the AWS identity that ran it is in CloudTrail).
OPERATOR = Principal(
    sub="service:operator-cli",
    username="operator-cli",
    institution="",
    roles=frozenset({"platform_admin"}),
)
SERVICE_ID = "hub"


@dataclass(frozen=True)
class CohortInstitution:
    """One institution of a stage file's initial cohort (seeded, never overwritten)."""

    institution: Institution
    provider: str | None = None
    hospital_code: str | None = None


class InstitutionService:
    def __init__(
        self,
        repository: InstitutionRepository,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        register: Any,
        clock: Callable[[], datetime],
        *,
        phase: int,
        self_registration: bool,
        channel: str = API,
        switches: Callable[[], HubSwitches] | None = None,
    ):
        self.repository = repository
        self._gate = gate
        self._audit = audit
        self._register = register
        self._clock = clock
        self._phase = phase
        # The core's own settings (phase 1's in the one hub: self-registration off); the
        # layers' switches add to them, read afresh whenever they decide something.
        self._self_registration = self_registration
        self._channel = channel
        self._switches = switches

    def hub_phase(self) -> int:
        """The core's phase, or the highest phase whose layer is switched on now."""
        return self._switches().phase(self._phase) if self._switches else self._phase

    def self_registration_open(self) -> bool:
        """Open while the core's stage or a switched-on layer (phase 3's) turns it on."""
        if self._self_registration:
            return True
        return self._switches is not None and self._switches().self_registration

    # -- shared steps -------------------------------------------------------------------

    def _now(self) -> str:
        return self._clock().isoformat()

    def _decide(
        self,
        principal: Principal,
        action: Action,
        institution: str,
        context: Mapping[str, Any] | None = None,
        details: Mapping[str, str | int | list[str]] | None = None,
    ) -> Allowed:
        return self._gate.check(
            principal,
            action,
            uid("Institution", institution),
            [institution_entity(institution)],
            context={"channel": self._channel, **(context or {})},
            details=details,
        )

    def _commit(
        self, event: AuditEvent, items: Sequence[dict[str, Any]], code: str = "concurrent_change"
    ) -> AuditReceipt:
        try:
            return self.repository.commit(self._audit, event, items)
        except ConcurrentChange as exc:
            raise Conflict(
                "The state changed meanwhile; read it again and retry.", code=code
            ) from exc

    def _audit_applicant(
        self,
        applicant: Applicant,
        action: str,
        registration_id: str,
        outcome: Outcome,
        reason: str,
        institution: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            outcome=outcome,
            reason=reason,
            actor=applicant.sub,
            institution=institution,
            resource=f"Registration::{registration_id}",
            at=self._clock(),
        )

    # -- institutions -------------------------------------------------------------------

    def list_institutions(
        self, principal: Principal, status: InstitutionStatus | None
    ) -> tuple[list[Institution], AuditReceipt]:
        """Institutions of every phase with ``status`` (None: all; platform admins only)."""
        allowed = self._gate.check(
            principal,
            Action.LIST_INSTITUTIONS,
            uid("Service", SERVICE_ID),
            [simple_entity("Service", SERVICE_ID)],
            context={"status": status.value if status else "all"},
        )
        found = [
            i for i in self.repository.list_institutions() if status is None or i.status is status
        ]
        return found, self._gate.record(allowed)

    def admit(
        self,
        principal: Principal,
        institution_id: str,
        name: str,
        kind: InstitutionType,
        phase: int | None = None,
        provider: str | None = None,
        hospital_code: str | None = None,
    ) -> tuple[Institution, AuditReceipt]:
        allowed = self._decide(
            principal,
            Action.ADMIT_INSTITUTION,
            institution_id,
            details={"type": kind.value},
        )
        first = FIRST_PHASE_FOR_TYPE[kind]
        hub_phase = self.hub_phase()
        if first > hub_phase:
            raise InvalidRequest(
                f"{kind.value} institutions are admitted from phase {first}; this hub runs "
                f"phase {hub_phase}.",
                code="institution_type_not_open",
            )
        phase = phase or first
        if not first <= phase <= hub_phase:
            raise InvalidRequest(
                f"phase must be from {first} to {hub_phase} for {kind.value}.",
                code="invalid_phase",
            )
        if (provider is None) != (hospital_code is None):
            raise InvalidRequest(
                "provider and hospital_code go together.", code="hospital_code_incomplete"
            )
        code = hospital_code.upper() if hospital_code else None
        now = self._now()
        items = []
        if provider is not None and code is not None:
            mapping = self.repository.provider_mapping(provider)
            if mapping is None or mapping.claim is None:
                raise InvalidRequest(
                    "That identity provider does not place users by hospital code.",
                    code="provider_not_multi_hospital",
                )
            items.append(self.repository.hospital_code(provider, code, institution_id, now))
        institution = Institution(
            institution_id, name, kind, phase, InstitutionStatus.ADMITTED, provider, code
        )
        items.insert(0, self.repository.new_institution(institution, now))
        if self.repository.institution(institution_id) is not None:
            raise Conflict("An institution with that id exists.", code="institution_exists")
        receipt = self._commit(allowed.event, items, code="institution_exists")
        return institution, receipt

    def update_institution(
        self,
        principal: Principal,
        institution_id: str,
        name: str | None,
        status: InstitutionStatus | None,
    ) -> tuple[Institution, AuditReceipt]:
        if name is None and status is None:
            raise InvalidRequest("Give a name or a status.", code="nothing_to_change")
        current = self.repository.institution(institution_id)
        allowed = self._decide(
            principal,
            Action.UPDATE_INSTITUTION,
            institution_id,
            details={"status": status.value if status else ""},
        )
        if current is None:
            raise NotFound("No such institution.")
        item = self.repository.change_institution(
            current, self._now(), name=name, status=status.value if status else None
        )
        receipt = self._commit(allowed.event, [item])
        return replace(current, name=name or current.name, status=status or current.status), receipt

    # -- affiliations -------------------------------------------------------------------

    def affiliations(
        self, principal: Principal, institution_id: str
    ) -> tuple[list[Affiliation], AuditReceipt]:
        allowed = self._decide(principal, Action.LIST_AFFILIATIONS, institution_id, {"roles": []})
        return self.repository.list_affiliations(institution_id), self._gate.record(allowed)

    def set_affiliation(
        self,
        principal: Principal,
        institution_id: str,
        member: str,
        roles: Sequence[str],
        *,
        bind_sub: str | None = None,
    ) -> tuple[Affiliation, AuditReceipt]:
        """Affiliate ``member`` (a registration number, or ``sub:<sub>`` on the operator
        channel) with ``roles``; on the operator channel, ``bind_sub`` also binds that
        native account to the member at this institution.

        Raises:
            Forbidden: the decision denied it (audited).
            NotFound: no such institution.
            InvalidRequest: a practitioner not on the register; no role.
            Conflict: the number is bound to another account, or a concurrent change.
        """
        wanted = sorted(set(roles))
        allowed = self._decide(
            principal,
            Action.SET_AFFILIATION,
            institution_id,
            {"roles": wanted},
            details={"target": member, "roles": wanted},
        )
        if bind_sub is not None:
            self._decide(principal, Action.BIND_ACCOUNT, institution_id)
        if not wanted:
            raise InvalidRequest("An affiliation holds at least one role.", code="no_role")
        if self.repository.institution(institution_id) is None:
            raise NotFound("No such institution.")
        if is_practitioner(member) and self._register.entry(member) is None:
            raise InvalidRequest(
                "That registration number is not on the register.", code="not_on_register"
            )
        now = self._now()
        items = [
            self.repository.set_affiliation(institution_id, member, wanted, now, principal.sub)
        ]
        if bind_sub is not None:
            if is_practitioner(member):
                bound = self.repository.bound_account(member)
                if bound is not None and bound != bind_sub:
                    raise Conflict(
                        "That registration number is bound to another account.",
                        code="reg_no_already_bound",
                    )
            was = self.repository.account(bind_sub)
            account = Account(
                bind_sub, member, institution_id, AccountStatus.ACTIVE, decided_at=now
            )
            items.extend(self.repository.bind_account(account, now, was=was))
        event = replace(allowed.event, resource=f"Affiliation::{institution_id}:{member}")
        receipt = self._commit(event, items)
        return Affiliation(institution_id, member, tuple(wanted), AffiliationStatus.ACTIVE), receipt

    def remove_affiliation(
        self, principal: Principal, institution_id: str, member: str
    ) -> tuple[Affiliation, AuditReceipt]:
        allowed = self._decide(
            principal,
            Action.REMOVE_AFFILIATION,
            institution_id,
            {"roles": []},
            details={"target": member},
        )
        _, current = self.repository.standing(institution_id, member)
        if current is None or not current.active:
            raise NotFound("No active affiliation of that member here.")
        event = replace(allowed.event, resource=f"Affiliation::{institution_id}:{member}")
        receipt = self._commit(
            event, [self.repository.remove_affiliation(current, self._now(), principal.sub)]
        )
        return replace(current, status=AffiliationStatus.REMOVED), receipt

    # -- self-registration: the applicant ------------------------------------------------

    def submit(
        self,
        applicant: Applicant,
        reg_no: str,
        name: str,
        institution_id: str,
        new_institution_name: str | None,
    ) -> tuple[Account, AuditReceipt]:
        """Claim ``reg_no`` at ``institution_id``; pending until a reviewer approves.

        Raises:
            Forbidden: self-registration is closed, or the account cannot apply (audited).
            Conflict: an application of this account is already pending.
            InvalidRequest: the claim does not match the register, or the institution
                is not one a practitioner registers with (audited).
        """
        rid = uuid.uuid4().hex
        reg_no = reg_no.strip().upper()

        def refuse(error: Exception, reason: str) -> Exception:
            event = self._audit_applicant(
                applicant, "SubmitRegistration", rid, Outcome.DENY, reason, None
            )
            self._audit.append(event)
            return error

        if not self.self_registration_open():
            raise refuse(
                Forbidden(
                    "Self-registration is not open in this phase.", code="self_registration_closed"
                ),
                "self_registration_closed",
            )
        if applicant.provider is not None:
            raise refuse(
                Forbidden(
                    "Federated accounts are placed by their identity provider.",
                    code="federated_account",
                ),
                "federated_account",
            )
        was = self.repository.account(applicant.sub)
        if was is not None and was.status is AccountStatus.ACTIVE:
            raise refuse(
                Forbidden("This account is already enrolled.", code="already_enrolled"),
                "already_enrolled",
            )
        if was is not None and was.status is AccountStatus.PENDING:
            raise refuse(
                Conflict(
                    "An application of this account awaits review.", code="registration_pending"
                ),
                "registration_pending",
            )
        entry = self._register.entry(reg_no)
        mismatch = None
        if entry is None:
            mismatch = "not_on_register"
        elif entry.status is not RegistrationStatus.ACTIVE:
            mismatch = f"registration_{entry.status.value}"
        elif not name_matches(name, entry.name_en, entry.name_zh):
            mismatch = "name_mismatch"
        if mismatch is not None:
            # One answer whatever failed: the ledger keeps the precise reason.
            raise refuse(
                InvalidRequest(
                    "The registration number and name do not match an active entry of "
                    "the Medical Council register.",
                    code="register_mismatch",
                ),
                mismatch,
            )
        institution = self.repository.institution(institution_id)
        if institution is None and new_institution_name is None:
            raise refuse(
                InvalidRequest(
                    "No such institution; to register a new clinic, give its name as "
                    "new_institution_name.",
                    code="unknown_institution",
                ),
                "unknown_institution",
            )
        if institution is not None and (
            new_institution_name is not None
            or not institution.admitted
            or institution.type is not InstitutionType.PRIVATE_CLINIC
        ):
            raise refuse(
                InvalidRequest(
                    "Self-registration is for admitted private clinics, or a new clinic.",
                    code="institution_not_open",
                ),
                "institution_not_open",
            )
        if (
            institution is None
            and FIRST_PHASE_FOR_TYPE[InstitutionType.PRIVATE_CLINIC] > self.hub_phase()
        ):
            raise refuse(
                InvalidRequest(
                    "Private clinics are not admitted in this phase.", code="institution_not_open"
                ),
                "institution_not_open",
            )
        now = self._now()
        account = Account(
            applicant.sub,
            reg_no,
            institution_id,
            AccountStatus.PENDING,
            registration_id=rid,
            new_institution_name=new_institution_name,
            submitted_at=now,
        )
        pending = PendingRegistration(
            rid, applicant.sub, reg_no, institution_id, now, new_institution_name
        )
        items = [
            *self.repository.bind_account(account, now, was=was),
            self.repository.enqueue(pending),
        ]
        event = self._audit_applicant(
            applicant, "SubmitRegistration", rid, Outcome.ALLOW, "submitted-pending-review", None
        )
        receipt = self._commit(event, items, code="registration_pending")
        return account, receipt

    def own_registration(self, applicant: Applicant) -> tuple[Account, AuditReceipt]:
        account = self.repository.account(applicant.sub)
        if account is None:
            raise NotFound("This account has no registration.", code="no_registration")
        event = self._audit_applicant(
            applicant,
            "ViewRegistration",
            account.registration_id or "provisioned",
            Outcome.ALLOW,
            "own-account",
        )
        return account, self._audit.append(event)

    # -- self-registration: the reviewer -------------------------------------------------

    def pending(
        self, principal: Principal, institution_id: str | None
    ) -> tuple[list[tuple[PendingRegistration, Any]], AuditReceipt]:
        """Applications awaiting review at ``institution_id`` (None: everywhere), each
        with the public register entry of the number claimed, for the reviewer."""
        if institution_id is None:
            allowed = self._gate.check(
                principal,
                Action.LIST_REGISTRATIONS,
                uid("Service", SERVICE_ID),
                [simple_entity("Service", SERVICE_ID)],
                context={"channel": self._channel, "new_institution": False},
            )
        else:
            allowed = self._decide(
                principal, Action.LIST_REGISTRATIONS, institution_id, {"new_institution": False}
            )
        found = [
            (p, self._register.entry(p.reg_no))
            for p in self.repository.pending()
            if institution_id in (None, p.institution)
        ]
        return found, self._gate.record(allowed)

    def _review(
        self, principal: Principal, registration_id: str, action: Action
    ) -> tuple[PendingRegistration, Account, Institution | None, Allowed]:
        pending = self.repository.pending_one(registration_id)
        if pending is None:
            self._gate.audit.append(
                AuditEvent(
                    action=action.value,
                    outcome=Outcome.DENY,
                    reason="registration-not-found",
                    actor=principal.sub,
                    actor_reg_no=principal.reg_no,
                    institution=principal.institution or None,
                    resource=f"Registration::{registration_id}",
                    at=self._clock(),
                )
            )
            raise NotFound("No such pending registration.")
        institution = self.repository.institution(pending.institution)
        allowed = self._decide(
            principal,
            action,
            pending.institution,
            {"new_institution": institution is None},
        )
        account = self.repository.account(pending.sub)
        if (
            account is None
            or account.status is not AccountStatus.PENDING
            or account.registration_id != registration_id
        ):
            raise Conflict(
                "That registration is no longer pending.", code="registration_not_pending"
            )
        event = replace(allowed.event, resource=f"Registration::{registration_id}")
        return pending, account, institution, Allowed(allowed.decision, event)

    def approve(self, principal: Principal, registration_id: str) -> tuple[Account, AuditReceipt]:
        pending, account, institution, allowed = self._review(
            principal, registration_id, Action.APPROVE_REGISTRATION
        )
        if institution is not None and not institution.admitted:
            raise Conflict(
                "The claimed institution is not admitted.", code="institution_not_admitted"
            )
        entry = self._register.entry(pending.reg_no)
        if entry is None or entry.status is not RegistrationStatus.ACTIVE:
            raise Conflict(
                "The registration is no longer active on the register.", code="register_changed"
            )
        bound = self.repository.bound_account(pending.reg_no)
        if bound is not None and bound != pending.sub:
            raise Conflict(
                "That registration number is bound to another account.",
                code="reg_no_already_bound",
            )
        now = self._now()
        approved = replace(account, status=AccountStatus.ACTIVE, decided_at=now)
        roles = ["doctor", "specialist"] if entry.specialties else ["doctor"]
        items = [
            *self.repository.bind_account(approved, now, was=account),
            self.repository.dequeue(registration_id),
            self.repository.activate_affiliation(
                pending.institution, pending.reg_no, roles, now, principal.sub
            ),
        ]
        if institution is None:
            clinic = Institution(
                pending.institution,
                pending.new_institution_name or pending.institution,
                InstitutionType.PRIVATE_CLINIC,
                FIRST_PHASE_FOR_TYPE[InstitutionType.PRIVATE_CLINIC],
                InstitutionStatus.ADMITTED,
            )
            items.append(self.repository.new_institution(clinic, now))
        return approved, self._commit(allowed.event, items)

    def reject(
        self, principal: Principal, registration_id: str, reason: RejectionReason
    ) -> tuple[Account, AuditReceipt]:
        _, account, _, allowed = self._review(
            principal, registration_id, Action.REJECT_REGISTRATION
        )
        now = self._now()
        rejected = replace(account, status=AccountStatus.REJECTED, decided_at=now)
        event = replace(allowed.event, reason=f"{allowed.event.reason},{reason.value}")
        items = [
            *self.repository.bind_account(rejected, now, was=account),
            self.repository.dequeue(registration_id),
        ]
        return rejected, self._commit(event, items)

    # -- the operator's deploy-time seeding -------------------------------------------

    def map_intake_client(self, principal: Principal, client: IntakeClient) -> bool:
        """Map a clinic management system's app client to the institution it submits
        for (operator channel only: ``MapIntakeClient``); the institution must be
        admitted. Returns whether anything changed (an unchanged mapping is left alone)."""
        if self.repository.intake_client(client.client_id) == client:
            return False
        allowed = self._gate.check(
            principal,
            Action.MAP_INTAKE_CLIENT,
            uid("Service", SERVICE_ID),
            [simple_entity("Service", SERVICE_ID)],
            context={"channel": self._channel},
        )
        if not self.repository.admitted(client.institution):
            raise InvalidRequest(
                "An intake client submits for an admitted institution.",
                code="institution_not_admitted",
            )
        event = replace(allowed.event, resource=f"IntakeClient::{client.client_id}")
        self._commit(event, [self.repository.put_intake_client(client, self._now())])
        return True

    def seed(
        self,
        principal: Principal,
        cohort: Sequence[CohortInstitution],
        providers: Sequence[ProviderMapping],
    ) -> list[str]:
        """Admit each cohort institution the table does not hold yet, and set each
        provider's mapping; returns what changed. An institution already in the table is
        never touched (the table, not the stage file, is the authority after the first
        deploy: one removed through the API stays removed)."""
        changed: list[str] = []
        for mapping in providers:
            current = self.repository.provider_mapping(mapping.name)
            if current == mapping:
                continue
            allowed = self._gate.check(
                principal,
                Action.MAP_PROVIDER,
                uid("Service", SERVICE_ID),
                [simple_entity("Service", SERVICE_ID)],
                context={"channel": self._channel},
            )
            event = replace(allowed.event, resource=f"Provider::{mapping.name}")
            self._commit(event, [self.repository.put_provider(mapping, self._now())])
            changed.append(f"provider {mapping.name}")
        for member in cohort:
            i = member.institution
            if self.repository.institution(i.id) is not None:
                continue
            self.admit(
                principal, i.id, i.name, i.type, i.phase, member.provider, member.hospital_code
            )
            changed.append(f"institution {i.id}")
        return changed
