"""The synthetic register and demo population: clearly synthetic, valid, stable."""

from __future__ import annotations

import re
import string

import pytest

from app.identity.synthetic import (
    REG_NO_PREFIX,
    general_csv,
    generate_password,
    generate_population,
    register_items,
    specialist_csv,
)

INSTITUTIONS = ["harbour-cardiac-alliance", "lion-rock-oncology", "peak-family-clinic"]
REG_NO = re.compile(r"^[A-Z]{1,2}\d{4,6}$")  # app.identity.registration.REG_NO_PATTERN


def test_numbers_are_synthetic_unique_and_well_formed() -> None:
    population = generate_population(INSTITUTIONS)
    numbers = [d.reg_no for d in population.doctors]
    assert len(set(numbers)) == len(numbers)
    assert all(REG_NO.match(n) and n.startswith(REG_NO_PREFIX) for n in numbers)
    assert all("(synthetic)" in d.name_en for d in population.doctors)


def test_population_has_specialists_of_several_specialties_and_inactive_entries() -> None:
    population = generate_population(INSTITUTIONS)
    specialties = {s for d in population.doctors for s in d.specialties}
    assert len(specialties) >= 3
    assert {d.role for d in population.users()} == {"doctor", "specialist"}
    assert {d.status for d in population.doctors} - {"active"}
    assert all(d.status == "active" for d in population.users())
    assert {p.institution_id for p in population.patients} == set(INSTITUTIONS)
    assert {s.role for s in population.staff} == {"institution_admin", "auditor"}


def test_same_seed_same_population_other_seed_other_numbers() -> None:
    a = generate_population(INSTITUTIONS, seed=7)
    b = generate_population(INSTITUTIONS, seed=7)
    c = generate_population(INSTITUTIONS, seed=8)
    assert a.doctors == b.doctors and a.patients == b.patients
    assert {d.reg_no for d in a.doctors} != {d.reg_no for d in c.doctors}


def test_passwords_meet_the_pool_policy_and_differ() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) >= 14
        assert any(c in string.ascii_uppercase for c in password)
        assert any(c in string.ascii_lowercase for c in password)
        assert any(c in string.digits for c in password)
        assert any(not c.isalnum() for c in password)
    with pytest.raises(ValueError):
        generate_password(10)


def test_register_files_and_items_round_trip_through_the_importer() -> None:
    register = pytest.importorskip("app.identity.register")
    population = generate_population(INSTITUTIONS)
    entries = register.parse_register(
        general_csv(population.doctors), specialist_csv(population.doctors)
    )
    by_number = {e.reg_no: e for e in entries}
    assert set(by_number) == {d.reg_no for d in population.doctors}
    for doctor, item in zip(
        population.doctors, register_items(population.doctors, "t"), strict=True
    ):
        entry = by_number[doctor.reg_no]
        assert entry.specialties == doctor.specialties
        assert entry.status.value == doctor.status
        assert entry.to_item("t") == item
