"""The intake route's answer: identifiers and codes only, never patient content."""

from __future__ import annotations

from pydantic import BaseModel

from app.audit.schemas import Receipt


class IntakeResult(BaseModel):
    # The hub's opaque patient id the message was filed under.
    patient_id: str
    # The canonical FHIR R4B bundle, and the source as received (both sealed).
    record_id: str
    source_record_id: str
    source_format: str
    # Whether this submission linked the institution's MRN to the patient (found by HKID).
    mrn_linked: bool
    audit_receipt: Receipt | None
