"""The Matrix client-server calls the hub makes, with its application service token.

:class:`HomeserverClient` is the only code that talks HTTP to the homeserver on the
hub's behalf. Every request carries the ``as_token`` in the ``Authorization`` header;
``as_user`` makes the request as one of the hub's doctor accounts (identity assertion,
``?user_id=``, application service API), which the homeserver allows only inside the
hub's exclusive namespace. A non-2xx answer raises :class:`MatrixError` with the
homeserver's ``errcode``; a transport failure raises :class:`HomeserverUnavailable`.

No message content passes through here: the hub creates accounts and rooms, changes
membership and state, and reads membership; messages are end-to-end encrypted between
the doctors' clients (:mod:`app.messaging.e2e`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

CLIENT_V3 = "/_matrix/client/v3"


class MatrixError(Exception):
    """The homeserver refused a request (``errcode`` as in the client-server API)."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        self.status = status
        self.errcode = errcode
        super().__init__(f"{status} {errcode}: {message}")


class HomeserverUnavailable(Exception):
    """The homeserver could not be reached."""


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    access_token: str
    device_id: str


def _segment(value: str) -> str:
    return quote(value, safe="")


class HomeserverClient:
    """Client-server API calls with the application service token (see module docstring)."""

    def __init__(
        self,
        base_url: str,
        as_token: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {as_token}"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        as_user: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if as_user is not None:
            query["user_id"] = as_user
        try:
            response = self._http.request(method, path, json=body, params=query)
        except httpx.TransportError as exc:
            raise HomeserverUnavailable(type(exc).__name__) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.is_success:
            return payload
        raise MatrixError(
            response.status_code,
            str(payload.get("errcode", "M_UNKNOWN")),
            str(payload.get("error", response.reason_phrase)),
        )

    # Accounts -----------------------------------------------------------------------

    def register(self, localpart: str) -> str:
        """Create an account in the hub's namespace; returns its user id.

        Raises MatrixError ``M_USER_IN_USE`` if it exists.
        """
        answer = self.request(
            "POST",
            f"{CLIENT_V3}/register",
            body={
                "type": "m.login.application_service",
                "username": localpart,
                "inhibit_login": True,
            },
        )
        return str(answer["user_id"])

    def login(
        self, user_id: str, *, device_id: str | None = None, display_name: str | None = None
    ) -> LoginResult:
        """An access token for one of the hub's accounts (``m.login.application_service``)."""
        body: dict[str, Any] = {
            "type": "m.login.application_service",
            "identifier": {"type": "m.id.user", "user": user_id},
        }
        if device_id is not None:
            body["device_id"] = device_id
        if display_name is not None:
            body["initial_device_display_name"] = display_name
        answer = self.request("POST", f"{CLIENT_V3}/login", body=body)
        return LoginResult(
            user_id=str(answer["user_id"]),
            access_token=str(answer["access_token"]),
            device_id=str(answer["device_id"]),
        )

    def set_display_name(self, user_id: str, display_name: str) -> None:
        self.request(
            "PUT",
            f"{CLIENT_V3}/profile/{_segment(user_id)}/displayname",
            body={"displayname": display_name},
            as_user=user_id,
        )

    def devices(self, user_id: str) -> list[dict[str, Any]]:
        """The user's devices (``device_id``, ``last_seen_ts``...), asked as that user."""
        answer = self.request("GET", f"{CLIENT_V3}/devices", as_user=user_id)
        devices = answer.get("devices", [])
        return [d for d in devices if isinstance(d, dict)]

    # Rooms --------------------------------------------------------------------------

    def create_room(self, content: Mapping[str, Any]) -> str:
        return str(self.request("POST", f"{CLIENT_V3}/createRoom", body=content)["room_id"])

    def resolve_alias(self, alias: str) -> str | None:
        try:
            answer = self.request("GET", f"{CLIENT_V3}/directory/room/{_segment(alias)}")
        except MatrixError as exc:
            if exc.errcode == "M_NOT_FOUND":
                return None
            raise
        return str(answer["room_id"])

    def invite(self, room_id: str, user_id: str, *, reason: str | None = None) -> None:
        self._membership(room_id, "invite", user_id, reason)

    def kick(self, room_id: str, user_id: str, *, reason: str | None = None) -> None:
        self._membership(room_id, "kick", user_id, reason)

    def ban(self, room_id: str, user_id: str, *, reason: str | None = None) -> None:
        self._membership(room_id, "ban", user_id, reason)

    def unban(self, room_id: str, user_id: str, *, reason: str | None = None) -> None:
        self._membership(room_id, "unban", user_id, reason)

    def _membership(self, room_id: str, action: str, user_id: str, reason: str | None) -> None:
        body: dict[str, Any] = {"user_id": user_id}
        if reason:
            body["reason"] = reason
        self.request("POST", f"{CLIENT_V3}/rooms/{_segment(room_id)}/{action}", body=body)

    def join(self, room_id: str, *, as_user: str) -> None:
        self.request("POST", f"{CLIENT_V3}/join/{_segment(room_id)}", body={}, as_user=as_user)

    def leave(self, room_id: str, *, as_user: str) -> None:
        self.request(
            "POST", f"{CLIENT_V3}/rooms/{_segment(room_id)}/leave", body={}, as_user=as_user
        )

    def set_state(
        self,
        room_id: str,
        event_type: str,
        content: Mapping[str, Any],
        *,
        state_key: str = "",
    ) -> str:
        path = (
            f"{CLIENT_V3}/rooms/{_segment(room_id)}/state/{_segment(event_type)}"
            f"/{_segment(state_key)}"
        )
        return str(self.request("PUT", path, body=dict(content))["event_id"])

    def state_event(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        """The current state event (whole event, with ``sender``), or None if unset."""
        path = (
            f"{CLIENT_V3}/rooms/{_segment(room_id)}/state/{_segment(event_type)}"
            f"/{_segment(state_key)}"
        )
        try:
            return self.request("GET", path, params={"format": "event"})
        except MatrixError as exc:
            if exc.errcode == "M_NOT_FOUND":
                return None
            raise

    def members(self, room_id: str) -> dict[str, str]:
        """Every user with a membership event in the room: user id -> membership."""
        answer = self.request("GET", f"{CLIENT_V3}/rooms/{_segment(room_id)}/members")
        chunk: Sequence[Mapping[str, Any]] = answer.get("chunk", [])
        return {
            str(event["state_key"]): str(event["content"]["membership"])
            for event in chunk
            if event.get("type") == "m.room.member"
        }

    def ping(self, appservice_id: str) -> int:
        """Ask the homeserver to ping the application service; returns its round trip (ms)."""
        answer = self.request(
            "POST", f"/_matrix/client/v1/appservice/{_segment(appservice_id)}/ping", body={}
        )
        return int(answer.get("duration_ms", 0))
