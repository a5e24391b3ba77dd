"""Bodies of the notification preference route."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.audit.schemas import Receipt
from app.notifications.preferences import Channel


class PreferenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel


class PreferenceOut(BaseModel):
    channel: Channel
    audit_receipt: Receipt
