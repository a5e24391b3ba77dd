"""The hub as room authority on its homeserver (through its application service).

:class:`RoomAuthority` does what the hub decides, and undoes what it did not decide:

- **accounts**: :meth:`~RoomAuthority.bind_account` creates a doctor's Matrix account
  (``@doc-<reg no>``, in the application service's exclusive namespace) and binds it to
  the registration number; :meth:`~RoomAuthority.open_session` signs the doctor in
  (``m.login.application_service``) and returns a :class:`MatrixSession` for their
  client. The caller has made the hub's usual checks first.
- **rooms**: :meth:`~RoomAuthority.create_group_room` creates one room per
  consultation group with Megolm encryption in its initial state, invite-only, no
  guests, history visible only from joining, no federation (``m.federate: false`` and a
  server ACL naming this server alone), and power levels that give the hub alone
  invite, kick, ban and every state change. The room is bound to the group *before*
  anyone is invited. Its name is neutral: room state is not end-to-end encrypted, so
  group titles (which may describe a patient) never go into it.
- **membership**: :meth:`~RoomAuthority.admit` (invited in the hub: a room invitation,
  not yet allowed to join), :meth:`~RoomAuthority.join` (accepted in the hub: joined to
  the room by the hub), :meth:`~RoomAuthority.remove`, :meth:`~RoomAuthority.mirror`
  and :meth:`~RoomAuthority.close` record the hub's decision in the
  :class:`~app.messaging.repository.RoomDirectory` first and then change the room, in
  the same call (a removed member is kicked at once).
- **drift**: :meth:`~RoomAuthority.handle_transaction` (the homeserver's pushed events)
  and :meth:`~RoomAuthority.reconcile` (a whole room) judge each member's *current*
  membership against the decision (:func:`app.messaging.drift.membership_drift`),
  revert what the hub did not decide, and report every drift, repaired or not, to
  ``on_drift`` (identifiers only: room, user, kind, never content).

- **events**: every event of a pushed transaction also goes to ``on_event`` (the hub's
  ledger of sends and membership changes, :mod:`app.messaging.audit`), which must be
  idempotent per event.

A transaction id is handled once; if handling fails, the claim is released so the
homeserver's retry (it retries until it gets a 200) is handled again. Repairs are
idempotent (they act on current state), so a retry never does harm.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import Conflict, NotFound
from app.messaging.appservice import AppServiceRegistration
from app.messaging.client import HomeserverClient, MatrixError
from app.messaging.drift import PRESENT, Drift, MemberState, Repair, membership_drift
from app.messaging.identifiers import CARDS_LOCALPART, MatrixNames
from app.messaging.repository import GovernedRoom, RoomDirectory, SenderFacts

log = logging.getLogger(__name__)


def transaction_claim(txn_id: str, events: Sequence[Mapping[str, Any]]) -> str:
    """What names one pushed transaction: its id and a SHA-256 of its events.

    A homeserver retries a transaction with the same id and the same events, which is
    handled once. But a homeserver restored from a backup numbers its transactions again
    from the backup's point: an id the hub has already handled then arrives with new
    events, which must be judged and recorded, not dropped as a retry (the id alone did).
    """
    body = json.dumps(list(events), sort_keys=True, separators=(",", ":"), default=str)
    return f"{txn_id}#{hashlib.sha256(body.encode('utf-8')).hexdigest()}"


MEGOLM = "m.megolm.v1.aes-sha2"
# Clients rotate the Megolm session at least weekly or every 100 messages, and at once
# when anyone leaves (app/messaging/e2e.py).
ROTATION_PERIOD_MS = 7 * 24 * 3600 * 1000
ROTATION_PERIOD_MSGS = 100
HUB_POWER = 100
CLOSED_JOIN_RULE = "private"  # reserved by the spec; no auth rule lets anyone join it
REPAIR_REASON = "membership not decided by the hub"
_STATE_EVENTS_HUB_ONLY = (
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.history_visibility",
    "m.room.join_rules",
    "m.room.guest_access",
    "m.room.power_levels",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.pinned_events",
)


@dataclass(frozen=True)
class MatrixSession:
    """What a doctor's Matrix client needs to sign in (the access token is a secret)."""

    homeserver_url: str
    user_id: str
    device_id: str
    access_token: str


@dataclass(frozen=True)
class DriftReport:
    drift: Drift
    repaired: bool
    error: str | None = None  # the homeserver's errcode when the repair failed


def log_drift(report: DriftReport) -> None:
    log.warning(
        "membership drift %s in %s for %s: repair %s %s",
        report.drift.kind,
        report.drift.room_id,
        report.drift.user_id,
        report.drift.repair,
        "done" if report.repaired else f"not done ({report.error or 'none needed'})",
    )


class RoomAuthority:
    """The hub's decisions about rooms, carried out on the homeserver (module docstring)."""

    def __init__(
        self,
        client: HomeserverClient,
        directory: RoomDirectory,
        registration: AppServiceRegistration,
        *,
        client_base_url: str,
        on_drift: Callable[[DriftReport], None] = log_drift,
        on_event: Callable[[Mapping[str, Any]], object] | None = None,
    ) -> None:
        self._client = client
        self._directory = directory
        self.registration = registration
        self.names: MatrixNames = registration.names
        self._client_base_url = client_base_url
        self._on_drift = on_drift
        self._on_event = on_event
        # A binding never changes once made (one registration number, one account).
        self._bound: dict[str, str] = {}

    @property
    def client(self) -> HomeserverClient:
        return self._client

    @property
    def directory(self) -> RoomDirectory:
        return self._directory

    @property
    def client_base_url(self) -> str:
        """The homeserver URL doctors' clients are given."""
        return self._client_base_url

    def set_event_observer(self, on_event: Callable[[Mapping[str, Any]], object] | None) -> None:
        self._on_event = on_event

    def set_drift_observer(self, on_drift: Callable[[DriftReport], None]) -> None:
        self._on_drift = on_drift

    # Accounts -----------------------------------------------------------------------

    def bind_account(self, reg_no: str) -> str:
        """The doctor's Matrix user id, creating and binding the account the first time."""
        bound = self._bound.get(reg_no) or self._directory.account(reg_no)
        if bound is not None:
            self._bound[reg_no] = bound
            return bound
        user_id = self.names.doctor_user_id(reg_no)
        try:
            self._client.register(self.names.doctor_localpart(reg_no))
        except MatrixError as exc:
            # Created by an earlier attempt whose binding was not stored: the namespace is
            # exclusive to the hub, so the account can only be the hub's.
            if exc.errcode != "M_USER_IN_USE":
                raise
        self._directory.bind_account(reg_no, user_id)
        return user_id

    def record_sender(self, facts: SenderFacts, at: Any) -> None:
        """Remember who the doctor's account sends as (the ledger's sender facts)."""
        self.bind_account(facts.reg_no)
        self._directory.record_sender(facts, at)

    def open_session(
        self, reg_no: str, *, device_id: str | None = None, device_name: str = "Hub client"
    ) -> MatrixSession:
        """A new Matrix session (device) for the doctor; the caller has authorised them."""
        user_id = self.bind_account(reg_no)
        login = self._client.login(user_id, device_id=device_id, display_name=device_name)
        return MatrixSession(
            homeserver_url=self._client_base_url,
            user_id=login.user_id,
            device_id=login.device_id,
            access_token=login.access_token,
        )

    def open_cards_session(self, device_id: str, device_name: str = "Hub") -> MatrixSession:
        """A session of the hub's record-card user (``@hub-cards``), created if need be."""
        try:
            self._client.register(CARDS_LOCALPART)
        except MatrixError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise
        login = self._client.login(
            self.names.cards_user_id, device_id=device_id, display_name=device_name
        )
        return MatrixSession(
            self._client_base_url, login.user_id, login.device_id, login.access_token
        )

    def last_seen_ms(self, reg_no: str) -> int | None:
        """When any of the doctor's devices was last seen by the homeserver (ms), if ever."""
        if self._directory.account(reg_no) is None:
            return None  # no account: never had a session
        seen = [
            int(d["last_seen_ts"])
            for d in self._client.devices(self.names.doctor_user_id(reg_no))
            if isinstance(d.get("last_seen_ts"), int)
        ]
        return max(seen) if seen else None

    # Rooms --------------------------------------------------------------------------

    def room_creation_content(self, group_id: str) -> dict[str, Any]:
        """The ``createRoom`` request for a group's room (pure; see the module docstring)."""
        server = self.names.server_name
        return {
            "preset": "private_chat",
            "visibility": "private",
            "room_alias_name": self.names.group_alias_localpart(group_id),
            "name": f"Consultation {group_id[:8]}",
            "creation_content": {"m.federate": False},
            "initial_state": [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {
                        "algorithm": MEGOLM,
                        "rotation_period_ms": ROTATION_PERIOD_MS,
                        "rotation_period_msgs": ROTATION_PERIOD_MSGS,
                    },
                },
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "joined"},
                },
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
                {
                    "type": "m.room.guest_access",
                    "state_key": "",
                    "content": {"guest_access": "forbidden"},
                },
                {
                    "type": "m.room.server_acl",
                    "state_key": "",
                    "content": {"allow": [server], "deny": [], "allow_ip_literals": False},
                },
            ],
            # Room version 12 gives the creator (the hub) unlimited power without listing
            # it; every other user is at 0 and may only send messages.
            "power_level_content_override": {
                "users_default": 0,
                "events_default": 0,
                "state_default": HUB_POWER,
                "invite": HUB_POWER,
                "kick": HUB_POWER,
                "ban": HUB_POWER,
                "redact": HUB_POWER,
                "notifications": {"room": HUB_POWER},
                "events": dict.fromkeys(_STATE_EVENTS_HUB_ONLY, HUB_POWER),
            },
        }

    def create_group_room(
        self,
        group_id: str,
        members: Iterable[str] = (),
        *,
        pending: Iterable[str] = (),
        patient_ref: str | None = None,
    ) -> GovernedRoom:
        """The group's room, created (bound, then members invited) on first call.

        Args:
            members: registration numbers of the doctors to admit now.
            pending: those of ``members`` who may only be invited (not accepted yet).
            patient_ref: the group's keyed patient reference (for the ledger's entries).
        """
        room = self._directory.room_for_group(group_id)
        if room is None:
            alias = self.names.group_alias(group_id)
            # A room left by an earlier attempt whose binding was not stored (the alias
            # namespace is the hub's alone).
            room_id = self._client.resolve_alias(alias) or self._client.create_room(
                self.room_creation_content(group_id)
            )
            try:
                room = self._directory.bind_room(group_id, room_id, (), patient_ref=patient_ref)
            except ValueError:
                # Bound meanwhile by a concurrent call (a repair racing the request).
                room = self.governed_room(group_id)
        reg_nos = list(members)
        return self.mirror(group_id, reg_nos, pending) if reg_nos else room

    def restore_group_room(
        self, group_id: str, *, patient_ref: str | None = None
    ) -> tuple[GovernedRoom | None, bool]:
        """After the homeserver was restored from a backup: the group's room as the
        homeserver has it, and whether it was created now.

        A room bound after the backup was taken is not on the restored homeserver (its
        alias does not resolve to it): an open group gets a new room, created as
        :meth:`create_group_room` creates one, and the group is bound to it in place of
        the lost one (the decision is kept). A closed group's lost room is not created
        again (None: nobody can be in a room that does not exist). A group with no room
        yet gets its room. The caller mirrors the membership next.
        """
        room = self._directory.room_for_group(group_id)
        if room is None:
            return self.create_group_room(group_id, patient_ref=patient_ref), True
        found = self._client.resolve_alias(self.names.group_alias(group_id))
        if found == room.room_id:
            return room, False
        if room.closed:
            return None, False
        # The alias names a room only if an earlier attempt created it and was cut off
        # before the rebinding was stored (the alias namespace is the hub's alone).
        room_id = found or self._client.create_room(self.room_creation_content(group_id))
        return self._directory.rebind_room(group_id, room.room_id, room_id), True

    def governed_room(self, group_id: str) -> GovernedRoom:
        room = self._directory.room_for_group(group_id)
        if room is None:
            raise NotFound("The consultation group has no room.")
        return room

    def _open_room(self, group_id: str) -> GovernedRoom:
        room = self.governed_room(group_id)
        if room.closed:
            raise Conflict("The consultation group's room is closed.")
        return room

    def admit(self, group_id: str, reg_no: str) -> str:
        """Decide that the doctor may be invited to the group's room, and invite them.

        Invited in the hub is not accepted: they may hold the invitation but not join
        (a join before :meth:`join` is drift, reverted).
        """
        room = self._open_room(group_id)
        user_id = self.bind_account(reg_no)
        if room.may_join(user_id):
            return user_id  # already accepted: an invitation would take nothing back
        room = self._directory.admit_member(group_id, user_id, pending=True)
        self._ensure_invited(room.room_id, user_id, self._membership(room.room_id, user_id))
        return user_id

    def join(self, group_id: str, reg_no: str) -> str:
        """Decide that the doctor is a member (accepted in the hub), and join them."""
        self._open_room(group_id)
        user_id = self.bind_account(reg_no)
        room = self._directory.admit_member(group_id, user_id, pending=False)
        membership = self._membership(room.room_id, user_id)
        if membership == "join":
            return user_id
        self._ensure_invited(room.room_id, user_id, membership)
        try:
            self._client.join(room.room_id, as_user=user_id)
        except MatrixError:
            if self._membership(room.room_id, user_id) != "join":
                raise
        return user_id

    def remove(self, group_id: str, reg_no: str, *, ban: bool = False) -> None:
        """Decide that the doctor may no longer be in the room, and kick (or ban) them."""
        room = self.governed_room(group_id)
        user_id = self.names.doctor_user_id(reg_no)
        self._directory.discard_member(group_id, user_id)
        if ban:
            self._client.ban(room.room_id, user_id, reason="removed by the hub")
        else:
            self._kick(room.room_id, user_id, "removed by the hub")

    def mirror(
        self, group_id: str, reg_nos: Sequence[str], pending: Iterable[str] = ()
    ) -> GovernedRoom:
        """Make the room's membership exactly the given doctors (plus the hub).

        ``pending`` (a subset of ``reg_nos``): invited in the hub, not accepted; they are
        invited and, if they joined, taken back to an invitation. Nobody is joined by a
        mirror: a member who left by their own choice stays out until they rejoin.
        """
        room = self._open_room(group_id)
        decided = {self.bind_account(reg_no) for reg_no in reg_nos}
        waiting = {self.names.doctor_user_id(r) for r in pending} & decided
        room = self._directory.set_members(group_id, decided, waiting)
        current = self._client.members(room.room_id)
        own = (self.names.hub_user_id, self.names.cards_user_id)
        for user_id, membership in current.items():
            undecided = user_id not in own and user_id not in decided
            joined_early = user_id in waiting and membership == "join"
            if (undecided and membership in PRESENT) or joined_early:
                self._kick(room.room_id, user_id, "removed by the hub")
                if joined_early:
                    current[user_id] = "leave"
        for user_id in sorted(decided):
            self._ensure_invited(room.room_id, user_id, current.get(user_id))
        return room

    def close(self, group_id: str) -> None:
        """Nobody may be in the room any more: everyone out, nobody can join again."""
        room = self._directory.close(group_id)
        self._client.set_state(room.room_id, "m.room.join_rules", {"join_rule": CLOSED_JOIN_RULE})
        for user_id, membership in self._client.members(room.room_id).items():
            if user_id != self.names.hub_user_id and membership in PRESENT:
                self._kick(room.room_id, user_id, "consultation group closed")

    def seat_cards_user(self, group_id: str) -> str:
        """The group's room id, with the hub's record-card user joined to it (open rooms)."""
        room = self._open_room(group_id)
        user_id = self.names.cards_user_id
        membership = self._membership(room.room_id, user_id)
        if membership != "join":
            self._ensure_invited(room.room_id, user_id, membership)
            self._client.join(room.room_id, as_user=user_id)
        return room.room_id

    def _kick(self, room_id: str, user_id: str, reason: str) -> None:
        """Kick if present. The drift repair may have got there first: that is success."""
        if self._membership(room_id, user_id) not in PRESENT:
            return
        try:
            self._client.kick(room_id, user_id, reason=reason)
        except MatrixError:
            if self._membership(room_id, user_id) in PRESENT:
                raise

    def _ensure_invited(self, room_id: str, user_id: str, membership: str | None) -> None:
        """Invite (unbanning first) unless present; a concurrent repair doing the same is fine."""
        reason = "admitted by the hub"
        if membership in ("join", "invite"):
            return
        try:
            if membership == "ban":
                self._client.unban(room_id, user_id, reason=reason)
            self._client.invite(room_id, user_id, reason=reason)
        except MatrixError:
            now = self._membership(room_id, user_id)
            if now in ("join", "invite"):
                return
            if now == "ban":
                raise
            self._client.invite(room_id, user_id, reason=reason)

    def _member_state(self, room_id: str, user_id: str) -> MemberState | None:
        event = self._client.state_event(room_id, "m.room.member", user_id)
        if event is None:
            return None
        return MemberState(
            room_id=room_id,
            user_id=user_id,
            membership=str(event.get("content", {}).get("membership", "")),
            sender=str(event.get("sender", "")),
        )

    def _membership(self, room_id: str, user_id: str) -> str | None:
        state = self._member_state(room_id, user_id)
        return state.membership if state else None

    # Drift --------------------------------------------------------------------------

    def handle_transaction(
        self, txn_id: str, events: Sequence[Mapping[str, Any]]
    ) -> list[DriftReport]:
        """Judge the membership events the homeserver pushed, once per transaction."""
        claim = transaction_claim(txn_id, events)
        if not self._directory.claim_transaction(claim):
            return []
        try:
            targets: dict[tuple[str, str], Mapping[str, Any]] = {}
            for event in events:
                if event.get("type") == "m.room.member" and isinstance(event.get("state_key"), str):
                    targets[(str(event.get("room_id", "")), str(event["state_key"]))] = event
            # Joined users last: in a room the hub does not govern, its doctors leave it;
            # the last joined one must leave after the invitations are declined, or the
            # room has nobody left on this server to decline them with.
            ordered = sorted(
                targets.items(),
                key=lambda item: item[1].get("content", {}).get("membership") == "join",
            )
            reports = []
            for (room_id, user_id), event in ordered:
                report = self._judge(room_id, user_id, event)
                if report is not None:
                    reports.append(report)
            if self._on_event is not None:
                for event in events:
                    self._on_event(event)
        except Exception:
            self._directory.release_transaction(claim)
            raise
        return reports

    def reconcile(self, group_id: str) -> list[DriftReport]:
        """Judge every member of the group's room now (a sweep behind the transactions)."""
        room = self.governed_room(group_id)
        reports = []
        for user_id in sorted(self._client.members(room.room_id)):
            report = self._judge(room.room_id, user_id, None)
            if report is not None:
                reports.append(report)
        return reports

    def _judge(
        self, room_id: str, user_id: str, event: Mapping[str, Any] | None
    ) -> DriftReport | None:
        room = self._directory.room(room_id)
        if room is not None:
            state = self._member_state(room_id, user_id)
        elif event is not None:
            # The hub is not in an ungoverned room and cannot read its state: judge the
            # pushed event (the repair, leaving, is harmless if it is already stale).
            state = MemberState(
                room_id,
                user_id,
                str(event.get("content", {}).get("membership", "")),
                str(event.get("sender", "")),
            )
        else:
            return None
        if state is None:
            return None
        drift = membership_drift(state, room, self.names)
        if drift is None:
            return None
        report = self._repair(drift)
        self._on_drift(report)
        return report

    def _repair(self, drift: Drift) -> DriftReport:
        room_id, user_id = drift.room_id, drift.user_id
        try:
            if drift.repair is Repair.KICK:
                self._client.kick(room_id, user_id, reason=REPAIR_REASON)
            elif drift.repair is Repair.REINVITE:
                self._client.invite(room_id, user_id, reason=REPAIR_REASON)
            elif drift.repair is Repair.KICK_AND_REINVITE:
                self._client.kick(room_id, user_id, reason=REPAIR_REASON)
                self._client.invite(room_id, user_id, reason=REPAIR_REASON)
            elif drift.repair is Repair.UNBAN_AND_REINVITE:
                self._client.unban(room_id, user_id, reason=REPAIR_REASON)
                self._client.invite(room_id, user_id, reason=REPAIR_REASON)
            elif drift.repair is Repair.LEAVE_AS_MEMBER:
                self._client.leave(room_id, as_user=user_id)
            else:
                return DriftReport(drift, repaired=False)
        except MatrixError as exc:
            return DriftReport(drift, repaired=False, error=exc.errcode)
        return DriftReport(drift, repaired=True)
