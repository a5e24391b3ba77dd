"""FHIR R4 and R4B JSON inputs to the canonical FHIR R4B Bundle.

The version comes from the media type's ``fhirVersion`` parameter (the FHIR
specification's own): ``4.0`` is R4, ``4.3`` or none is R4B. Anything else is refused.

R4 -> R4B: R4B (4.3) changed only the medication-definition, evidence and subscription
resources; the patient-care and documentation resources the hub carries are the same in
both. So an R4 input is accepted when every resource in it (entries, contained resources,
nested Bundles) is of a type in :data:`R4_CARRIED_TYPES`, and is then validated as R4B:
if R4B accepts it, the JSON is already R4B. A resource of any other type is refused
with its location; the type is named only when it is one of FHIR's own resource names.

Canonical form: a Bundle stays the Bundle it is (its type and entries unchanged); a single
resource is wrapped as the one entry of a ``collection`` Bundle. Validation is the
project's one FHIR validator (:func:`app.content.validate_fhir`), whose messages
name element paths only. The patient's MRN and HKID are read from the ``Patient``
resources: an identifier typed ``MR`` (HL7 table 0203), or in the institution's MRN
system, is the MRN; one in the hub's HKID system is the HKID (check digit validated).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from app.content import (
    FHIR_JSON,
    MAX_FHIR_BYTES,
    InvalidContent,
    UnsupportedContent,
    parse_content_type,
    validate_fhir,
)
from app.interop import systems
from app.interop.canonical import (
    BundleBuilder,
    ConvertedRecord,
    SubjectIdentifiers,
    canonical_json,
    checked_hkid,
)
from app.interop.errors import (
    InvalidSource,
    Reason,
    SourceFormat,
    SourceTooLarge,
    UnsupportedSource,
    UnsupportedSourceContent,
)
from app.patients.hkid import Hkid

MEDIA_TYPES = (FHIR_JSON,)
FHIR_VERSIONS = {"4.0": SourceFormat.FHIR_R4, "4.3": SourceFormat.FHIR_R4B}

# Resource types whose R4 and R4B definitions are the same and that the hub carries.
R4_CARRIED_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Appointment",
        "Binary",
        "Bundle",
        "CarePlan",
        "CareTeam",
        "ClinicalImpression",
        "Composition",
        "Condition",
        "Consent",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "EpisodeOfCare",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "ImagingStudy",
        "Immunization",
        "Location",
        "Media",
        "Medication",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Organization",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "ServiceRequest",
        "Specimen",
    }
)


def convert_fhir(source: bytes, media_type: str, *, institution: str) -> ConvertedRecord:
    """Validate a FHIR R4 or R4B JSON resource and return it as the canonical R4B Bundle.

    Args:
        source: the JSON bytes.
        media_type: ``application/fhir+json`` with an optional ``fhirVersion``.
        institution: the submitting institution's id (scopes its MRN system).

    Raises:
        UnsupportedSource: not FHIR JSON, or a ``fhirVersion`` other than 4.0 or 4.3.
        SourceTooLarge: above the records validator's FHIR cap.
        InvalidSource: not valid R4B (naming the element path).
        UnsupportedSourceContent: an R4 resource type the hub does not carry into R4B.
    """
    source_format = fhir_version(media_type)
    if len(source) > MAX_FHIR_BYTES:
        raise SourceTooLarge(source_format, MAX_FHIR_BYTES)
    if not systems.valid_institution(institution):
        raise ValueError("institution ids are lowercase tokens")
    if source_format is SourceFormat.FHIR_R4:
        _check_r4_types(source, source_format)
    try:
        resource_type = validate_fhir(source)
    except InvalidContent as exc:
        raise InvalidSource.with_message(source_format, "resource", exc.message) from None
    # validate_fhir has refused duplicate keys, NaN and malformed JSON: this parse succeeds.
    # Decimals stay Decimal so canonical JSON keeps their digits (5.80 is not 5.8 in FHIR).
    document: dict[str, Any] = json.loads(source.decode("utf-8-sig"), parse_float=Decimal)
    if resource_type == "Bundle":
        bundle = document
    else:
        builder = BundleBuilder(source, "collection")
        builder.add("resource", document)
        bundle = builder.bundle()
    subject = _subject(bundle, institution, source_format)
    return ConvertedRecord(
        canonical_json(bundle),
        source,
        media_type,
        source_format,
        subject,
        message_id=_message_id(document),
    )


def _message_id(document: dict[str, Any]) -> str | None:
    """The submission's own identifier: a Bundle's ``identifier`` (system and value), else
    the resource's ``id`` with its ``meta.versionId`` (an id alone names every version of
    the resource, not this one); None when it carries neither."""
    identifier = document.get("identifier")
    if document.get("resourceType") == "Bundle" and isinstance(identifier, dict):
        value = identifier.get("value")
        if isinstance(value, str) and value:
            return f"fhir:identifier:{identifier.get('system') or ''}|{value}"
    resource_id = document.get("id")
    version = (document.get("meta") or {}).get("versionId")
    if isinstance(resource_id, str) and isinstance(version, str) and resource_id and version:
        return f"fhir:{document.get('resourceType')}/{resource_id}/_history/{version}"
    return None


def fhir_version(media_type: str) -> SourceFormat:
    """R4 or R4B from an ``application/fhir+json`` media type.

    Raises:
        UnsupportedSource: another media type, or a ``fhirVersion`` other than 4.0/4.3.
    """
    try:
        media = parse_content_type(media_type)
    except UnsupportedContent:
        raise UnsupportedSource(FHIR_JSON, "malformed media type") from None
    if media.essence != FHIR_JSON:
        raise UnsupportedSource(FHIR_JSON)
    version = media.parameter("fhirversion") or "4.3"
    if version not in FHIR_VERSIONS:
        raise UnsupportedSource(FHIR_JSON, "fhirVersion must be 4.0 (R4) or 4.3 (R4B)")
    return FHIR_VERSIONS[version]


def _check_r4_types(source: bytes, source_format: SourceFormat) -> None:
    """Refuse an R4 document holding a resource type not carried into R4B.

    Runs before validation, so an R4-only type is reported as such rather than as an
    unknown R4B type. A body that does not parse is left to the validator to describe.
    """
    try:
        document = json.loads(source.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return
    for path, kind in _resources(document, "resource"):
        if kind not in R4_CARRIED_TYPES:
            raise UnsupportedSourceContent(
                source_format,
                f"the resource type at {path}",
                "the R4 patient-care and documentation resources unchanged in R4B",
            )


def _resources(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every (path, resourceType) at the places resources sit: the document itself,
    ``contained[i]`` and ``entry[i].resource`` (recursively).

    Only those element names and indices make up a path, never a key from the document.
    """
    if not isinstance(node, dict):
        return
    kind = node.get("resourceType")
    if isinstance(kind, str):  # a missing or odd resourceType is the validator's to report
        yield path, kind
    for index, contained in enumerate(_list(node.get("contained"))):
        yield from _resources(contained, f"{path}.contained[{index}]")
    for index, entry in enumerate(_list(node.get("entry"))):
        if isinstance(entry, dict) and "resource" in entry:
            yield from _resources(entry["resource"], f"{path}.entry[{index}].resource")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _subject(
    bundle: dict[str, Any], institution: str, source_format: SourceFormat
) -> SubjectIdentifiers:
    """The MRN and HKID named by the Bundle's Patient resources and subject references.

    Raises:
        InvalidSource: an HKID with a bad check digit, or two different MRNs or HKIDs.
    """
    mrn_system = systems.mrn_system(institution)
    mrns: set[str] = set()
    hkid: Hkid | None = None
    for location, identifier in _patient_identifiers(bundle):
        value = identifier.get("value")
        if not isinstance(value, str):
            continue
        coding = (identifier.get("type") or {}).get("coding") or []
        codes = {c.get("code") for c in coding if c.get("system") == systems.V2_0203}
        if identifier.get("system") == systems.HKID_SYSTEM:
            found = checked_hkid(value, source_format, f"{location}.value")
            if hkid is not None and hkid != found:
                raise InvalidSource(source_format, f"{location}.value", Reason.REPEATED)
            hkid = found
        elif identifier.get("system") == mrn_system or "MR" in codes:
            mrns.add(value)
            if len(mrns) > 1:
                raise InvalidSource(source_format, f"{location}.value", Reason.REPEATED)
    return SubjectIdentifiers(institution, next(iter(mrns), None), hkid)


def _patient_identifiers(bundle: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, identifier) of every Patient's identifiers and every logical patient reference
    (``subject.identifier``, ``patient.identifier``) in the Bundle's entries."""
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") or {}
        base = f"Bundle.entry[{index}].resource"
        if resource.get("resourceType") == "Patient":
            for position, identifier in enumerate(resource.get("identifier") or []):
                yield f"{base}.identifier[{position}]", identifier
        for element in ("subject", "patient"):
            reference = resource.get(element)
            if isinstance(reference, dict) and isinstance(reference.get("identifier"), dict):
                yield f"{base}.{element}.identifier", reference["identifier"]
