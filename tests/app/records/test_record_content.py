"""Content-type registry and FHIR validation for record uploads (app/content.py).

All documents are synthetic, built here; the names are invented and marked SYNTHETIC.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content import (
    ALLOWED_CONTENT_TYPES,
    MAX_FHIR_BYTES,
    FhirContentTooLarge,
    InvalidContent,
    UnsupportedContent,
    check_content_type,
    is_fhir,
    parse_content_type,
    validate_fhir,
    validate_upload,
)

FHIR = "application/fhir+json"
SECRET_NAME = "Synthetic-Chanwingyee-Q7"


def patient(family: str = "SYNTHETIC-Lee", given: str = "Test") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "pt-synthetic-000042",
        "identifier": [{"system": "urn:hub:synthetic-patient", "value": "pt-synthetic-000042"}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-synthetic-1",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
        },
        "subject": {"reference": "Patient/pt-synthetic-000042"},
        "effectiveDateTime": "2026-01-02T08:30:00+08:00",
        "valueQuantity": {
            "value": 5.4,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def diagnostic_report() -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": "dr-synthetic-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "subject": {"reference": "Patient/pt-synthetic-000042"},
        "issued": "2026-01-02T09:00:00+08:00",
        "result": [{"reference": "Observation/obs-synthetic-1"}],
        "conclusion": "Synthetic report: within reference range.",
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "resource": r}
            for n, r in enumerate(resources)
        ],
    }


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def rejection(content_type: str, body: bytes) -> InvalidContent | UnsupportedContent:
    with pytest.raises((InvalidContent, UnsupportedContent)) as caught:
        validate_upload(content_type, body)
    error = caught.value
    assert isinstance(error, InvalidContent | UnsupportedContent)
    return error


# -- the registry -----------------------------------------------------------------------------


def test_registry_is_the_documented_clinical_set() -> None:
    assert {
        "application/fhir+json",
        "application/dicom",
        "image/jpeg",
        "image/png",
        "application/pdf",
        "text/plain",
    } == ALLOWED_CONTENT_TYPES
    assert MAX_FHIR_BYTES == 16 * 1024 * 1024


@pytest.mark.parametrize("content_type", sorted(ALLOWED_CONTENT_TYPES - {FHIR}))
def test_opaque_types_are_accepted_without_reading_the_body(content_type: str) -> None:
    validate_upload(content_type, b"")
    validate_upload(content_type, b"\x00\xff not inspected")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",  # FHIR JSON must say so; plain JSON would skip validation
        "application/json+fhir",  # the pre-R4 type
        "application/fhir+xml",
        "application/octet-stream",
        "text/html",
        "image/svg+xml",
        "",
        "png",
        "image/",
        "image/png; charset",
        "image/png extra",
    ],
)
def test_unknown_or_malformed_types_are_415(content_type: str) -> None:
    error = rejection(content_type, b"{}")
    assert isinstance(error, UnsupportedContent)
    assert error.status_code == 415
    assert error.code == "unsupported_content_type"
    assert "application/fhir+json" in error.message  # says what is accepted


@pytest.mark.parametrize(
    ("header", "essence", "parameters"),
    [
        ("application/fhir+json", "application/fhir+json", ()),
        ("Application/FHIR+JSON;Charset=UTF-8", "application/fhir+json", (("charset", "UTF-8"),)),
        (
            ' application/fhir+json ; charset="utf-8" ; fhirVersion=4.3 ',
            "application/fhir+json",
            (("charset", "utf-8"), ("fhirversion", "4.3")),
        ),
        ('text/plain; x="a;b\\"c"', "text/plain", (("x", 'a;b"c'),)),
        ("image/png;", "image/png", ()),
    ],
)
def test_content_type_parameters_are_parsed(
    header: str, essence: str, parameters: tuple[tuple[str, str], ...]
) -> None:
    media = parse_content_type(header)
    assert media.essence == essence
    assert media.parameters == parameters


@pytest.mark.parametrize(
    "header",
    [
        "application/fhir+json; charset=utf-8",
        "application/fhir+json; charset=UTF-8",
        'application/fhir+json; charset="utf-8"',
        "application/fhir+json; fhirVersion=4.3",
        "text/plain; charset=us-ascii",
    ],
)
def test_accepted_charsets_and_fhir_version(header: str) -> None:
    check_content_type(header)
    assert is_fhir(header) == header.startswith("application/fhir+json")


@pytest.mark.parametrize(
    "header",
    [
        "application/fhir+json; charset=iso-8859-1",
        "application/fhir+json; charset=utf-16",
        "application/fhir+json; fhirVersion=4.0",  # R4: we validate against R4B only
        "application/fhir+json; fhirVersion=5.0",
        "text/plain; charset=big5",
        "application/fhir+json; charset=utf-8; CHARSET=latin1",  # ambiguous: refused
    ],
)
def test_wrong_charset_or_version_is_415(header: str) -> None:
    error = rejection(header, encode(patient()))
    assert isinstance(error, UnsupportedContent)
    assert "not accepted (" in error.message  # the reason is stated


def test_is_fhir() -> None:
    assert is_fhir("application/fhir+json")
    assert is_fhir("APPLICATION/fhir+json; charset=utf-8")
    assert not is_fhir("application/json")
    assert not is_fhir("image/png")
    assert not is_fhir("not a media type")


# -- valid FHIR ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "resource_type"),
    [
        (patient(), "Patient"),
        (observation(), "Observation"),
        (diagnostic_report(), "DiagnosticReport"),
        (bundle(patient(), observation(), diagnostic_report()), "Bundle"),
    ],
)
def test_valid_synthetic_resources_pass(document: dict[str, Any], resource_type: str) -> None:
    body = encode(document)
    validate_upload(FHIR, body)
    validate_upload("application/fhir+json; charset=utf-8", body)
    assert validate_fhir(body) == resource_type


def test_byte_order_mark_is_tolerated() -> None:
    validate_upload(FHIR, b"\xef\xbb\xbf" + encode(patient()))


# -- invalid FHIR -------------------------------------------------------------------------------


def invalid(document_or_body: Any) -> InvalidContent:
    body = document_or_body if isinstance(document_or_body, bytes) else encode(document_or_body)
    error = rejection(FHIR, body)
    assert isinstance(error, InvalidContent)
    assert error.status_code == 422
    assert error.code == "invalid_content"
    return error


def test_wrong_element_types_name_the_path_and_kind() -> None:
    document = patient()
    document["birthDate"] = "the first of January"
    document["name"][0]["given"] = "not-an-array"
    document["active"] = "perhaps"
    message = invalid(document).message
    assert "Patient.birthDate: value does not match its FHIR data type" in message
    assert "Patient.name[0].given: must be an array" in message
    assert "Patient.active: must be a boolean" in message
    assert "(3 errors)" in message


def test_errors_inside_a_bundle_carry_the_entry_path() -> None:
    broken = observation()
    del broken["status"]
    message = invalid(bundle(patient(), broken)).message
    assert "Bundle.entry[1].resource.status: required element is missing" in message


def test_unknown_element_is_refused() -> None:
    document = patient()
    document["favouriteColour"] = "blue"
    assert "Patient: contains an element R4B does not define" in invalid(document).message


def test_two_choices_for_one_value_x_are_refused() -> None:
    document = observation()
    document["valueString"] = "also a string"
    assert "value[x]" in invalid(document).message


@pytest.mark.parametrize(
    "resource_type",
    ["Nope", "patient", "HumanName", "Resource", "DomainResource", "Element", "", "Patient "],
)
def test_unknown_or_abstract_resource_type_is_refused(resource_type: str) -> None:
    assert "resourceType" in invalid({"resourceType": resource_type}).message


@pytest.mark.parametrize("resource_type", [None, 7, ["Patient"], {"a": 1}])
def test_missing_or_non_string_resource_type_is_refused(resource_type: Any) -> None:
    document: dict[str, Any] = {"id": "x"}
    if resource_type is not None:
        document["resourceType"] = resource_type
    assert "resourceType" in invalid(document).message


@pytest.mark.parametrize("nested", ["Nope", 5, "HumanName"])
def test_unknown_nested_resource_type_is_refused(nested: Any) -> None:
    document = bundle(patient())
    document["entry"][0]["resource"]["resourceType"] = nested
    invalid(document)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"resourceType": "Patient",', "malformed"),
        (b"", "malformed"),
        (b"[" + encode(patient()) + b"]", "one JSON object"),
        (b'"Patient"', "one JSON object"),
        (b"null", "one JSON object"),
        (b'{"resourceType": "Patient", "id": "a", "id": "b"}', "repeats a key"),
        (b'{"resourceType": "Observation", "valueDecimal": NaN}', "NaN"),
        (encode(patient()).decode().encode("utf-16"), "UTF-8"),
        (b'{"resourceType": "Patient", "id": "\xff"}', "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "limits"),
    ],
)
def test_bodies_that_are_not_one_json_object(body: bytes, expected: str) -> None:
    assert expected in invalid(body).message


def test_over_cap_fhir_is_413_before_parsing() -> None:
    body = b" " * (MAX_FHIR_BYTES + 1)
    with pytest.raises(FhirContentTooLarge) as caught:
        validate_upload(FHIR, body)
    assert caught.value.status_code == 413
    assert isinstance(caught.value, InvalidContent)


# -- no patient content in errors ---------------------------------------------------------------


def leaking_documents(secret: str) -> list[bytes]:
    """Invalid documents carrying ``secret`` where a careless error message would echo it."""
    wrong_type = patient(family=secret)
    wrong_type["birthDate"] = secret  # pydantic reports this value as `input`
    unknown_key = patient()
    unknown_key[secret] = secret  # the unknown key itself is client content
    name_as_list = patient()
    name_as_list["name"][0]["family"] = [secret]
    nested = bundle(patient(family=secret))
    nested["entry"][0]["resource"]["gender"] = {"text": secret}
    nested_type = bundle(patient())
    nested_type["entry"][0]["resource"]["resourceType"] = secret
    mismatched = bundle(patient())
    mismatched["entry"][0]["resource"] = {"resourceType": "HumanName", "family": secret}
    root_type = {"resourceType": secret, "name": secret}
    status_type = observation()
    status_type["status"] = [secret]
    return [
        encode(d)
        for d in (
            wrong_type,
            unknown_key,
            name_as_list,
            nested,
            nested_type,
            mismatched,
            root_type,
            status_type,
        )
    ] + [
        f'{{"resourceType": "Patient", "name": [{{"family": "{secret}"'.encode(),
        f'{{"resourceType": "Patient", "id": "{secret}", "id": "{secret}"}}'.encode(),
    ]


def assert_not_echoed(secret: str, error: Exception) -> None:
    assert secret not in str(error)
    assert secret.lower() not in str(error).lower()
    # No inner exception (which may quote the document) rides along into logs.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_patient_name_in_an_invalid_document_never_appears_in_the_error() -> None:
    for body in leaking_documents(SECRET_NAME):
        assert SECRET_NAME.encode() in body  # the secret really is in the document
        error = invalid(body)
        assert_not_echoed(SECRET_NAME, error)


def test_content_type_header_is_not_echoed_unless_it_is_a_plain_media_type() -> None:
    error = rejection(f"{SECRET_NAME} x", b"")
    assert_not_echoed(SECRET_NAME, error)
    error = rejection(f'text/plain; charset="{SECRET_NAME} b"', b"")
    assert_not_echoed(SECRET_NAME, error)


# Names made of letters so they cannot coincide with the fixed words of a message.
synthetic_names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Lo")), min_size=12, max_size=30
).map(lambda s: "Zq" + s)


@settings(max_examples=40, deadline=None)
@given(name=synthetic_names)
def test_generated_names_never_leak_into_errors(name: str) -> None:
    for body in leaking_documents(name):
        with pytest.raises(InvalidContent) as caught:
            validate_upload(FHIR, body)
        assert name not in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(
    family=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != ""),
    given_name=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != ""),
    year=st.integers(min_value=1900, max_value=2025),
    value=st.floats(min_value=0, max_value=1000, allow_nan=False),
)
def test_generated_valid_bundles_pass(
    family: str, given_name: str, year: int, value: float
) -> None:
    person = patient(family=family, given=given_name)
    person["birthDate"] = f"{year:04d}-06-15"
    obs = observation()
    obs["valueQuantity"]["value"] = value
    assert validate_fhir(encode(bundle(person, obs, diagnostic_report()))) == "Bundle"


@settings(max_examples=60, deadline=None)
@given(
    essence=st.sampled_from(sorted(ALLOWED_CONTENT_TYPES)),
    case=st.lists(st.booleans(), min_size=40, max_size=40),
    pad=st.sampled_from(["", " ", "\t", "  "]),
)
def test_type_matching_ignores_case_and_whitespace(
    essence: str, case: list[bool], pad: str
) -> None:
    mixed = "".join(c.upper() if up else c for c, up in zip(essence, case, strict=False))
    mixed += essence[len(case) :]
    assert check_content_type(f"{pad}{mixed}{pad}").essence == essence


def test_unknown_key_is_reported_at_its_parent_even_when_it_is_an_element_name() -> None:
    document = patient()
    document["family"] = "SYNTHETIC"  # an element of HumanName, not of Patient
    message = invalid(document).message
    assert "Patient: contains an element R4B does not define" in message
    assert "Patient.family" not in message


def test_path_segments_that_are_not_r4b_element_names_are_dropped() -> None:
    from app.content import _element_names, _element_path

    names = _element_names()
    assert {"birthDate", "entry", "resource", "valueQuantity"} <= names
    assert SECRET_NAME not in names
    loc = ("entry", 0, "resource", SECRET_NAME, "function-after[validate(), str]", "birthDate")
    assert _element_path("Bundle", loc, names) == "Bundle.entry[0].resource.birthDate"


def test_many_errors_are_counted_and_the_list_is_capped() -> None:
    observations = []
    for n in range(2000):
        broken = observation()
        broken["id"] = f"obs-{n}"
        broken["status"] = n  # wrong type in every entry
        observations.append(broken)
    message = invalid(bundle(*observations)).message
    assert "(2000 errors)" in message
    assert "and 1995 more" in message
    assert message.count("must be a string") == 5


@pytest.mark.parametrize(
    "header", ["image/png\n", "image/png\r\nX-Injected: 1", "\u00a0image/png", "image/png;\u00a0"]
)
def test_whitespace_other_than_space_and_tab_is_not_optional_whitespace(header: str) -> None:
    assert isinstance(rejection(header, b""), UnsupportedContent)


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=200))
def test_any_header_parses_or_is_refused_as_unsupported(header: str) -> None:
    try:
        media = parse_content_type(header)
    except UnsupportedContent as refused:
        assert refused.status_code == 415
        return
    assert "/" in media.essence
    assert media.essence == media.essence.lower()


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.+", min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    type_=token,
    subtype=token,
    params=st.dictionaries(
        token, st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)), max_size=4
    ),
)
def test_generated_media_types_round_trip(type_: str, subtype: str, params: dict[str, str]) -> None:
    quoted = {k: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for k, v in params.items()}
    header = f"{type_}/{subtype}" + "".join(f" ; {k}={v}" for k, v in quoted.items())
    media = parse_content_type(header)
    assert media.essence == f"{type_}/{subtype}"
    assert dict(media.parameters) == params
