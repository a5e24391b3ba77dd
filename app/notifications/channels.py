"""Delivery through SNS: a doctor's off-line notices, and security alarms.

- **Email**: one notification topic for every doctor; each doctor who prefers email has
  one email subscription on it with a filter policy ``{"recipient": [<reg no>]}``, and a
  notice is published with the ``recipient`` message attribute, so it reaches that
  doctor's address only. (SNS asks the doctor to confirm the subscription once, the
  first time it is made.)
- **SMS**: published straight to the doctor's phone number (transactional).
- **Security alarms**: published to the security topic (the one CloudWatch alarms use),
  for the privacy officer.

Every publish carries the outbox item id (``outbox_id`` attribute), so a duplicate
delivery (the dispatcher is at-least-once) can be recognised. Messages name the
consultation group by a short id and never a patient, a title or any content; the
addresses come from the user pool when the notice is sent and are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.notifications.preferences import Channel


class NoAddress(Exception):
    """The doctor has no verified address for their channel (retried, then dead-lettered)."""


@dataclass(frozen=True)
class Contact:
    email: str | None
    phone: str | None


def _attributes(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


class CognitoContacts:
    """A doctor's addresses, read from the user pool by username."""

    def __init__(self, cognito: Any, user_pool_id: str) -> None:
        self._cognito = cognito
        self._pool = user_pool_id

    def __call__(self, username: str) -> Contact:
        user = self._cognito.admin_get_user(UserPoolId=self._pool, Username=username)
        attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        return Contact(attrs.get("email"), attrs.get("phone_number"))


class SnsNotifier:
    def __init__(self, sns: Any, *, notification_topic_arn: str, security_topic_arn: str) -> None:
        self._sns = sns
        self._topic = notification_topic_arn
        self._security = security_topic_arn

    def subscribe_email(self, reg_no: str, email: str) -> str:
        """The doctor's filtered email subscription (SNS returns the existing one)."""
        answer = self._sns.subscribe(
            TopicArn=self._topic,
            Protocol="email",
            Endpoint=email,
            Attributes={"FilterPolicy": json.dumps({"recipient": [reg_no]})},
            ReturnSubscriptionArn=True,
        )
        return str(answer["SubscriptionArn"])

    def notify(
        self,
        reg_no: str,
        channel: Channel,
        contact: Contact,
        subject: str,
        message: str,
        outbox_id: str,
    ) -> str:
        """Publish one notice; returns the SNS message id."""
        if channel is Channel.SMS:
            if not contact.phone:
                raise NoAddress("sms")
            answer = self._sns.publish(
                PhoneNumber=contact.phone,
                Message=message,
                MessageAttributes=_attributes(
                    {"AWS.SNS.SMS.SMSType": "Transactional", "outbox_id": outbox_id}
                ),
            )
        else:
            if not contact.email:
                raise NoAddress("email")
            self.subscribe_email(reg_no, contact.email)
            answer = self._sns.publish(
                TopicArn=self._topic,
                Subject=subject,
                Message=message,
                MessageAttributes=_attributes({"recipient": reg_no, "outbox_id": outbox_id}),
            )
        return str(answer["MessageId"])

    def alarm(self, kind: str, details: Mapping[str, str], outbox_id: str) -> str:
        """Publish a security alarm (identifiers and codes only)."""
        answer = self._sns.publish(
            TopicArn=self._security,
            Subject=f"Hub security alarm: {kind}"[:100],
            Message=json.dumps({"alarm": kind, **details}, sort_keys=True),
            MessageAttributes=_attributes({"alarm": kind, "outbox_id": outbox_id}),
        )
        return str(answer["MessageId"])
