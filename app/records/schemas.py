"""Request and response bodies of the record routes (metadata only: content is raw bytes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"group_id": "6addad601b9440cda5d9323d0823423b"}]}
    )

    group_id: GroupId


class ShredBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "entered_in_error"}]})

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "patient_id": "pt-6dde7bc9f14d",
                    "institution": "harbour-cardiac-alliance",
                    "author": "ZZ82923",
                    "category": "other",
                    "title": "Discharge summary",
                    "created_at": "2026-01-15T09:30:00Z",
                    "latest_version": 1,
                    "versions": [
                        {
                            "version": 1,
                            "content_type": "application/fhir+json",
                            "length": 1207,
                            "status": "active",
                            "created_at": "2026-01-15T09:30:00Z",
                            "created_by": "ZZ82923",
                            "shredded_at": None,
                            "shred_reason": None,
                        }
                    ],
                    "shares": [
                        {
                            "group_id": "6addad601b9440cda5d9323d0823423b",
                            "shared_by": "ZZ82923",
                            "shared_at": "2026-01-15T09:30:00Z",
                        }
                    ],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "version": {
                        "version": 1,
                        "content_type": "application/fhir+json",
                        "length": 1207,
                        "status": "active",
                        "created_at": "2026-01-15T09:30:00Z",
                        "created_by": "ZZ82923",
                        "shredded_at": None,
                        "shred_reason": None,
                    },
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    record_id: str
    version: VersionOut
    audit_receipt: Receipt | None = None


class ShareResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "share": {
                        "group_id": "6addad601b9440cda5d9323d0823423b",
                        "shared_by": "ZZ82923",
                        "shared_at": "2026-01-15T09:30:00Z",
                    },
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    record_id: str
    share: ShareOut
    audit_receipt: Receipt | None = None


# -- upload sessions and download tickets (sealed and opened on the client) -------------------

Base64 = Annotated[str, Field(max_length=16_384, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
UploadId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
MAX_LENGTH = 2**53 - 1


# Example values for the document only: synthetic bytes, no key or content of anyone's.
_EXAMPLE_SEALED_DIGEST = (
    "6UC81tDsaT4DlvK26uy1EscGvs2tO0QP8Laa/VSjRFMhj019xPAe5EjJLd4NHMwfOPvbgTlJ7QBSdAHR"
)
_EXAMPLE_PUBLIC_KEY = (
    "BMxOK2IC0yEFIl5bGj4PkPzmbtZtXmrcAic+oTgGszwvizGzdLh38iDexbsuDGxxfI9wWp7x+e1bzRsMPqZFb8A="
)
_EXAMPLE_WRAPPED_DATA_KEY = (
    "BJuWBelxpzF+DTXIrwOWQ1hJssixyronOMsUq4V1Mp5X74dtrTLUMOytn+AJU5FTGM8u9CCqEh8M4VSv"
    "sY5LgrUWc3TfokGiHPWo+umV/2YjoZswZypS6qzdwDFaZB16UONY76SJ9YBi8Q3XMWtlZJ4="
)
_EXAMPLE_ENCRYPTED_DATA_KEY = (
    "vawxL+kI8sg597Fm03EmDAbw7FtrX1/hkFquOrZcZbpLOBjeuChOLomAZqbbvGqKCJjLc36eI5S2ormo"
    "E6vjRb2sMS/pCPLIOfexZtNxJgwG8Oxba19f4ZBarjq2XGW6SzgY3rgoTi6JgGam27xqigiYy3N+niOU"
    "tqK5qBOr40U="
)
_EXAMPLE_KEY_ARN = "arn:aws:kms:ap-east-1:111122223333:key/example"


class UploadSessionBody(Strict):
    """Start an upload sealed on the client: what it is, how long, and the client's
    ephemeral public key (65-byte uncompressed P-256 point, base64) for the data key."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "content_type": "application/dicom",
                    "length": 52428800,
                    "public_key": _EXAMPLE_PUBLIC_KEY,
                    "category": "imaging",
                    "title": "CT chest",
                }
            ]
        }
    )

    content_type: str = Field(min_length=3, max_length=255)
    length: int = Field(ge=0, le=MAX_LENGTH)
    public_key: Base64
    category: RecordCategory = RecordCategory.OTHER
    title: str = Field(default="", max_length=120)


class VersionUploadBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "content_type": "application/pdf",
                    "length": 1048576,
                    "public_key": _EXAMPLE_PUBLIC_KEY,
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "shards": [{"index": 1, "size": 4194320, "checksum_crc64nvme": "AAAAAAAAAAA="}],
                    "stored": [0],
                }
            ]
        }
    )

    shards: list[ShardDeclarationIn] = Field(default_factory=list, max_length=64)
    stored: list[Annotated[int, Field(ge=0, le=2**32)]] = Field(default_factory=list, max_length=64)


class PublicKeyBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"public_key": _EXAMPLE_PUBLIC_KEY}]})

    public_key: Base64


class CommitBody(Strict):
    """The manifest (canonical JSON, as ``RecordSealer`` made it) and, optionally, the
    plaintext's SHA-256 sealed under the data key (``app.crypto.digest``, base64)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "manifest": '{"format":2,...}',
                    "content_digest": _EXAMPLE_SEALED_DIGEST,
                }
            ]
        }
    )

    manifest: str = Field(min_length=2, max_length=1_000_000)
    content_digest: Base64 | None = None


class DownloadBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "public_key": _EXAMPLE_PUBLIC_KEY,
                    "version": 1,
                    "first": 0,
                    "count": 256,
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b",
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "version": 1,
                    "patient_id": "pt-6dde7bc9f14d",
                    "content_type": "application/dicom",
                    "length": 52428800,
                    "shard_size": 4194304,
                    "shard_count": 13,
                    "expires_at": "2026-01-15T10:30:00Z",
                    "presign_seconds": 900,
                    "max_shards_per_request": 64,
                    "key": {
                        "encryption_context": {
                            "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                            "patient_id": "pt-6dde7bc9f14d",
                            "version": "1",
                            "institution": "harbour-cardiac-alliance",
                        },
                        "encrypted_data_key": _EXAMPLE_ENCRYPTED_DATA_KEY,
                        "wrapped_data_key": _EXAMPLE_WRAPPED_DATA_KEY,
                        "key_suite": "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM",
                    },
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b",
                    "status": "pending",
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "version": 1,
                    "content_type": "application/dicom",
                    "length": 52428800,
                    "shard_size": 4194304,
                    "shard_count": 13,
                    "expires_at": "2026-01-15T10:30:00Z",
                    "issued": [0, 1, 2],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b",
                    "key": {
                        "encryption_context": {
                            "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                            "patient_id": "pt-6dde7bc9f14d",
                            "version": "1",
                            "institution": "harbour-cardiac-alliance",
                        },
                        "encrypted_data_key": _EXAMPLE_ENCRYPTED_DATA_KEY,
                        "wrapped_data_key": _EXAMPLE_WRAPPED_DATA_KEY,
                        "key_suite": "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM",
                    },
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    upload_id: str
    key: SealingKeyOut
    audit_receipt: Receipt | None = None


class ShardUrlOut(BaseModel):
    index: int
    url: str
    headers: dict[str, str]


class ShardUrlsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "upload_id": "3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b",
                    "urls": [
                        {
                            "index": 1,
                            "url": "https://hub-shards.s3.ap-east-1.amazonaws.com/records/b8aaa2dbbff34f3db206e21fb0ddac6d/1/3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b/00000000?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=...",
                            "headers": {
                                "Content-Length": "4194320",
                                "If-None-Match": "*",
                                "x-amz-server-side-encryption": "aws:kms",
                                "x-amz-server-side-encryption-aws-kms-key-id": _EXAMPLE_KEY_ARN,
                                "x-amz-sdk-checksum-algorithm": "CRC64NVME",
                                "x-amz-checksum-crc64nvme": "AAAAAAAAAAA=",
                            },
                        }
                    ],
                    "expires_at": "2026-01-15T09:45:00Z",
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    upload_id: str
    urls: list[ShardUrlOut]
    expires_at: datetime
    audit_receipt: Receipt | None = None


class DownloadTicketOut(BaseModel):
    """What a client needs to open a record version itself. ``total_length`` and
    ``shard_count`` are the authenticated manifest's; the client takes them from the
    manifest it verifies, never from here or the record's metadata."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                    "version": 1,
                    "content_type": "application/dicom",
                    "total_length": 52428800,
                    "shard_count": 13,
                    "manifest": '{"format":2,...}',
                    "key": {
                        "encryption_context": {
                            "record_id": "b8aaa2dbbff34f3db206e21fb0ddac6d",
                            "patient_id": "pt-6dde7bc9f14d",
                            "version": "1",
                            "institution": "harbour-cardiac-alliance",
                        },
                        "encrypted_data_key": _EXAMPLE_ENCRYPTED_DATA_KEY,
                        "wrapped_data_key": _EXAMPLE_WRAPPED_DATA_KEY,
                        "key_suite": "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM",
                    },
                    "content_digest": _EXAMPLE_SEALED_DIGEST,
                    "first": 0,
                    "shard_urls": [
                        "https://hub-shards.s3.ap-east-1.amazonaws.com/records/b8aaa2dbbff34f3db206e21fb0ddac6d/1/3f1c0a9e5b7d4e2f8a6b1c0d9e8f7a6b/00000000?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=..."
                    ],
                    "urls_expire_at": "2026-01-15T09:45:00Z",
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "records": RecordOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "cursor": None,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    records: list[RecordOut]
    cursor: str | None
    audit_receipt: Receipt | None = None
