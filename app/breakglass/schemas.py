"""Request and response bodies of the break-glass routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.audit.schemas import Receipt
from app.schemas import PatientId, Strict


class BreakGlassBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "justification": "Synthetic emergency: collapsed in clinic",
                    "minutes": 60,
                }
            ]
        }
    )

    patient_id: PatientId
    justification: str = Field(min_length=10, max_length=1000)
    minutes: int = Field(default=60, ge=1, le=240)


class BreakGlassOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "grant_id": "9f0c2b7d1e3a4c5b8d6e7f8091a2b3c4",
                    "patient_id": "pt-6dde7bc9f14d",
                    "started_at": "2026-01-15T09:30:00Z",
                    "expires_at": "2026-01-15T10:30:00Z",
                    "ended_at": None,
                    "live": True,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    grant_id: str
    patient_id: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    live: bool
    audit_receipt: Receipt | None = None
