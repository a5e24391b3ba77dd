"""Golden and round-trip tests over the synthetic samples (tests/app/interop/testdata).

Each sample is converted and compared byte for byte with its reviewed golden output;
the source must come back untouched beside the Bundle, conversion must be
deterministic, and the canonical Bundle, fed back in as FHIR R4B, must come out
unchanged (it is already canonical). Together the samples are one synthetic patient
seen by two institutions, so every conversion must name the same HKID.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.content import validate_fhir
from app.interop import SourceFormat, convert
from app.interop.canonical import CANONICAL_MEDIA_TYPE, canonical_json
from tests.app.interop.interop_testkit import TESTDATA, manifest, sample

SAMPLES = [s["file"] for s in manifest()["samples"]]


def _convert(name: str):
    entry = next(s for s in manifest()["samples"] if s["file"] == name)
    return convert(sample(name), entry["media_type"], institution=entry["institution"])


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_converts_to_its_golden_bundle(name: str) -> None:
    record = _convert(name)
    golden_file = TESTDATA / (name.split(".")[0] + ".fhir.json")
    golden = json.loads(golden_file.read_text(), parse_float=Decimal)
    assert record.bundle == canonical_json(golden)
    assert validate_fhir(record.bundle) == "Bundle"


@pytest.mark.parametrize("name", SAMPLES)
def test_source_is_kept_untouched_beside_the_bundle(name: str) -> None:
    entry = next(s for s in manifest()["samples"] if s["file"] == name)
    record = _convert(name)
    assert record.source == sample(name)
    assert record.source_media_type == entry["media_type"]
    assert record.bundle_media_type == CANONICAL_MEDIA_TYPE


@pytest.mark.parametrize("name", SAMPLES)
def test_conversion_is_deterministic(name: str) -> None:
    assert _convert(name).bundle == _convert(name).bundle


@pytest.mark.parametrize("name", SAMPLES)
def test_canonical_bundle_round_trips_through_the_fhir_adapter(name: str) -> None:
    record = _convert(name)
    again = convert(record.bundle, CANONICAL_MEDIA_TYPE, institution=record.subject.institution)
    assert again.source_format is SourceFormat.FHIR_R4B
    assert again.bundle == record.bundle
    assert again.subject == record.subject


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_names_the_same_patient(name: str) -> None:
    patient = manifest()["patient"]
    record = _convert(name)
    institution = record.subject.institution
    assert record.subject.mrn == patient["mrn"][institution]
    if record.subject.hkid is not None:
        assert record.subject.hkid.value == patient["hkid"]


def test_samples_cover_every_format_and_message_type() -> None:
    formats = {_convert(name).source_format for name in SAMPLES}
    assert formats == set(SourceFormat)
    hl7_types = {sample(n).split(b"|")[8].split(b"^")[1] for n in SAMPLES if n.endswith(".hl7")}
    assert hl7_types == {b"A01", b"A04", b"A08", b"R01"}
    institutions = {s["institution"] for s in manifest()["samples"]}
    assert institutions == {"clinic-a", "hospital-b"}


def test_decimals_keep_their_digits() -> None:
    """FHIR decimals carry precision: the source's 5.80 must not become 5.8."""
    assert b'"value":5.80' in _convert("oru_r01.hl7").bundle
    assert b'"value":7.20' in _convert("discharge_summary.cda.xml").bundle
    assert b'"value":6.40' in _convert("observation_r4.fhir-in.json").bundle
