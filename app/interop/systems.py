"""The URIs the canonical FHIR resources use: identifier systems, code systems, extensions.

The hub's own namespaces live under ``HUB_FHIR_BASE``, a host in the ``.invalid`` top-level
domain (RFC 6761), so a placeholder can never resolve to, or be mistaken for, someone
else's registry. When eHRSS publishes its NamingSystems (and the institution registry its
OIDs), these constants are the one place to change. Institution ids are checked to be
plain tokens before they are put into a URI.
"""

from __future__ import annotations

import re

HUB_FHIR_BASE = "https://fhir.health-collab-hub.invalid"

HKID_SYSTEM = f"{HUB_FHIR_BASE}/sid/hkid"
MCHK_REGISTRATION_SYSTEM = f"{HUB_FHIR_BASE}/sid/mchk-registration"
PATIENT_REF_SYSTEM = f"{HUB_FHIR_BASE}/sid/patient-ref"
INSTITUTION_SYSTEM = f"{HUB_FHIR_BASE}/sid/institution"
SDM_REF_SYSTEM = f"{HUB_FHIR_BASE}/sid/substitute-decision-maker-ref"
CONSENT_ID_SYSTEM = f"{HUB_FHIR_BASE}/sid/sharing-consent"

# CDA: the roots (OIDs) read as HKID and as Medical Council registration. 2.25 is the
# UUID-derived arc (ITU-T X.667), so these cannot collide with a registered OID; they
# are replaced by eHRSS's when known.
HKID_OID = "2.25.330220371262004718919806715494581431586"
MCHK_OID = "2.25.161999420870332369317016947778175295683"

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"  # identifier types
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

SDM_BASIS_EXTENSION = f"{HUB_FHIR_BASE}/StructureDefinition/substitute-decision-basis"
CONSENT_WITHDRAWAL_EXTENSION = f"{HUB_FHIR_BASE}/StructureDefinition/consent-withdrawal"
CONSENT_RECORDED_BY_EXTENSION = f"{HUB_FHIR_BASE}/StructureDefinition/consent-recorded-by"

# Code systems named in HL7 v2 (CWE.3, table 0396) and CDA (codeSystem OIDs) -> FHIR URIs.
V2_CODING_SYSTEMS = {"LN": LOINC, "SCT": SNOMED, "SNM": SNOMED, "UCUM": UCUM}
OID_CODING_SYSTEMS = {
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.8": UCUM,
    "2.16.840.1.113883.5.4": V3_ACT_CODE,
    "2.16.840.1.113883.5.25": V3_CONFIDENTIALITY,
    "2.16.840.1.113883.5.83": V3_OBSERVATION_INTERPRETATION,
}

_INSTITUTION = re.compile(r"[a-z0-9][a-z0-9\-]{0,62}")
_LOCAL_CODING_SYSTEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]{0,39}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def valid_institution(institution: str) -> bool:
    """Whether an institution id is a plain lowercase token (as the identity data uses)."""
    return bool(_INSTITUTION.fullmatch(institution))


def mrn_system(institution: str) -> str:
    """The identifier system of one institution's medical record numbers."""
    return f"{HUB_FHIR_BASE}/sid/institution/{_checked(institution)}/mrn"


def visit_system(institution: str) -> str:
    return f"{HUB_FHIR_BASE}/sid/institution/{_checked(institution)}/visit"


def staff_system(institution: str) -> str:
    return f"{HUB_FHIR_BASE}/sid/institution/{_checked(institution)}/staff"


def order_system(institution: str, kind: str) -> str:
    """Placer or filler order numbers (``kind`` ``placer`` / ``filler``)."""
    return f"{HUB_FHIR_BASE}/sid/institution/{_checked(institution)}/{kind}-order"


def local_code_system(institution: str, name: str) -> str | None:
    """An institution's local code system (HL7 v2 ``99zzz`` / ``L``), or None if unusable."""
    if not _LOCAL_CODING_SYSTEM.fullmatch(name):
        return None
    return f"{HUB_FHIR_BASE}/CodeSystem/institution/{_checked(institution)}/{name}"


def oid_system(oid: str) -> str | None:
    """``urn:oid:`` for a well-formed OID (the FHIR rule for unnamed systems), else None."""
    if oid in OID_CODING_SYSTEMS:
        return OID_CODING_SYSTEMS[oid]
    return f"urn:oid:{oid}" if _OID.fullmatch(oid) and len(oid) <= 128 else None


def _checked(institution: str) -> str:
    if not valid_institution(institution):
        raise ValueError("institution ids are lowercase tokens of letters, digits and '-'")
    return institution
