"""Record content through the local API gateway: binary media types, base64 handling and
the payload caps, as API Gateway and Lambda apply them to a record upload or download.

The gateway is built from the phase 1 program's declaration (binary media types
included) in front of the records app; the switch-off rebuilds it from the program with
no binary media types and shows the DICOM round trip breaking.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hub_testkit import PATIENT, gateway_record
from records_testkit import RecordsHarness

from app.main import lambda_handler_for
from infra.components import sharing_service
from infra.emulator.gateway import LocalGateway

UPLOAD = f"/patients/{PATIENT}/records"
MIB = 1 << 20


@dataclass
class RecordsGateway:
    server: LocalGateway
    client: httpx.Client
    events: list[dict[str, Any]] = field(default_factory=list)


def start(records: RecordsHarness) -> RecordsGateway:
    record = gateway_record(records.hub, apiThrottleRateLimit=5000, apiThrottleBurstLimit=5000)
    function = lambda_handler_for(records.client.app, sign_inline=False)  # type: ignore[arg-type]
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        return function(event, context)

    server = LocalGateway(record, handler)
    return RecordsGateway(server, httpx.Client(base_url=server.start(), timeout=60), events)


@pytest.fixture(scope="module")
def through(records: RecordsHarness) -> Iterator[RecordsGateway]:
    gateway = start(records)
    try:
        yield gateway
    finally:
        gateway.client.close()
        gateway.server.stop()


def binary_body(size: int) -> bytes:
    """A DICOM-looking body whose bytes are mostly not valid UTF-8."""
    return b"\x00" * 128 + b"DICM" + os.urandom(size - 132)


def upload(
    gateway: RecordsGateway, records: RecordsHarness, body: bytes, content_type: str
) -> httpx.Response:
    return gateway.client.post(
        UPLOAD,
        content=body,
        headers=records.headers(
            "dr-lead", **{"Content-Type": content_type, "X-Record-Category": "imaging"}
        ),
    )


def download(
    gateway: RecordsGateway, records: RecordsHarness, record_id: str, accept: str | None
) -> httpx.Response:
    headers = records.headers("dr-lead")
    if accept:
        headers["Accept"] = accept
    return gateway.client.get(f"/records/{record_id}/content", headers=headers)


def test_dicom_round_trip_through_the_gateway(
    through: RecordsGateway, records: RecordsHarness
) -> None:
    body = binary_body(200 * 1024)
    created = upload(through, records, body, "application/dicom")
    assert created.status_code == 201, created.text
    event = through.events[-1]
    assert event["isBase64Encoded"] is True  # a declared binary media type
    record_id = created.json()["record_id"]
    content = download(through, records, record_id, "application/dicom")
    assert content.status_code == 200
    assert content.headers["content-type"] == "application/dicom"
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(body).digest()
    # API Gateway decides by the first Accept type: a client that does not ask for a
    # binary type gets the function's base64 text, as it would in AWS.
    as_text = download(through, records, record_id, "*/*")
    assert as_text.status_code == 200 and as_text.content == base64.b64encode(body)


def test_switch_off_no_binary_media_types_breaks_a_dicom_round_trip(
    records: RecordsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharing_service, "API_BINARY_MEDIA_TYPES", ())
    gateway = start(records)
    try:
        body = binary_body(64 * 1024)
        created = upload(gateway, records, body, "application/dicom")
        assert created.status_code == 201, created.text
        assert gateway.events[-1]["isBase64Encoded"] is False  # passed as UTF-8 text
        content = download(gateway, records, created.json()["record_id"], "application/dicom")
        assert content.status_code == 200
        assert content.content != body  # corrupted on the way in, base64 text on the way out
    finally:
        gateway.client.close()
        gateway.server.stop()


def test_fhir_json_round_trips_as_text(through: RecordsGateway, records: RecordsHarness) -> None:
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient", "id": PATIENT, "gender": "unknown"},
            }
        ],
    }
    body = json.dumps(document).encode()
    created = upload(through, records, body, "application/fhir+json")
    assert created.status_code == 201, created.text
    assert through.events[-1]["isBase64Encoded"] is False
    content = download(through, records, created.json()["record_id"], "application/fhir+json")
    assert content.status_code == 200 and content.content == body


def test_an_11_mib_body_is_refused_by_the_gateway_before_the_app(
    through: RecordsGateway, records: RecordsHarness
) -> None:
    events, entries = len(through.events), records.hub.ledger_size()
    refused = upload(through, records, os.urandom(11 * MIB), "application/dicom")
    assert refused.status_code == 413
    assert refused.text == "HTTP content length exceeded 10485760 bytes."
    assert len(through.events) == events  # the function never ran
    assert records.hub.ledger_size() == entries  # nothing was recorded


def test_a_body_over_lambdas_6_mb_request_cap_is_refused(
    through: RecordsGateway, records: RecordsHarness
) -> None:
    """5 MiB passes API Gateway's 10 MB but not Lambda's 6 MB once base64-encoded."""
    events = len(through.events)
    refused = upload(through, records, binary_body(5 * MIB), "application/dicom")
    assert refused.status_code == 413 and refused.json() == {"message": "Request Too Long"}
    assert len(through.events) == events
