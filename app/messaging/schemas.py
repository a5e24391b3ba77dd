"""Bodies of the application service API the homeserver calls (Matrix AS API v1).

Events stay plain JSON objects: the room authority reads only ``type``, ``room_id``,
``state_key``, ``sender`` and ``content.membership`` of membership events and ignores the
rest (message events are end-to-end encrypted and never read).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Transaction(BaseModel):
    """``PUT /_matrix/app/v1/transactions/{txnId}``."""

    model_config = ConfigDict(extra="ignore")

    events: list[dict[str, Any]] = Field(max_length=10_000)
    ephemeral: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)


class Ping(BaseModel):
    """``POST /_matrix/app/v1/ping``."""

    model_config = ConfigDict(extra="ignore")

    transaction_id: str | None = Field(default=None, max_length=255)
