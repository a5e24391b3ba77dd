"""HTTP routes for records. Thin: parse headers, bridge the body stream, call the service.

Two ways in and out (docs/records.md, "Which content goes which way"):

- through the service, within ``HUB_MAX_INLINE_RECORD_BYTES`` (what one API Gateway and
  Lambda request carries): uploads take the raw bytes as the request body (never JSON or
  multipart), with ``Content-Type`` from the accepted set and a ``Content-Length`` that
  must match the body, read from the ASGI stream as it arrives; FHIR JSON only ever comes
  this way (it is validated). Downloads answer the whole version, verified, with its
  ``Repr-Digest``;
- sealed and opened on the client, for everything else: upload sessions
  (``/patients/{id}/uploads``, ``/records/{id}/uploads``, ``/uploads/{id}/...``) and
  download tickets (``/records/{id}/downloads``), whose bodies carry only keys, manifests
  and presigned URLs; the content goes straight to and from S3.

Discovery: ``GET /patients/{id}/records`` and ``GET /groups/{id}/records``, paginated.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from starlette.requests import ClientDisconnect

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.access.gate import consent_required
from app.audit.schemas import Receipt
from app.content import (
    ALLOWED_CONTENT_TYPES,
    FhirContentTooLarge,
    InvalidContent,
    UnsupportedContent,
)
from app.crypto.handover import SUITE_NAME
from app.errors import Conflict, InvalidRequest, NotFound
from app.openapi import dependency_errors, errors
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor
from app.patients.index import UnknownPatient
from app.records import errors as errors_mod
from app.records.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    CommitBody,
    DownloadBody,
    DownloadTicketOut,
    PublicKeyBody,
    RecordCategory,
    RecordOut,
    RecordPageOut,
    SealingKeyOut,
    ShardUrlOut,
    ShardUrlsBody,
    ShardUrlsOut,
    ShareBody,
    ShareOut,
    ShareResult,
    ShredBody,
    UploadKeyOut,
    UploadSessionBody,
    UploadSessionOut,
    UploadStatusOut,
    VersionOut,
    VersionResult,
    VersionUploadBody,
)
from app.records.service import RecordService
from app.records.sessions import MAX_SHARDS_PER_REQUEST, SessionRequest, ShardDeclaration
from app.records.uploads import Upload
from app.schemas import PatientId
from app.wiring import NotProvided, provided

router = APIRouter(tags=["records"])

RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
UploadIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
GroupIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]
# What the record service refuses (app/records/): declared per route below.
NO_RECORD = NotFound("No such record.")
NO_VERSION = NotFound("No such record version.")
CHANGED = Conflict("The record changed meanwhile; retry.", code="concurrent_change")
UPLOAD_ERRORS = (
    ACCESS_DENIED,
    errors_mod.LengthRequired,
    errors_mod.LengthMismatch,
    errors_mod.BodyIncomplete,
    errors_mod.RecordTooLarge("A record version is limited to 4194304 bytes."),
    FhirContentTooLarge,
    UnsupportedContent("text/html"),
    InvalidContent("FHIR Bundle is not valid R4B (1 error): Bundle.entry[0]..."),
    errors_mod.IdempotencyKeyReused,
    CHANGED,
    errors_mod.StorageUnavailable,
)
READ_ERRORS = (
    NO_RECORD,
    ACCESS_DENIED,
    errors_mod.StorageUnavailable,
)
# ViewRecord and ReadRecord of another institution's record need the patient's consent
# (consent.cedar); sharing needs it too (ShareRecord).
NO_READ_CONSENT = consent_required("reading-shared-record-needs-patient-consent")
NO_SHARE_CONSENT = consent_required("sharing-needs-patient-consent")

# Upload sessions and download tickets (app/records/sessions.py, downloads.py): what each
# step refuses, beyond the caller's identity and the Cedar decision.
NO_UPLOAD = NotFound("No such upload session.")
SESSION_START_ERRORS = (
    ACCESS_DENIED,
    UnsupportedContent("text/html"),
    errors_mod.SealedOnService,
    errors_mod.RecordTooLarge("A record version is limited to 2147483648 bytes."),
    errors_mod.InvalidPublicKey,
    InvalidRequest("Invalid fields: body.public_key (not base64).", code="invalid_request"),
    errors_mod.StorageUnavailable,
)
SESSION_ERRORS = (
    NO_UPLOAD,
    ACCESS_DENIED,
    errors_mod.UploadNotPending,
    errors_mod.UploadExpired,
    errors_mod.StorageUnavailable,
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retrying with the same key returns the original record, never a copy.",
    ),
]
CategoryHeader = Annotated[
    RecordCategory,
    Header(alias="X-Record-Category", description="What the record is (for listings)."),
]
TitleHeader = Annotated[
    str,
    Header(
        alias="X-Record-Title",
        max_length=120,
        description="A short title, shown to readers (no patient names: it is not sealed).",
    ),
]

REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this answers a retry with the same Idempotency-Key "
        "(the record first created, never a copy).",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

_RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The record's bytes, exactly Content-Length of them.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in sorted(ALLOWED_CONTENT_TYPES)
        },
    }
}


def _record_service(request: Request) -> RecordService:
    """The app's record service; a deployment without record storage answers 503."""
    try:
        return provided(RecordService)(request)
    except NotProvided:
        raise errors_mod.RecordsNotConfigured() from None


Records = Annotated[RecordService, Depends(_record_service)]
dependency_errors(_record_service, errors_mod.RecordsNotConfigured)


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return _lambda_event_length(request)
    if not raw.isdigit():
        raise errors_mod.LengthMismatch("Content-Length must be a decimal byte count.")
    return int(raw)


def _lambda_event_length(request: Request) -> int | None:
    """Behind API Gateway there is no Content-Length (a Lambda proxy event does not carry
    it), but the event holds the whole body: its length is the declared length."""
    event = request.scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    body = event.get("body") or ""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        return len(base64.b64decode(body))
    return len(body.encode("utf-8"))


def _body_chunks(request: Request) -> Iterator[bytes]:
    """The request body, pulled from the event loop one chunk at a time by a worker thread
    (``anyio.from_thread``), so the synchronous service reads it as a plain iterator."""
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None
        except ClientDisconnect:
            raise errors_mod.BodyIncomplete() from None

    while True:
        chunk = anyio.from_thread.run(next_chunk)
        if chunk is None:
            return
        if chunk:
            yield chunk


def _upload(request: Request, idempotency_key: str | None) -> Upload:
    return Upload(
        content_type=request.headers.get("content-type", "").strip(),
        length=_declared_length(request),
        chunks=_body_chunks(request),
        idempotency_key=idempotency_key,
    )


def _replay_headers(response: Response, replayed: bool) -> None:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.post(
    "/patients/{patient_id}/records",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordOut,
    openapi_extra=_RAW_BODY,
    responses={**errors(*UPLOAD_ERRORS, UnknownPatient), 201: {"headers": REPLAYED}},
)
async def upload_record(
    patient_id: Annotated[PatientId, Path()],
    request: Request,
    response: Response,
    who: CurrentPrincipal,
    records: Records,
    idempotency_key: IdempotencyKey = None,
    category: CategoryHeader = RecordCategory.OTHER,
    title: TitleHeader = "",
) -> RecordOut:
    upload = _upload(request, idempotency_key)
    state, receipt, replayed = await anyio.to_thread.run_sync(
        partial(records.create, who, patient_id, upload, category=category, title=title)
    )
    _replay_headers(response, replayed)
    return RecordOut.of(state, receipt)


@router.get(
    "/records/{record_id}",
    response_model=RecordOut,
    responses=errors(*READ_ERRORS, NO_READ_CONSENT),
)
def get_record(record_id: RecordId, who: CurrentPrincipal, records: Records) -> RecordOut:
    state, receipt = records.get(who, record_id)
    return RecordOut.of(state, receipt)


@router.get(
    "/records/{record_id}/content",
    response_class=Response,
    responses={
        **errors(
            *READ_ERRORS,
            NO_READ_CONSENT,
            NO_VERSION,
            errors_mod.RecordGone,
            errors_mod.RecordIntegrityError,
            errors_mod.TooLargeForInline,
        ),
        200: {
            "description": "The whole record version, verified, in its media type "
            "(ask for it with Accept behind API Gateway: binary types come back as bytes only "
            "then).",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in sorted(ALLOWED_CONTENT_TYPES)
            },
            "headers": {
                "Repr-Digest": {
                    "description": "`sha-256` of the whole version (RFC 9530).",
                    "schema": {"type": "string"},
                },
                "X-Record-Version": {
                    "description": "The version served.",
                    "schema": {"type": "integer"},
                },
                "X-Audit-Event-Id": {
                    "description": "The ledger event of this read.",
                    "schema": {"type": "string"},
                },
                "X-Audit-Position": {
                    "description": "Its position in the ledger.",
                    "schema": {"type": "string"},
                },
                "Cache-Control": {
                    "description": "Always `no-store`.",
                    "schema": {"type": "string"},
                },
            },
        },
    },
)
def get_record_content(
    record_id: RecordId,
    who: CurrentPrincipal,
    records: Records,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    opened = records.open_content(who, record_id, version)
    return Response(
        content=opened.plaintext,
        media_type=opened.version.content_type,
        headers={
            # The authenticated manifest's length, of a body verified whole before sending.
            "Content-Length": str(opened.length),
            "Repr-Digest": opened.repr_digest,
            "Cache-Control": "no-store",
            "X-Record-Version": str(opened.version.version),
            "X-Audit-Event-Id": opened.receipt.event_id,
            "X-Audit-Position": opened.receipt.position,
        },
    )


@router.post(
    "/records/{record_id}/share",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareResult,
    responses=errors(
        *READ_ERRORS,
        NO_SHARE_CONSENT,
        NotFound("No such group."),
        Conflict("The record is already shared into that group.", code="already_shared"),
        Conflict("The group changed meanwhile; retry.", code="concurrent_change"),
    ),
)
def share_record(
    record_id: RecordId, body: ShareBody, who: CurrentPrincipal, records: Records
) -> ShareResult:
    share, receipt = records.share(who, record_id, body.group_id)
    return ShareResult(
        record_id=record_id, share=ShareOut.of(share), audit_receipt=Receipt.of(receipt)
    )


@router.post(
    "/records/{record_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionResult,
    openapi_extra=_RAW_BODY,
    responses={**errors(*UPLOAD_ERRORS, NO_RECORD), 201: {"headers": REPLAYED}},
)
async def add_record_version(
    record_id: RecordId,
    request: Request,
    response: Response,
    who: CurrentPrincipal,
    records: Records,
    idempotency_key: IdempotencyKey = None,
) -> VersionResult:
    upload = _upload(request, idempotency_key)
    _, version, receipt, replayed = await anyio.to_thread.run_sync(
        partial(records.add_version, who, record_id, upload)
    )
    _replay_headers(response, replayed)
    return VersionResult(
        record_id=record_id, version=VersionOut.of(version), audit_receipt=Receipt.of(receipt)
    )


@router.delete(
    "/records/{record_id}/versions/{version}",
    response_model=VersionResult,
    responses=errors(*READ_ERRORS, NO_VERSION, errors_mod.RecordGone, CHANGED),
)
def shred_record_version(
    record_id: RecordId,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: Annotated[ShredBody, Body()],
    who: CurrentPrincipal,
    records: Records,
) -> VersionResult:
    shredded, receipt = records.shred(who, record_id, version, body.reason)
    return VersionResult(
        record_id=record_id, version=VersionOut.of(shredded), audit_receipt=Receipt.of(receipt)
    )


# -- sealed and opened on the client ----------------------------------------------------------


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(field: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"Invalid fields: body.{field} (not base64).") from None


def _sealing_key(context: dict[str, str], encrypted: bytes, wrapped: bytes) -> SealingKeyOut:
    return SealingKeyOut(
        encryption_context=context,
        encrypted_data_key=_b64(encrypted),
        wrapped_data_key=_b64(wrapped),
        key_suite=SUITE_NAME,
    )


def _session_out(records: RecordService, started: Any) -> UploadSessionOut:
    session = started.session
    return UploadSessionOut(
        upload_id=session.upload_id,
        record_id=session.record_id,
        version=session.version,
        patient_id=session.patient_id,
        content_type=session.content_type,
        length=session.length,
        shard_size=session.shard_size,
        shard_count=session.shard_count,
        expires_at=session.expires_at,
        presign_seconds=records.presign_seconds,
        max_shards_per_request=MAX_SHARDS_PER_REQUEST,
        key=_sealing_key(
            session.context().encryption_context(),
            session.encrypted_data_key,
            started.wrapped_data_key,
        ),
        audit_receipt=Receipt.of(started.receipt),
    )


@router.post(
    "/patients/{patient_id}/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadSessionOut,
    responses=errors(*SESSION_START_ERRORS, UnknownPatient),
)
def start_record_upload(
    patient_id: Annotated[PatientId, Path()],
    body: UploadSessionBody,
    who: CurrentPrincipal,
    records: Records,
) -> UploadSessionOut:
    """Start a new record sealed on the client (version 1); FHIR is refused (415)."""
    request = SessionRequest(
        content_type=body.content_type,
        length=body.length,
        public_key=_unb64("public_key", body.public_key),
        category=body.category.value,
        title=body.title,
    )
    return _session_out(records, records.sessions.start_record(who, patient_id, request))


@router.post(
    "/records/{record_id}/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadSessionOut,
    responses=errors(*SESSION_START_ERRORS, NO_RECORD),
)
def start_version_upload(
    record_id: RecordId, body: VersionUploadBody, who: CurrentPrincipal, records: Records
) -> UploadSessionOut:
    """Start the record's next version, sealed on the client (the author only)."""
    request = SessionRequest(
        content_type=body.content_type,
        length=body.length,
        public_key=_unb64("public_key", body.public_key),
    )
    return _session_out(records, records.sessions.start_version(who, record_id, request))


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadStatusOut,
    responses=errors(NO_UPLOAD, ACCESS_DENIED, errors_mod.StorageUnavailable),
)
def upload_status(
    upload_id: UploadIdPath, who: CurrentPrincipal, records: Records
) -> UploadStatusOut:
    """Where an upload session stands: which shards were issued URLs (for a resume)."""
    session, receipt = records.sessions.status(who, upload_id)
    return UploadStatusOut(
        upload_id=upload_id,
        status=session.status,
        record_id=session.record_id,
        version=session.version,
        content_type=session.content_type,
        length=session.length,
        shard_size=session.shard_size,
        shard_count=session.shard_count,
        expires_at=session.expires_at,
        issued=sorted(session.shards),
        audit_receipt=Receipt.of(receipt),
    )


@router.post(
    "/uploads/{upload_id}/shards",
    response_model=ShardUrlsOut,
    responses=errors(
        *SESSION_ERRORS,
        errors_mod.InvalidShardRequest("Shard 3 is not the size the session expects."),
        errors_mod.ShardsNotStored,
    ),
)
def issue_shard_urls(
    upload_id: UploadIdPath, body: ShardUrlsBody, who: CurrentPrincipal, records: Records
) -> ShardUrlsOut:
    """Presigned PUTs for sealed shards, each bound to its size and CRC64NVME."""
    declared = [ShardDeclaration(s.index, s.size, s.checksum_crc64nvme) for s in body.shards]
    urls, expires, receipt = records.sessions.issue_urls(who, upload_id, declared, body.stored)
    return ShardUrlsOut(
        upload_id=upload_id,
        urls=[ShardUrlOut(index=u.index, url=u.url, headers=u.headers) for u in urls],
        expires_at=expires,
        audit_receipt=Receipt.of(receipt),
    )


@router.post(
    "/uploads/{upload_id}/key",
    response_model=UploadKeyOut,
    responses=errors(
        *SESSION_ERRORS,
        errors_mod.InvalidPublicKey,
        InvalidRequest("Invalid fields: body.public_key (not base64).", code="invalid_request"),
        errors_mod.RecordIntegrityError,
    ),
)
def upload_key(
    upload_id: UploadIdPath, body: PublicKeyBody, who: CurrentPrincipal, records: Records
) -> UploadKeyOut:
    """The session's data key again, wrapped for a new key pair (to resume)."""
    session, wrapped, receipt = records.sessions.data_key(
        who, upload_id, _unb64("public_key", body.public_key)
    )
    return UploadKeyOut(
        upload_id=upload_id,
        key=_sealing_key(
            session.context().encryption_context(), session.encrypted_data_key, wrapped
        ),
        audit_receipt=Receipt.of(receipt),
    )


@router.post(
    "/uploads/{upload_id}/commit",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordOut,
    responses={
        **errors(
            *SESSION_ERRORS,
            errors_mod.ShardsNotStored,
            errors_mod.InvalidManifest,
            errors_mod.LengthMismatch,
            CHANGED,
            InvalidRequest("Invalid fields: body.manifest (not ASCII).", code="invalid_request"),
        ),
        201: {"headers": REPLAYED},
    },
)
def commit_upload(
    upload_id: UploadIdPath,
    body: CommitBody,
    response: Response,
    who: CurrentPrincipal,
    records: Records,
) -> RecordOut:
    """Commit the manifest once every shard is stored; again: the same record back."""
    try:
        manifest = body.manifest.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidRequest("Invalid fields: body.manifest (not ASCII).") from None
    digest = _unb64("content_digest", body.content_digest) if body.content_digest else None
    committed = records.sessions.commit(who, upload_id, manifest, digest)
    _replay_headers(response, committed.replayed)
    return RecordOut.of(committed.state, committed.receipt)


@router.post(
    "/records/{record_id}/downloads",
    response_model=DownloadTicketOut,
    responses=errors(
        *READ_ERRORS,
        NO_READ_CONSENT,
        NO_VERSION,
        errors_mod.RecordGone,
        errors_mod.InvalidPublicKey,
        errors_mod.RecordIntegrityError,
    ),
)
def download_ticket(
    record_id: RecordId, body: DownloadBody, who: CurrentPrincipal, records: Records
) -> DownloadTicketOut:
    """Open a version on the client: manifest, wrapped key, presigned GETs (a window)."""
    ticket = records.downloads.ticket(
        who,
        record_id,
        body.version,
        _unb64("public_key", body.public_key),
        body.first,
        body.count,
    )
    version = ticket.version
    digest = version.content_digest
    return DownloadTicketOut(
        record_id=record_id,
        version=version.version,
        content_type=version.content_type,
        total_length=ticket.total_length,
        shard_count=ticket.shard_count,
        manifest=ticket.manifest.decode("ascii"),
        key=_sealing_key(
            ticket.context.encryption_context(),
            ticket.encrypted_data_key,
            ticket.wrapped_data_key,
        ),
        content_digest=_b64(digest) if digest else None,
        first=ticket.first,
        shard_urls=ticket.urls,
        urls_expire_at=ticket.urls_expire_at,
        audit_receipt=Receipt.of(ticket.receipt),
    )


# -- discovery ---------------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/records",
    response_model=RecordPageOut,
    responses=errors(ACCESS_DENIED, InvalidCursor, errors_mod.StorageUnavailable),
)
def list_patient_records(
    patient_id: Annotated[PatientId, Path()],
    who: CurrentPrincipal,
    records: Records,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RecordPageOut:
    """The patient's records the caller may read, oldest first, a page at a time."""
    page = records.listing.patient_records(who, patient_id, limit=limit, cursor=cursor)
    return RecordPageOut(
        records=[RecordOut.of(r, None) for r in page.records],
        cursor=page.cursor,
        audit_receipt=Receipt.of(page.receipt),
    )


@router.get(
    "/groups/{group_id}/records",
    response_model=RecordPageOut,
    responses=errors(
        NotFound("No such group."), ACCESS_DENIED, InvalidCursor, errors_mod.StorageUnavailable
    ),
)
def list_group_records(
    group_id: GroupIdPath,
    who: CurrentPrincipal,
    records: Records,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RecordPageOut:
    """The records shared into a group that the caller may read, a page at a time."""
    page = records.listing.group_records(who, group_id, limit=limit, cursor=cursor)
    return RecordPageOut(
        records=[RecordOut.of(r, None) for r in page.records],
        cursor=page.cursor,
        audit_receipt=Receipt.of(page.receipt),
    )
