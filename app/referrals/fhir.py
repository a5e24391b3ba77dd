"""A referral as FHIR R4B: a ``ServiceRequest`` for the referral, a ``Task`` for its state.

The export is a ``collection`` Bundle of the two, validated with ``fhir.resources.R4B``
before it leaves the service. Mapping (docs/referrals.md has the table):

- ``ServiceRequest``: category SNOMED CT 3457005 *Patient referral*; ``priority`` from the
  urgency (routine -> ``routine``, urgent -> ``urgent``, emergency -> ``stat``); subject,
  requester and performers by identifier only (the patient id issued by the referring
  system, Medical Council numbers, institution ids; never names); ``performerType`` the
  specialty and team; ``note`` the clinical question; ``supportingInfo`` the attached
  records; the legal basis of the disclosure and what the patient was told as
  extensions; ``status`` ``active`` while requested or accepted, ``completed``, or
  ``revoked`` once declined or cancelled.
- ``Task``: ``focus`` the ServiceRequest, ``status`` requested / accepted / rejected /
  cancelled / completed, ``owner`` the acceptor (else the addressed institution),
  ``statusReason`` the coded decline reason, ``businessStatus`` the redirect count,
  ``executionPeriod`` from acceptance to completion.

The Bundle carries the clinical question: it is built only for a request Cedar allowed
to view the referral, and is never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.interop.systems import (
    HUB_FHIR_BASE,
    INSTITUTION_SYSTEM,
    MCHK_REGISTRATION_SYSTEM,
    SNOMED,
)
from app.referrals.lifecycle import Referral, ReferralStatus, Urgency

REFERRAL_SYSTEM = f"{HUB_FHIR_BASE}/sid/referral"
PATIENT_ID_SYSTEM = f"{HUB_FHIR_BASE}/sid/patient-id"
RECORD_SYSTEM = f"{HUB_FHIR_BASE}/sid/record"
LEGAL_BASIS_EXTENSION = f"{HUB_FHIR_BASE}/StructureDefinition/disclosure-legal-basis"
PATIENT_NOTICE_EXTENSION = f"{HUB_FHIR_BASE}/StructureDefinition/disclosure-patient-notice"
DECLINE_REASON_SYSTEM = f"{HUB_FHIR_BASE}/CodeSystem/referral-decline-reason"

PRIORITY = {Urgency.ROUTINE: "routine", Urgency.URGENT: "urgent", Urgency.EMERGENCY: "stat"}
REQUEST_STATUS = {
    ReferralStatus.REQUESTED: "active",
    ReferralStatus.ACCEPTED: "active",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.DECLINED: "revoked",
    ReferralStatus.CANCELLED: "revoked",
}
TASK_STATUS = {
    ReferralStatus.REQUESTED: "requested",
    ReferralStatus.ACCEPTED: "accepted",
    ReferralStatus.DECLINED: "rejected",
    ReferralStatus.CANCELLED: "cancelled",
    ReferralStatus.COMPLETED: "completed",
}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _practitioner(reg_no: str) -> dict[str, Any]:
    return {
        "type": "Practitioner",
        "identifier": {"system": MCHK_REGISTRATION_SYSTEM, "value": reg_no},
    }


def _organization(institution: str) -> dict[str, Any]:
    return {
        "type": "Organization",
        "identifier": {"system": INSTITUTION_SYSTEM, "value": institution},
    }


def service_request(r: Referral, question: str) -> dict[str, Any]:
    performers = [_organization(r.target.institution)]
    if r.target.practitioner:
        performers.append(_practitioner(r.target.practitioner))
    performer_type = " / ".join(p for p in (r.target.specialty, r.target.team) if p)
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": r.referral_id,
        "identifier": [{"system": REFERRAL_SYSTEM, "value": r.referral_id}],
        "status": REQUEST_STATUS[r.status],
        "intent": "order",
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
        ],
        "priority": PRIORITY[r.urgency],
        "subject": {
            "type": "Patient",
            "identifier": {"system": PATIENT_ID_SYSTEM, "value": r.patient_id},
        },
        "authoredOn": _time(r.created_at),
        "requester": _practitioner(r.referrer),
        "performer": performers,
        "note": [{"text": question}],
        "extension": [
            {"url": LEGAL_BASIS_EXTENSION, "valueCode": r.legal_basis.value},
            {"url": PATIENT_NOTICE_EXTENSION, "valueCode": r.patient_notice.value},
        ],
    }
    if performer_type:
        resource["performerType"] = {"text": performer_type}
    if r.attachments:
        resource["supportingInfo"] = [
            {"type": "DocumentReference", "identifier": {"system": RECORD_SYSTEM, "value": a}}
            for a in r.attachments
        ]
    return resource


def task(r: Referral) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"{r.referral_id}-task",
        "identifier": [{"system": REFERRAL_SYSTEM, "value": r.referral_id}],
        "status": TASK_STATUS[r.status],
        "intent": "order",
        "priority": PRIORITY[r.urgency],
        "focus": {"reference": f"ServiceRequest/{r.referral_id}"},
        "for": {
            "type": "Patient",
            "identifier": {"system": PATIENT_ID_SYSTEM, "value": r.patient_id},
        },
        "authoredOn": _time(r.created_at),
        "lastModified": _time(r.updated_at or r.created_at),
        "requester": _practitioner(r.referrer),
        "owner": _practitioner(r.accepted_by)
        if r.accepted_by
        else _organization(r.target.institution),
    }
    if r.redirect_count:
        resource["businessStatus"] = {"text": f"redirected {r.redirect_count} time(s)"}
    if r.decline_reason is not None:
        resource["statusReason"] = {
            "coding": [{"system": DECLINE_REASON_SYSTEM, "code": r.decline_reason.value}]
        }
    if r.accepted_at is not None:
        period = {"start": _time(r.accepted_at)}
        if r.completed_at is not None:
            period["end"] = _time(r.completed_at)
        resource["executionPeriod"] = period
    return resource


def referral_bundle(r: Referral, question: str) -> dict[str, Any]:
    """The validated FHIR R4B Bundle (``collection``) of the ServiceRequest and its Task.

    Raises:
        pydantic.ValidationError: the mapping produced an invalid resource (a bug).
    """
    from fhir.resources.R4B.bundle import Bundle

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _time(r.updated_at or r.created_at),
        "entry": [
            {
                "fullUrl": f"{HUB_FHIR_BASE}/ServiceRequest/{r.referral_id}",
                "resource": service_request(r, question),
            },
            {"fullUrl": f"{HUB_FHIR_BASE}/Task/{r.referral_id}-task", "resource": task(r)},
        ],
    }
    Bundle.model_validate(bundle)
    return bundle
