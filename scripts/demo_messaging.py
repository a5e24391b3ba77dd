"""Walk-through on the local platform: three doctors message end to end encrypted in a
consultation group's room, which the hub governs.

1. A lead doctor opens a consultation group for a synthetic patient: the hub creates
   the group's room (Megolm encryption from creation) and joins the lead to it. The lead
   gets a Matrix session from the hub (``POST /messaging/session``) and a device.
2. The lead invites a colleague; the colleague's device sees the room invitation, and
   accepting in the hub joins them to the room.
3. The lead summons an expert by specialty. The expert is off-line (no device yet), so
   the notice also goes out through SNS (their channel: email, to their filtered
   subscription on the notification topic; the walk-through reads it from a queue it
   subscribes to that topic to watch). The expert signs in: the room invitation is
   waiting for them; accepting in the hub joins them.
4. They talk: every message is ``m.room.encrypted`` (Megolm) on the homeserver, and
   each member's device decrypts what the others sent.
5. The lead shares a record into the group: the hub's own device posts a card (record
   id, type, title) into the room, encrypted like everything else; the colleague opens
   the record through the hub (``GET /records/{id}/content``).
6. The lead removes the colleague: they lose the room in the same request, and the next
   message is one they cannot read: the homeserver refuses them the event, and its
   ciphertext does not open with any key their device holds.
7. The ledger: the live ledger verifies (signatures, consistency, inclusion, as
   ``hub audit verify --live``), and every step above is an entry in it (the group
   operations, the sessions, each message send, each room membership change, the card),
   with no message text in any entry.

Usage, with ``hub local up`` running (``make run``):
    .venv/bin/python scripts/demo_messaging.py [--stack phase3-private-practice] [--api URL]
or without it: ``--standalone`` (a one-phase platform with its own Synapse).

Every step prints ``--> <what>: HTTP <status>`` (or what the Matrix side showed); an
unexpected answer stops the walk with exit status 1. Everything is synthetic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T = TypeVar("T")
NOTE = b"SYNTHETIC ward note: afebrile overnight, observations stable.\n"
SECRET_WORDS = "SYNTHETIC-confidential-plan"


class WalkthroughFailed(RuntimeError):
    """A step answered with another status than the walk-through expects."""


@dataclass
class Outcome:
    statuses: dict[str, int] = field(default_factory=dict)
    group_id: str = ""
    room_id: str = ""
    expert: str = ""
    record_id: str = ""
    received: dict[str, list[str]] = field(default_factory=dict)
    notice: dict[str, Any] = field(default_factory=dict)
    card: dict[str, str] = field(default_factory=dict)
    removed_can_read: list[str] = field(default_factory=list)
    removed_server_status: int = 0
    ledger_actions: dict[str, int] = field(default_factory=dict)
    ledger_ok: bool = False


def _run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coroutine)


def _pick(users: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any], Mapping[str, Any], str]:
    """(lead, colleague, a specialty to summon) among the phase's demo users."""
    doctors = [u for u in users if u["role"] == "doctor" and u.get("mchk_reg_no")]
    if len(doctors) < 2:
        raise WalkthroughFailed("the platform needs two doctors")
    lead = doctors[0]
    colleague = next(u for u in doctors[1:])
    specialists = [
        u
        for u in users
        if u["role"] == "specialist"
        and u.get("specialty")
        and u["mchk_reg_no"] not in (lead["mchk_reg_no"], colleague["mchk_reg_no"])
    ]
    if not specialists:
        raise WalkthroughFailed("the platform has no specialist to summon")
    return lead, colleague, str(specialists[0]["specialty"])


def run(
    doc: Mapping[str, Any],
    stack: str,
    api: str,
    say: Callable[[str], None] = print,
    authenticators: Path | None = None,
    timeout_s: float = 60.0,
) -> Outcome:
    import logging

    import boto3
    import httpx

    # The Matrix client library reports every key it waits for at WARNING: not our story.
    logging.getLogger("nio").setLevel(logging.ERROR)
    from app.messaging.e2e import EncryptedMessenger, ReceivedMessage, RefusedMessage
    from app.messaging.service import MatrixSession
    from infra.emulator.server import REGION, default_emulator_credentials
    from infra.local_platform import demo_bearer

    if not doc.get("messaging"):
        raise WalkthroughFailed("the platform runs no messaging (start it with messaging on)")
    users = [u for u in doc["demoUsers"] if u["stack"] == stack]
    by_reg_no = {u["mchk_reg_no"]: u for u in users if u.get("mchk_reg_no")}
    patient_id = doc["demoPatients"][stack][0]["patient_id"]
    lead, colleague, specialty = _pick(users)
    bearer = demo_bearer(doc, stack, authenticators)
    outputs = doc["stacks"][stack]["outputs"]
    homeserver = str(doc["messaging"]["homeserverUrl"])
    outcome = Outcome()
    loop = asyncio.new_event_loop()
    devices: dict[str, EncryptedMessenger] = {}
    tokens: dict[str, str] = {}

    default_emulator_credentials()
    aws = boto3.session.Session(region_name=REGION)
    sqs = aws.client("sqs", endpoint_url=doc["emulatorEndpoint"])
    sns = aws.client("sns", endpoint_url=doc["emulatorEndpoint"])
    watch = _watch_topic(sns, sqs, str(outputs["notificationTopicArn"]))

    with (
        httpx.Client(base_url=api, timeout=60) as http,
        httpx.Client(base_url=homeserver, timeout=30) as matrix,
    ):

        def step(
            name: str, what: str, expected: int, method: str, path: str, who: Any, **kw: Any
        ) -> Any:
            response = http.request(method, path, headers=who, **kw)
            say(f"--> {what}: HTTP {response.status_code}")
            outcome.statuses[name] = response.status_code
            if response.status_code != expected:
                raise WalkthroughFailed(f"{what}: expected {expected}, got {response.status_code}")
            return response

        def device(name: str, user: Mapping[str, Any], headers: dict[str, str]) -> Any:
            body = step(
                f"session_{name}",
                f"{name} asks the hub for a Matrix session: POST /messaging/session",
                200,
                "POST",
                "/messaging/session",
                headers,
                json={"device_name": f"Demo {name}"},
            ).json()
            session = MatrixSession(
                body["homeserver_url"], body["user_id"], body["device_id"], body["access_token"]
            )
            messenger = EncryptedMessenger(session)
            _run(loop, messenger.start())
            devices[name] = messenger
            tokens[name] = session.access_token
            say(f"    {name}: {session.user_id}, device {session.device_id}")
            return messenger

        def wait(name: str, predicate: Callable[[Any], bool], what: str) -> None:
            try:
                _run(loop, devices[name].wait_for(predicate, timeout_s=timeout_s))
            except TimeoutError:
                raise WalkthroughFailed(f"{name}: {what} did not happen") from None

        try:
            as_lead, as_colleague = bearer(lead), bearer(colleague)
            say(f"    lead {lead['mchk_reg_no']} at {lead['institution']}")
            group = step(
                "group",
                "lead opens a consultation group: POST /groups",
                201,
                "POST",
                "/groups",
                as_lead,
                json={"patient_id": patient_id, "title": "Synthetic messaging case"},
            ).json()
            gid = outcome.group_id = group["group_id"]
            alias = f"#grp-{gid}:{doc['messaging']['serverName']}"
            lead_device = device("lead", lead, as_lead)
            resolved = matrix.get(
                f"/_matrix/client/v3/directory/room/{alias.replace('#', '%23')}",
                headers={"Authorization": f"Bearer {tokens['lead']}"},
            )
            room_id = outcome.room_id = str(resolved.json()["room_id"])
            wait("lead", lambda d: d.joined(room_id), "joining the group's room")
            say(f"--> the group's room {room_id}: the lead is in it (joined by the hub)")

            # The colleague: invited, then accepted in the hub, which joins them.
            step(
                "invite",
                f"lead invites {colleague['mchk_reg_no']}: POST /groups/{{id}}/invitations",
                201,
                "POST",
                f"/groups/{gid}/invitations",
                as_lead,
                json={"reg_no": colleague["mchk_reg_no"], "role": "member"},
            )
            colleague_device = device("colleague", colleague, as_colleague)
            wait("colleague", lambda d: room_id in d.invited_rooms, "the room invitation")
            say("--> colleague's device: an invitation to the group's room")
            step(
                "accept_colleague",
                "colleague accepts in the hub: POST /groups/{id}/accept",
                200,
                "POST",
                f"/groups/{gid}/accept",
                as_colleague,
            )
            wait("colleague", lambda d: d.joined(room_id), "joining the room")
            say("--> colleague's device: joined the room (the hub joined them)")

            # The expert: summoned while off-line.
            summoned = step(
                "summon",
                f"lead summons one {specialty} specialist: POST /groups/{{id}}/summon",
                201,
                "POST",
                f"/groups/{gid}/summon",
                as_lead,
                json={"specialties": [specialty], "count": 1},
            ).json()
            expert_reg_no = outcome.expert = summoned["invited"][0]["reg_no"]
            expert = by_reg_no[expert_reg_no]
            say(f"    expert {expert_reg_no} ({specialty}) at {expert['institution']}, off-line")
            outcome.notice = _wait_notice(sqs, watch, expert_reg_no, timeout_s)
            say(
                "--> off-line notice through SNS (email, the expert's filtered subscription): "
                f"{outcome.notice['Message']}"
            )
            as_expert = bearer(expert)
            expert_device = device("expert", expert, as_expert)
            wait("expert", lambda d: room_id in d.invited_rooms, "the room invitation")
            say("--> expert's device: the summons is an invitation to the group's room")
            step(
                "accept_expert",
                "expert accepts in the hub: POST /groups/{id}/accept",
                200,
                "POST",
                f"/groups/{gid}/accept",
                as_expert,
            )
            wait("expert", lambda d: d.joined(room_id), "joining the room")

            # Talk.
            question = "SYNTHETIC: new murmur on day 2, please advise on echo timing."
            asked = _run(loop, lead_device.send_text(room_id, question))
            raw = matrix.get(
                f"/_matrix/client/v3/rooms/{room_id}/event/{asked}",
                headers={"Authorization": f"Bearer {tokens['lead']}"},
            ).json()
            if raw.get("type") != "m.room.encrypted" or "body" in json.dumps(raw):
                raise WalkthroughFailed("the homeserver holds the message in the clear")
            say(
                "--> lead sends; on the homeserver it is "
                f"{raw['type']} ({raw['content']['algorithm']})"
            )
            for name in ("colleague", "expert"):
                wait(name, lambda d: any(m.event_id == asked for m in d.messages()), "the question")
            answer = "SYNTHETIC: echo today; hold anticoagulation until reviewed."
            answered = _run(loop, expert_device.send_text(room_id, answer))
            wait("lead", lambda d: any(m.event_id == answered for m in d.messages()), "the answer")
            for name, messenger in devices.items():
                outcome.received[name] = [m.body for m in messenger.messages(room_id)]
            say(f"--> colleague decrypted: {question!r}")
            say(f"--> lead decrypted the expert's answer: {answer!r}")

            # A record, and its card.
            created = step(
                "upload",
                f"lead uploads a note: POST /patients/{{id}}/records ({len(NOTE)} bytes)",
                201,
                "POST",
                f"/patients/{patient_id}/records",
                {
                    **as_lead,
                    "Content-Type": "text/plain; charset=utf-8",
                    "Idempotency-Key": f"demo-messaging-{uuid.uuid4().hex}",
                    "X-Record-Category": "clinical-note",
                    "X-Record-Title": "Synthetic ward note",
                },
                content=NOTE,
            ).json()
            rid = outcome.record_id = str(created["record_id"])
            step(
                "share",
                "lead shares it into the group: POST /records/{id}/share",
                201,
                "POST",
                f"/records/{rid}/share",
                as_lead,
                json={"group_id": gid},
            )
            wait(
                "colleague",
                lambda d: any(m.card and m.card.get("record_id") == rid for m in d.messages()),
                "the record card",
            )
            card = next(
                m
                for m in colleague_device.messages(room_id)
                if m.card and m.card["record_id"] == rid
            )
            outcome.card = dict(card.card or {})
            say(f"--> the hub's device posted a card (encrypted): {outcome.card}")
            opened = step(
                "open_record",
                "colleague opens it through the hub: GET /records/{id}/content",
                200,
                "GET",
                f"/records/{rid}/content",
                {**as_colleague, "Accept": "text/plain"},
            )
            if opened.content != NOTE:
                raise WalkthroughFailed("the record opened differs from what was shared")

            # Removal: the colleague loses the room at once and cannot read what follows.
            step(
                "remove",
                f"lead removes {colleague['mchk_reg_no']}: DELETE /groups/{{id}}/members/{{reg}}",
                200,
                "DELETE",
                f"/groups/{gid}/members/{colleague['mchk_reg_no']}",
                as_lead,
            )
            wait("colleague", lambda d: room_id in d.left_rooms, "losing the room")
            say("--> colleague's device: removed from the room (the same request)")
            after = _run(loop, lead_device.send_text(room_id, f"{SECRET_WORDS}: surgery Friday."))
            wait("expert", lambda d: any(m.event_id == after for m in d.messages()), "the message")
            _run(loop, colleague_device.sync(timeout_ms=0))
            outcome.removed_can_read = [
                m.body for m in colleague_device.messages(room_id) if SECRET_WORDS in m.body
            ]
            refused = matrix.get(
                f"/_matrix/client/v3/rooms/{room_id}/event/{after}",
                headers={"Authorization": f"Bearer {tokens['colleague']}"},
            )
            outcome.removed_server_status = refused.status_code
            ciphertext = matrix.get(
                f"/_matrix/client/v3/rooms/{room_id}/event/{after}",
                headers={"Authorization": f"Bearer {tokens['lead']}"},
            ).json()
            opened_event = colleague_device.open_event(room_id, ciphertext)
            if outcome.removed_can_read or not isinstance(opened_event, RefusedMessage):
                raise WalkthroughFailed("the removed member can read the next message")
            if refused.status_code < 400:
                raise WalkthroughFailed("the homeserver serves the room to a removed member")
            say(
                f"--> removed colleague asks the homeserver for the next message: HTTP "
                f"{refused.status_code}; its ciphertext, handed to their device: "
                f"{opened_event.reason.value}"
            )
            if not isinstance(card, ReceivedMessage):
                raise WalkthroughFailed("no card")
        finally:
            for messenger in devices.values():
                _run(loop, messenger.close())
            loop.close()

    _check_ledger(doc, stack, outcome, say, timeout_s)
    say("Walk-through complete: every step answered as expected.")
    return outcome


def _watch_topic(sns: Any, sqs: Any, topic_arn: str) -> str:
    """A queue subscribed to the notification topic: how the walk-through sees notices."""
    url = str(sqs.create_queue(QueueName=f"demo-watch-{uuid.uuid4().hex[:8]}")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _wait_notice(sqs: Any, url: str, reg_no: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            body = json.loads(message["Body"])
            attributes = body.get("MessageAttributes", {})
            if attributes.get("recipient", {}).get("Value") == reg_no:
                return dict(body)
    raise WalkthroughFailed(f"no off-line notice for {reg_no} went out")


MEMBERSHIP_ACTIONS = ("InviteToRoom", "JoinRoom", "RemoveFromRoom")
GROUP_ACTIONS = ("CreateGroup", "InviteMember", "AcceptInvitation", "SummonExperts", "RemoveMember")


def _check_ledger(
    doc: Mapping[str, Any],
    stack: str,
    outcome: Outcome,
    say: Callable[[str], None],
    timeout_s: float,
) -> None:
    """Verify the live ledger and find every step of the walk-through in it."""
    import boto3

    from app.ledger.checkpoint import KmsHeadSigner, load_public_key
    from app.ledger.entries import AuditEntry
    from app.ledger.verify import snapshot_from_deployment, verify_snapshot
    from infra.emulator.server import REGION

    outputs = doc["stacks"][stack]["outputs"]
    aws = boto3.session.Session(region_name=REGION)
    clients = {
        name: aws.client(name, endpoint_url=doc["emulatorEndpoint"])
        for name in ("dynamodb", "s3", "kms")
    }
    key = load_public_key(
        KmsHeadSigner(clients["kms"], str(outputs["signingKeyArn"])).public_key_pem()
    )
    deadline = time.monotonic() + timeout_s
    while True:
        snapshot = snapshot_from_deployment(
            clients["dynamodb"],
            clients["s3"],
            str(outputs["tableNames"]["ledger"]),
            str(outputs["auditBucketName"]),
        )
        report = verify_snapshot(snapshot, key)
        entries = [AuditEntry.from_bytes(raw) for raw in snapshot.entries.values()]
        mine = [
            e
            for e in entries
            if e.facts.get("group") == outcome.group_id or outcome.group_id in e.resource.id
        ]
        actions: dict[str, int] = {}
        for entry in mine:
            label = _name(entry)
            actions[label] = actions.get(label, 0) + 1
        if _complete(actions) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    outcome.ledger_ok = report.ok
    outcome.ledger_actions = actions
    say(
        f"--> ledger verified (as hub audit verify --live): {report.ok}, "
        f"{report.entries_checked} entries, {report.heads_verified} signed heads"
    )
    for name, count in sorted(actions.items()):
        say(f"    {name}: {count}")
    if not report.ok:
        raise WalkthroughFailed("the ledger does not verify")
    if not _complete(actions):
        raise WalkthroughFailed(f"steps missing from the ledger: {sorted(actions)}")
    sessions = [e for e in entries if e.reason == "clinician-opens-messaging-session"]
    if len(sessions) < 3:
        raise WalkthroughFailed("the three Matrix sessions are not all in the ledger")
    if any(
        SECRET_WORDS.encode() in raw or b"SYNTHETIC:" in raw for raw in snapshot.entries.values()
    ):
        raise WalkthroughFailed("message text reached the ledger")


def _name(entry: Any) -> str:
    """How the walk-through labels an entry: the message op or room membership, else the
    ledger action and resource type."""
    op = entry.facts.get("op")
    if op == "message.send":
        return "message.send (a doctor's message)"
    if op == "room.membership":
        return f"room.membership {entry.facts.get('membership')}"
    if entry.resource.type.value == "message":
        return "message (the hub's record card)"
    return f"{entry.action.value} {entry.resource.type.value}"


def _complete(actions: Mapping[str, int]) -> bool:
    return (
        actions.get("message.send (a doctor's message)", 0) >= 3
        and actions.get("message (the hub's record card)", 0) >= 1
        and all(actions.get(f"room.membership {m}", 0) >= 1 for m in ("invite", "join", "leave"))
        and actions.get("revoke membership", 0) >= 1  # the removal
        and actions.get("share share", 0) >= 1  # the record shared into the group
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Messaging walk-through")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default=None, help="default: the API's stack")
    parser.add_argument("--api", help="API base URL (default: apiBaseUrl or 127.0.0.1:8000)")
    parser.add_argument("--standalone", action="store_true", help="no `hub local up` needed")
    args = parser.parse_args(argv)
    try:
        if args.standalone:
            from infra.standalone_platform import standalone_platform

            with standalone_platform(messaging=True) as (doc, api):
                run(doc, next(iter(doc["stacks"])), api)
            return 0
        path = Path(args.state_dir) / "local.json"
        if not path.is_file():
            print(
                f"demo_messaging: {path} not found: start the platform (make run) first",
                file=sys.stderr,
            )
            return 2
        doc = json.loads(path.read_text())
        api = args.api or doc.get("apiBaseUrl") or "http://127.0.0.1:8000"
        stack = args.stack or doc.get("apiStack") or "phase3-private-practice"
        run(doc, stack, api, authenticators=Path(args.state_dir) / "demo-authenticators.json")
        return 0
    except WalkthroughFailed as failed:
        print(f"walk-through failed: {failed}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
