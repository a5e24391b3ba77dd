"""The one registration check shared by the Cognito triggers and the service.

A doctor may receive tokens or be served only while their Medical Council of Hong Kong
registration is active. (Where they may act, their institution and roles, is decided by
:mod:`app.identity.affiliations`.) The register is read through :class:`RegisterLookup`,
so the check runs the same against DynamoDB (strongly consistent reads) and against
plain data in tests.

Refusals carry a short reason code, never personal data, so they are safe to log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

# Synthetic and real MCHK registration numbers: a letter prefix and digits (e.g. M12345).
REG_NO_PATTERN = re.compile(r"^[A-Z]{1,2}\d{4,6}$")


class RegistrationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


@dataclass(frozen=True)
class Practitioner:
    reg_no: str
    status: RegistrationStatus
    specialty: str | None = None


class RegistrationRefused(Exception):
    """The practitioner may not proceed. ``reason`` is a code, safe to log and return."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"registration check failed: {reason}")


class RegisterLookup(Protocol):
    def find(self, reg_no: str) -> Practitioner | None: ...


class MappingRegister:
    """A register held in memory (tests, demos)."""

    def __init__(self, entries: Mapping[str, Practitioner]):
        self._entries = dict(entries)

    def find(self, reg_no: str) -> Practitioner | None:
        return self._entries.get(reg_no)


class DynamoRegister:
    """The register mirror in DynamoDB; reads are strongly consistent."""

    def __init__(self, table: Any):
        self._table = table

    def find(self, reg_no: str) -> Practitioner | None:
        item = self._table.get_item(Key={"reg_no": reg_no}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        try:
            status = RegistrationStatus(str(item.get("status", "")))
        except ValueError:
            # An unreadable status is treated as not active: fail closed.
            status = RegistrationStatus.REMOVED
        specialty = item.get("specialty")
        return Practitioner(reg_no, status, str(specialty) if specialty else None)


def normalise_reg_no(raw: object) -> str:
    if not isinstance(raw, str):
        raise RegistrationRefused("registration_number_missing")
    reg_no = raw.strip().upper()
    if not REG_NO_PATTERN.match(reg_no):
        raise RegistrationRefused("registration_number_malformed")
    return reg_no


def check_registration(reg_no: object, *, register: RegisterLookup) -> Practitioner:
    """Return the practitioner if active on the register.

    Raises:
        RegistrationRefused: with reason ``registration_number_missing``,
            ``registration_number_malformed``, ``not_on_register`` or
            ``registration_<status>``.
    """
    number = normalise_reg_no(reg_no)
    practitioner = register.find(number)
    if practitioner is None:
        raise RegistrationRefused("not_on_register")
    if practitioner.status is not RegistrationStatus.ACTIVE:
        raise RegistrationRefused(f"registration_{practitioner.status.value}")
    return practitioner
