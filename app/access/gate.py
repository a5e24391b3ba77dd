"""The access gate: decide with Cedar, audit the decision, refuse with the reason.

Every decision, allow or deny, becomes an :class:`~app.audit.events.AuditEvent` with
the decision's reason (the deciding policy ids). A deny is appended at once and raised
as :class:`~app.errors.Forbidden` carrying the reason code. An allow is handed back
unwritten, so a state change can commit it in the same transaction as the change
(:meth:`AccessGate.record` appends it when there is no change to commit).

:meth:`AccessGate.permits` decides without writing an event: for filtering the items of a
listing down to what the caller may see, where the listing itself is the audited decision
(one event per page, not one per item considered).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access.engine import Action, Authorizer, Decision
from app.access.entities import institution_entity, principal_entity, simple_entity, uid
from app.audit.events import AuditEvent, AuditReceipt, AuditTrail, Outcome
from app.errors import Forbidden
from app.identity.principal import Principal

# The policies (consent.cedar) whose deny means "the patient has not consented to
# sharing with your institution": answered with their own error code.
CONSENT_POLICIES = frozenset(
    {
        "sharing-needs-patient-consent",
        "reading-shared-record-needs-patient-consent",
        "viewing-group-needs-patient-consent",
        "referral-needs-consent-for-the-institution-addressed",
    }
)


def consent_required(policy: str) -> Forbidden:
    """What a deny by consent ``policy`` answers (:meth:`AccessGate.check`), for the API
    document: the routes whose decisions these policies govern (CreateGroup, ShareRecord,
    ViewRecord, ReadRecord, SendReferral) declare it."""
    assert policy in CONSENT_POLICIES, policy
    return Forbidden(f"Access denied ({policy}).", code="consent_required")


@dataclass(frozen=True)
class Allowed:
    decision: Decision
    event: AuditEvent


class AccessGate:
    def __init__(self, authorizer: Authorizer, audit: AuditTrail, clock: Callable[[], datetime]):
        self.authorizer = authorizer
        self.audit = audit
        self._clock = clock

    def _event(
        self,
        principal: Principal,
        decision: Decision,
        resource: str,
        patient_ref: str | None,
        details: Mapping[str, str | int | list[str]] | None,
    ) -> AuditEvent:
        return AuditEvent(
            action=decision.action.value,
            outcome=Outcome.ALLOW if decision.allowed else Outcome.DENY,
            reason=decision.reason,
            actor=principal.sub,
            actor_reg_no=principal.reg_no,
            # The operator CLI acts for no institution.
            institution=principal.institution or None,
            resource=resource,
            patient_ref=patient_ref,
            details=dict(details or {}),
            actor_roles=tuple(sorted(principal.roles)),
            at=self._clock(),
        )

    def check(
        self,
        principal: Principal,
        action: Action,
        resource: Mapping[str, str],
        entities: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        patient_ref: str | None = None,
        details: Mapping[str, str | int | list[str]] | None = None,
    ) -> Allowed:
        decision = self._decide(principal, action, resource, entities, context)
        label = f"{resource['type'].removeprefix('Hub::')}::{resource['id']}"
        event = self._event(principal, decision, label, patient_ref, details)
        if not decision.allowed:
            self.audit.append(event)
            code = (
                "consent_required"
                if CONSENT_POLICIES.intersection(decision.reasons)
                else "access_denied"
            )
            raise Forbidden(f"Access denied ({decision.reason}).", code=code)
        return Allowed(decision, event)

    def permits(
        self,
        principal: Principal,
        action: Action,
        resource: Mapping[str, str],
        entities: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Cedar's decision, unaudited: only to filter what a listing shows (the listing
        is audited as one decision by :meth:`check`)."""
        return self._decide(principal, action, resource, entities, context).allowed

    def _decide(
        self,
        principal: Principal,
        action: Action,
        resource: Mapping[str, str],
        entities: Sequence[Mapping[str, Any]],
        context: Mapping[str, Any] | None,
    ) -> Decision:
        all_entities = [principal_entity(principal), *entities]
        return self.authorizer.decide(
            uid("User", principal.sub), action, resource, all_entities, context
        )

    def record(self, allowed: Allowed) -> AuditReceipt:
        return self.audit.append(allowed.event)

    def check_profile(self, principal: Principal) -> Allowed:
        return self.check(
            principal, Action.VIEW_PROFILE, uid("Service", "hub"), [simple_entity("Service", "hub")]
        )

    def check_break_glass_listing(self, principal: Principal) -> Allowed:
        return self.check(
            principal,
            Action.LIST_BREAK_GLASS,
            uid("Service", "hub"),
            [simple_entity("Service", "hub")],
        )

    def check_create_group(
        self,
        principal: Principal,
        institution: str,
        *,
        consent_active: bool,
        patient_ref: str | None = None,
    ) -> Allowed:
        """May the principal open a group at ``institution``, given whether the patient's
        sharing consent for it is in force now (the caller read it)."""
        return self.check(
            principal,
            Action.CREATE_GROUP,
            uid("Institution", institution),
            [institution_entity(institution)],
            context={"consent_active": consent_active},
            patient_ref=patient_ref,
        )

    def refuse_principal(self, sub: str, reason: str, institution: str | None) -> None:
        """Audit a request refused before any policy ran (registration, institution)."""
        self.audit.append(
            AuditEvent(
                action="Authenticate",
                outcome=Outcome.DENY,
                reason=reason,
                actor=sub,
                institution=institution,
                at=self._clock(),
            )
        )
