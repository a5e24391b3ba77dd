"""The FHIR adapter: R4 and R4B inputs, version by media type, canonical wrapping, subject."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.interop import (
    InvalidSource,
    Reason,
    SourceFormat,
    UnsupportedSource,
    UnsupportedSourceContent,
    convert,
)
from app.interop.systems import HKID_SYSTEM, mrn_system

R4 = "application/fhir+json; fhirVersion=4.0"
R4B = "application/fhir+json; fhirVersion=4.3"


def _patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": mrn_system("clinic-a"), "value": "M1"},
            {"system": HKID_SYSTEM, "value": "A123456(3)"},
        ],
        **extra,
    }


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_version_comes_from_the_media_type() -> None:
    body = _body(_patient())
    assert convert(body, R4, institution="clinic-a").source_format is SourceFormat.FHIR_R4
    assert convert(body, R4B, institution="clinic-a").source_format is SourceFormat.FHIR_R4B
    plain = convert(body, "application/fhir+json", institution="clinic-a")
    assert plain.source_format is SourceFormat.FHIR_R4B
    for other in ("application/fhir+json; fhirVersion=5.0", "application/json"):
        with pytest.raises(UnsupportedSource):
            convert(body, other, institution="clinic-a")


def test_single_resource_is_wrapped_in_a_collection_bundle() -> None:
    record = convert(_body(_patient()), R4B, institution="clinic-a")
    bundle = record.bundle_json()
    assert bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    assert bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")
    assert record.subject.mrn == "M1"
    assert record.subject.hkid is not None and record.subject.hkid.value == "A1234563"


def test_r4_resource_types_changed_in_r4b_are_refused_by_location() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _patient()},
            {"resource": {"resourceType": "MedicinalProduct"}},
        ],
    }
    with pytest.raises(UnsupportedSourceContent) as caught:
        convert(_body(bundle), R4, institution="clinic-a")
    assert "resource.entry[1].resource" in caught.value.message
    assert "MedicinalProduct" not in caught.value.message
    contained = _patient(contained=[{"resourceType": "EffectEvidenceSynthesis"}])
    with pytest.raises(UnsupportedSourceContent) as caught:
        convert(_body(contained), R4, institution="clinic-a")
    assert "resource.contained[0]" in caught.value.message


def test_invalid_r4b_names_the_element_path() -> None:
    with pytest.raises(InvalidSource) as caught:
        convert(_body(_patient(birthDate="1980-13-45")), R4B, institution="clinic-a")
    assert "Patient.birthDate" in caught.value.message
    assert "1980-13-45" not in caught.value.message
    assert caught.value.status_code == 422


def test_malformed_json_and_duplicate_keys_are_refused() -> None:
    for body in (b'{"resourceType": "Patient",', b'{"resourceType":"Patient","id":"a","id":"b"}'):
        with pytest.raises(InvalidSource):
            convert(body, R4B, institution="clinic-a")


def test_two_different_mrns_or_a_bad_hkid_are_refused() -> None:
    two = _patient()
    two["identifier"].append(
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "value": "M2",
        }
    )
    with pytest.raises(InvalidSource) as caught:
        convert(_body(two), R4B, institution="clinic-a")
    assert caught.value.reason is Reason.REPEATED
    bad = _patient()
    bad["identifier"][1]["value"] = "A1234564"
    with pytest.raises(InvalidSource) as caught:
        convert(_body(bad), R4B, institution="clinic-a")
    assert caught.value.reason is Reason.HKID_CHECK_DIGIT
    assert caught.value.location == "Bundle.entry[0].resource.identifier[1].value"


def test_subject_from_a_logical_reference() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"identifier": {"system": HKID_SYSTEM, "value": "A1234563"}},
    }
    record = convert(_body(observation), R4B, institution="clinic-a")
    assert record.subject.hkid is not None and record.subject.mrn is None


def test_unknown_media_type_is_415() -> None:
    with pytest.raises(UnsupportedSource) as caught:
        convert(b"x", "text/html", institution="clinic-a")
    assert caught.value.status_code == 415
    with pytest.raises(UnsupportedSource):
        convert(b"x", "not a media type", institution="clinic-a")
