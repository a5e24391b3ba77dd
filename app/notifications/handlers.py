"""One handler per outbox kind: what delivering each notification means.

=====================  ===========================================================
kind                   delivery
=====================  ===========================================================
``invitation``,        the room invitation went out in the request; if the doctor
``expert_summoned``    is still invited and off-line (no Matrix device seen within
                       the online window), a notice by SNS on their channel
``break_glass_alarm``  the security topic
``membership_drift``   the security topic (a room changed behind the hub's back)
``room_sync``          the group's room brought in line with the group as it is now
``record_card``        the card posted into the group's room by the hub's device
=====================  ===========================================================

A handler raises to have its item retried (and, after the last attempt,
dead-lettered); it returns when the notification is delivered or no longer needed (an
invitation already accepted, a card for a closed room). Each is idempotent for one
item: SNS publishes carry the outbox id, a room sync acts on current state, a card's
Matrix transaction id is the outbox id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from app.groups.service import ROOM_SYNC, GroupService
from app.identity.directory import DoctorDirectory
from app.messaging.service import RoomAuthority
from app.notifications.cards import HubDevice, card_content
from app.notifications.channels import Contact, SnsNotifier
from app.notifications.preferences import NotificationPreferences
from app.outbox import Handler, outbox_id

INVITATION_KINDS = ("invitation", "expert_summoned")
BREAK_GLASS_ALARM = "break_glass_alarm"
MEMBERSHIP_DRIFT = "membership_drift"
RECORD_CARD = "record_card"
DEAD_LETTERED = "outbox_dead_lettered"


class NotConfigured(Exception):
    """The deployment lacks what this kind needs (a topic, messaging): retried, then dead."""


class RoomNotReady(Exception):
    """The group's room does not exist yet (its room sync is still pending)."""


# What is looked up about a record for its card: (type, title), or None if it is gone.
RecordLookup = Callable[[str], tuple[str, str] | None]
# Whether a doctor is still invited (not accepted, not gone) in a group.
StillInvited = Callable[[str, str], bool]


class OutboxHandlers:
    def __init__(
        self,
        *,
        notifier: SnsNotifier | None,
        preferences: NotificationPreferences,
        directory: DoctorDirectory,
        contacts: Callable[[str], Contact],
        groups: GroupService,
        still_invited: StillInvited,
        rooms: RoomAuthority | None,
        device: HubDevice | None,
        records: RecordLookup | None,
        online_window_s: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._notifier = notifier
        self._preferences = preferences
        self._directory = directory
        self._contacts = contacts
        self._groups = groups
        self._still_invited = still_invited
        self._rooms = rooms
        self._device = device
        self._records = records
        self._online_window_ms = online_window_s * 1000
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        out: dict[str, Handler] = dict.fromkeys(INVITATION_KINDS, self.invitation)
        out[BREAK_GLASS_ALARM] = self.alarm
        out[MEMBERSHIP_DRIFT] = self.alarm
        out[ROOM_SYNC] = self.room_sync
        out[RECORD_CARD] = self.record_card
        return out

    def _require_notifier(self) -> SnsNotifier:
        if self._notifier is None:
            raise NotConfigured("no notification topics")
        return self._notifier

    # -- kinds ---------------------------------------------------------------------------

    def invitation(self, item: Mapping[str, Any]) -> None:
        reg_no, group_id = str(item["recipient"]), str(item["group_id"])
        if not self._still_invited(group_id, reg_no):
            return  # accepted, declined or removed since: nothing to tell them
        if self._rooms is not None:
            seen = self._rooms.last_seen_ms(reg_no)
            now_ms = int(self._clock().timestamp() * 1000)
            if seen is not None and now_ms - seen <= self._online_window_ms:
                return  # on-line: the room invitation they already have is the notice
        notifier = self._require_notifier()
        doctor = self._directory.doctor(reg_no)
        if doctor is None:
            raise NotConfigured("doctor not in the directory")
        summoned = item.get("kind") == "expert_summoned"
        what = "summoned to" if summoned else "invited to"
        message = (
            f"Health Collaboration Hub: you have been {what} a consultation "
            f"(group {group_id[:8]}). Open your messaging client or the hub to respond."
        )
        notifier.notify(
            reg_no,
            self._preferences.channel(reg_no),
            self._contacts(doctor.username),
            "Consultation " + ("summons" if summoned else "invitation"),
            message,
            outbox_id(item),
        )

    def alarm(self, item: Mapping[str, Any]) -> None:
        skip = {"pk", "sk", "status", "attempts", "lease_until", "next_attempt_at", "last_error"}
        details = {str(k): str(v) for k, v in item.items() if k not in skip}
        self._require_notifier().alarm(str(item["kind"]), details, outbox_id(item))

    def dead_lettered(self, item: Mapping[str, Any], error: str) -> None:
        """Alarm: a notification could not be delivered (a room may lag its group)."""
        details = {"kind": str(item.get("kind")), "error": error, "outbox_id": outbox_id(item)}
        if item.get("group_id"):
            details["group_id"] = str(item["group_id"])
        self._require_notifier().alarm(DEAD_LETTERED, details, outbox_id(item))

    def room_sync(self, item: Mapping[str, Any]) -> None:
        if self._rooms is None:
            raise NotConfigured("messaging is off")
        self._groups.sync_room(str(item["group_id"]))

    def record_card(self, item: Mapping[str, Any]) -> None:
        if self._rooms is None or self._device is None or self._records is None:
            raise NotConfigured("messaging or record storage is off")
        room = self._rooms.directory.room_for_group(str(item["group_id"]))
        if room is None:
            raise RoomNotReady()
        if room.closed:
            return
        record_id = str(item["record_id"])
        found = self._records(record_id)
        if found is None:
            return  # shredded since: no card for a record that is gone
        record_type, title = found
        self._device.post(
            room.group_id, card_content(record_id, record_type, title), outbox_id(item)
        )
