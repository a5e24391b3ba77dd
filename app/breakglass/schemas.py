"""Request and response bodies of the break-glass routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.audit.schemas import Receipt
from app.schemas import PatientId, Strict


class BreakGlassBody(Strict):
    patient_id: PatientId
    justification: str = Field(min_length=10, max_length=1000)
    minutes: int = Field(default=60, ge=1, le=240)


class BreakGlassOut(BaseModel):
    grant_id: str
    patient_id: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    live: bool
    audit_receipt: Receipt | None = None
