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


# -- upload sessions and download tickets (sealed and opened on the client) -------------------

Base64 = Annotated[str, Field(max_length=16_384, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
UploadId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
MAX_LENGTH = 2**53 - 1


class UploadSessionBody(Strict):
    """Start an upload sealed on the client: what it is, how long, and the client's
    ephemeral public key (65-byte uncompressed P-256 point, base64) for the data key."""

    content_type: str = Field(min_length=3, max_length=255)
    length: int = Field(ge=0, le=MAX_LENGTH)
    public_key: Base64
    category: RecordCategory = RecordCategory.OTHER
    title: str = Field(default="", max_length=120)


class VersionUploadBody(Strict):
    content_type: str = Field(min_length=3, max_length=255)
    length: int = Field(ge=0, le=MAX_LENGTH)
    public_key: Base64


class ShardDeclarationIn(Strict):
    index: int = Field(ge=0, le=2**32)
    size: int = Field(ge=16, le=64 * 1024 * 1024 + 16)
    checksum_crc64nvme: str = Field(min_length=12, max_length=12)


class ShardUrlsBody(Strict):
    """Shards sealed, to be put (``shards``); and shards put since the last ask
    (``stored``, indexes), which the service checks now rather than at the commit."""

    shards: list[ShardDeclarationIn] = Field(default_factory=list, max_length=64)
    stored: list[Annotated[int, Field(ge=0, le=2**32)]] = Field(default_factory=list, max_length=64)


class PublicKeyBody(Strict):
    public_key: Base64


class CommitBody(Strict):
    """The manifest (canonical JSON, as ``RecordSealer`` made it) and, optionally, the
    plaintext's SHA-256 sealed under the data key (``app.crypto.digest``, base64)."""

    manifest: str = Field(min_length=2, max_length=1_000_000)
    content_digest: Base64 | None = None


class DownloadBody(Strict):
    public_key: Base64
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    first: int = Field(default=0, ge=0, le=2**32)
    count: int = Field(default=256, ge=1, le=256)


class SealingKeyOut(BaseModel):
    """The data key of one record version, for the client: ``wrapped_data_key`` is HPKE
    (``key_suite``) to the public key sent, bound to ``encryption_context``;
    ``encrypted_data_key`` is KMS's wrapped form, which goes into the manifest."""

    encryption_context: dict[str, str]
    encrypted_data_key: str
    wrapped_data_key: str
    key_suite: str


class UploadSessionOut(BaseModel):
    upload_id: str
    record_id: str
    version: int
    patient_id: str
    content_type: str
    length: int
    shard_size: int
    shard_count: int
    expires_at: datetime
    presign_seconds: int
    max_shards_per_request: int
    key: SealingKeyOut
    audit_receipt: Receipt | None = None


class UploadStatusOut(BaseModel):
    upload_id: str
    status: str
    record_id: str
    version: int
    content_type: str
    length: int
    shard_size: int
    shard_count: int
    expires_at: datetime
    issued: list[int]
    audit_receipt: Receipt | None = None


class UploadKeyOut(BaseModel):
    upload_id: str
    key: SealingKeyOut
    audit_receipt: Receipt | None = None


class ShardUrlOut(BaseModel):
    index: int
    url: str
    headers: dict[str, str]


class ShardUrlsOut(BaseModel):
    upload_id: str
    urls: list[ShardUrlOut]
    expires_at: datetime
    audit_receipt: Receipt | None = None


class DownloadTicketOut(BaseModel):
    """What a client needs to open a record version itself. ``total_length`` and
    ``shard_count`` are the authenticated manifest's; the client takes them from the
    manifest it verifies, never from here or the record's metadata."""

    record_id: str
    version: int
    content_type: str
    total_length: int
    shard_count: int
    manifest: str
    key: SealingKeyOut
    content_digest: str | None
    first: int
    shard_urls: list[str]
    urls_expire_at: datetime
    audit_receipt: Receipt | None = None


class RecordPageOut(BaseModel):
    records: list[RecordOut]
    cursor: str | None
    audit_receipt: Receipt | None = None
