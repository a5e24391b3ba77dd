"""Record cards: the hub posts, end-to-end encrypted, into a group's room.

When a record is shared into a consultation group, the share commits a ``record_card``
outbox item; the dispatcher hands it to :class:`HubDevice`, which posts a card (record
id, type, title; never content) into the group's room from the hub's own Matrix device:
an :class:`app.messaging.e2e.EncryptedMessenger` of the record-card user ``@hub-cards``,
which the hub joins to the room (the application service's sender may not sync, and a
device must).

Why a device of the hub's and not a plain server notice: room state and unencrypted
events are readable by the homeserver and its operators, and a title may describe a
patient; a card encrypted like every other message is readable by the group's members
only, and their clients accept it by the same rule as any message (a published device of
a room member). Opening the record goes through the hub as always (the card names
``GET /records/{id}``): the card grants nothing.

The card is sent with the outbox item id as its Matrix transaction id, so a repeated
delivery is answered by the homeserver with the first send (the device is kept: its
keys and id persist in ``store_dir``; a new store is a new device).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.messaging.e2e import CARD_FIELD, EncryptedMessenger
from app.messaging.service import RoomAuthority

DEVICE_FILE = "device_id"
KEY_FILE = "pickle_key"


def _secret_file(path: Path, make: str) -> str:
    """The file's content, created owner-only with ``make`` the first time."""
    if path.exists():
        return path.read_text().strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    return make


class HubDevice:
    """The hub's own device, used from one thread at a time (a private event loop)."""

    def __init__(self, authority: RoomAuthority, store_dir: Path) -> None:
        self._authority = authority
        self._store_dir = store_dir
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._messenger: EncryptedMessenger | None = None

    def _start(self) -> EncryptedMessenger:
        if self._messenger is not None:
            return self._messenger
        self._store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        device_id = _secret_file(
            self._store_dir / DEVICE_FILE, "HUB" + secrets.token_hex(5).upper()
        )
        pickle_key = _secret_file(self._store_dir / KEY_FILE, secrets.token_urlsafe(32))
        session = self._authority.open_cards_session(device_id, "Hub record cards")
        self._loop = asyncio.new_event_loop()
        messenger = EncryptedMessenger(
            session, store_dir=self._store_dir / "store", pickle_key=pickle_key
        )
        self._loop.run_until_complete(messenger.start())
        self._messenger = messenger
        return messenger

    def post(self, group_id: str, content: Mapping[str, Any], txn_id: str) -> str:
        """Post into the group's room (joining the card user to it first, if need be)."""
        with self._lock:
            messenger = self._start()  # registers the card user the first time
            room_id = self._authority.seat_cards_user(group_id)
            assert self._loop is not None
            return self._loop.run_until_complete(self._send(messenger, room_id, content, txn_id))

    @staticmethod
    async def _send(
        messenger: EncryptedMessenger, room_id: str, content: Mapping[str, Any], txn_id: str
    ) -> str:
        if not messenger.joined(room_id):
            await messenger.sync(timeout_ms=0)
        return await messenger.send_content(room_id, content, txn_id=txn_id)

    def close(self) -> None:
        with self._lock:
            if self._messenger is not None and self._loop is not None:
                self._loop.run_until_complete(self._messenger.close())
                self._loop.close()
            self._messenger, self._loop = None, None


def card_content(record_id: str, record_type: str, title: str) -> dict[str, Any]:
    """The card: a notice anyone's client shows, and the fields a hub client reads."""
    label = title or "untitled"
    return {
        "msgtype": "m.notice",
        "body": (
            f"Record shared into this consultation: {label} ({record_type}), record "
            f"{record_id}. Open it through the hub: GET /records/{record_id}"
        ),
        CARD_FIELD: {"record_id": record_id, "type": record_type, "title": title},
    }
