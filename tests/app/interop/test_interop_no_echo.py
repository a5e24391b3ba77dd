"""No adapter error ever repeats the input: property tests with generated patient names.

For each format, a hypothesis-generated patient name is written into the document twice,
once where it belongs and once into the field (or tag, key or attribute) that makes the
document malformed. Whatever the adapter raises, the name must appear nowhere in the
error: not in its message, ``str``, ``repr`` or ``args``, not in the JSON body the
service would send, not in a chained exception, and not in any log record.
"""

from __future__ import annotations

import json
import logging
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import HubError, error_body
from app.interop import convert
from app.patients.hkid import CHECK_DIGIT, FORMAT, InvalidHkid, parse_hkid
from tests.app.interop.interop_testkit import MSH_ADT, MSH_ORU, OBR, PV1, hl7_message, sample

# "Zq" never occurs in the fixed vocabulary, so a match can only be an echo.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ陳大文李小明黃美玲張偉強"
NAMES = st.text(alphabet=LETTERS, min_size=3, max_size=16).map(lambda s: "Zq" + s)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _assert_not_echoed(error: BaseException, name: str, caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(error, HubError)
    assert 400 <= error.status_code < 500
    texts = [
        str(error),
        repr(error),
        error.message,
        json.dumps(error_body(error.code, error.message), ensure_ascii=False),
        *map(str, error.args),
    ]
    for text in texts:
        assert name not in text
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert name not in caplog.text


def _refused(body: bytes, media_type: str) -> BaseException:
    with pytest.raises(HubError) as caught:
        convert(body, media_type, institution="clinic-a")
    return caught.value


def _pid(name: str, **fields: str) -> str:
    values = {3: "M0001^^^T^MR", 5: f"{name}^{name}", 7: "19800101", 8: "M"} | {
        int(k[1:]): v for k, v in fields.items()
    }
    return "PID|" + "|".join(values.get(i, "") for i in range(1, max(values) + 1))


HL7_CASES = [  # (message, where it must fail)
    (lambda n: (MSH_ADT, _pid(n, f7=n), PV1), "PID-7"),
    (lambda n: (MSH_ADT, _pid(n, f8=n), PV1), "PID-8"),
    (lambda n: (MSH_ADT, _pid(n, f3=f"{n}^^^T^MR~{n}^^^HKG^NNHKG"), PV1), "PID-3[2].1"),
    (lambda n: (MSH_ADT, _pid(n, f5=f"\\Z{n}\\"), PV1), "PID-5"),
    (lambda n: (MSH_ADT, _pid(n), f"PV1|1|{n}"), "PV1-2"),
    (lambda n: (MSH_ORU, _pid(n), OBR, f"OBX|1|NM|X^Y^L||{n}||||||F"), "OBX[1]-5"),
    (lambda n: (MSH_ORU, _pid(n), OBR, f"OBX|1|{n}|X^Y^L||1||||||F"), "OBX[1]-2"),
    (lambda n: (MSH_ADT.replace("ADT^A01", f"{n}^A01"), _pid(n), PV1), "MSH-9"),
    (lambda n: (MSH_ADT, _pid(n), f"{n}|1"), "segment 3"),
]


@pytest.mark.parametrize("case", range(len(HL7_CASES)))
@SETTINGS
@given(name=NAMES)
def test_hl7v2_errors_never_echo_the_patient_name(
    case: int, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    build, location = HL7_CASES[case]
    error = _refused(hl7_message(*build(name)), "application/hl7-v2")
    _assert_not_echoed(error, name, caplog)
    assert location in error.message


SUMMARY = sample("discharge_summary.cda.xml").decode()
CDA_CASES = [
    lambda n: SUMMARY.replace("<family>CHAN</family>", f"<family>{escape(n)}</family>").replace(
        'birthTime value="19800101"', f"birthTime value={quoteattr(n)}"
    ),
    lambda n: SUMMARY.replace("ClinicalDocument", n),  # unknown root tag
    lambda n: SUMMARY.replace('xsi:type="PQ" value="12.5"', f"xsi:type={quoteattr(n)} value='1'"),
    lambda n: SUMMARY.replace('extension="XC2415928"', f"extension={quoteattr(n)}"),  # HKID
    lambda n: SUMMARY.replace("</title>", f"</title><{n}>", 1),  # not well-formed
    lambda n: SUMMARY.replace('value="12.5"', f"value={quoteattr(n)}"),  # not a number
]


@pytest.mark.parametrize("case", range(len(CDA_CASES)))
@SETTINGS
@given(name=NAMES)
def test_cda_errors_never_echo_the_patient_name(
    case: int, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    error = _refused(CDA_CASES[case](name).encode("utf-8"), "application/cda+xml")
    _assert_not_echoed(error, name, caplog)


FHIR_CASES = [
    lambda n: {"resourceType": "Patient", "name": [{"family": n}], "birthDate": n},
    lambda n: {"resourceType": "Patient", "name": [{"family": n}], n: 1},  # unknown element
    lambda n: {"resourceType": n, "name": [{"family": n}]},  # unknown resource type
    lambda n: {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.health-collab-hub.invalid/sid/hkid", "value": n}],
    },
    lambda n: {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": n}}],
    },
]


@pytest.mark.parametrize("version", ["4.0", "4.3"])
@pytest.mark.parametrize("case", range(len(FHIR_CASES)))
@SETTINGS
@given(name=NAMES)
def test_fhir_errors_never_echo_the_patient_name(
    version: str, case: int, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    body = json.dumps(FHIR_CASES[case](name), ensure_ascii=False).encode("utf-8")
    error = _refused(body, f"application/fhir+json; fhirVersion={version}")
    _assert_not_echoed(error, name, caplog)


@SETTINGS
@given(text=st.text(min_size=1, max_size=40))
def test_hkid_errors_never_echo_the_input(text: str) -> None:
    try:
        parse_hkid(text)
    except InvalidHkid as error:
        if len(text.strip()) >= 3:
            assert text.strip() not in error.message
        assert error.message in {
            f"HKID is not valid: {FORMAT}.",
            f"HKID is not valid: {CHECK_DIGIT}.",
        }
