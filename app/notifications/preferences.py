"""A doctor's notification channel, stored with the doctor.

One item per doctor in the groups table, in the doctor's own partition next to their
directory profile: ``DOCTOR#<reg no>`` / ``NOTIFY`` with ``channel`` (``email`` or
``sms``). The addresses themselves are not copied here: they stay in the user pool
(the doctor's verified ``email`` and ``phone_number``) and are read when a notice is
delivered. No item: email, the default.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from app.dynamo import serialize


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


DEFAULT_CHANNEL = Channel.EMAIL


class NotificationPreferences:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def channel(self, reg_no: str) -> Channel:
        item = self._client.get_item(
            TableName=self._table,
            Key=serialize({"pk": f"DOCTOR#{reg_no}", "sk": "NOTIFY"}),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return DEFAULT_CHANNEL
        try:
            return Channel(item["channel"]["S"])
        except (KeyError, ValueError):
            return DEFAULT_CHANNEL

    def set_channel(self, reg_no: str, channel: Channel, at: datetime) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=serialize(
                {
                    "pk": f"DOCTOR#{reg_no}",
                    "sk": "NOTIFY",
                    "channel": channel.value,
                    "updated_at": at.isoformat(),
                }
            ),
        )
