"""The intake route's answer: identifiers and codes only, never patient content; and the
document's synthetic example submissions (one per kind of media type)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.audit.schemas import Receipt


class IntakeResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "record_id": "5b0c7c2d9e1f4a3b8c6d2e0f1a2b3c4d",
                    "source_record_id": "9a8b7c6d5e4f40312a1b0c9d8e7f6a5b",
                    "source_format": "hl7v2",
                    "mrn_linked": True,
                    "audit_receipt": {
                        "event_id": "0d9f3c1e6a2b4c7d8e5f1a2b3c4d5e6f",
                        "store": "ledger",
                        "position": "4127",
                    },
                }
            ]
        }
    )

    # The hub's opaque patient id the message was filed under.
    patient_id: str
    # The canonical FHIR R4B bundle, and the source as received (both sealed).
    record_id: str
    source_record_id: str
    source_format: str
    # Whether this submission linked the institution's MRN to the patient (found by HKID).
    mrn_linked: bool
    audit_receipt: Receipt | None


# Synthetic submissions for the API document (tests/app/records/test_record_intake.py
# converts each): a made-up patient, HKID Z683365(A) (valid check digit), MRN CA0000001.
HL7V2_EXAMPLE = (
    "MSH|^~\\&|SYNTH-CMS|CLINIC-A|HUB|HUB|20260106100000||ADT^A04^ADT_A01|CA-EX-0001|P|2.5.1"
    "||||||UNICODE UTF-8\r"
    "EVN|A04|20260106100000\r"
    "PID|1||CA0000001^^^CLINIC-A^MR~Z683365(A)^^^HKG^NNHKG||CHAN^TAI MAN^^^MR^^L||19800101|M\r"
    "PV1|1|O|GOPC^^^CLINIC-A\r"
)
FHIR_EXAMPLE = {
    "resourceType": "Bundle",
    "identifier": {"system": "urn:oid:2.25.1155", "value": "CA-EX-0002"},
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0001",
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                }
                            ]
                        },
                        "system": "urn:oid:2.25.1155",
                        "value": "CA0000001",
                    },
                    {
                        "system": "https://fhir.health-collab-hub.invalid/sid/hkid",
                        "value": "Z683365A",
                    },
                ],
                "gender": "male",
                "birthDate": "1980-01-01",
            },
        },
        {
            "fullUrl": "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0002",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": "urn:uuid:0b0e64a4-6d0d-4d1a-9d55-6a1d4a0d0001"},
                "effectiveDateTime": "2026-01-09T08:00:00+08:00",
                "valueQuantity": {
                    "value": 6.4,
                    "unit": "%",
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            },
        },
    ],
}
CDA_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="HK"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="2.25.92514407163651003305325016331434112917" extension="CA-EX-0003"/>
  <code code="57133-1" codeSystem="2.16.840.1.113883.6.1" displayName="Referral note"/>
  <title>Referral Letter</title>
  <effectiveTime value="20260110143000+0800"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget>
    <patientRole>
      <id root="2.25.115631129371402779524452417711116340145" extension="CA0000001"/>
      <id root="2.25.330220371262004718919806715494581431586" extension="Z683365A"/>
      <patient>
        <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="19800101"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20260110143000+0800"/>
    <assignedAuthor>
      <id root="2.25.161999420870332369317016947778175295683" extension="ZZ20001"/>
    </assignedAuthor>
  </author>
  <custodian>
    <assignedCustodian>
      <representedCustodianOrganization>
        <id root="2.25.115631129371402779524452417711116340145"/>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
  <component>
    <nonXMLBody>
      <text mediaType="text/plain" representation="B64">U3ludGhldGljIHJlZmVycmFsLg==</text>
    </nonXMLBody>
  </component>
</ClinicalDocument>
"""
