"""Request and response bodies of the sharing-consent routes.

A substitute decision maker's HKID travels only in the request body and is never echoed:
responses carry the consents as FHIR R4B ``Consent`` resources, where the SDM is a keyed
reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from app.audit.schemas import Receipt
from app.consent.model import SdmRelationship, SubstituteBasis
from app.schemas import Strict

# An HKID as people write it; app.patients.hkid validates the check digit.
HkidText = Annotated[str, Field(min_length=8, max_length=16, pattern=r"^[A-Za-z0-9() ]+$")]

InstitutionId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]


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
    institutions: Annotated[list[InstitutionId], Field(min_length=1, max_length=20)]
    # Absent: until withdrawn. Present: the consent expires then (must be after now).
    valid_until: Annotated[datetime | None, AfterValidator(_aware)] = None
    # Absent: the patient consents themself.
    substitute: SubstituteBody | None = None


class WithdrawConsentBody(Strict):
    # Absent: the patient withdraws themself.
    substitute: SubstituteBody | None = None


class ConsentsOut(BaseModel):
    """The consents as FHIR R4B ``Consent`` resources (app/consent/fhir.py)."""

    consents: list[dict[str, Any]]
    audit_receipt: Receipt


class ConsentOut(BaseModel):
    consent: dict[str, Any]
    audit_receipt: Receipt
