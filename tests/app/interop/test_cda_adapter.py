"""The CDA adapter: header and body mappings, hostile XML, and malformed documents by path."""

from __future__ import annotations

import pytest

from app.interop import InvalidSource, Reason, UnsupportedSourceContent
from app.interop.cda import convert_cda, parse_cda
from app.interop.systems import HKID_OID
from tests.app.interop.interop_testkit import resources, sample

CDA = "application/cda+xml"
SUMMARY = sample("discharge_summary.cda.xml").decode()
DOC = "/ClinicalDocument"
ROLE = f"{DOC}/recordTarget/patientRole"


def _convert(text: str):
    return convert_cda(text.encode("utf-8"), CDA, institution="hospital-b")


def _refused(text: str) -> InvalidSource:
    with pytest.raises(InvalidSource) as caught:
        _convert(text)
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


def test_document_bundle_starts_with_its_composition() -> None:
    bundle = _convert(SUMMARY).bundle_json()
    assert bundle["type"] == "document"
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["subject"]["reference"] == bundle["entry"][1]["fullUrl"]
    assert [s["title"] for s in composition["section"]] == [
        "Discharge Diagnosis",
        "Results",
        "Discharge Medications",
    ]
    observations = resources(bundle, "Observation")
    results = composition["section"][1]["entry"]
    # organizer components and a direct entry observation, in document order
    assert len(results) == len(observations) == 3
    # the medication section's substanceAdministration is not mapped: narrative only
    assert "entry" not in composition["section"][2]
    assert "Atorvastatin" in composition["section"][2]["text"]["div"]


def test_patient_and_encounter_mapping() -> None:
    record = _convert(SUMMARY)
    bundle = record.bundle_json()
    (patient,) = resources(bundle, "Patient")
    (encounter,) = resources(bundle, "Encounter")
    assert patient["identifier"][0]["system"].endswith("/institution/hospital-b/mrn")
    assert patient["birthDate"] == "1980-01-01"
    assert patient["gender"] == "male"
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["period"]["end"] == "2026-01-10T12:00:00+08:00"
    assert record.subject.mrn is not None and record.subject.hkid is not None


def test_non_xml_body_becomes_a_document_reference() -> None:
    bundle = convert_cda(sample("scanned_letter.cda.xml"), CDA, institution="hospital-b")
    (reference,) = resources(bundle.bundle_json(), "DocumentReference")
    attachment = reference["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["data"].startswith("JVBERi0")  # %PDF


# -- hostile XML -------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol3;</title></ClinicalDocument>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/cda.dtd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_dtds_and_entities_are_refused(document: str) -> None:
    error = _refused(document)
    assert error.reason is Reason.DTD_FORBIDDEN


def test_switch_off_plain_elementtree_would_expand_the_entities() -> None:
    """Why defusedxml is there: the standard parser expands internal entities."""
    from xml.etree import ElementTree

    root = ElementTree.fromstring(BILLION_LAUGHS)
    assert len(root.findtext("{urn:hl7-org:v3}title") or "") == 3 * 8 * 8
    with pytest.raises(InvalidSource):
        parse_cda(BILLION_LAUGHS.encode())


def test_not_well_formed_names_line_and_column() -> None:
    error = _refused(SUMMARY.replace("</title>", "</titel>", 1))
    assert error.reason is Reason.NOT_XML
    assert error.location.startswith("line ") and " column " in error.location


# -- malformed documents -------------------------------------------------------------------

MALFORMED = [
    ("wrong root", SUMMARY.replace("ClinicalDocument", "Document"), "/", Reason.NOT_CDA),
    (
        "wrong typeId",
        SUMMARY.replace('extension="POCD_HD000040"', 'extension="X"'),
        f"{DOC}/typeId",
        Reason.NOT_CDA,
    ),
    (
        "no effectiveTime value",
        SUMMARY.replace('<effectiveTime value="20260110143000+0800"/>', "<effectiveTime/>"),
        f"{DOC}/effectiveTime/@value",
        Reason.MISSING,
    ),
    (
        "bad effectiveTime",
        SUMMARY.replace(
            '<effectiveTime value="20260110143000+0800"/>', '<effectiveTime value="2026-01-10"/>'
        ),
        f"{DOC}/effectiveTime/@value",
        Reason.NOT_A_DATE,
    ),
    (
        "no recordTarget",
        SUMMARY.replace("<recordTarget>", "<!--").replace("</recordTarget>", "-->"),
        f"{DOC}/recordTarget",
        Reason.MISSING,
    ),
    (
        "bad birthTime",
        SUMMARY.replace('<birthTime value="19800101"/>', '<birthTime value="19801301"/>'),
        f"{ROLE}/patient/birthTime/@value",
        Reason.NOT_A_DATE,
    ),
    (
        "HKID check digit",
        SUMMARY.replace(
            f'root="{HKID_OID}" extension="XC2415928"', f'root="{HKID_OID}" extension="XC2415929"'
        ),
        f"{ROLE}/id[2]/@extension",
        Reason.HKID_CHECK_DIGIT,
    ),
    (
        "no MRN",
        SUMMARY.replace('extension="HB79763355"', ""),
        f"{ROLE}/id",
        Reason.NO_MRN,
    ),
    (
        "gender code",
        SUMMARY.replace('administrativeGenderCode code="M"', 'administrativeGenderCode code="X"'),
        f"{ROLE}/patient/administrativeGenderCode/@code",
        Reason.NOT_IN_TABLE,
    ),
    (
        "no author",
        SUMMARY.replace("<author>", "<!--").replace("</author>", "-->"),
        f"{DOC}/author",
        Reason.MISSING,
    ),
    (
        "observation value",
        SUMMARY.replace('value="12.5"', 'value="twelve"'),
        f"{DOC}/component/structuredBody/component[2]/section/entry[1]/organizer/component[1]"
        "/observation/value/@value",
        Reason.NOT_A_NUMBER,
    ),
    (
        "observation code",
        SUMMARY.replace('code="6690-2" ', ""),
        f"{DOC}/component/structuredBody/component[2]/section/entry[1]/organizer/component[2]"
        "/observation/code/@code",
        Reason.MISSING,
    ),
    (
        "bad base64",
        sample("scanned_letter.cda.xml").decode().replace("JVBER", "J!BER"),
        f"{DOC}/component/nonXMLBody/text",
        Reason.NOT_BASE64,
    ),
    (
        "no body",
        SUMMARY.replace("structuredBody", "unstructuredBody"),
        f"{DOC}/component/structuredBody",
        Reason.MISSING,
    ),
]


@pytest.mark.parametrize(
    ("document", "location", "reason"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_document_names_the_element_path(
    document: str, location: str, reason: Reason
) -> None:
    error = _refused(document)
    assert (error.location, error.reason) == (location, reason)
    assert error.message == f"CDA document is not valid: {location}: {reason.value}."


def test_unmapped_value_type_is_unsupported_naming_its_path() -> None:
    document = SUMMARY.replace('xsi:type="PQ" value="12.5" unit="mg/L"', 'xsi:type="RTO_PQ_PQ"')
    with pytest.raises(UnsupportedSourceContent) as caught:
        _convert(document)
    assert "organizer/component[1]/observation/value" in caught.value.message
