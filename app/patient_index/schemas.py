"""Request and response bodies of the patient index routes.

HKIDs and MRNs travel only in request bodies (never in paths or query strings, which
API Gateway and proxies log) and are never echoed back: responses carry the hub's opaque
``patient_id`` and coded outcomes only.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.audit.schemas import Receipt
from app.patients.index import ChangeReason
from app.schemas import PatientId, Strict

# An HKID as people write it (letters, digits, spaces, brackets); app.patients.hkid
# validates the check digit and answers a fixed message.
HkidText = Annotated[str, Field(min_length=8, max_length=16, pattern=r"^[A-Za-z0-9() ]+$")]
# An institution's medical record number: printable ASCII, no separators of ours.
MrnText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class RegisterPatientBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"hkid": "A123456(3)", "mrn": "HN-SYN-000123"}]}
    )

    hkid: HkidText | None = None
    mrn: MrnText | None = None

    @model_validator(mode="after")
    def _one_identifier_at_least(self) -> RegisterPatientBody:
        if self.hkid is None and self.mrn is None:
            raise ValueError("give the patient's HKID, the institution's MRN, or both")
        return self


class FindPatientBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"mrn": "HN-SYN-000123"}]})

    hkid: HkidText | None = None
    mrn: MrnText | None = None

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> FindPatientBody:
        if (self.hkid is None) == (self.mrn is None):
            raise ValueError("give exactly one of hkid or mrn")
        return self


class LinkMrnBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mrn": "HN-SYN-000123", "reason": "institution_request"}]}
    )

    mrn: MrnText
    reason: ChangeReason = ChangeReason.INSTITUTION_REQUEST


class UnlinkMrnBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mrn": "HN-SYN-000123", "reason": "mrn_retired"}]}
    )

    mrn: MrnText
    reason: ChangeReason


class CorrectMrnLinkBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"mrn": "HN-SYN-000123", "patient_id": "pt-6dde7bc9f14d", "reason": "wrong_patient"}
            ]
        }
    )

    mrn: MrnText
    patient_id: PatientId  # the patient the MRN should name
    reason: ChangeReason


class CorrectHkidBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"hkid": "A123456(3)", "reason": "data_entry_error"}]}
    )

    hkid: HkidText
    reason: ChangeReason


class PatientOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    patient_id: str
    audit_receipt: Receipt | None = None


class IndexChangeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "change": "mrn_linked",
                    "seq": 4,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    patient_id: str
    change: str  # the index event's kind
    seq: int  # its position in the index's log
    audit_receipt: Receipt
