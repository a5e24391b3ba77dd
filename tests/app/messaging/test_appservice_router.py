"""The application service API (transactions, ping) against a scripted homeserver.

No Synapse here: the room authority's homeserver client talks to an ``httpx.MockTransport``
that records what the hub asked of the homeserver, so the token checks, idempotency and
retry behaviour are shown exactly. The same flows against the real Synapse are in
``test_messaging_synapse.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from api_contract import CONTRACT, checked
from fastapi.testclient import TestClient

from app.messaging.appservice import AppServiceRegistration
from app.messaging.client import HomeserverClient
from app.messaging.drift import DriftKind, Repair
from app.messaging.identifiers import MatrixNames
from app.messaging.local import appservice_app
from app.messaging.repository import InMemoryRoomDirectory
from app.messaging.service import DriftReport, RoomAuthority

NAMES = MatrixNames("hub.local")
ROOM = "!room:hub.local"
ALICE = NAMES.doctor_user_id("ZZ0001")
MALLORY = NAMES.doctor_user_id("ZZ0666")
TXN = "/_matrix/app/v1/transactions"


@dataclass
class ScriptedHomeserver:
    """Answers state reads with ``memberships`` and records every request."""

    memberships: dict[str, str]
    failing: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.failing:
            return httpx.Response(502, json={"errcode": "M_UNKNOWN", "error": "down"})
        if request.method == "GET" and "/state/m.room.member/" in request.url.path:
            user_id = request.url.path.rsplit("/", 1)[1].replace("%40", "@").replace("%3A", ":")
            membership = self.memberships.get(user_id)
            if membership is None:
                return httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "none"})
            return httpx.Response(
                200,
                json={"content": {"membership": membership}, "sender": NAMES.hub_user_id},
            )
        if request.method == "POST" and request.url.path.endswith("/kick"):
            self.memberships[json.loads(request.content)["user_id"]] = "leave"
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "unscripted"})


@dataclass
class Hub:
    client: TestClient
    registration: AppServiceRegistration
    homeserver: ScriptedHomeserver
    reports: list[DriftReport]

    def push(self, txn_id: str, events: list[dict[str, object]], token: str | None = None):
        headers = {"Authorization": f"Bearer {token or self.registration.hs_token}"}
        return self.client.put(f"{TXN}/{txn_id}", json={"events": events}, headers=headers)


@pytest.fixture
def hub() -> Iterator[Hub]:
    registration = AppServiceRegistration.generate(NAMES, "http://127.0.0.1:9")
    homeserver = ScriptedHomeserver({ALICE: "join", MALLORY: "invite"})
    directory = InMemoryRoomDirectory()
    directory.bind_room("g1", ROOM, {ALICE})
    reports: list[DriftReport] = []
    client = HomeserverClient(
        "http://homeserver", registration.as_token, transport=httpx.MockTransport(homeserver)
    )
    authority = RoomAuthority(
        client,
        directory,
        registration,
        client_base_url="http://homeserver",
        on_drift=reports.append,
    )
    app = appservice_app(authority)
    checked(app, CONTRACT)  # every answer to the homeserver is one its document lists
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield Hub(test_client, registration, homeserver, reports)


def invite_of_mallory() -> dict[str, object]:
    return {
        "type": "m.room.member",
        "room_id": ROOM,
        "state_key": MALLORY,
        "sender": NAMES.hub_user_id,
        "content": {"membership": "invite"},
        "event_id": "$1",
    }


def test_without_the_homeserver_token_401_and_nothing_happens(hub: Hub) -> None:
    answer = hub.client.put(f"{TXN}/1", json={"events": [invite_of_mallory()]})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert hub.homeserver.requests == [] and hub.reports == []


@pytest.mark.parametrize("token_of", ["as_token", "wrong"])
def test_with_another_token_403_and_nothing_happens(hub: Hub, token_of: str) -> None:
    token = hub.registration.as_token if token_of == "as_token" else "x" * 64
    answer = hub.push("1", [invite_of_mallory()], token=token)
    assert answer.status_code == 403
    assert hub.homeserver.requests == [] and hub.reports == []
    # The refused attempt did not use up the transaction id either.
    assert hub.push("1", [invite_of_mallory()]).status_code == 200
    assert [r.drift.kind for r in hub.reports] == [DriftKind.UNDECIDED_MEMBER]


def test_the_query_parameter_token_is_not_accepted(hub: Hub) -> None:
    answer = hub.client.put(
        f"{TXN}/1",
        params={"access_token": hub.registration.hs_token},
        json={"events": [invite_of_mallory()]},
    )
    assert answer.status_code == 401


def test_an_undecided_invite_is_kicked_once_per_transaction(hub: Hub) -> None:
    assert hub.push("7", [invite_of_mallory()]).json() == {}
    assert hub.homeserver.memberships[MALLORY] == "leave"
    (report,) = hub.reports
    assert (report.drift.user_id, report.drift.repair, report.repaired) == (
        MALLORY,
        Repair.KICK,
        True,
    )
    before = list(hub.homeserver.requests)
    assert hub.push("7", [invite_of_mallory()]).status_code == 200  # a retry of the same id
    assert hub.homeserver.requests == before and len(hub.reports) == 1


def test_decided_members_and_other_events_are_left_alone(hub: Hub) -> None:
    events: list[dict[str, object]] = [
        {**invite_of_mallory(), "state_key": ALICE, "content": {"membership": "join"}},
        {"type": "m.room.encrypted", "room_id": ROOM, "sender": ALICE, "content": {}},
        {"type": "m.room.member", "room_id": ROOM},  # no state_key: not a membership
    ]
    assert hub.push("8", events).status_code == 200
    assert hub.reports == []
    assert all(method == "GET" for method, _ in hub.homeserver.requests)


def test_a_failed_transaction_is_handled_again_when_retried(hub: Hub) -> None:
    hub.homeserver.failing = True
    assert hub.push("9", [invite_of_mallory()]).status_code == 500
    assert hub.reports == []
    hub.homeserver.failing = False
    assert hub.push("9", [invite_of_mallory()]).status_code == 200
    assert [r.drift.repair for r in hub.reports] == [Repair.KICK]
    assert hub.homeserver.memberships[MALLORY] == "leave"


def test_malformed_body_is_422(hub: Hub) -> None:
    headers = {"Authorization": f"Bearer {hub.registration.hs_token}"}
    answer = hub.client.put(f"{TXN}/10", json={"events": "nope"}, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"


def test_ping_requires_the_homeserver_token(hub: Hub) -> None:
    assert hub.client.post("/_matrix/app/v1/ping", json={}).status_code == 401
    headers = {"Authorization": f"Bearer {hub.registration.hs_token}"}
    answer = hub.client.post("/_matrix/app/v1/ping", json={"transaction_id": "t"}, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {})
