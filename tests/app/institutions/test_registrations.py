"""Matching an applicant's name to the register entry (pure)."""

from __future__ import annotations

import pytest

from app.institutions.registrations import name_matches

ENTRY = ("Chan Tai Man (synthetic)", "陳大文")


@pytest.mark.parametrize(
    "given",
    [
        "Chan Tai Man",
        "CHAN Tai Man",
        "Chan, Tai-man",
        "Tai Man Chan",
        "  chan   tai   man ",
        "Chan Tai Man (synthetic)",
        "陳大文",
        "陳 大 文",
    ],
)
def test_the_same_name_written_differently_matches(given: str) -> None:
    assert name_matches(given, *ENTRY)


@pytest.mark.parametrize(
    "given", ["Chan Tai", "Chan Tai Man Jr", "Chan Siu Ming", "陳小文", "", "  ", "(synthetic)"]
)
def test_another_name_does_not(given: str) -> None:
    assert not name_matches(given, *ENTRY)


def test_an_entry_without_names_matches_nothing() -> None:
    assert not name_matches("Chan Tai Man", "", "")
