"""HKID check digits and normalisation, with the algorithm's known limits shown as properties.

The valid HKIDs are generated here with their own check digit computation (the test data
generator's, not the module's), so the properties do not merely replay the code under test.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.patients.hkid import (
    CHECK_DIGIT,
    FORMAT,
    InvalidHkid,
    char_value,
    compute_check_digit,
    is_valid_hkid,
    normalise_hkid,
    parse_hkid,
)
from tests.app.interop.testdata.make_interop_samples import hkid_check_digit

LETTERS = string.ascii_uppercase
prefixes = st.one_of(st.sampled_from(LETTERS), st.text(LETTERS, min_size=2, max_size=2))
digit_runs = st.text("0123456789", min_size=6, max_size=6)


@st.composite
def valid_hkids(draw: st.DrawFn) -> str:
    prefix, digits = draw(prefixes), draw(digit_runs)
    return prefix + digits + hkid_check_digit(prefix, digits)


def test_published_example() -> None:
    assert compute_check_digit("A", "123456") == "3"
    assert parse_hkid("A123456(3)").value == "A1234563"


@pytest.mark.parametrize(
    "typed",
    ["A123456(3)", "a123456(3)", "A123456 (3)", " A 123 456 ( 3 ) ", "A1234563", "a1234563\t"],
)
def test_normalisation(typed: str) -> None:
    hkid = parse_hkid(typed)
    assert hkid.value == "A1234563"
    assert hkid.display() == "A123456(3)"
    assert (hkid.prefix, hkid.digits, hkid.check_digit) == ("A", "123456", "3")


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "A12345(3)",
        "A1234567(3)",
        "ABC123456(3)",
        "1123456(3)",
        "A123456(B)",
        "A123456((3))",
        "A123456(3",
        "A12345\uff16(3)",
        "\u0131123456(3)",
        "A\uff1123456(3)",
    ],
)
def test_wrong_shapes_are_refused_as_format(typed: str) -> None:
    with pytest.raises(InvalidHkid) as caught:
        parse_hkid(typed)
    assert caught.value.reason == FORMAT
    assert caught.value.status_code == 422


def test_value_never_in_repr_or_str() -> None:
    hkid = parse_hkid("A123456(3)")
    assert "123456" not in repr(hkid) and "123456" not in str(hkid)


@given(valid_hkids())
def test_every_generated_valid_hkid_validates(hkid: str) -> None:
    assert parse_hkid(hkid).value == hkid
    assert parse_hkid(f"{hkid[:-1].lower()} ({hkid[-1]})").value == hkid
    assert normalise_hkid(hkid) == hkid


@given(valid_hkids(), st.data())
def test_single_substitution_is_detected_exactly_when_values_differ_mod_11(
    hkid: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(hkid) - 1))
    original = hkid[position]
    if position < len(hkid) - 7:
        replacement = data.draw(st.sampled_from(LETTERS).filter(lambda c: c != original))
        detectable = (char_value(original) - char_value(replacement)) % 11 != 0
    elif position < len(hkid) - 1:
        replacement = data.draw(st.sampled_from("0123456789").filter(lambda c: c != original))
        detectable = True  # digits differ by less than 11
    else:
        replacement = data.draw(st.sampled_from("0123456789A").filter(lambda c: c != original))
        detectable = True  # each residue has its own check character
    changed = hkid[:position] + replacement + hkid[position + 1 :]
    assert is_valid_hkid(changed) is not detectable


def test_known_limit_letters_eleven_apart_are_not_detected() -> None:
    """A (10), L (21), W (32) carry the same check digit: a documented blind spot."""
    digits = "123456"
    assert compute_check_digit("A", digits) == compute_check_digit("L", digits)
    assert compute_check_digit("A", digits) == compute_check_digit("W", digits)
    # and the implicit leading space (36) is congruent to E and P
    assert compute_check_digit("A", digits) == compute_check_digit("EA", digits)


@given(valid_hkids(), st.data())
def test_adjacent_digit_transposition_is_detected(hkid: str, data: st.DataObject) -> None:
    start = len(hkid) - 7
    position = data.draw(st.integers(start, start + 4))
    a, b = hkid[position], hkid[position + 1]
    swapped = hkid[:position] + b + a + hkid[position + 2 :]
    assert is_valid_hkid(swapped) is (a == b)


@given(st.text(max_size=20))
def test_arbitrary_text_is_refused_with_a_fixed_reason_or_is_an_hkid(text: str) -> None:
    try:
        hkid = parse_hkid(text)
    except InvalidHkid as error:
        assert error.reason in (FORMAT, CHECK_DIGIT)
    else:
        assert compute_check_digit(hkid.prefix, hkid.digits) == hkid.check_digit
