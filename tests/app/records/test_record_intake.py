"""Community-care intake (``POST /intake/messages``, app/intake): a clinic system's
client-credentials token files HL7 v2, CDA and FHIR submissions under the patient the
index resolves and the institution the client is mapped to, sealed by the service.

The session's pool gets the intake resource server, a domain (the emulator serves its
token endpoint) and two clinic-system clients: one mapped to INST_A as data (through the
operator channel), one mapped to nothing. Each test builds its messages from the interop
samples with a fresh HKID and MRN, so no test depends on another's patients.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hub_testkit import INST_A, INST_B, switch_intake
from records_testkit import RecordsHarness

from app.identity.affiliations import IntakeClient
from app.institutions.service import OPERATOR
from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE
from app.patients.hkid import compute_check_digit
from infra.emulator.cognito_token import local_token_url

SAMPLES = __import__("pathlib").Path(__file__).parents[1] / "interop" / "testdata"
HL7 = "application/hl7-v2"
CDA = "application/cda+xml"
FHIR_R4 = "application/fhir+json; fhirVersion=4.0"
INTAKE_LAYER = "phase2-hospital-authority"


@dataclass(frozen=True)
class Intake:
    mapped: dict[str, str]  # Authorization header of INST_A's clinic system
    unmapped: dict[str, str]  # a client with the scope, mapped to no institution
    mapped_client: str
    unmapped_client: str


def _token(url: str, client_id: str, secret: str) -> dict[str, str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = httpx.post(
        url, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def intake(records: RecordsHarness) -> Intake:
    hub = records.hub
    cognito, pool = hub.cognito, hub.pool_id
    domain = f"intake-{uuid.uuid4().hex[:10]}"
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool)
    cognito.create_resource_server(
        UserPoolId=pool,
        Identifier=INTAKE_RESOURCE_SERVER,
        Name="intake",
        Scopes=[{"ScopeName": "records.write", "ScopeDescription": "submit"}],
    )
    made = {}
    for name in ("cms-a", "cms-unmapped"):
        client = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName=f"intake-{name}-{uuid.uuid4().hex[:4]}",
            GenerateSecret=True,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthScopes=[INTAKE_WRITE_SCOPE],
        )["UserPoolClient"]
        made[name] = (client["ClientId"], client["ClientSecret"])
    hub.operator.map_intake_client(
        OPERATOR, IntakeClient(client_id=made["cms-a"][0], institution=INST_A, system="cms-a")
    )
    # Phase 2's layer declared both systems (its switch lists them; one is mapped to nothing).
    switch_intake(hub, INTAKE_LAYER, [made["cms-a"][0], made["cms-unmapped"][0]])
    url = local_token_url(hub.endpoint, domain)
    return Intake(
        _token(url, *made["cms-a"]),
        _token(url, *made["cms-unmapped"]),
        made["cms-a"][0],
        made["cms-unmapped"][0],
    )


def fresh_identity() -> tuple[str, str]:
    """(HKID compact, MRN): synthetic, HKID with a valid check digit."""
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"Z{digits}{compute_check_digit('Z', digits)}", f"CA{secrets.randbelow(10**7):07d}"


def message_id() -> str:
    """A fresh identifier for a message (each message is filed once per identifier)."""
    return f"T-{uuid.uuid4().hex[:16]}"


def hl7(sample: str, hkid: str, mrn: str, control_id: str | None = None) -> bytes:
    body = (SAMPLES / sample).read_bytes()
    body = body.replace(b"CA0661125", mrn.encode()).replace(
        b"XC241592(8)", f"{hkid[:-1]}({hkid[-1]})".encode()
    )
    # MSH-10, the message control id (after MSH-2 to MSH-9)
    new = (control_id or message_id()).encode()
    return re.sub(rb"^(MSH(?:\|[^|\r\n]*){8}\|)[^|\r\n]*", lambda m: m.group(1) + new, body)


def cda(hkid: str, mrn: str, document_id: str | None = None) -> bytes:
    body = (SAMPLES / "discharge_summary.cda.xml").read_bytes()
    body = body.replace(b"HB79763355", mrn.encode()).replace(b"XC2415928", hkid.encode())
    return body.replace(
        b'extension="DS-2026-0001"', f'extension="{document_id or message_id()}"'.encode()
    )


def fhir(hkid: str, mrn: str, identifier: str | None = None, *, with_id: bool = True) -> bytes:
    body = (SAMPLES / "observation_r4.fhir-in.json").read_bytes()
    body = body.replace(b"HB79763355", mrn.encode()).replace(b"XC2415928", hkid.encode())
    if not with_id:
        return body
    value = identifier or message_id()
    return body.replace(
        b'"type": "collection",',
        f'"identifier": {{"system": "urn:oid:2.25.1155", "value": "{value}"}}, '
        '"type": "collection",'.encode(),
        1,
    )


def submit(records: RecordsHarness, who: dict[str, str], media_type: str, body: bytes) -> Any:
    return records.client.post(
        "/intake/messages", content=body, headers={**who, "Content-Type": media_type}
    )


def registered(records: RecordsHarness, hkid: str, mrn: str | None = None) -> str:
    patient_id, _ = records.hub.services.patients.register(
        records.hub.principal("dr-lead"), hkid=hkid, mrn=mrn
    )
    return patient_id


def test_who_may_submit(records: RecordsHarness, intake: Intake) -> None:
    hkid, mrn = fresh_identity()
    body = hl7("adt_a01.hl7", hkid, mrn)
    assert submit(records, {}, HL7, body).status_code == 401
    # A doctor's token, whatever the doctor may do elsewhere, is not a clinic system's.
    doctor = submit(records, records.headers("dr-lead"), HL7, body)
    assert doctor.status_code == 401 and doctor.json()["error"]["code"] == "unauthenticated"
    # A clinic system's token is not a doctor's: refused on the doctors' routes.
    for method, path in (("GET", "/groups"), ("GET", "/me"), ("POST", "/patients/lookup")):
        r = records.client.request(method, path, headers=intake.mapped, json={"hkid": hkid})
        assert r.status_code == 401, (path, r.text)
    # A client with the scope but mapped to no institution: refused and audited.
    start = records.hub.ledger_size()
    r = submit(records, intake.unmapped, HL7, body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "unknown_client"
    (entry,) = records.hub.audit_entries(start)
    assert entry["outcome"] == "denied" and entry["reason"] == "intake-client-unknown"
    assert entry["actor"]["sub"].startswith("client:")


def test_a_removed_layers_systems_are_refused_at_once(
    records: RecordsHarness, intake: Intake
) -> None:
    """Destroying phase 2's layer deletes its switch; its clients' mappings stay in the
    table and a token issued before lives on (15 minutes on AWS), but the next submission
    with that very token is refused, clearly and audited. Redeploying reopens intake."""
    hkid, mrn = fresh_identity()
    registered(records, hkid, mrn)
    hub = records.hub
    assert submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn)).status_code == 201
    switch_intake(hub, INTAKE_LAYER, None)  # the layer's destroy
    try:
        start = hub.ledger_size()
        r = submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn))
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "intake_switched_off"
        assert "layer" in r.json()["error"]["message"]
        (entry,) = hub.audit_entries(start)
        assert entry["outcome"] == "denied" and entry["reason"] == "intake_switched_off"
        assert entry["actor"]["sub"] == f"client:{intake.mapped_client}"
        # the mapping is still there: only the switch refused it
        assert hub.services.institutions.repository.intake_client(intake.mapped_client)
    finally:
        switch_intake(hub, INTAKE_LAYER, [intake.mapped_client, intake.unmapped_client])
    again = submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn))
    assert again.status_code == 201, again.text


def test_submissions_of_each_kind_land_as_one_patients_records(
    records: RecordsHarness, intake: Intake
) -> None:
    hkid, mrn = fresh_identity()
    patient = registered(records, hkid)  # by HKID only: the MRN is linked by the first
    hub = records.hub
    start = hub.ledger_size()
    filed = []
    adt_message = hl7("adt_a01.hl7", hkid, mrn)
    for media_type, body in (
        (HL7, adt_message),
        (HL7, hl7("oru_r01.hl7", hkid, mrn)),
        (CDA, cda(hkid, mrn)),
        (FHIR_R4, fhir(hkid, mrn)),
    ):
        r = submit(records, intake.mapped, media_type, body)
        assert r.status_code == 201, r.text
        filed.append(r.json())
    assert {f["patient_id"] for f in filed} == {patient}
    assert [f["mrn_linked"] for f in filed] == [True, False, False, False]
    assert [f["source_format"] for f in filed] == ["hl7v2", "hl7v2", "cda", "fhir-r4"]
    # The institution's clinicians read both the canonical bundle and the sealed source.
    adt = filed[0]
    bundle = records.client.get(
        f"/records/{adt['record_id']}/content", headers=records.headers("dr-lead")
    )
    assert bundle.status_code == 200
    assert json.loads(bundle.content)["resourceType"] == "Bundle"
    source = records.client.get(
        f"/records/{adt['source_record_id']}/content", headers=records.headers("dr-lead")
    )
    assert source.status_code == 200 and source.content == adt_message
    meta = records.client.get(
        f"/records/{adt['record_id']}", headers=records.headers("dr-lead")
    ).json()
    assert meta["institution"] == INST_A and adt["source_record_id"] in meta["title"]
    # Another institution's doctor does not read them (no group, no share).
    other = records.client.get(
        f"/records/{adt['record_id']}/content", headers=records.headers("dr-member")
    )
    assert other.status_code == 403
    # The ledger: record creations and the MRN link, with no HKID, MRN or name.
    entries = hub.audit_entries(start)
    text = json.dumps(entries)
    for secret in (hkid, mrn, "CHAN", "TAI MAN", patient):
        assert secret not in text
    ops = [e.get("facts", {}).get("op") for e in entries]
    assert "patient_index.link_mrn" in ops
    created = [e for e in entries if e["action"] == "create" and e["resource"]["type"] == "record"]
    assert len(created) == 8  # a bundle and its source per submission
    assert {e["actor"]["sub"] for e in created} == {f"client:{intake.mapped_client}"}


def test_unknown_patient_and_identity_mismatch(records: RecordsHarness, intake: Intake) -> None:
    hkid, mrn = fresh_identity()
    start = records.hub.ledger_size()
    r = submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_patient"
    assert hkid not in r.text and mrn not in r.text
    assert not [e for e in records.hub.audit_entries(start) if e["action"] == "create"]
    # The MRN linked to one patient, the HKID registered to another: refused, not filed.
    other_hkid, _ = fresh_identity()
    registered(records, hkid)
    registered(records, other_hkid, mrn)  # dr-lead is at INST_A: the MRN is INST_A's
    r = submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn))
    assert r.status_code == 409 and r.json()["error"]["code"] == "identity_mismatch"


@pytest.mark.parametrize(
    ("media_type", "corrupt", "where"),
    [
        (HL7, lambda b: b.replace(b"|19800101|", b"|1980-01-01|"), "PID-7"),
        (
            CDA,
            lambda b: b.replace(b'<birthTime value="19800101"/>', b'<birthTime value="x"/>'),
            "birthTime",
        ),
        (FHIR_R4, lambda b: b.replace(b'"resourceType": "Observation"', b'"resourceType": 7'), ""),
        (HL7, lambda b: b"not a message", ""),
    ],
)
def test_malformed_input_names_the_place_never_the_content(
    records: RecordsHarness, intake: Intake, media_type: str, corrupt: Any, where: str
) -> None:
    hkid, mrn = fresh_identity()
    registered(records, hkid, mrn)
    make = {HL7: lambda: hl7("adt_a01.hl7", hkid, mrn), CDA: lambda: cda(hkid, mrn)}
    body = corrupt(make.get(media_type, lambda: fhir(hkid, mrn))())
    r = submit(records, intake.mapped, media_type, body)
    assert 400 <= r.status_code < 500, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    assert where in error["message"]
    for secret in (hkid, mrn, "CHAN", "TAI MAN", "1980-01-01"):
        assert secret not in r.text


def test_unsupported_and_missing_content_type(records: RecordsHarness, intake: Intake) -> None:
    r = submit(records, intake.mapped, "application/pdf", b"%PDF-1.7")
    assert r.status_code == 415
    r = records.client.post("/intake/messages", content=b"x", headers=intake.mapped)
    assert r.status_code == 422 and r.json()["error"]["code"] == "content_type_required"


def test_other_institution_reads_only_after_sharing_with_consent(
    records: RecordsHarness, intake: Intake
) -> None:
    """INST_A's doctor shares the intake record into a group with INST_B's doctor: read
    while the patient consents to INST_B, refused after withdrawal."""
    hkid, mrn = fresh_identity()
    patient = registered(records, hkid, mrn)
    hub = records.hub
    hub.services.consents.grant(
        hub.principal("dr-lead"), patient, institutions=[INST_A, INST_B], valid_until=None
    )
    r = submit(records, intake.mapped, HL7, hl7("oru_r01.hl7", hkid, mrn))
    record_id = r.json()["record_id"]
    groups = hub.services.groups
    state, _ = groups.create(hub.principal("dr-lead"), patient, "Synthetic intake case", "")
    gid = state.group.group_id
    from app.groups.membership import MemberRole

    groups.invite(hub.principal("dr-lead"), gid, "M20002", MemberRole.MEMBER)
    groups.accept(hub.principal("dr-member"), gid)
    shared = records.client.post(
        f"/records/{record_id}/share", json={"group_id": gid}, headers=records.headers("dr-lead")
    )
    assert shared.status_code == 201, shared.text
    read = records.client.get(f"/records/{record_id}/content", headers=records.headers("dr-member"))
    assert read.status_code == 200
    found, _ = hub.services.consents.consents(hub.principal("dr-lead"), patient)
    for consent in found:
        if consent.institution == INST_B:
            hub.services.consents.withdraw(hub.principal("dr-lead"), patient, consent.consent_id)
    again = records.client.get(
        f"/records/{record_id}/content", headers=records.headers("dr-member")
    )
    assert again.status_code == 403 and again.json()["error"]["code"] == "consent_required"


# --- each message is filed once -------------------------------------------------------------


def _patient_records(records: RecordsHarness, patient: str) -> list[str]:
    r = records.client.get(
        f"/patients/{patient}/records", params={"limit": 100}, headers=records.headers("dr-lead")
    )
    assert r.status_code == 200, r.text
    return [record["record_id"] for record in r.json()["records"]]


def _created(records: RecordsHarness, start: int) -> list[Any]:
    return [e for e in records.hub.audit_entries(start) if e["action"] == "create"]


@pytest.mark.parametrize("kind", ["hl7v2", "cda", "fhir", "fhir-header"])
def test_a_resubmitted_message_is_filed_once(
    records: RecordsHarness, intake: Intake, kind: str
) -> None:
    """A clinic system retries on timeouts: the same message again answers the first
    filing's ids (201, Idempotent-Replayed), and nothing is filed, linked or sealed twice."""
    hkid, mrn = fresh_identity()
    patient = registered(records, hkid)  # the first filing links the MRN
    media_type, body, extra = {
        "hl7v2": (HL7, hl7("oru_r01.hl7", hkid, mrn), {}),
        "cda": (CDA, cda(hkid, mrn), {}),
        "fhir": (FHIR_R4, fhir(hkid, mrn), {}),
        # no identifier in the message: the Idempotency-Key header keys it
        "fhir-header": (FHIR_R4, fhir(hkid, mrn, with_id=False), {"Idempotency-Key": message_id()}),
    }[kind]
    who = {**intake.mapped, **extra}
    first = submit(records, who, media_type, body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers and first.json()["mrn_linked"] is True
    start = records.hub.ledger_size()
    again = submit(records, who, media_type, body)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    for field in ("patient_id", "record_id", "source_record_id", "source_format"):
        assert again.json()[field] == first.json()[field]
    assert again.json()["mrn_linked"] is False and again.json()["audit_receipt"] is None
    assert _created(records, start) == []  # nothing filed again
    assert sorted(_patient_records(records, patient)) == sorted(
        [first.json()["record_id"], first.json()["source_record_id"]]
    )


def test_another_message_under_the_same_identifier_is_409(
    records: RecordsHarness, intake: Intake
) -> None:
    hkid, mrn = fresh_identity()
    patient = registered(records, hkid, mrn)
    control_id = message_id()
    first = submit(records, intake.mapped, HL7, hl7("adt_a01.hl7", hkid, mrn, control_id))
    assert first.status_code == 201, first.text
    start = records.hub.ledger_size()
    other = hl7("adt_a08.hl7", hkid, mrn, control_id)  # another message, the same MSH-10
    r = submit(records, intake.mapped, HL7, other)
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert control_id not in r.text and hkid not in r.text
    assert _created(records, start) == []
    assert len(_patient_records(records, patient)) == 2
    # the key is the client's: another message id from the same client files normally
    assert submit(records, intake.mapped, HL7, hl7("adt_a08.hl7", hkid, mrn)).status_code == 201


def test_a_message_without_an_identifier_needs_an_idempotency_key(
    records: RecordsHarness, intake: Intake
) -> None:
    hkid, mrn = fresh_identity()
    registered(records, hkid, mrn)
    body = fhir(hkid, mrn, with_id=False)
    r = submit(records, intake.mapped, FHIR_R4, body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_required"
    bad = submit(records, {**intake.mapped, "Idempotency-Key": "short"}, FHIR_R4, body)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_a_retry_after_a_partial_filing_files_only_the_bundle(
    records: RecordsHarness, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source commits, the bundle's commit fails (a crash, a timeout): the retry keeps
    that source and files the bundle beside it, never a second source."""
    from app.records.service import RecordService

    hkid, mrn = fresh_identity()
    patient = registered(records, hkid, mrn)
    body = cda(hkid, mrn)
    real = RecordService.file_intake

    def bundle_fails(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("source"):
            raise RuntimeError("the bundle's commit was lost")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RecordService, "file_intake", bundle_fails)
    client = records.client
    with pytest.raises(RuntimeError):
        client.post(
            "/intake/messages", content=body, headers={**intake.mapped, "Content-Type": CDA}
        )
    monkeypatch.setattr(RecordService, "file_intake", real)
    (source_id,) = _patient_records(records, patient)
    r = submit(records, intake.mapped, CDA, body)
    assert r.status_code == 201 and r.json()["source_record_id"] == source_id
    assert sorted(_patient_records(records, patient)) == sorted([source_id, r.json()["record_id"]])


def test_the_documented_examples_are_filed(records: RecordsHarness, intake: Intake) -> None:
    """The request examples of the API document (app/intake/schemas.py) are messages the
    route files, for the synthetic patient they name."""
    from app.intake.schemas import CDA_EXAMPLE, FHIR_EXAMPLE, HL7V2_EXAMPLE

    registered(records, "Z683365A")
    for media_type, body in (
        (HL7, HL7V2_EXAMPLE.encode()),
        (CDA, CDA_EXAMPLE.encode()),
        (FHIR_R4, json.dumps(FHIR_EXAMPLE).encode()),
    ):
        r = submit(records, intake.mapped, media_type, body)
        assert r.status_code == 201, (media_type, r.text)
