"""Who may do what to a record: Cedar entities from state read for this request.

Every record operation loads the record (a missing one is audited as a deny and is a
404), then asks the access gate with the record's entity, the groups it reaches the
principal through and the break-glass patients the principal holds, all read strongly
consistent now, so a doctor removed from a group is refused on the very next request.
A deny is audited and is a 403 naming the deciding policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import NO_GROUP_ID, no_group_entity, record_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import AuditEvent, Outcome
from app.breakglass.service import BreakGlassService
from app.consent.model import ConsentRegistry, EmergencyBasis
from app.errors import NotFound
from app.groups.entities import group_entity
from app.groups.membership import GroupStatus, MembershipState
from app.groups.reading import flag_override
from app.groups.repository import GroupRepository
from app.identity.principal import Principal
from app.records.repository import RecordRepository, RecordState

# The record actions that need the patient's sharing consent for the caller's
# institution (consent.cedar); the others do not ask for it.
CONSENT_GATED = frozenset({Action.VIEW_RECORD, Action.READ_RECORD, Action.SHARE_RECORD})

# A group entity as the gate takes it: (group id, Cedar entity).
GroupTarget = tuple[str, dict[str, Any]]


class RecordAuthorization:
    def __init__(
        self,
        repository: RecordRepository,
        groups: GroupRepository,
        gate: AccessGate,
        break_glass: BreakGlassService,
        clock: Callable[[], datetime],
        *,
        consents: ConsentRegistry,
        emergency: EmergencyBasis,
    ):
        self._consents = consents
        self._emergency = emergency
        self._repo = repository
        self._groups = groups
        self._gate = gate
        self._break_glass = break_glass
        self._clock = clock

    def load(self, principal: Principal, record_id: str, action: Action) -> RecordState:
        """The record as stored now; a missing one is an audited deny and a 404."""
        state = self._repo.load(record_id)
        if state is None:
            self._gate.audit.append(
                AuditEvent(
                    action=action.value,
                    outcome=Outcome.DENY,
                    reason="record-not-found",
                    actor=principal.sub,
                    actor_reg_no=principal.reg_no,
                    institution=principal.institution,
                    resource=f"Record::{record_id}",
                    at=self._clock(),
                )
            )
            raise NotFound("No such record.")
        return state

    def _via_group(
        self, principal: Principal, state: RecordState
    ) -> tuple[str, dict[str, Any] | None]:
        """The shared group the principal reads through, read fresh: an open one where
        they are active if any, else one they belong to (Cedar then says why not)."""
        if principal.reg_no is None or principal.reg_no == state.meta.author_reg_no:
            return NO_GROUP_ID, None
        fallback: tuple[str, dict[str, Any]] | None = None
        for share in state.shares:
            loaded = self._groups.load(share.group_id)
            if loaded is None:
                continue
            group, memberships = loaded
            mine = next((m for m in memberships if m.reg_no == principal.reg_no), None)
            if mine is None:
                continue
            entity = group_entity(group, memberships, slice_for=(principal.reg_no,))
            if group.status is GroupStatus.OPEN and mine.state is MembershipState.ACTIVE:
                return group.group_id, entity
            fallback = fallback or (group.group_id, entity)
        return fallback or (NO_GROUP_ID, None)

    def decide(
        self,
        principal: Principal,
        action: Action,
        state: RecordState,
        *,
        target: GroupTarget | None = None,
        details: dict[str, str | int | list[str]] | None = None,
    ) -> Allowed:
        """Cedar's decision on ``action`` over the record (a deny raises, audited)."""
        resource, entities, context = self._request(principal, action, state, target)
        allowed = self._gate.check(
            principal,
            action,
            resource,
            entities,
            context=context,
            patient_ref=state.meta.patient_ref,
            details=details,
        )
        if context.get("consent_active") is False and state.meta.institution != (
            principal.institution
        ):
            # Allowed without the patient's consent: only a live break-glass grant or an
            # emergency referral's basis in the group read through does that
            # (consent.cedar), and the ledger entry says which.
            return flag_override(
                allowed,
                consent_active=False,
                break_glass=state.meta.patient_ref in context["break_glass_patients"],
                emergency=bool(context.get("emergency_groups")),
            )
        return allowed

    def permits(self, principal: Principal, action: Action, state: RecordState) -> bool:
        """Cedar's decision, unaudited: to filter a listing down to what the caller may
        see (the listing is the audited decision)."""
        resource, entities, context = self._request(principal, action, state, None)
        return self._gate.permits(principal, action, resource, entities, context=context)

    def _request(
        self,
        principal: Principal,
        action: Action,
        state: RecordState,
        target: GroupTarget | None,
    ) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
        meta = state.meta
        via_id, via_entity = (
            self._via_group(principal, state)
            if action in (Action.VIEW_RECORD, Action.READ_RECORD)
            else (NO_GROUP_ID, None)
        )
        patients = (
            self._break_glass.live_patient_refs(principal)
            if action in (Action.VIEW_RECORD, Action.READ_RECORD)
            else []
        )
        target_id, target_entity = target or (NO_GROUP_ID, None)
        entities: dict[str, dict[str, Any]] = {NO_GROUP_ID: no_group_entity()}
        for gid, entity in ((via_id, via_entity), (target_id, target_entity)):
            if entity is not None:
                entities[gid] = entity
        record = record_entity(
            meta.record_id,
            institution=meta.institution,
            patient_ref=meta.patient_ref,
            author_reg_no=meta.author_reg_no,
            shared_groups=[s.group_id for s in state.shares],
        )
        context: dict[str, Any] = {
            "break_glass_patients": patients,
            "via": {"__entity": uid("Group", via_id)},
            "target": {"__entity": uid("Group", target_id)},
        }
        if action in CONSENT_GATED:
            # The patient's sharing consent for the caller's institution, read now: a
            # withdrawal or an expiry refuses the very next read or share.
            consent_active = self._consents.consent_decision(
                meta.patient_id, principal.institution
            ).allowed
            context["consent_active"] = consent_active
            if not consent_active and via_entity is not None and principal.reg_no is not None:
                # The group read through was joined by accepting an emergency referral
                # still in progress: that basis stands in for consent (consent.cedar).
                emergency = self._emergency.emergency_basis(principal.reg_no, via_id)
                context["emergency_groups"] = (
                    [{"__entity": uid("Group", via_id)}] if emergency else []
                )
        return uid("Record", meta.record_id), [record, *entities.values()], context


def relabel(allowed: Allowed, resource: str, *, reason_code: str | None = None) -> Allowed:
    """The allow event about a narrower resource (a version, a share) and, for a shred,
    with its reason code appended to the deciding policy (the ledger keeps the reason)."""
    event = allowed.event
    reason = f"{event.reason},{reason_code}" if reason_code else event.reason
    return Allowed(allowed.decision, replace(event, resource=resource, reason=reason))
