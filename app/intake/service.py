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

**Each message is filed once.** A clinic system retries on timeouts, so a submission is
keyed on the submitting client (the key is stored as an HMAC bound to the client's
principal) and the message's own identifier (:attr:`ConvertedRecord.message_id`: HL7 v2
MSH-3/MSH-4/MSH-10, the CDA ClinicalDocument/id root and extension, a FHIR
Bundle.identifier or resource id with meta.versionId), or, for a message that carries
none, the ``Idempotency-Key`` header it must then send (422 ``idempotency_key_required``
without). The records idempotency mechanism (:mod:`app.records.idempotency`) holds it:
each record claims the key in its own commit (the source ``<key>/source``, the bundle
``<key>``) with a fingerprint of the source as received. A repeat of the same message
is answered, before the patient is resolved, with the first filing's ids (201, header
``Idempotent-Replayed: true``, ``mrn_linked`` false and no receipt: this request filed
and linked nothing); another message under the same key is 409
``idempotency_key_reused``; a retry after a filing that stored only the source files the
bundle beside that source, and of two concurrent submissions one files, the other
answers as its replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from app.audit.events import AuditReceipt
from app.errors import InvalidRequest
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
    replayed: bool = False  # a repeat of a message already filed: nothing filed now


def idempotency_key_required() -> InvalidRequest:
    return InvalidRequest(
        "This message carries no identifier of its own (MSH-10, ClinicalDocument/id, "
        "Bundle.identifier or id with meta.versionId): send an Idempotency-Key header.",
        code="idempotency_key_required",
    )


class IntakeService:
    def __init__(self, patients: PatientIndexService, records: RecordService):
        self._patients = patients
        self._records = records

    def submit(
        self,
        system: SubmittingSystem,
        body: bytes,
        content_type: str,
        idempotency_key: str | None = None,
    ) -> FiledSubmission:
        """Convert, resolve the patient, file the source and the bundle, once per message
        (module docstring).

        Raises:
            InvalidRequest: ``idempotency_key_required``: no message id and no header.
            IdempotencyKeyReused: another message was filed under this key (409).
        """
        principal = system.principal
        converted = convert(body, content_type, institution=principal.institution)
        if converted.message_id is not None:
            key = f"intake/{converted.message_id}"
        elif idempotency_key is not None:
            key = f"intake/header:{idempotency_key}"
        else:
            raise idempotency_key_required()
        fmt = str(converted.source_format)
        source_upload = Upload(
            converted.source_media_type, len(converted.source), [converted.source]
        )
        fingerprint = self._records.intake_fingerprint(
            principal, source_upload, hashlib.sha256(converted.source).hexdigest()
        )
        earlier = self._records.intake_replay(principal, key, fingerprint)
        if earlier is not None:
            bundle_state, source_state = earlier
            return FiledSubmission(
                bundle_state.meta.patient_id,
                bundle_state.meta.record_id,
                source_state.meta.record_id,
                fmt,
                mrn_linked=False,
                receipt=None,
                replayed=True,
            )
        patient_id, linked = self._patients.resolve_submitted(
            principal, hkid=converted.subject.hkid, mrn=converted.subject.mrn
        )
        label = FORMAT_LABELS.get(fmt, fmt)
        category = _category(fmt, converted.bundle)
        source, _, _ = self._records.file_intake(
            principal,
            patient_id,
            source_upload,
            category=category,
            title=f"{label}, as received (intake)",
            source=True,
            key=key,
            fingerprint=fingerprint,
        )
        bundle, receipt, replayed = self._records.file_intake(
            principal,
            patient_id,
            Upload(converted.bundle_media_type, len(converted.bundle), [converted.bundle]),
            category=category,
            title=f"{label} (intake; source record {source.meta.record_id})",
            key=key,
            fingerprint=fingerprint,
        )
        return FiledSubmission(
            patient_id,
            bundle.meta.record_id,
            source.meta.record_id,
            fmt,
            linked and not replayed,
            receipt,
            replayed,
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
