"""A Synapse module: only the hub creates rooms and invites, and no upload goes unrecorded.

Configured by :func:`app.messaging.homeserver.homeserver_config` under ``modules``; it
runs inside the Synapse process (which must be able to import this package: locally
the same virtual environment, in AWS the homeserver image). Through Synapse's spam
checker callbacks it refuses, with ``M_FORBIDDEN``:

- creating a room, unless the creator is the hub's application service user;
- inviting anyone, unless the inviter is the hub's user;
- third-party (e-mail, phone) invitations, always.

So a doctor's client cannot open a room outside the consultation groups or bring
anyone in; the room power levels say the same for the group rooms, and the room
authority's drift repair (:mod:`app.messaging.drift`) is the third line, for changes
made with the application service token or the admin API.

**Uploads** (with ``registration_file`` configured): before Synapse stores a media
upload, the module reports it (uploader, size, a fresh upload id) to the hub's
application service over the homeserver's private path, with the homeserver's token
(read from the application service registration file), and lets the upload proceed
only if the hub answered 200: the ledger entry exists before the file does, and an
unreachable hub means no upload (refused as too large, the one refusal Synapse's
callback can give). The file itself is end-to-end encrypted by the client; the hub
learns who uploaded how much, when.

Callbacks answer ``True`` (allow) or ``False`` (refuse), the forms Synapse accepts
without importing it here, so this module stays importable (and typed) without Synapse.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

UPLOAD_REPORT_PATH = "/_matrix/app/unstable/org.hub/uploads"
REPORT_TIMEOUT_S = 10.0


def report_upload(url: str, hs_token: str, user_id: str, size: int) -> bool:
    """POST the upload report; True only for a 200 (blocking: run it in a thread)."""
    body = json.dumps(
        {"upload_id": uuid.uuid4().hex, "user_id": user_id, "size": int(size)}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the registration's http(s) URL
        url.rstrip("/") + UPLOAD_REPORT_PATH,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {hs_token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REPORT_TIMEOUT_S) as response:  # noqa: S310
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class HubRoomPolicy:
    """Synapse module: ``module: app.messaging.synapse_policy.HubRoomPolicy``."""

    def __init__(self, config: Mapping[str, Any], api: Any) -> None:
        self._hub_user_id = str(config["hub_user_id"])
        self._api = api
        self._report_to: tuple[str, str] | None = None
        registration_file = config.get("registration_file")
        if registration_file:
            registration = yaml.safe_load(Path(str(registration_file)).read_text())
            self._report_to = (str(registration["url"]), str(registration["hs_token"]))
            api.register_media_repository_callbacks(
                is_user_allowed_to_upload_media_of_size=self.user_may_upload
            )
        api.register_spam_checker_callbacks(
            user_may_create_room=self.user_may_create_room,
            user_may_invite=self.user_may_invite,
            user_may_send_3pid_invite=self.user_may_send_3pid_invite,
        )

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(config.get("hub_user_id"), str):
            raise ValueError("HubRoomPolicy needs hub_user_id")
        registration_file = config.get("registration_file")
        if registration_file is not None and not isinstance(registration_file, str):
            raise ValueError("HubRoomPolicy registration_file must be a path")
        return config

    async def user_may_create_room(self, user_id: str) -> bool:
        return user_id == self._hub_user_id

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> bool:
        return inviter == self._hub_user_id

    async def user_may_send_3pid_invite(
        self, inviter: str, medium: str, address: str, room_id: str
    ) -> bool:
        return False

    async def user_may_upload(self, user_id: str, size: int) -> bool:
        if self._report_to is None:
            return True
        url, token = self._report_to
        allowed: bool = await self._api.defer_to_thread(report_upload, url, token, user_id, size)
        return allowed
