"""A scripted Matrix homeserver (``httpx.MockTransport``) for the service tests.

It keeps rooms, accounts, devices and memberships in memory and answers the client-server
calls the room authority makes (``app/messaging/client.py``) with Matrix's semantics for
them (membership transitions, who sent each change, ``M_USER_IN_USE``, ``M_NOT_FOUND``,
``M_FORBIDDEN`` for a join without an invitation). ``down = True`` makes every request
fail at the transport, as an unreachable homeserver does. So the service tests (the
authorization matrix, the groups' mirroring) run without Synapse; the real homeserver,
with real end-to-end encryption, is in ``tests/app/messaging``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

V3 = "/_matrix/client/v3"


@dataclass
class FakeRoom:
    room_id: str
    creator: str
    alias: str | None
    # user id -> (membership, sender)
    members: dict[str, tuple[str, str]] = field(default_factory=dict)
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _error(status: int, errcode: str) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": errcode})


class FakeHomeserver:
    def __init__(self, server_name: str = "hub.local") -> None:
        self.server_name = server_name
        self.hub_user = f"@hub:{server_name}"
        self.accounts: set[str] = {self.hub_user}
        self.devices: dict[str, dict[str, dict[str, Any]]] = {}
        self.rooms: dict[str, FakeRoom] = {}
        self.aliases: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.down = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    # -- what tests read --------------------------------------------------------------

    def room_of_alias(self, alias: str) -> FakeRoom | None:
        room_id = self.aliases.get(alias)
        return self.rooms.get(room_id) if room_id else None

    def membership(self, room_id: str, user_id: str) -> str | None:
        found = self.rooms[room_id].members.get(user_id)
        return found[0] if found else None

    def present(self, room_id: str) -> dict[str, str]:
        """Invited or joined users (not the hub) -> membership."""
        return {
            user: m
            for user, (m, _) in self.rooms[room_id].members.items()
            if m in ("invite", "join") and user != self.hub_user
        }

    # -- the protocol -----------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("homeserver down", request=request)
        with self._lock:
            self.requests.append((request.method, request.url.path))
            return self._answer(request)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        method = request.method
        body: dict[str, Any] = json.loads(request.content) if request.content else {}
        as_user = request.url.params.get("user_id") or self.hub_user
        parts = [unquote(p) for p in path.removeprefix(V3).strip("/").split("/")]
        if method == "POST" and parts == ["register"]:
            user_id = f"@{body['username']}:{self.server_name}"
            if user_id in self.accounts:
                return _error(400, "M_USER_IN_USE")
            self.accounts.add(user_id)
            return httpx.Response(200, json={"user_id": user_id})
        if method == "POST" and parts == ["login"]:
            user_id = body["identifier"]["user"]
            if user_id not in self.accounts:
                return _error(403, "M_FORBIDDEN")
            device_id = body.get("device_id") or f"DEV{next(self._ids)}"
            self.devices.setdefault(user_id, {})[device_id] = {
                "device_id": device_id,
                "last_seen_ts": None,
            }
            return httpx.Response(
                200,
                json={"user_id": user_id, "device_id": device_id, "access_token": "tok"},
            )
        if method == "GET" and parts == ["devices"]:
            return httpx.Response(
                200, json={"devices": list(self.devices.get(as_user, {}).values())}
            )
        if method == "POST" and parts == ["createRoom"]:
            room_id = f"!room{next(self._ids)}:{self.server_name}"
            alias = None
            if body.get("room_alias_name"):
                alias = f"#{body['room_alias_name']}:{self.server_name}"
                if alias in self.aliases:
                    return _error(400, "M_ROOM_IN_USE")
                self.aliases[alias] = room_id
            room = FakeRoom(room_id, self.hub_user, alias)
            room.members[self.hub_user] = ("join", self.hub_user)
            for event in body.get("initial_state", []):
                room.state[(event["type"], event.get("state_key", ""))] = event["content"]
            self.rooms[room_id] = room
            return httpx.Response(200, json={"room_id": room_id})
        if method == "GET" and parts[:2] == ["directory", "room"]:
            room_id = self.aliases.get(parts[2])
            if room_id is None:
                return _error(404, "M_NOT_FOUND")
            return httpx.Response(200, json={"room_id": room_id})
        if method == "POST" and parts[0] == "join":
            room = self.rooms.get(parts[1])
            if room is None:
                return _error(404, "M_NOT_FOUND")
            current = room.members.get(as_user, ("leave", as_user))[0]
            if current not in ("invite", "join"):
                return _error(403, "M_FORBIDDEN")
            room.members[as_user] = ("join", as_user)
            return httpx.Response(200, json={"room_id": room.room_id})
        if parts[0] == "rooms" and len(parts) >= 3:
            room = self.rooms.get(parts[1])
            if room is None:
                return _error(404, "M_NOT_FOUND")
            return self._room(room, method, parts[2:], body, as_user)
        return _error(404, "M_UNRECOGNIZED")

    def _room(
        self, room: FakeRoom, method: str, rest: list[str], body: dict[str, Any], as_user: str
    ) -> httpx.Response:
        action = rest[0]
        if method == "POST" and action in ("invite", "kick", "ban", "unban"):
            target = body["user_id"]
            current = room.members.get(target, ("leave", ""))[0]
            if action == "invite":
                if current == "ban":
                    return _error(403, "M_FORBIDDEN")
                if current != "join":
                    room.members[target] = ("invite", as_user)
            elif action == "kick":
                if current not in ("invite", "join", "knock"):
                    return _error(403, "M_FORBIDDEN")
                room.members[target] = ("leave", as_user)
            elif action == "ban":
                room.members[target] = ("ban", as_user)
            elif current == "ban":
                room.members[target] = ("leave", as_user)
            return httpx.Response(200, json={})
        if method == "POST" and action == "leave":
            room.members[as_user] = ("leave", as_user)
            return httpx.Response(200, json={})
        if method == "GET" and action == "members":
            chunk = [
                {
                    "type": "m.room.member",
                    "state_key": user,
                    "sender": sender,
                    "content": {"membership": membership},
                }
                for user, (membership, sender) in room.members.items()
            ]
            return httpx.Response(200, json={"chunk": chunk})
        if action == "state" and len(rest) >= 2:
            event_type, key = rest[1], rest[2] if len(rest) > 2 else ""
            if method == "PUT":
                room.state[(event_type, key)] = body
                return httpx.Response(200, json={"event_id": f"$ev{next(self._ids)}"})
            if event_type == "m.room.member":
                found = room.members.get(key)
                if found is None:
                    return _error(404, "M_NOT_FOUND")
                return httpx.Response(
                    200,
                    json={
                        "type": "m.room.member",
                        "state_key": key,
                        "sender": found[1],
                        "content": {"membership": found[0]},
                    },
                )
            content = room.state.get((event_type, key))
            if content is None:
                return _error(404, "M_NOT_FOUND")
            return httpx.Response(200, json={"content": content})
        return _error(404, "M_UNRECOGNIZED")
