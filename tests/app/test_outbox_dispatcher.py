"""The outbox dispatcher: at least once, with retries, the dead-letter queue and alarms.

Each test has a table of its own on the session's moto (its outbox holds only what the
test wrote) and SNS topics and an SQS dead-letter queue on moto; what a topic delivers is
read from a queue subscribed to it. A failing SNS is an SNS client whose publish raises.
Time is a clock the test moves, so backoff is shown without waiting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from app import local
from app.notifications.channels import Contact, SnsNotifier
from app.notifications.handlers import OutboxHandlers
from app.notifications.preferences import Channel, NotificationPreferences
from app.outbox import (
    DEAD,
    DELIVERED,
    IN_FLIGHT,
    PENDING,
    OutboxDispatcher,
    OutboxStore,
    SqsDeadLetters,
    outbox_id,
    outbox_item,
    put_outbox_item,
    read_outbox,
)

pytestmark = pytest.mark.integration


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    dynamodb: Any
    sns: Any
    sqs: Any
    table: str
    notifications: str
    security: str
    dlq: str
    clock: Clock

    def queue_on(self, topic: str) -> str:
        url = self.sqs.create_queue(QueueName=f"watch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return str(url)

    def received(self, url: str) -> list[dict[str, Any]]:
        out = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def items(self) -> list[dict[str, Any]]:
        day = self.clock().date()
        return [
            i
            for d in (day - timedelta(days=1), day)
            for i in read_outbox(self.dynamodb, self.table, d.isoformat())
        ]


@pytest.fixture
def world(moto_endpoint: str) -> Iterator[World]:
    session = boto3.session.Session(region_name="ap-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=moto_endpoint)
    sns = session.client("sns", endpoint_url=moto_endpoint)
    sqs = session.client("sqs", endpoint_url=moto_endpoint)
    prefix = f"outbox-{uuid.uuid4().hex[:6]}"
    table = f"{prefix}-groups"
    local.create_service_tables(dynamodb, {"groups": table})
    yield World(
        dynamodb,
        sns,
        sqs,
        table,
        sns.create_topic(Name=f"{prefix}-notifications")["TopicArn"],
        sns.create_topic(Name=f"{prefix}-security")["TopicArn"],
        sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"],
        Clock(),
    )


class FailingSns:
    """SNS that refuses every publish, as during an outage (and counts the attempts)."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    @property
    def attempts(self) -> int:
        """Publishes of notices (the security alarm's publish fails too, and is counted
        apart)."""
        return sum(1 for t in self.targets if "security" not in t)

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.targets.append(str(kwargs.get("TopicArn") or kwargs.get("PhoneNumber")))
        raise ClientError({"Error": {"Code": "InternalError", "Message": "down"}}, "Publish")

    def subscribe(self, **_: Any) -> dict[str, Any]:
        return {"SubscriptionArn": "pending confirmation"}


@dataclass
class Directory:
    entries: dict[str, str] = field(default_factory=dict)

    def doctor(self, reg_no: str) -> Any:
        username = self.entries.get(reg_no)
        return None if username is None else type("Entry", (), {"username": username})()


def handlers(world: World, sns: Any, *, still_invited: bool = True) -> OutboxHandlers:
    notifier = SnsNotifier(
        sns, notification_topic_arn=world.notifications, security_topic_arn=world.security
    )
    contacts = {
        "dr-email": Contact("dr-email@hub.example", None),
        "dr-sms": Contact(None, "+85255501234"),
    }
    return OutboxHandlers(
        notifier=notifier,
        preferences=NotificationPreferences(world.dynamodb, world.table),
        directory=Directory({"ZZ1001": "dr-email", "ZZ1002": "dr-sms"}),  # type: ignore[arg-type]
        contacts=contacts.__getitem__,
        groups=None,  # type: ignore[arg-type]
        still_invited=lambda _g, _r: still_invited,
        rooms=None,
        device=None,
        records=None,
        online_window_s=300,
        clock=world.clock,
    )


def dispatcher(world: World, sns: Any, **kwargs: Any) -> OutboxDispatcher:
    h = handlers(world, sns, **kwargs)
    return OutboxDispatcher(
        OutboxStore(world.dynamodb, world.table, page_size=2),
        h.handlers(),
        SqsDeadLetters(world.sqs, world.dlq),
        max_attempts=3,
        retry_base_seconds=30,
        clock=world.clock,
        on_dead=h.dead_lettered,
    )


def summons(world: World, reg_no: str = "ZZ1001") -> dict[str, Any]:
    item = outbox_item(
        "expert_summoned", world.clock(), {"group_id": "a1b2c3d4e5f6", "recipient": reg_no}
    )
    put_outbox_item(world.dynamodb, world.table, item)
    return item


def test_a_summons_reaches_an_offline_expert_by_email_through_their_filtered_subscription(
    world: World,
) -> None:
    watch = world.queue_on(world.notifications)
    item = summons(world)
    report = dispatcher(world, world.sns).run_once()
    assert report.delivered == [outbox_id(item)]
    (notice,) = world.received(watch)
    attributes = notice["MessageAttributes"]
    assert attributes["recipient"]["Value"] == "ZZ1001"
    assert attributes["outbox_id"]["Value"] == outbox_id(item)
    assert "summoned" in notice["Message"] and "a1b2c3d4" in notice["Message"]
    subscriptions = world.sns.list_subscriptions_by_topic(TopicArn=world.notifications)
    emails = [s for s in subscriptions["Subscriptions"] if s["Protocol"] == "email"]
    assert [s["Endpoint"] for s in emails] == ["dr-email@hub.example"]
    policy = world.sns.get_subscription_attributes(SubscriptionArn=emails[0]["SubscriptionArn"])
    assert json.loads(policy["Attributes"]["FilterPolicy"]) == {"recipient": ["ZZ1001"]}
    assert [i["status"] for i in world.items()] == [DELIVERED]


def test_a_doctor_who_prefers_sms_gets_an_sms(world: World, moto_endpoint: str) -> None:
    from moto.sns.models import sns_backends

    NotificationPreferences(world.dynamodb, world.table).set_channel(
        "ZZ1002", Channel.SMS, world.clock()
    )
    item = summons(world, "ZZ1002")
    assert dispatcher(world, world.sns).run_once().delivered == [outbox_id(item)]
    sent = [
        message
        for backend in sns_backends.values()
        for regional in backend.values()
        for message in regional.sms_messages.values()
    ]
    assert any(phone == "+85255501234" and "summoned" in text for phone, text in sent)


def test_a_failing_delivery_is_retried_then_dead_lettered(world: World) -> None:
    failing = FailingSns()
    item = summons(world)
    run = dispatcher(world, failing)
    assert run.run_once().retried == [outbox_id(item)]
    (stored,) = world.items()
    assert stored["status"] == PENDING and stored["attempts"] == 1
    assert stored["last_error"] == "ClientError"  # a code, never the message
    first_retry = datetime.fromisoformat(stored["next_attempt_at"])
    assert first_retry == world.clock() + timedelta(seconds=30)

    # Not due yet: nothing happens.
    assert run.run_once().retried == [] and failing.attempts == 1
    world.clock.now = first_retry
    assert run.run_once().retried == [outbox_id(item)]
    (stored,) = world.items()
    assert datetime.fromisoformat(stored["next_attempt_at"]) == first_retry + timedelta(seconds=60)

    world.clock.now += timedelta(seconds=60)
    report = run.run_once()
    assert report.dead == [outbox_id(item)] and failing.attempts == 3
    # The dead-letter alarm was tried (SNS is down for it too) and did not stop the pass.
    assert sum(1 for t in failing.targets if "security" in t) == 1
    (stored,) = world.items()
    assert stored["status"] == DEAD
    (letter,) = [
        json.loads(m["Body"]) for m in world.sqs.receive_message(QueueUrl=world.dlq)["Messages"]
    ]
    assert letter["outbox_id"] == outbox_id(item) and letter["kind"] == "expert_summoned"
    assert letter["error"] == "ClientError" and "recipient" not in letter
    # Dead is final: no more attempts.
    world.clock.now += timedelta(days=1)
    assert run.run_once().dead == [] and failing.attempts == 3


def test_a_dead_letter_raises_a_security_alarm(world: World) -> None:
    alarms = world.queue_on(world.security)
    item = outbox_item("no_such_kind", world.clock(), {"group_id": "g1"})
    put_outbox_item(world.dynamodb, world.table, item)
    assert dispatcher(world, world.sns).run_once().dead == [outbox_id(item)]
    (alarm,) = world.received(alarms)
    body = json.loads(alarm["Message"])
    assert body["alarm"] == "outbox_dead_lettered" and body["kind"] == "no_such_kind"


def test_break_glass_alarms_reach_the_security_topic(world: World) -> None:
    alarms = world.queue_on(world.security)
    item = outbox_item(
        "break_glass_alarm",
        world.clock(),
        {"grant_id": "g-1", "actor_reg_no": "ZZ1001", "institution": "harbour-cardiac-alliance"},
    )
    put_outbox_item(world.dynamodb, world.table, item)
    assert dispatcher(world, world.sns).run_once().delivered == [outbox_id(item)]
    (alarm,) = world.received(alarms)
    assert alarm["MessageAttributes"]["alarm"]["Value"] == "break_glass_alarm"
    assert json.loads(alarm["Message"])["grant_id"] == "g-1"


def test_two_dispatchers_deliver_an_item_once(world: World) -> None:
    watch = world.queue_on(world.notifications)
    item = summons(world)
    first, second = dispatcher(world, world.sns), dispatcher(world, world.sns)
    store = first.store
    (due,) = store.due(world.clock())
    claimed = store.claim(due, world.clock(), 120)
    assert claimed is not None and claimed["status"] == IN_FLIGHT
    # The other dispatcher sees it in flight under a live lease and leaves it.
    assert second.run_once().delivered == []
    assert world.received(watch) == []
    # The holder died without settling: after the lease it is delivered (again, at
    # least once), carrying the same outbox id, so the recipient's side can tell.
    world.clock.now += timedelta(seconds=121)
    assert second.run_once().delivered == [outbox_id(item)]
    (notice,) = world.received(watch)
    assert notice["MessageAttributes"]["outbox_id"]["Value"] == outbox_id(item)
    assert first.store.delivered(claimed, world.clock()) is False  # its claim is stale


def test_an_invitation_no_longer_pending_is_not_notified(world: World) -> None:
    watch = world.queue_on(world.notifications)
    item = summons(world)
    assert dispatcher(world, world.sns, still_invited=False).run_once().delivered == [
        outbox_id(item)
    ]
    assert world.received(watch) == []
