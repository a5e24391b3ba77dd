"""A doctor's end-to-end encrypted Matrix device, on matrix-nio with vodozemac.

The Olm and Megolm protocol work is matrix-nio's (its ``e2e`` extra; the ratchets and
signatures are vodozemac's): device keys and one-time keys signed over canonical JSON
and uploaded; keys queried and claimed; Olm sessions established; each Megolm room key
shared to every member device as a to-device ``m.room.encrypted``
(``m.olm.v1.curve25519-aes-sha2``); messages sent as ``m.room.encrypted``
(``m.megolm.v1.aes-sha2``) and decrypted on sync. The homeserver only ever holds
ciphertext.

:class:`EncryptedMessenger` adds the hub's two rules on top:

- **the room key follows membership, checked at send time**: before every send the
  device reads the room's membership from the homeserver (not from its last sync), puts
  it into its room model, and rotates the outbound Megolm session if anyone it was
  shared with is no longer joined or invited. A member removed before a send cannot
  decrypt that message even if they obtain its ciphertext; the homeserver also stops
  serving them the room.
- **messages only from known devices of members**: a decrypted message is accepted only
  if the Megolm session it was encrypted with came, over Olm, from a device the sender
  has published (its Curve25519 and Ed25519 keys match a device in the sender's current
  device list, queried again before refusing). Anything else is a
  :class:`RefusedMessage` (``unknown_device``); a message no held session opens stays
  ``undecryptable``. (That the sender was a member when sending is the homeserver's
  auth rules' job: it refuses events from anyone else.)

Trust model: the device trusts the devices the homeserver lists for the room's current
members (trust on first use, as Matrix clients do without cross-signing); the hub
decides the members.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from nio import (  # type: ignore[import-untyped]
    AsyncClient,
    AsyncClientConfig,
    EncryptionError,
    JoinError,
    KeysQueryError,
    MegolmEvent,
    RoomGetStateError,
    RoomMessageEmote,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendError,
    SyncError,
)
from nio.store import SqliteMemoryStore, SqliteStore  # type: ignore[import-untyped]

from app.messaging.service import MatrixSession

MEGOLM = "m.megolm.v1.aes-sha2"
# Where a record card's structured fields travel (inside the encrypted content).
CARD_FIELD = "org.hub.record_card"
PRESENT = frozenset({"join", "invite"})
TEXT_MESSAGES = (RoomMessageText, RoomMessageNotice, RoomMessageEmote)
# Enough that a test or benchmark burst never produces a gappy ("limited") timeline.
SYNC_FILTER = {"room": {"timeline": {"limit": 200}}, "presence": {"not_types": ["*"]}}


class MessagingRefused(Exception):
    """The homeserver refused a request (``errcode`` and HTTP status)."""

    def __init__(self, action: str, status: str | int | None, errcode: str | None) -> None:
        self.status = status
        self.errcode = errcode
        super().__init__(f"{action} refused: {status} {errcode}")


class RefusalReason(StrEnum):
    UNDECRYPTABLE = "undecryptable"
    UNKNOWN_DEVICE = "unknown_device"


@dataclass(frozen=True)
class ReceivedMessage:
    room_id: str
    event_id: str
    sender: str
    device_id: str
    session_id: str
    body: str
    origin_server_ts: int
    # A record card the hub posted (record id, type, title), when the message is one.
    card: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RefusedMessage:
    room_id: str
    event_id: str
    sender: str
    session_id: str
    reason: RefusalReason


Delivery = ReceivedMessage | RefusedMessage


class EncryptedMessenger:
    """One device of one doctor (see the module docstring). Use from one asyncio loop.

    Args:
        session: from :meth:`app.messaging.service.RoomAuthority.open_session`.
        store_dir: where the device's keys and sessions persist (SQLite, the secrets
            pickled under ``pickle_key``, which is then required); None keeps them in
            memory for the life of the object.
    """

    def __init__(
        self,
        session: MatrixSession,
        *,
        store_dir: Path | None = None,
        pickle_key: str | None = None,
        request_timeout_s: float = 30.0,
    ) -> None:
        if store_dir is not None and not pickle_key:
            raise ValueError("a persistent device store needs a pickle key")
        config = AsyncClientConfig(
            store=SqliteMemoryStore if store_dir is None else SqliteStore,
            encryption_enabled=True,
            store_sync_tokens=store_dir is not None,
            request_timeout=request_timeout_s,
            max_timeouts=1,
            pickle_key=pickle_key or secrets.token_urlsafe(32),
        )
        if store_dir is not None:
            store_dir.mkdir(parents=True, exist_ok=True)
        self._client: Any = AsyncClient(
            session.homeserver_url,
            session.user_id,
            device_id=session.device_id,
            store_path=str(store_dir) if store_dir is not None else "",
            config=config,
        )
        self._client.restore_login(session.user_id, session.device_id, session.access_token)
        self.user_id = session.user_id
        self.device_id = session.device_id
        self._synced_once = False
        self._sync_lock = asyncio.Lock()
        self._pending: dict[str, MegolmEvent] = {}
        self._messages: list[ReceivedMessage] = []
        self._refused: list[RefusedMessage] = []
        self.left_rooms: dict[str, float] = {}
        self.invited_rooms: set[str] = set()

    # Keys -----------------------------------------------------------------------------

    @property
    def identity_keys(self) -> dict[str, str]:
        """This device's public keys: ``{"curve25519": ..., "ed25519": ...}``."""
        return dict(self._client.olm.account.identity_keys)

    async def start(self) -> None:
        """First sync, then publish the device and one-time keys."""
        await self.sync(timeout_ms=0)

    async def _housekeeping(self) -> None:
        client = self._client
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            answer = await client.keys_query()
            if isinstance(answer, KeysQueryError):
                raise MessagingRefused("keys query", answer.status_code, answer.message)
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    # Rooms ----------------------------------------------------------------------------

    async def join(self, room_id: str) -> None:
        answer = await self._client.join(room_id)
        if isinstance(answer, JoinError):
            raise MessagingRefused("join", answer.status_code, answer.message)
        await self.sync(timeout_ms=0)

    def joined(self, room_id: str) -> bool:
        """Whether this device's last sync had it joined to the room."""
        return room_id in self._client.rooms and room_id not in self.left_rooms

    def members(self, room_id: str) -> frozenset[str]:
        """The room's members (joined or invited) as this device last knew them."""
        room = self._client.rooms.get(room_id)
        return frozenset(room.users) if room is not None else frozenset()

    async def _refresh_membership(self, room_id: str) -> None:
        """Bring the room model to the homeserver's membership now; rotate if anyone left."""
        answer = await self._client.room_get_state(room_id)
        if isinstance(answer, RoomGetStateError):
            raise MessagingRefused("room state", answer.status_code, answer.message)
        present = {
            str(event["state_key"]): str(event["content"].get("membership"))
            for event in answer.events
            if event.get("type") == "m.room.member"
            and event.get("content", {}).get("membership") in PRESENT
        }
        room = self._client.rooms.get(room_id)
        if room is None:
            await self.sync(timeout_ms=0)
            room = self._client.rooms[room_id]
        changed = False
        for user_id in list(room.users):
            if user_id not in present:
                room.remove_member(user_id)
                changed = True
        for user_id, membership in present.items():
            if user_id not in room.users:
                room.add_member(user_id, None, None, invited=membership == "invite")
                changed = True
        session = self._client.olm.outbound_group_sessions.get(room_id)
        shared_with_departed = session is not None and any(
            user_id not in present for user_id, _device in session.users_shared_with
        )
        if changed or shared_with_departed:
            # A new Megolm session for whoever is a member now: nobody who left can read
            # what is sent with it.
            self._client.invalidate_outbound_session(room_id)
            self._client.olm.update_tracked_users(room)

    # Sending --------------------------------------------------------------------------

    async def send_text(self, room_id: str, body: str) -> str:
        """Encrypt and send a text message; returns its event id.

        Syncs first (device list changes, new members), then checks membership with the
        homeserver (see the module docstring), so the room key goes to exactly the
        current members' published devices.
        """
        return await self.send_content(room_id, {"msgtype": "m.text", "body": body})

    async def send_content(
        self, room_id: str, content: Mapping[str, Any], *, txn_id: str | None = None
    ) -> str:
        """Encrypt and send an ``m.room.message`` with this content; returns its event id.

        ``txn_id``: the client transaction id; the homeserver answers a repeated one (from
        this device's session) with the first send's event id instead of sending again.
        """
        await self.sync(timeout_ms=0)
        await self._refresh_membership(room_id)
        answer = await self._client.room_send(
            room_id,
            "m.room.message",
            dict(content),
            tx_id=txn_id,
            ignore_unverified_devices=True,
        )
        if isinstance(answer, RoomSendError):
            raise MessagingRefused("send", answer.status_code, answer.message)
        return str(answer.event_id)

    def outbound_session_id(self, room_id: str) -> str | None:
        session = self._client.olm.outbound_group_sessions.get(room_id)
        return str(session.id) if session is not None else None

    # Receiving ------------------------------------------------------------------------

    async def sync(self, timeout_ms: int = 0) -> list[Delivery]:
        """One sync (long-polls up to ``timeout_ms``); returns what it delivered.

        Syncs of one device run one at a time (a send waits for a sync in flight).
        """
        async with self._sync_lock:
            return await self._sync(timeout_ms)

    async def _sync(self, timeout_ms: int) -> list[Delivery]:
        answer = await self._client.sync(
            timeout=timeout_ms,
            sync_filter=SYNC_FILTER,
            full_state=not self._synced_once,
        )
        if isinstance(answer, SyncError):
            raise MessagingRefused("sync", answer.status_code, answer.message)
        self._synced_once = True
        now = time.monotonic()
        for room_id in answer.rooms.leave:
            self.left_rooms.setdefault(room_id, now)
            self.invited_rooms.discard(room_id)
        for room_id in answer.rooms.invite:
            self.invited_rooms.add(room_id)
        decrypted: list[tuple[str, Any]] = []
        for room_id, info in answer.rooms.join.items():
            self.invited_rooms.discard(room_id)
            for event in info.timeline.events:
                decrypted.extend(self._accept(room_id, event))
        await self._housekeeping()
        decrypted.extend(self._retry_pending())
        # A sender's device we do not know may be new: ask for their device list once
        # before refusing.
        unknown = {
            str(event.sender)
            for room_id, event in decrypted
            if self._origin_device(room_id, str(event.sender), event) is None
        }
        if unknown:
            self._client.olm.users_for_key_query.update(unknown)
            await self._housekeeping()
        verified = (self._verify(room_id, event) for room_id, event in decrypted)
        return [delivery for delivery in verified if delivery is not None]

    async def wait_for(
        self,
        predicate: Callable[[EncryptedMessenger], bool],
        *,
        timeout_s: float = 20.0,
    ) -> None:
        """Sync (long-polling, no sleeping) until ``predicate(self)`` holds."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the expected messages did not arrive")
            await self.sync(timeout_ms=int(min(remaining, 5.0) * 1000))

    def messages(self, room_id: str | None = None) -> list[ReceivedMessage]:
        return [m for m in self._messages if room_id is None or m.room_id == room_id]

    def refused(self, room_id: str | None = None) -> list[RefusedMessage]:
        undecryptable = [
            RefusedMessage(
                str(event.room_id),
                str(event.event_id),
                str(event.sender),
                str(event.session_id),
                RefusalReason.UNDECRYPTABLE,
            )
            for event in self._pending.values()
        ]
        return [r for r in self._refused + undecryptable if room_id is None or r.room_id == room_id]

    def open_event(self, room_id: str, event: Mapping[str, Any]) -> Delivery:
        """Try to open an encrypted event obtained some other way (e.g. from the server)."""
        parsed = MegolmEvent.from_dict(dict(event))
        if not isinstance(parsed, MegolmEvent):
            return RefusedMessage(
                room_id,
                str(event.get("event_id", "")),
                str(event.get("sender", "")),
                "",
                RefusalReason.UNDECRYPTABLE,
            )
        parsed.room_id = room_id
        try:
            decrypted = self._client.decrypt_event(parsed)
        except EncryptionError:
            return self._refuse(parsed, room_id, RefusalReason.UNDECRYPTABLE, record=False)
        return self._verify(room_id, decrypted, record=False) or self._refuse(
            parsed, room_id, RefusalReason.UNDECRYPTABLE, record=False
        )

    def _accept(self, room_id: str, event: Any) -> list[tuple[str, Any]]:
        """The event, decrypted, if it is one; undecryptable ones wait for their key."""
        if isinstance(event, MegolmEvent):
            # No session for it (yet): the room key may arrive in a later sync.
            event.room_id = room_id
            self._pending[str(event.event_id)] = event
            return []
        if getattr(event, "decrypted", False) is not True:
            return []  # state and unencrypted events are not messages
        return [(room_id, event)]

    def _retry_pending(self) -> list[tuple[str, Any]]:
        opened: list[tuple[str, Any]] = []
        for event_id, event in list(self._pending.items()):
            try:
                decrypted = self._client.decrypt_event(event)
            except EncryptionError:
                continue
            del self._pending[event_id]
            opened.append((str(event.room_id), decrypted))
        return opened

    def _verify(self, room_id: str, event: Any, *, record: bool = True) -> Delivery | None:
        """The decrypted event as a message, refused, or None if it is not a text message.

        Only the device matters here: the homeserver's auth rules already refused any
        event from a sender who was not joined when it was sent.
        """
        sender = str(event.sender)
        origin = self._origin_device(room_id, sender, event)
        if origin is None:
            return self._refuse(event, room_id, RefusalReason.UNKNOWN_DEVICE, record=record)
        if not isinstance(event, TEXT_MESSAGES):
            return None  # other decrypted events (reactions, media, ...) are not handled yet
        card = event.source.get("content", {}).get(CARD_FIELD)
        message = ReceivedMessage(
            room_id=room_id,
            event_id=str(event.event_id),
            sender=sender,
            device_id=origin,
            session_id=str(event.session_id),
            body=str(event.body),
            origin_server_ts=int(event.server_timestamp),
            card={str(k): str(v) for k, v in card.items()} if isinstance(card, dict) else None,
        )
        if record:
            self._messages.append(message)
        return message

    def _origin_device(self, room_id: str, sender: str, event: Any) -> str | None:
        """The published device of ``sender`` that the event's Megolm session came from."""
        olm = self._client.olm
        session = olm.inbound_group_store.get(room_id, event.sender_key, event.session_id)
        if session is None or session.forwarding_chain:
            return None  # forwarded keys prove nothing about the original sender
        own = olm.account.identity_keys
        own_session = session.ed25519 == own["ed25519"] and event.sender_key == own["curve25519"]
        if sender == self.user_id and own_session:
            return self.device_id
        for device in olm.device_store.active_user_devices(sender):
            if device.curve25519 == event.sender_key and device.ed25519 == session.ed25519:
                return str(device.id)
        return None

    def _refuse(
        self, event: Any, room_id: str, reason: RefusalReason, *, record: bool = True
    ) -> RefusedMessage:
        refused = RefusedMessage(
            room_id,
            str(event.event_id),
            str(event.sender),
            str(getattr(event, "session_id", "")),
            reason,
        )
        if record:
            self._refused.append(refused)
        return refused

    async def close(self) -> None:
        await self._client.close()
