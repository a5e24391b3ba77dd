"""Sharing consents as FHIR R4B ``Consent`` resources, and back.

The mapping (every resource is validated with ``fhir.resources`` R4B before it is returned):

=====================================  ===============================================
:class:`~app.consent.model.SharingConsent`   FHIR R4B ``Consent``
=====================================  ===============================================
``consent_id``                         ``identifier[0]`` (hub consent system)
withdrawn or not                       ``status``: ``inactive`` / ``active``
(fixed)                                ``scope`` consentscope ``patient-privacy``;
                                       ``category`` LOINC 59284-0; ``policyRule``
                                       v3-ActCode ``OPTIN``
``patient_ref``                        ``patient.identifier`` (hub patient-ref system)
``given_at``                           ``dateTime`` and ``provision.period.start``
``valid_until``                        ``provision.period.end`` (absent: indefinite)
``institution``                        ``provision.actor[0]``: role ``IRCP``
                                       (information recipient), Organization by id
(fixed)                                ``provision.type`` ``permit``; ``provision.action``
                                       ``access`` and ``disclose``
``given_by`` (SDM) / patient           ``performer[0]``: RelatedPerson by ``sdm_ref`` /
                                       the Patient; the SDM's basis and relationship in
                                       the ``substitute-decision-basis`` extension
``recorded_by``                        ``consent-recorded-by`` extension
``withdrawn_at/by/via``                ``consent-withdrawal`` extension (``at``, ``by``,
                                       and ``via`` with its own basis extension)
=====================================  ===============================================

FHIR has no element for a withdrawal's time or for why an SDM may consent, hence the
hub's extensions (their URLs in :mod:`app.interop.systems`). No names or HKIDs appear:
patients and SDMs are keyed references. :func:`consent_from_fhir` reads back exactly what
:func:`consent_to_fhir` writes (the property tests round-trip arbitrary consents).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.consent.model import (
    SdmRelationship,
    SharingConsent,
    SubstituteBasis,
    SubstituteDecisionMaker,
)
from app.interop import systems


class InvalidConsentResource(ValueError):
    """A Consent resource that is not one this module wrote (fixed message)."""


def consent_to_fhir(consent: SharingConsent) -> dict[str, Any]:
    """The consent as a validated FHIR R4B ``Consent`` (JSON-ready dict)."""
    from fhir.resources.R4B.consent import Consent

    patient = {"identifier": {"system": systems.PATIENT_REF_SYSTEM, "value": consent.patient_ref}}
    performer = (
        _sdm_reference(consent.given_by) if consent.given_by else {"type": "Patient", **patient}
    )
    period = {"start": _time(consent.given_at)}
    if consent.valid_until is not None:
        period["end"] = _time(consent.valid_until)
    extensions: list[dict[str, Any]] = [
        {"url": systems.CONSENT_RECORDED_BY_EXTENSION, "valueString": consent.recorded_by}
    ]
    if consent.given_by is not None:
        extensions.append(_basis_extension(consent.given_by))
    if consent.withdrawn_at is not None:
        withdrawal: list[dict[str, Any]] = [
            {"url": "at", "valueDateTime": _time(consent.withdrawn_at)},
            {"url": "by", "valueString": consent.withdrawn_by or ""},
        ]
        if consent.withdrawn_via is not None:
            withdrawal.append(
                {
                    "url": "via",
                    "valueReference": _sdm_reference(consent.withdrawn_via),
                    "extension": [_basis_extension(consent.withdrawn_via)],
                }
            )
        extensions.append({"url": systems.CONSENT_WITHDRAWAL_EXTENSION, "extension": withdrawal})
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "extension": extensions,
        "identifier": [{"system": systems.CONSENT_ID_SYSTEM, "value": consent.consent_id}],
        "status": "inactive" if consent.withdrawn_at is not None else "active",
        "scope": {"coding": [{"system": systems.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": systems.LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": patient,
        "dateTime": _time(consent.given_at),
        "performer": [performer],
        "policyRule": {"coding": [{"system": systems.V3_ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [
                {
                    "role": {"coding": [{"system": systems.V3_PARTICIPATION_TYPE, "code": "IRCP"}]},
                    "reference": {
                        "type": "Organization",
                        "identifier": {
                            "system": systems.INSTITUTION_SYSTEM,
                            "value": consent.institution,
                        },
                    },
                }
            ],
            "action": [
                {"coding": [{"system": systems.CONSENT_ACTION, "code": "access"}]},
                {"coding": [{"system": systems.CONSENT_ACTION, "code": "disclose"}]},
            ],
        },
    }
    Consent.model_validate(resource)
    return resource


def consent_from_fhir(resource: dict[str, Any]) -> SharingConsent:
    """Read back a Consent written by :func:`consent_to_fhir`.

    Raises:
        InvalidConsentResource: not valid R4B, or missing what this module writes.
    """
    from fhir.resources.R4B.consent import Consent
    from pydantic import ValidationError

    try:
        Consent.model_validate(resource)
        extensions = {e["url"]: e for e in resource.get("extension", [])}
        provision = resource["provision"]
        period = provision["period"]
        given_by = None
        if systems.SDM_BASIS_EXTENSION in extensions:
            given_by = _read_sdm(resource["performer"][0], extensions[systems.SDM_BASIS_EXTENSION])
        withdrawn_at = withdrawn_by = withdrawn_via = None
        if systems.CONSENT_WITHDRAWAL_EXTENSION in extensions:
            parts = {
                e["url"]: e for e in extensions[systems.CONSENT_WITHDRAWAL_EXTENSION]["extension"]
            }
            withdrawn_at = datetime.fromisoformat(parts["at"]["valueDateTime"])
            withdrawn_by = parts["by"]["valueString"]
            if "via" in parts:
                via = parts["via"]
                withdrawn_via = _read_sdm(via["valueReference"], via["extension"][0])
        return SharingConsent(
            consent_id=resource["identifier"][0]["value"],
            patient_ref=resource["patient"]["identifier"]["value"],
            institution=provision["actor"][0]["reference"]["identifier"]["value"],
            given_at=datetime.fromisoformat(period["start"]),
            valid_until=datetime.fromisoformat(period["end"]) if "end" in period else None,
            recorded_by=extensions[systems.CONSENT_RECORDED_BY_EXTENSION]["valueString"],
            given_by=given_by,
            withdrawn_at=withdrawn_at,
            withdrawn_by=withdrawn_by,
            withdrawn_via=withdrawn_via,
        )
    except (ValidationError, KeyError, IndexError, TypeError, ValueError):
        raise InvalidConsentResource("not a sharing consent written by the hub") from None


def _sdm_reference(sdm: SubstituteDecisionMaker) -> dict[str, Any]:
    return {
        "type": "RelatedPerson",
        "identifier": {"system": systems.SDM_REF_SYSTEM, "value": sdm.sdm_ref},
    }


def _basis_extension(sdm: SubstituteDecisionMaker) -> dict[str, Any]:
    return {
        "url": systems.SDM_BASIS_EXTENSION,
        "extension": [
            {"url": "basis", "valueCode": sdm.basis.value},
            {"url": "relationship", "valueCode": sdm.relationship.value},
        ],
    }


def _read_sdm(reference: dict[str, Any], basis: dict[str, Any]) -> SubstituteDecisionMaker:
    parts = {e["url"]: e["valueCode"] for e in basis["extension"]}
    return SubstituteDecisionMaker(
        sdm_ref=reference["identifier"]["value"],
        relationship=SdmRelationship(parts["relationship"]),
        basis=SubstituteBasis(parts["basis"]),
    )


def _time(moment: datetime) -> str:
    return moment.isoformat()
