"""Request and response bodies of the sharing-consent routes.

A substitute decision maker's HKID travels only in the request body and is never echoed:
responses carry the consents as FHIR R4B ``Consent`` resources, where the SDM is a keyed
reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.audit.schemas import Receipt
from app.consent.model import SdmRelationship, SubstituteBasis
from app.schemas import Strict

# An HKID as people write it; app.patients.hkid validates the check digit.
HkidText = Annotated[str, Field(min_length=8, max_length=16, pattern=r"^[A-Za-z0-9() ]+$")]

InstitutionId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]

# The API document's examples (synthetic): a consent as app/consent/fhir.py renders it.
_HUB = "https://fhir.health-collab-hub.invalid"
_PATIENT = {"system": f"{_HUB}/sid/patient-ref", "value": "pt-6dde7bc9f14d"}
CONSENT_EXAMPLE: dict[str, Any] = {
    "resourceType": "Consent",
    "extension": [
        {
            "url": f"{_HUB}/StructureDefinition/consent-recorded-by",
            "valueString": "3f1c6c0e-synthetic-sub",
        }
    ],
    "identifier": [
        {"system": f"{_HUB}/sid/sharing-consent", "value": "cs-00000000000000000000000000000001"}
    ],
    "status": "active",
    "scope": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
            }
        ]
    },
    "category": [
        {
            "coding": [
                {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
            ]
        }
    ],
    "patient": {"identifier": _PATIENT},
    "dateTime": "2026-11-30T01:00:00+00:00",
    "performer": [{"type": "Patient", "identifier": _PATIENT}],
    "policyRule": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
    },
    "provision": {
        "type": "permit",
        "period": {"start": "2026-11-30T01:00:00+00:00"},
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {
                    "type": "Organization",
                    "identifier": {"system": f"{_HUB}/sid/institution", "value": "hosp-a"},
                },
            }
        ],
        "action": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": code,
                    }
                ]
            }
            for code in ("access", "disclose")
        ],
    },
}
RECEIPT_EXAMPLE: dict[str, Any] = {
    "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
    "store": "ledger",
    "position": "5",
}


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError("valid_until must carry its time zone")
    return moment


class SubstituteBody(Strict):
    """Who decides for the patient, and on what basis (relationship admitted per basis)."""

    hkid: HkidText
    relationship: SdmRelationship
    basis: SubstituteBasis


class GrantConsentBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"institutions": ["hosp-a"]},
                {
                    "institutions": ["hosp-a", "clinic-b"],
                    "valid_until": "2027-05-30T00:00:00+08:00",
                    "substitute": {
                        "hkid": "A123456(3)",
                        "relationship": "parent",
                        "basis": "minor",
                    },
                },
            ]
        }
    )

    institutions: Annotated[list[InstitutionId], Field(min_length=1, max_length=20)]
    # Absent: until withdrawn. Present: the consent expires then (must be after now).
    valid_until: Annotated[datetime | None, AfterValidator(_aware)] = None
    # Absent: the patient consents themself.
    substitute: SubstituteBody | None = None


class WithdrawConsentBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{}]})

    # Absent: the patient withdraws themself.
    substitute: SubstituteBody | None = None


class ConsentsOut(BaseModel):
    """The consents as FHIR R4B ``Consent`` resources (app/consent/fhir.py)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"consents": [CONSENT_EXAMPLE], "audit_receipt": RECEIPT_EXAMPLE}]
        }
    )

    consents: list[dict[str, Any]]
    audit_receipt: Receipt


class ConsentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "consent": {**CONSENT_EXAMPLE, "status": "inactive"},
                    "audit_receipt": RECEIPT_EXAMPLE,
                }
            ]
        }
    )

    consent: dict[str, Any]
    audit_receipt: Receipt
