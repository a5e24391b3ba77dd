"""HTTP routes for records. Thin: parse headers, bridge the body stream, call the service.

Uploads take the raw bytes as the request body (never JSON or multipart), with
``Content-Type`` from the accepted set and a ``Content-Length`` that must match the body.
The body is read from the ASGI stream as it arrives and handed to the (synchronous)
service in a worker thread, chunk by chunk, so an upload is never held in memory whole.
Downloads stream verified plaintext shard by shard.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from app.access.auth import CurrentPrincipal
from app.audit.schemas import Receipt
from app.content import ALLOWED_CONTENT_TYPES
from app.records import errors
from app.records.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    RecordCategory,
    RecordOut,
    ShareBody,
    ShareOut,
    ShareResult,
    ShredBody,
    VersionOut,
    VersionResult,
)
from app.records.service import RecordService
from app.records.uploads import Upload
from app.schemas import PatientId
from app.wiring import NotProvided, provided

router = APIRouter(tags=["records"])

RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retrying with the same key returns the original record, never a copy.",
    ),
]
CategoryHeader = Annotated[RecordCategory, Header(alias="X-Record-Category")]
TitleHeader = Annotated[str, Header(alias="X-Record-Title", max_length=120)]

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
        raise errors.RecordsNotConfigured() from None


Records = Annotated[RecordService, Depends(_record_service)]


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return _lambda_event_length(request)
    if not raw.isdigit():
        raise errors.LengthMismatch("Content-Length must be a decimal byte count.")
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
            raise errors.BodyIncomplete() from None

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


@router.get("/records/{record_id}", response_model=RecordOut)
def get_record(record_id: RecordId, who: CurrentPrincipal, records: Records) -> RecordOut:
    state, receipt = records.get(who, record_id)
    return RecordOut.of(state, receipt)


@router.get(
    "/records/{record_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_record_content(
    record_id: RecordId,
    who: CurrentPrincipal,
    records: Records,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> StreamingResponse:
    opened = records.open_content(who, record_id, version)
    return StreamingResponse(
        opened.chunks,
        media_type=opened.version.content_type,
        headers={
            "Content-Length": str(opened.version.length),
            "Cache-Control": "no-store",
            "X-Record-Version": str(opened.version.version),
            "X-Audit-Event-Id": opened.receipt.event_id,
            "X-Audit-Position": opened.receipt.position,
        },
    )


@router.post(
    "/records/{record_id}/share", status_code=status.HTTP_201_CREATED, response_model=ShareResult
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


@router.delete("/records/{record_id}/versions/{version}", response_model=VersionResult)
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
