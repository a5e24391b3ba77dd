"""The record routes crossed with every kind of principal (the same columns as
tests/app/test_authorization_matrix.py, which leaves record routes to this table).

World (built once): record R by dr-lead for PATIENT, shared into the world's open group G
(lead and dr-member active, dr-removed removed, dr-invitee invited); group H for PATIENT
(lead and dr-member active) as the share target; record Rc shared into a group of which
dr-closed was a member, since closed. The live and expired break-glass grants are the
world's, for PATIENT. Cells that expect success on a route that changes state run against
a fresh record shared into G; refusals run against R and must leave it unchanged.

Upload sessions: U is a session dr-lead started for PATIENT (only whoever started a
session continues it); the commit's success cell runs against a fresh session whose
shards are all stored. Listings: ``list_group`` reads G (the closed member reads the
closed group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from hub_testkit import PATIENT, World, build_group
from records_testkit import RecordsHarness
from sealed_testkit import DICOM, SealedProtocol, Started, b64
from test_authorization_matrix import CODES, EXPIRED_SHIFT, USERS

from app.crypto.handover import RecipientKey
from app.groups.membership import MemberRole
from app.main import PUBLIC_PATHS

MATRIX = """
route          an  mf  nm  mb  ld  iv  rm  cm  oi  na  wr  ia  ur  su  bl  be  au
create        401 401 201 201 201 201 201 201 201 403 403 403 403 403 201 201 403
view          401 401 403 200 200 403 403 403 403 403 403 403 403 403 200 403 403
content       401 401 403 200 200 403 403 403 403 403 403 403 403 403 200 403 403
share         401 401 403 201 201 403 403 403 403 403 403 403 403 403 403 403 403
version       401 401 403 403 201 403 403 403 403 403 403 403 403 403 403 403 403
shred         401 401 403 403 200 403 403 403 403 403 403 200 403 403 403 403 403
download      401 401 403 200 200 403 403 403 403 403 403 403 403 403 200 403 403
list_patient  401 401 200 200 200 200 200 200 200 403 403 403 403 403 200 200 403
list_group    401 401 403 200 200 403 403 403 403 403 403 403 403 403 200 403 403
upload        401 401 201 201 201 201 201 201 201 403 403 403 403 403 201 201 403
upload_vers   401 401 403 403 201 403 403 403 403 403 403 403 403 403 403 403 403
upload_status 401 401 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403
upload_urls   401 401 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403
upload_key    401 401 403 403 200 403 403 403 403 403 403 403 403 403 403 403 403
upload_commit 401 401 403 403 201 403 403 403 403 403 403 403 403 403 403 403 403
"""

BODY = b"synthetic-imaging-bytes" * 50


@dataclass(frozen=True)
class RecordWorld:
    record_id: str
    closed_record_id: str
    target_group_id: str
    group_id: str
    closed_group_id: str
    upload: Started


def _public_key(_: RecordWorld) -> dict[str, Any]:
    return {"public_key": b64(RecipientKey().public_bytes)}


def _session_body(_: RecordWorld) -> dict[str, Any]:
    return {"content_type": DICOM, "length": len(BODY), **_public_key(_)}


def _declaration(rw: RecordWorld) -> dict[str, Any]:
    started = rw.upload
    return {"shards": [{"index": 0, "size": len(started.sealed[0].ciphertext),
                        "checksum_crc64nvme": "AAAAAAAAAAA="}]}  # fmt: skip


def _commit(rw: RecordWorld) -> dict[str, Any]:
    return {"manifest": rw.upload.manifest().to_bytes().decode("ascii")}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {rid}, {h}, {g} and {uid} are filled from the world
    raw: bool = False  # the body is raw bytes
    json: dict[str, Any] | Callable[[RecordWorld], dict[str, Any]] | None = None
    mutates: bool = True


ROUTES: dict[str, Route] = {
    "create": Route("POST", f"/patients/{PATIENT}/records", raw=True, mutates=False),
    "view": Route("GET", "/records/{rid}", mutates=False),
    "content": Route("GET", "/records/{rid}/content", mutates=False),
    "share": Route("POST", "/records/{rid}/share", json={"group_id": "{h}"}),
    "version": Route("POST", "/records/{rid}/versions", raw=True),
    "shred": Route("DELETE", "/records/{rid}/versions/1", json={"reason": "retention_expired"}),
    # Sealed and opened on the client. A ticket or a session changes no record.
    "download": Route("POST", "/records/{rid}/downloads", json=_public_key, mutates=False),
    "list_patient": Route("GET", f"/patients/{PATIENT}/records", mutates=False),
    "list_group": Route("GET", "/groups/{g}/records", mutates=False),
    "upload": Route("POST", f"/patients/{PATIENT}/uploads", json=_session_body, mutates=False),
    "upload_vers": Route("POST", "/records/{rid}/uploads", json=_session_body, mutates=False),
    "upload_status": Route("GET", "/uploads/{uid}", mutates=False),
    "upload_urls": Route("POST", "/uploads/{uid}/shards", json=_declaration, mutates=False),
    "upload_key": Route("POST", "/uploads/{uid}/key", json=_public_key, mutates=False),
    "upload_commit": Route("POST", "/uploads/{uid}/commit", json=_commit),
}


def _upload(records: RecordsHarness, patient: str = PATIENT) -> str:
    r = records.client.post(
        f"/patients/{patient}/records",
        content=BODY,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["record_id"])


def _shared_into(records: RecordsHarness, gid: str, patient: str = PATIENT) -> str:
    rid = _upload(records, patient)
    r = records.client.post(
        f"/records/{rid}/share", json={"group_id": gid}, headers=records.headers("dr-lead")
    )
    assert r.status_code == 201, r.text
    return rid


@pytest.fixture(scope="module")
def record_world(records: RecordsHarness, world: World) -> RecordWorld:
    groups, p = records.services.groups, records.hub.principal
    other = "pt-synthetic-000321"
    closing, _ = groups.create(p("dr-lead"), other, "Closing case", "")
    cid = closing.group.group_id
    groups.invite(p("dr-lead"), cid, p("dr-closed").reg_no or "", MemberRole.MEMBER)
    groups.accept(p("dr-closed"), cid)
    closed_rid = _shared_into(records, cid, other)
    groups.close(p("dr-lead"), cid)
    upload = SealedProtocol(records).start("dr-lead", BODY)
    SealedProtocol(records).seal(upload)
    return RecordWorld(
        record_id=_shared_into(records, world.group_id),
        closed_record_id=closed_rid,
        target_group_id=build_group(records.hub),
        group_id=world.group_id,
        closed_group_id=cid,
        upload=upload,
    )


def parse_matrix() -> list[tuple[str, str, int]]:
    lines = [line.split() for line in MATRIX.strip().splitlines()]
    header = lines[0][1:]
    cells = []
    for row in lines[1:]:
        route, statuses = row[0], row[1:]
        assert len(statuses) == len(header), route
        cells.extend((route, CODES[who], int(s)) for who, s in zip(header, statuses, strict=True))
    return cells


CELLS = parse_matrix()


def test_matrix_covers_every_record_route_and_principal(records: RecordsHarness) -> None:
    published = {
        (method.upper(), path)
        for path, operations in records.client.get("/openapi.json").json()["paths"].items()
        if path not in PUBLIC_PATHS
        for method, operation in operations.items()
        if "records" in operation.get("tags", [])
    }
    covered = {
        (
            r.method,
            r.path.replace("{rid}", "{record_id}")
            .replace(PATIENT, "{patient_id}")
            .replace("/versions/1", "/versions/{version}")
            .replace("{uid}", "{upload_id}")
            .replace("{g}", "{group_id}"),
        )
        for r in ROUTES.values()
    }
    assert published == covered
    assert {who for _, who, _ in CELLS} == {"anonymous", "malformed", *USERS}


def _request(records: RecordsHarness, rw: RecordWorld, route_name: str, who: str) -> Any:
    route = ROUTES[route_name]
    rid = rw.closed_record_id if who == "closed_member" else rw.record_id
    gid = rw.closed_group_id if who == "closed_member" else rw.group_id
    path = route.path.format(rid=rid, g=gid, uid=rw.upload.upload_id)
    headers: dict[str, str] = {}
    if who == "malformed":
        headers["Authorization"] = "Bearer not.a-jwt"
    elif who != "anonymous":
        headers = records.headers(USERS[who])
    kwargs: dict[str, Any] = {}
    if route.raw:
        kwargs["content"] = BODY
        headers["Content-Type"] = "application/dicom"
    elif callable(route.json):
        kwargs["json"] = route.json(rw)
    elif route.json is not None:
        kwargs["json"] = {k: v.format(h=rw.target_group_id) for k, v in route.json.items()}
    if who == "bg_expired":
        records.hub.clock.offset = EXPIRED_SHIFT
    try:
        return records.client.request(route.method, path, headers=headers, **kwargs)
    finally:
        records.hub.clock.offset = timedelta(0)


@pytest.mark.parametrize(("route_name", "who", "expected"), CELLS)
def test_record_authorization_matrix(
    records: RecordsHarness, record_world: RecordWorld, route_name: str, who: str, expected: int
) -> None:
    rw = record_world
    if expected < 300 and ROUTES[route_name].mutates:
        upload = rw.upload
        if route_name == "upload_commit":  # a fresh session with every shard stored
            protocol = SealedProtocol(records)
            upload = protocol.start("dr-lead", BODY)
            protocol.issue(upload)
            protocol.put_all(upload)
        rw = replace(rw, record_id=_shared_into(records, rw.group_id), upload=upload)
    response = _request(records, rw, route_name, who)
    assert response.status_code == expected, response.text
    if expected >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        assert PATIENT not in response.text and BODY[:20] not in response.content
    elif route_name == "content":
        assert response.content == BODY


def test_refusals_left_the_record_unchanged(
    records: RecordsHarness, record_world: RecordWorld
) -> None:
    state = records.records._repo.load(record_world.record_id)
    assert state is not None
    assert [(v.version, v.status) for v in state.versions] == [(1, "active")]
    assert [s.group_id for s in state.shares] == [record_world.group_id]
