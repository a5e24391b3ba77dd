"""Consultation group operations: each one decided by Cedar, committed with its audit event.

Every operation follows the same path, so no route can skip a step:

1. read the group and all its memberships (one strongly consistent query);
2. build the Cedar entities from exactly that state and decide (a deny is audited
   and raised as 403 with the deciding reason);
3. compute the change with the pure state machine (:mod:`app.groups.membership`;
   an impossible change is a 409);
4. commit the change, its history, its audit event and any outbox events in one
   DynamoDB transaction conditioned on the group still being open and the membership
   unchanged since step 1 (a concurrent change is a 409, never a lost update).

Reads (``get``) append their allow event directly. Patient ids appear in audit events
only as keyed references (:func:`app.audit.events.patient_reference`).

**The group's room** (with messaging on: a :class:`~app.messaging.service.RoomAuthority`).
Every change is mirrored into the group's Matrix room in the same request, *after* it
commits: creating a group creates its end-to-end encrypted room (the lead joined);
inviting and summoning invite (an invitation only: a join before accepting is reverted);
accepting joins; leaving, removal and closing take the member out at once (kicked).
The change commits first because the hub's membership is the permission: a removal
must stand, and records close to the removed member on the next request, whatever
the homeserver does. So that no change is ever left unmirrored, each commits with a
``room_sync`` outbox item in the same transaction; the request settles it when the
room is in line, and otherwise (the homeserver unreachable or refusing) the request
still answers and the outbox dispatcher brings the room in line with the group *as it
is then* (:meth:`GroupService.sync_room`), retrying with backoff, then dead-lettering
with a security alarm. Until then the room lags the group; it never leads it in
admitting anyone (invitations and joins come only after the hub committed them).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.breakglass.service import BreakGlassService
from app.consent.model import ConsentRegistry, EmergencyBasis
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
from app.groups.reading import GroupReading
from app.groups.repository import ConcurrentChange, GroupRepository
from app.identity.affiliations import AffiliationLookup
from app.identity.directory import DoctorDirectory
from app.identity.principal import Principal
from app.identity.registration import RegistrationStatus
from app.messaging.client import HomeserverUnavailable, MatrixError
from app.messaging.repository import UnknownRoom
from app.messaging.service import RoomAuthority
from app.outbox import outbox_item
from app.pagination import Cursors
from app.patients.index import PatientRegistry, UnknownPatient

log = logging.getLogger(__name__)

ROOM_SYNC = "room_sync"


@dataclass(frozen=True)
class GroupState:
    group: ConsultationGroup
    memberships: list[Membership]

    def membership(self, reg_no: str | None) -> Membership | None:
        return next((m for m in self.memberships if m.reg_no == reg_no), None)


@dataclass(frozen=True)
class GroupPage:
    """One page of "my groups" or "my invitations": each group with the caller's own
    membership, the cursor to the next page (or None), and the listing's receipt."""

    groups: list[tuple[GroupState, Membership]]
    cursor: str | None
    receipt: AuditReceipt


@dataclass(frozen=True)
class RoomsRemirrored:
    """What :meth:`GroupService.remirror_rooms` did: how many groups' rooms are in line,
    which groups got their room created again, and which failed (to run again)."""

    remirrored: int
    recreated: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class SummonedExpert:
    reg_no: str
    specialty: str
    institution: str


class GroupService:
    def __init__(
        self,
        repository: GroupRepository,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        directory: DoctorDirectory,
        register: Any,
        break_glass: BreakGlassService,
        affiliations: AffiliationLookup,
        hash_key: bytes,
        clock: Callable[[], datetime],
        *,
        patients: PatientRegistry,
        consents: ConsentRegistry,
        emergency: EmergencyBasis,
        rooms: RoomAuthority | None = None,
    ):
        self._repo = repository
        self._patients = patients
        self._consents = consents
        self._reading = GroupReading(consents, emergency)
        self._rooms = rooms
        self._outbox = repository.outbox_store()
        self._gate = gate
        self._audit = audit
        self._directory = directory
        self._register = register
        self._break_glass = break_glass
        self._affiliations = affiliations
        self._key = hash_key
        self._cursors = Cursors(hash_key)
        self._clock = clock

    # -- shared steps -------------------------------------------------------------------

    def _load(self, principal: Principal, group_id: str, action: Action) -> GroupState:
        loaded = self._repo.load(group_id)
        if loaded is None:
            self._gate.audit.append(
                AuditEvent(
                    action=action.value,
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
        return GroupState(*loaded)

    def _decide(
        self,
        principal: Principal,
        action: Action,
        state: GroupState,
        *,
        target: str = "",
        details: dict[str, str | int | list[str]] | None = None,
    ) -> Allowed:
        context: dict[str, Any] = {"break_glass_patients": [], "target": target}
        if action is Action.VIEW_GROUP:
            # Reading the group needs the patient's consent for the reader's institution
            # (or break-glass, or an emergency referral's basis): app/groups/reading.py.
            patients = self._break_glass.live_patient_refs(principal)
            context = self._reading.context(principal, state.group, patients)
        allowed = self._gate.check(
            principal,
            action,
            uid("Group", state.group.group_id),
            [
                group_entity(
                    state.group, state.memberships, slice_for=(principal.reg_no or "", target)
                )
            ],
            context=context,
            patient_ref=state.group.patient_ref,
            details=details,
        )
        if action is Action.VIEW_GROUP:
            return self._reading.flagged(allowed, state.group, context)
        return allowed

    def _commit(
        self,
        group_id: str,
        allowed: Allowed,
        changes: Sequence[tuple[Membership, MembershipChange]],
        outbox: Sequence[dict[str, Any]] = (),
        room: Callable[[RoomAuthority], object] | None = None,
    ) -> AuditReceipt:
        sync = self._room_sync_item(group_id) if room is not None else None
        items = [*outbox, *([sync] if sync else [])]
        try:
            receipt = self._repo.record_changes(
                group_id,
                changes,
                [self._repo.put(o) for o in items],
                self._audit,
                allowed.event,
            )
        except ConcurrentChange as exc:
            raise Conflict("The group changed meanwhile; retry.", code="concurrent_change") from exc
        self._mirror(group_id, sync, room)
        return receipt

    # -- the group's room -----------------------------------------------------------------

    def _room_sync_item(self, group_id: str) -> dict[str, Any] | None:
        if self._rooms is None:
            return None
        return outbox_item(ROOM_SYNC, self._clock(), {"group_id": group_id})

    def _mirror(
        self,
        group_id: str,
        sync: dict[str, Any] | None,
        room: Callable[[RoomAuthority], object] | None,
    ) -> None:
        """Carry a committed change into the room; on failure the outbox item stays."""
        if self._rooms is None or sync is None or room is None:
            return
        try:
            room(self._rooms)
        except (HomeserverUnavailable, MatrixError, NotFound, Conflict, UnknownRoom) as exc:
            # The hub's decision stands (it is committed); the dispatcher brings the room
            # in line, creating it first when an earlier mirror never did (UnknownRoom).
            log.warning(
                "room of group %s not mirrored (%s): repair queued", group_id, type(exc).__name__
            )
            return
        self._outbox.settle_in_request(sync, self._clock())

    def sync_room(self, group_id: str) -> None:
        """Bring the group's room in line with the group as it is now (the repair).

        Idempotent: creates the room if it is missing, closes it if the group is closed,
        otherwise mirrors the current members (active: may join; invited: invitation
        only). Raises what the homeserver raises, for the dispatcher to retry.
        """
        if self._rooms is None:
            return
        loaded = self._repo.load(group_id)
        if loaded is None:
            return
        group, memberships = loaded
        if group.status is GroupStatus.CLOSED:
            if self._rooms.directory.room_for_group(group_id) is not None:
                self._rooms.close(group_id)
            return
        current = [m for m in memberships if m.state in sm.CURRENT]
        invited = [m.reg_no for m in current if m.state is MembershipState.INVITED]
        self._rooms.create_group_room(group_id, patient_ref=group.patient_ref)
        self._rooms.mirror(group_id, [m.reg_no for m in current], invited)

    def remirror_rooms(self) -> RoomsRemirrored:
        """Mirror every group onto a homeserver restored from a backup (the restore's
        last step, docs/disaster-recovery.md).

        The restored homeserver holds the memberships of the backup's moment; the groups
        are the authority and are newer. Each group, open or closed, is read as it is now
        and its room brought in line: members removed since are kicked (a removed doctor
        must not stay in the room, where the next message's keys would be shared with
        their devices), members admitted since are invited, closed groups' rooms are
        closed, and a group whose room the restored homeserver does not have (bound after
        the backup) gets a new room, bound in place of the lost one, with its active
        members joined as its creation and their acceptances joined them. A group that
        fails is named in the result and the sweep goes on; run it again until none
        fails (every step acts on current state, so a rerun does no harm).
        """
        remirrored, recreated, failed = 0, [], []
        for group_id in self._repo.group_ids():
            try:
                if self._remirror_room(group_id):
                    recreated.append(group_id)
            except (HomeserverUnavailable, MatrixError, NotFound, Conflict, UnknownRoom) as exc:
                log.warning("room of group %s not re-mirrored (%s)", group_id, type(exc).__name__)
                failed.append(group_id)
                continue
            remirrored += 1
        return RoomsRemirrored(remirrored, tuple(recreated), tuple(failed))

    def _remirror_room(self, group_id: str) -> bool:
        """One group's room after a restore; True if its room was created again."""
        if self._rooms is None:
            raise Conflict("Messaging is off: there are no rooms to mirror.")
        loaded = self._repo.load(group_id)
        if loaded is None:
            return False
        group, memberships = loaded
        closed = group.status is GroupStatus.CLOSED
        if closed and self._rooms.directory.room_for_group(group_id) is None:
            return False  # closed before it ever had a room
        room, created = self._rooms.restore_group_room(group_id, patient_ref=group.patient_ref)
        if room is None:
            return False
        if closed:
            self._rooms.close(group_id)
            return created
        current = [m for m in memberships if m.state in sm.CURRENT]
        invited = [m.reg_no for m in current if m.state is MembershipState.INVITED]
        self._rooms.mirror(group_id, [m.reg_no for m in current], invited)
        if created:
            for m in current:
                if m.state is MembershipState.ACTIVE:
                    self._rooms.join(group_id, m.reg_no)
        return created

    @staticmethod
    def _transition(
        fn: Callable[[], tuple[Membership, MembershipChange]],
    ) -> tuple[Membership, MembershipChange]:
        try:
            return fn()
        except InvalidTransition as exc:
            raise Conflict(code=exc.code) from exc

    # -- operations ---------------------------------------------------------------------

    def create(
        self, principal: Principal, patient_id: str, title: str, purpose: str
    ) -> tuple[GroupState, AuditReceipt]:
        registered = self._patients.is_registered(patient_id)
        # The patient's sharing consent for this institution, read now (a withdrawal
        # refuses the next group). An unknown patient has no consents to ask about: the
        # policy still decides the caller's role, then the request is refused below (422).
        consent_active = (
            not registered
            or self._consents.consent_decision(patient_id, principal.institution).allowed
        )
        allowed = self._gate.check_create_group(
            principal,
            principal.institution,
            consent_active=consent_active,
            patient_ref=patient_reference(patient_id, self._key),
        )
        if not registered:
            self._gate.audit.append(
                replace(
                    allowed.event,
                    outcome=Outcome.DENY,
                    reason="patient-not-indexed",
                    patient_ref=patient_reference(patient_id, self._key),
                )
            )
            raise UnknownPatient()
        now = self._clock()
        assert principal.reg_no is not None  # the policy requires a clinician
        group = ConsultationGroup(
            group_id=uuid.uuid4().hex,
            patient_id=patient_id,
            patient_ref=patient_reference(patient_id, self._key),
            institution=principal.institution,
            title=title,
            purpose=purpose,
            status=GroupStatus.OPEN,
            created_by=principal.reg_no,
            created_at=now,
        )
        lead = sm.invite(
            group,
            None,
            reg_no=principal.reg_no,
            role=MemberRole.LEAD,
            institution=principal.institution,
            actor=principal.reg_no,
            at=now,
            direct=True,
        )
        event = AuditEvent(
            **{
                **allowed.event.__dict__,
                "resource": f"Group::{group.group_id}",
                "patient_ref": group.patient_ref,
            }
        )
        sync = self._room_sync_item(group.group_id)
        receipt = self._repo.create(
            group, lead, self._audit, event, [self._repo.put(sync)] if sync else []
        )
        lead_reg_no = principal.reg_no

        def room(rooms: RoomAuthority) -> None:
            rooms.create_group_room(group.group_id, patient_ref=group.patient_ref)
            rooms.join(group.group_id, lead_reg_no)

        self._mirror(group.group_id, sync, room)
        return GroupState(group, [lead[0]]), receipt

    def get(self, principal: Principal, group_id: str) -> tuple[GroupState, AuditReceipt]:
        state = self._load(principal, group_id, Action.VIEW_GROUP)
        allowed = self._decide(principal, Action.VIEW_GROUP, state)
        return state, self._gate.record(allowed)

    def mine(self, principal: Principal, *, limit: int, cursor: str | None) -> GroupPage:
        """The groups where the caller is an active member and may view the group now."""
        return self._listing(
            principal, MembershipState.ACTIVE, Action.VIEW_GROUP, "my-groups", limit, cursor
        )

    def invitations(self, principal: Principal, *, limit: int, cursor: str | None) -> GroupPage:
        """The caller's pending invitations to groups still open (that they may accept)."""
        return self._listing(
            principal,
            MembershipState.INVITED,
            Action.ACCEPT_INVITATION,
            "my-invitations",
            limit,
            cursor,
        )

    def _listing(
        self,
        principal: Principal,
        state: MembershipState,
        action: Action,
        name: str,
        limit: int,
        cursor: str | None,
    ) -> GroupPage:
        """One audited ``ListOwnGroups`` decision; then each group of the page (from the
        ``MEMBEROF#`` index) decided on its own by ``action`` on state read now, unaudited,
        and kept only if allowed."""
        allowed = self._gate.check(
            principal,
            Action.LIST_OWN_GROUPS,
            uid("Service", "hub"),
            [simple_entity("Service", "hub")],
            details={"listing": name},
        )
        scope = f"{name}:{principal.sub}"
        ids, last = self._repo.memberships_of(
            principal.reg_no or "", state, limit=limit, after=self._cursors.decode(scope, cursor)
        )
        patients = self._break_glass.live_patient_refs(principal) if ids else []
        found: list[tuple[GroupState, Membership]] = []
        for group_id in ids:
            loaded = self._repo.load(group_id)
            if loaded is None:
                continue
            group_state = GroupState(*loaded)
            mine = group_state.membership(principal.reg_no)
            entity = group_entity(
                group_state.group, group_state.memberships, slice_for=(principal.reg_no or "",)
            )
            if mine is not None and self._gate.permits(
                principal,
                action,
                uid("Group", group_id),
                [entity],
                context=(
                    self._reading.context(principal, group_state.group, patients)
                    if action is Action.VIEW_GROUP
                    else {"break_glass_patients": patients, "target": ""}
                ),
            ):
                found.append((group_state, mine))
        event = replace(
            allowed.event,
            details={"listing": name, "considered": len(ids), "returned": len(found)},
        )
        receipt = self._gate.record(Allowed(allowed.decision, event))
        return GroupPage(found, self._cursors.encode(scope, last), receipt)

    def _target_doctor(self, reg_no: str) -> tuple[str, tuple[str, ...]]:
        """(institution, specialties) of a doctor who may be invited, else 422."""
        doctor = self._directory.doctor(reg_no)
        entry = self._register.entry(reg_no)
        if (
            doctor is None
            or entry is None
            or entry.status is not RegistrationStatus.ACTIVE
            or not self._placed(doctor.institution, reg_no)
        ):
            # One answer for all: do not reveal which check failed for someone else.
            raise InvalidRequest("That doctor cannot be invited here.", code="invitee_not_eligible")
        return doctor.institution, tuple(entry.specialties)

    def _placed(self, institution: str, reg_no: str) -> bool:
        """The doctor's institution is admitted and their affiliation there not removed
        (read now: the directory's institution is only where they were last seen)."""
        found, affiliation = self._affiliations.standing(institution, reg_no)
        return found is not None and found.admitted and (affiliation is None or affiliation.active)

    def invite(
        self,
        principal: Principal,
        group_id: str,
        reg_no: str,
        role: MemberRole,
        *,
        direct: bool = False,
    ) -> tuple[Membership, AuditReceipt]:
        if role is MemberRole.LEAD:
            raise InvalidRequest("A group has one lead, its creator.", code="role_not_invitable")
        state = self._load(principal, group_id, Action.INVITE_MEMBER)
        allowed = self._decide(
            principal, Action.INVITE_MEMBER, state, target=reg_no, details={"target": reg_no}
        )
        institution, _ = self._target_doctor(reg_no)
        if direct and institution != state.group.institution:
            raise InvalidRequest(
                "Doctors of other institutions are invited, not added.", code="invite_required"
            )
        assert principal.reg_no is not None
        change = self._transition(
            lambda: sm.invite(
                state.group,
                state.membership(reg_no),
                reg_no=reg_no,
                role=role,
                institution=institution,
                actor=principal.reg_no or "",
                at=self._clock(),
                direct=direct,
            )
        )
        outbox = [] if direct else [self._invitation_event(state.group, reg_no, "invitation")]

        def room(rooms: RoomAuthority) -> None:
            if change[0].state is MembershipState.ACTIVE:
                rooms.join(group_id, reg_no)
            else:
                rooms.admit(group_id, reg_no)

        return change[0], self._commit(group_id, allowed, [change], outbox, room)

    def _invitation_event(self, group: ConsultationGroup, reg_no: str, kind: str) -> dict[str, Any]:
        return outbox_item(kind, self._clock(), {"group_id": group.group_id, "recipient": reg_no})

    def summon(
        self, principal: Principal, group_id: str, specialties: Sequence[str], count: int
    ) -> tuple[list[SummonedExpert], AuditReceipt]:
        """Invite up to ``count`` active specialists of ``specialties`` placed at admitted
        institutions, excluding the requester and current members or invitees."""
        state = self._load(principal, group_id, Action.SUMMON_EXPERTS)
        wanted = sorted({s.strip().lower() for s in specialties if s.strip()})
        allowed = self._decide(
            principal,
            Action.SUMMON_EXPERTS,
            state,
            details={"specialties": wanted, "count": count},
        )
        current = {m.reg_no for m in state.memberships if m.state in sm.CURRENT}
        chosen: list[SummonedExpert] = []
        seen: set[str] = set()
        for specialty in wanted:
            for candidate in sorted(self._directory.specialists(specialty), key=lambda c: c.reg_no):
                if len(chosen) >= count:
                    break
                if (
                    candidate.reg_no in seen
                    or candidate.reg_no == principal.reg_no
                    or candidate.reg_no in current
                    or not self._placed(candidate.institution, candidate.reg_no)
                ):
                    continue
                entry = self._register.entry(candidate.reg_no)
                if (
                    entry is None
                    or entry.status is not RegistrationStatus.ACTIVE
                    or specialty not in entry.specialties
                ):
                    continue
                seen.add(candidate.reg_no)
                chosen.append(SummonedExpert(candidate.reg_no, specialty, candidate.institution))
        if not chosen:
            raise Conflict("No eligible specialist is available.", code="no_specialist_available")
        now = self._clock()
        changes = [
            self._transition(
                lambda e=expert: sm.invite(  # type: ignore[misc]
                    state.group,
                    state.membership(e.reg_no),
                    reg_no=e.reg_no,
                    role=MemberRole.INVITED_EXPERT,
                    institution=e.institution,
                    actor=principal.reg_no or "",
                    at=now,
                )
            )
            for expert in chosen
        ]
        outbox = [self._invitation_event(state.group, e.reg_no, "expert_summoned") for e in chosen]
        allowed = Allowed(
            allowed.decision,
            AuditEvent(
                **{
                    **allowed.event.__dict__,
                    "details": {
                        **allowed.event.details,
                        "invited": [e.reg_no for e in chosen],
                    },
                }
            ),
        )

        def room(rooms: RoomAuthority) -> None:
            for expert in chosen:
                rooms.admit(group_id, expert.reg_no)

        return chosen, self._commit(group_id, allowed, changes, outbox, room)

    def accept(self, principal: Principal, group_id: str) -> tuple[Membership, AuditReceipt]:
        state = self._load(principal, group_id, Action.ACCEPT_INVITATION)
        allowed = self._decide(principal, Action.ACCEPT_INVITATION, state)
        change = self._transition(
            lambda: sm.accept(state.group, state.membership(principal.reg_no), at=self._clock())
        )
        reg_no = change[0].reg_no
        return change[0], self._commit(
            group_id, allowed, [change], room=lambda rooms: rooms.join(group_id, reg_no)
        )

    def leave(self, principal: Principal, group_id: str) -> tuple[Membership, AuditReceipt]:
        state = self._load(principal, group_id, Action.LEAVE_GROUP)
        allowed = self._decide(principal, Action.LEAVE_GROUP, state)
        change = self._transition(
            lambda: sm.leave(state.group, state.membership(principal.reg_no), at=self._clock())
        )
        reg_no = change[0].reg_no
        return change[0], self._commit(
            group_id, allowed, [change], room=lambda rooms: rooms.remove(group_id, reg_no)
        )

    def remove(
        self, principal: Principal, group_id: str, reg_no: str
    ) -> tuple[Membership, AuditReceipt]:
        state = self._load(principal, group_id, Action.REMOVE_MEMBER)
        allowed = self._decide(
            principal, Action.REMOVE_MEMBER, state, target=reg_no, details={"target": reg_no}
        )
        actor = principal.reg_no or principal.sub
        change = self._transition(
            lambda: sm.remove(state.group, state.membership(reg_no), actor=actor, at=self._clock())
        )
        return change[0], self._commit(
            group_id, allowed, [change], room=lambda rooms: rooms.remove(group_id, reg_no)
        )

    def close(self, principal: Principal, group_id: str) -> tuple[ConsultationGroup, AuditReceipt]:
        state = self._load(principal, group_id, Action.CLOSE_GROUP)
        allowed = self._decide(principal, Action.CLOSE_GROUP, state)
        try:
            closed = sm.close(state.group, actor=principal.reg_no or "", at=self._clock())
        except InvalidTransition as exc:
            raise Conflict(code=exc.code) from exc
        sync = self._room_sync_item(group_id)
        try:
            receipt = self._repo.close(
                closed, self._audit, allowed.event, [self._repo.put(sync)] if sync else []
            )
        except ConcurrentChange as exc:
            raise Conflict(code="group_closed") from exc
        self._mirror(group_id, sync, lambda rooms: rooms.close(group_id))
        return closed, receipt


__all__ = ["GroupPage", "GroupService", "GroupState", "MembershipState", "SummonedExpert"]
