"""Community-care intake: one submitted message in, one patient's records out.

For a clinic management system already authenticated (:mod:`app.intake.auth`):

1. convert the message with the EMR adapters (:func:`app.interop.convert`) for the
   system's institution: malformed input is a 4xx naming the segment and field or the
   element path, never content; nothing is stored before this succeeds;
2. resolve the patient through the index (:meth:`PatientIndexService.resolve_submitted`):
   the institution's MRN when linked, else the HKID (linking the MRN, audited); a patient
   the index does not know is 422 ``unknown_patient`` (intake never registers: the
   institution's staff do, ``POST /patients``);
3. file two records under the patient and the system's institution, each sealed by the
   service on the records path (:meth:`RecordService.file_intake`; the system has no
   doctor's device to seal on): the source exactly as received, then the canonical FHIR
   R4B bundle, whose title names the source record. Each is a ``CreateRecord`` ledger
   entry (ids, media type, length: no content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.audit.events import AuditReceipt
from app.intake.auth import SubmittingSystem
from app.interop import convert
from app.patient_index.service import PatientIndexService
from app.records.schemas import RecordCategory
from app.records.service import RecordService
from app.records.uploads import Upload

FORMAT_LABELS = {
    "hl7v2": "HL7 v2 message",
    "cda": "CDA R2 document",
    "fhir-r4": "FHIR R4 submission",
    "fhir-r4b": "FHIR R4B submission",
}


@dataclass(frozen=True)
class FiledSubmission:
    """What one submission became: ids and codes only."""

    patient_id: str
    record_id: str  # the canonical FHIR R4B bundle
    source_record_id: str  # the message as received
    source_format: str
    mrn_linked: bool  # this submission linked the institution's MRN (found by HKID)
    receipt: AuditReceipt | None  # the bundle's ledger entry


class IntakeService:
    def __init__(self, patients: PatientIndexService, records: RecordService):
        self._patients = patients
        self._records = records

    def submit(self, system: SubmittingSystem, body: bytes, content_type: str) -> FiledSubmission:
        """Convert, resolve the patient, file the source and the bundle (module docstring)."""
        principal = system.principal
        converted = convert(body, content_type, institution=principal.institution)
        patient_id, linked = self._patients.resolve_submitted(
            principal, hkid=converted.subject.hkid, mrn=converted.subject.mrn
        )
        fmt = str(converted.source_format)
        label = FORMAT_LABELS.get(fmt, fmt)
        category = _category(fmt, converted.bundle)
        source, _ = self._records.file_intake(
            principal,
            patient_id,
            Upload(converted.source_media_type, len(converted.source), [converted.source]),
            category=category,
            title=f"{label}, as received (intake)",
            source=True,
        )
        bundle, receipt = self._records.file_intake(
            principal,
            patient_id,
            Upload(converted.bundle_media_type, len(converted.bundle), [converted.bundle]),
            category=category,
            title=f"{label} (intake; source record {source.meta.record_id})",
        )
        return FiledSubmission(
            patient_id, bundle.meta.record_id, source.meta.record_id, fmt, linked, receipt
        )


def _category(fmt: str, bundle: bytes) -> RecordCategory:
    """A code from what the bundle holds: results are laboratory, documents reports."""
    if fmt == "cda":
        return RecordCategory.REPORT
    types = {
        str(entry.get("resource", {}).get("resourceType"))
        for entry in json.loads(bundle).get("entry", [])
    }
    if "DiagnosticReport" in types or "Observation" in types:
        return RecordCategory.LABORATORY
    return RecordCategory.OTHER
