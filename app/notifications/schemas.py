"""Bodies of the notification preference route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from app.audit.schemas import Receipt
from app.notifications.preferences import Channel

_RECEIPT: dict[str, Any] = {
    "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
    "store": "ledger",
    "position": "5",
}


class PreferenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channel": "sms"}]})

    channel: Channel


class PreferenceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"channel": "sms", "audit_receipt": _RECEIPT}]}
    )

    channel: Channel
    audit_receipt: Receipt
