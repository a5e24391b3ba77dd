"""Request and response bodies of the record routes (metadata only: content is raw bytes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.records.repository import RecordShare, RecordState, RecordVersion
from app.schemas import Strict

# Header values and ids the routes accept; patterns keep them opaque tokens.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$"
GroupId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class RecordCategory(StrEnum):
    """What kind of clinical document a record is (a code, stored with the record)."""

    IMAGING = "imaging"
    LABORATORY = "laboratory"
    CLINICAL_NOTE = "clinical-note"
    REPORT = "report"
    REFERRAL = "referral"
    OTHER = "other"


class ShredReason(StrEnum):
    """Why a version is crypto-shredded: a code, never free text (it is audited)."""

    RETENTION_EXPIRED = "retention_expired"
    PATIENT_REQUEST = "patient_request"
    ENTERED_IN_ERROR = "entered_in_error"
    LEGAL_ORDER = "legal_order"


class ShareBody(Strict):
    group_id: GroupId


class ShredBody(Strict):
    reason: ShredReason


class VersionOut(BaseModel):
    version: int
    content_type: str
    length: int
    status: str
    created_at: datetime
    created_by: str
    shredded_at: datetime | None = None
    shred_reason: str | None = None

    @classmethod
    def of(cls, v: RecordVersion) -> VersionOut:
        return cls(
            version=v.version,
            content_type=v.content_type,
            length=v.length,
            status=v.status,
            created_at=v.created_at,
            created_by=v.created_by,
            shredded_at=v.shredded_at,
            shred_reason=v.shred_reason,
        )


class ShareOut(BaseModel):
    group_id: str
    shared_by: str
    shared_at: datetime

    @classmethod
    def of(cls, s: RecordShare) -> ShareOut:
        return cls(group_id=s.group_id, shared_by=s.shared_by, shared_at=s.shared_at)


class RecordOut(BaseModel):
    record_id: str
    patient_id: str
    institution: str
    author: str
    category: str
    title: str
    created_at: datetime
    latest_version: int
    versions: list[VersionOut]
    shares: list[ShareOut]
    audit_receipt: Receipt | None = None

    @classmethod
    def of(cls, state: RecordState, receipt: AuditReceipt | None) -> RecordOut:
        m = state.meta
        return cls(
            record_id=m.record_id,
            patient_id=m.patient_id,
            institution=m.institution,
            author=m.author_reg_no,
            category=m.category,
            title=m.title,
            created_at=m.created_at,
            latest_version=m.latest_version,
            versions=[VersionOut.of(v) for v in state.versions],
            shares=[ShareOut.of(s) for s in state.shares],
            audit_receipt=Receipt.of(receipt),
        )


class VersionResult(BaseModel):
    record_id: str
    version: VersionOut
    audit_receipt: Receipt | None = None


class ShareResult(BaseModel):
    record_id: str
    share: ShareOut
    audit_receipt: Receipt | None = None
