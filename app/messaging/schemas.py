"""Bodies of the messaging API: the application service API the homeserver calls (Matrix
AS API v1, plus the policy module's upload reports) and the doctors' session route.

Events stay plain JSON objects: the room authority reads only ``type``, ``room_id``,
``state_key``, ``sender`` and ``content.membership`` of membership events, and the
ledger only ``event_id``, ``room_id``, ``sender``, ``type`` and ``origin_server_ts`` of
any event (message events are end-to-end encrypted and never read).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.audit.schemas import Receipt

# The API document's examples (synthetic: a test registration number, made-up ids).
_MEMBERSHIP_EVENT: dict[str, Any] = {
    "type": "m.room.member",
    "room_id": "!kLpqRvWxYzAbCdEf:hub.local",
    "state_key": "@doc-m20002:hub.local",
    "sender": "@hub:hub.local",
    "content": {"membership": "invite"},
    "event_id": "$Zq1vXq0nYb8mS3tC4uK7wP2dE5fG6hJ9",
    "origin_server_ts": 1767225600000,
}
_RECEIPT: dict[str, Any] = {
    "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
    "store": "ledger",
    "position": "5",
}


class Transaction(BaseModel):
    """``PUT /_matrix/app/v1/transactions/{txnId}``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"events": [_MEMBERSHIP_EVENT], "ephemeral": []}]},
    )

    events: list[dict[str, Any]] = Field(max_length=10_000)
    ephemeral: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)


class Ping(BaseModel):
    """``POST /_matrix/app/v1/ping``."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"transaction_id": "mautrix-ping-1"}]}
    )

    transaction_id: str | None = Field(default=None, max_length=255)


class MediaUpload(BaseModel):
    """What the homeserver's policy module reports before it stores an upload."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "QmFzZTY0VXBsb2FkSWQ",
                    "user_id": "@doc-m20002:hub.local",
                    "size": 48213,
                }
            ]
        },
    )

    upload_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    user_id: str = Field(max_length=255)
    size: int = Field(ge=0)


class SessionBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"device_name": "Ward laptop"}]}
    )

    # Shown to the other members of the doctor's rooms: a device label, never a name.
    device_name: str = Field(default="Hub client", pattern=r"^[A-Za-z0-9 ._-]{1,48}$")


class SessionOut(BaseModel):
    """A Matrix session for the doctor's client (``access_token`` is a secret)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "homeserver_url": "https://chat.hub.example",
                    "server_name": "hub.local",
                    "user_id": "@doc-m20002:hub.local",
                    "device_id": "HUBDEVICE01",
                    "access_token": "syt_ZG9jLW0yMDAwMg_synthetic_0000",
                    "audit_receipt": _RECEIPT,
                }
            ]
        }
    )

    homeserver_url: str
    server_name: str
    user_id: str
    device_id: str
    access_token: str
    audit_receipt: Receipt
