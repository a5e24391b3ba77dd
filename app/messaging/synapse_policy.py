"""A Synapse module that lets only the hub create rooms and invite (loaded by Synapse).

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

Callbacks answer ``True`` (allow) or ``False`` (refuse), the forms Synapse accepts
without importing it here, so this module stays importable (and typed) without Synapse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HubRoomPolicy:
    """Synapse module: ``module: app.messaging.synapse_policy.HubRoomPolicy``."""

    def __init__(self, config: Mapping[str, Any], api: Any) -> None:
        self._hub_user_id = str(config["hub_user_id"])
        api.register_spam_checker_callbacks(
            user_may_create_room=self.user_may_create_room,
            user_may_invite=self.user_may_invite,
            user_may_send_3pid_invite=self.user_may_send_3pid_invite,
        )

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(config.get("hub_user_id"), str):
            raise ValueError("HubRoomPolicy needs hub_user_id")
        return config

    async def user_may_create_room(self, user_id: str) -> bool:
        return user_id == self._hub_user_id

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> bool:
        return inviter == self._hub_user_id

    async def user_may_send_3pid_invite(
        self, inviter: str, medium: str, address: str, room_id: str
    ) -> bool:
        return False
