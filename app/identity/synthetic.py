"""A synthetic Medical Council register and demo population for the local platform.

Everything here is generated: registration numbers use the prefix ``ZZ`` (not a prefix
the Medical Council issues), names are drawn from short fixed lists and marked as
synthetic in the English name, institutions come from the stage files (themselves
fictional). No real doctor or patient appears anywhere. The population is
deterministic for a given seed (same doctors, same numbers), except passwords, which
come from :mod:`secrets` on every call.

The register follows the published-list format read by ``app.identity.register``:
``general.csv`` and ``specialist.csv`` with the columns named there, and DynamoDB items
with the same fields as ``RegisterEntry.to_item``.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

REG_NO_PREFIX = "ZZ"
SPECIALTIES = (
    "cardiology",
    "clinical oncology",
    "neurology",
    "paediatrics",
    "radiology",
    "orthopaedics and traumatology",
    "family medicine",
)
_SURNAMES = ("Chan", "Wong", "Lee", "Cheung", "Lau", "Ho", "Ng", "Leung", "Tam", "Yip")
_SURNAMES_ZH = ("陳", "黃", "李", "張", "劉", "何", "吳", "梁", "譚", "葉")
_GIVEN = ("Ka Yan", "Wing Sze", "Chi Ming", "Hoi Lam", "Tsz Kin", "Mei Ling", "Siu Fai")
_GIVEN_ZH = ("嘉欣", "詠詩", "志明", "凱琳", "子健", "美玲", "兆輝")
_DISTRICTS = ("Central", "Sha Tin", "Kowloon Tong", "Tuen Mun", "Sai Kung", "Wan Chai")
_QUALIFICATIONS = ("MBBS (HK)", "MBChB (CUHK)", "FHKAM", "MRCP (UK)", "FRCR")
PASSWORD_LENGTH = 20
PASSWORD_SYMBOLS = "!#%+-=?@^_"


@dataclass(frozen=True)
class SyntheticDoctor:
    """A generated practitioner; ``role`` is the Cognito group (doctor/specialist/...)."""

    reg_no: str
    name_en: str
    name_zh: str
    institution_id: str
    role: str
    specialties: tuple[str, ...] = ()
    status: str = "active"
    address: str = ""
    qualifications: tuple[str, ...] = ()

    @property
    def specialty(self) -> str:
        return self.specialties[0] if self.specialties else ""

    @property
    def username(self) -> str:
        return f"dr-{self.reg_no.lower()}"


@dataclass(frozen=True)
class SyntheticPatient:
    """A generated patient: an opaque id, a birth year and the institution holding them."""

    patient_id: str
    institution_id: str
    birth_year: int
    sex: str


@dataclass(frozen=True)
class SyntheticStaff:
    """A non-clinical demo user (institution admin, auditor)."""

    username: str
    institution_id: str
    role: str


@dataclass
class SyntheticPopulation:
    doctors: list[SyntheticDoctor] = field(default_factory=list)
    patients: list[SyntheticPatient] = field(default_factory=list)
    staff: list[SyntheticStaff] = field(default_factory=list)

    def users(self) -> list[SyntheticDoctor]:
        """Doctors who get a login: active practitioners only."""
        return [d for d in self.doctors if d.status == "active"]


def generate_population(
    institutions: Sequence[str],
    *,
    seed: int = 2046,
    doctors_per_institution: int = 3,
    patients_per_institution: int = 5,
    inactive_per_institution: int = 1,
) -> SyntheticPopulation:
    """Doctors (general and specialists of several specialties), patients and staff.

    Each institution gets ``doctors_per_institution`` active doctors (all but the first
    are specialists, specialties rotating so several appear), ``inactive_per_institution``
    register entries that are suspended or removed (so refusals can be tried), an
    institution admin, and patients. Registration numbers are unique and stable per seed.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    population = SyntheticPopulation()
    numbers = iter(rng.sample(range(10000, 99999), k=len(institutions) * 50 + 10))
    specialty_index = 0
    for institution in institutions:
        for n in range(doctors_per_institution + inactive_per_institution):
            i, j = rng.randrange(len(_SURNAMES)), rng.randrange(len(_GIVEN))
            active = n < doctors_per_institution
            specialist = active and n >= 1
            specialties: tuple[str, ...] = ()
            if specialist:
                specialties = (SPECIALTIES[specialty_index % len(SPECIALTIES)],)
                specialty_index += 1
            population.doctors.append(
                SyntheticDoctor(
                    reg_no=f"{REG_NO_PREFIX}{next(numbers)}",
                    name_en=f"{_SURNAMES[i]} {_GIVEN[j]} (synthetic)",
                    name_zh=f"{_SURNAMES_ZH[i]}{_GIVEN_ZH[j]}",
                    institution_id=institution,
                    role="specialist" if specialist else "doctor",
                    specialties=specialties,
                    status="active" if active else rng.choice(("suspended", "removed")),
                    address=f"{rng.randrange(1, 300)} Synthetic Road, {rng.choice(_DISTRICTS)}",
                    qualifications=tuple(sorted(rng.sample(_QUALIFICATIONS, k=2))),
                )
            )
        population.staff.append(
            SyntheticStaff(
                username=f"admin-{institution}",
                institution_id=institution,
                role="institution_admin",
            )
        )
        for _ in range(patients_per_institution):
            population.patients.append(
                SyntheticPatient(
                    patient_id=f"pt-{rng.getrandbits(48):012x}",
                    institution_id=institution,
                    birth_year=rng.randrange(1935, 2024),
                    sex=rng.choice(("F", "M", "X")),
                )
            )
    population.staff.append(
        SyntheticStaff(
            username="auditor",
            institution_id=institutions[0] if institutions else "",
            role="auditor",
        )
    )
    return population


def register_items(doctors: Iterable[SyntheticDoctor], imported_at: str) -> list[dict[str, Any]]:
    """DynamoDB items for the register table (the fields of ``RegisterEntry.to_item``)."""
    items = []
    for d in doctors:
        item: dict[str, Any] = {
            "reg_no": d.reg_no,
            "name_en": d.name_en,
            "name_zh": d.name_zh,
            "address": d.address,
            "qualifications": list(d.qualifications),
            "status": d.status,
            "specialties": list(d.specialties),
            "imported_at": imported_at,
        }
        if d.specialties:
            item["specialty"] = d.specialties[0]
        items.append(item)
    return items


def general_csv(doctors: Iterable[SyntheticDoctor]) -> str:
    """The General Register in the published-list format (with our Status column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "Registration No.",
            "Name (English)",
            "Name (Chinese)",
            "Address",
            "Qualifications",
            "Status",
        ]
    )
    for d in doctors:
        writer.writerow(
            [d.reg_no, d.name_en, d.name_zh, d.address, "; ".join(d.qualifications), d.status]
        )
    return buffer.getvalue()


def specialist_csv(doctors: Iterable[SyntheticDoctor]) -> str:
    """The Specialist Register: one row per doctor and specialty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "Registration No.",
            "Name (English)",
            "Name (Chinese)",
            "Address",
            "Qualifications",
            "Specialty",
            "Status",
        ]
    )
    for d in doctors:
        for specialty in d.specialties:
            writer.writerow(
                [
                    d.reg_no,
                    d.name_en,
                    d.name_zh,
                    d.address,
                    "; ".join(d.qualifications),
                    specialty,
                    d.status,
                ]
            )
    return buffer.getvalue()


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password meeting the pool's policy (upper, lower, digit, symbol, >= 14)."""
    if length < 14:
        raise ValueError("the user pool requires at least 14 characters")
    alphabet = string.ascii_letters + string.digits + PASSWORD_SYMBOLS
    required = [
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.digits),
        secrets.choice(PASSWORD_SYMBOLS),
    ]
    rest = [secrets.choice(alphabet) for _ in range(length - len(required))]
    chars = required + rest
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
