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
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hub_testkit import INST_A, INST_B
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


@dataclass(frozen=True)
class Intake:
    mapped: dict[str, str]  # Authorization header of INST_A's clinic system
    unmapped: dict[str, str]  # a client with the scope, mapped to no institution
    mapped_client: str


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
    url = local_token_url(hub.endpoint, domain)
    return Intake(_token(url, *made["cms-a"]), _token(url, *made["cms-unmapped"]), made["cms-a"][0])


def fresh_identity() -> tuple[str, str]:
    """(HKID compact, MRN): synthetic, HKID with a valid check digit."""
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"Z{digits}{compute_check_digit('Z', digits)}", f"CA{secrets.randbelow(10**7):07d}"


def hl7(sample: str, hkid: str, mrn: str) -> bytes:
    body = (SAMPLES / sample).read_bytes()
    return body.replace(b"CA0661125", mrn.encode()).replace(
        b"XC241592(8)", f"{hkid[:-1]}({hkid[-1]})".encode()
    )


def cda(hkid: str, mrn: str) -> bytes:
    body = (SAMPLES / "discharge_summary.cda.xml").read_bytes()
    return body.replace(b"HB79763355", mrn.encode()).replace(b"XC2415928", hkid.encode())


def fhir(hkid: str, mrn: str) -> bytes:
    body = (SAMPLES / "observation_r4.fhir-in.json").read_bytes()
    return body.replace(b"HB79763355", mrn.encode()).replace(b"XC2415928", hkid.encode())


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


def test_submissions_of_each_kind_land_as_one_patients_records(
    records: RecordsHarness, intake: Intake
) -> None:
    hkid, mrn = fresh_identity()
    patient = registered(records, hkid)  # by HKID only: the MRN is linked by the first
    hub = records.hub
    start = hub.ledger_size()
    filed = []
    for media_type, body in (
        (HL7, hl7("adt_a01.hl7", hkid, mrn)),
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
    assert source.status_code == 200 and source.content == hl7("adt_a01.hl7", hkid, mrn)
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
