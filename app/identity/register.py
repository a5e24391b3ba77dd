"""The Medical Council register mirror: its import format, store and importer.

The Medical Council of Hong Kong publishes the General Register and the Specialist
Register as lists. We mirror them as CSV files (UTF-8, header row required):

General Register (``general.csv``)::

    Registration No.,Name (English),Name (Chinese),Address,Qualifications[,Status]

Specialist Register (``specialist.csv``)::

    Registration No.,Name (English),Name (Chinese),Address,Qualifications,Specialty[,Status]

- ``Registration No.``: letter prefix and digits (``M12345``), normalised to upper case.
- ``Qualifications``: as published, several separated by ``;``.
- ``Specialty``: one per row; a doctor listed under two specialties has two rows.
- ``Status`` (our extension, optional): ``active`` (default: being on the published
  list means registered), ``suspended`` or ``removed``.

A specialist must also appear on the general register; a specialist row for an
unknown number is rejected. With ``mark_missing_removed`` (the default, as the
published list is complete), practitioners in the store but absent from the general
list become ``removed``: nothing is deleted, so history survives.

Only synthetic registers exist in this project (see ``app/identity/synthetic.py`` or
the test generator); never load a real one into a test or demo.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.identity.registration import (
    DynamoRegister,
    RegistrationRefused,
    RegistrationStatus,
    normalise_reg_no,
)

GENERAL_COLUMNS = (
    "Registration No.",
    "Name (English)",
    "Name (Chinese)",
    "Address",
    "Qualifications",
)
SPECIALIST_COLUMNS = (*GENERAL_COLUMNS, "Specialty")
STATUS_COLUMN = "Status"


class RegisterFormatError(ValueError):
    """The file does not follow the published list format (row and column named)."""


@dataclass(frozen=True)
class RegisterEntry:
    reg_no: str
    name_en: str
    name_zh: str
    address: str
    qualifications: tuple[str, ...]
    status: RegistrationStatus = RegistrationStatus.ACTIVE
    specialties: tuple[str, ...] = ()

    def to_item(self, imported_at: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "reg_no": self.reg_no,
            "name_en": self.name_en,
            "name_zh": self.name_zh,
            "address": self.address,
            "qualifications": list(self.qualifications),
            "status": self.status.value,
            "specialties": list(self.specialties),
            "imported_at": imported_at,
        }
        if self.specialties:
            # DynamoRegister (shared with the Cognito triggers) reads a single specialty.
            item["specialty"] = self.specialties[0]
        return item


@dataclass
class ImportSummary:
    imported: int = 0
    specialists: int = 0
    marked_removed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def _rows(text: str, required: tuple[str, ...], source: str) -> Iterator[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in required if c not in header]
    if missing:
        raise RegisterFormatError(f"{source}: missing columns {missing}")
    for line, row in enumerate(reader, start=2):
        if any(row.get(c) is None for c in required):
            raise RegisterFormatError(f"{source} line {line}: too few columns")
        yield {k: (v or "").strip() for k, v in row.items() if k is not None}


def _reg_no(raw: str, source: str, line: int) -> str:
    try:
        return normalise_reg_no(raw)
    except RegistrationRefused as exc:
        raise RegisterFormatError(f"{source} line {line}: {exc.reason}") from exc


def _status(raw: str, source: str, line: int) -> RegistrationStatus:
    try:
        return RegistrationStatus(raw.lower() or "active")
    except ValueError as exc:
        raise RegisterFormatError(f"{source} line {line}: unknown status") from exc


def parse_register(general_csv: str, specialist_csv: str | None = None) -> list[RegisterEntry]:
    """Parse the published lists into entries (specialties merged per doctor).

    Raises:
        RegisterFormatError: naming the file, line and problem (never the row's content).
    """
    entries: dict[str, RegisterEntry] = {}
    for line, row in enumerate(_rows(general_csv, GENERAL_COLUMNS, "general"), start=2):
        reg_no = _reg_no(row["Registration No."], "general", line)
        if reg_no in entries:
            raise RegisterFormatError(f"general line {line}: duplicate registration number")
        if not row["Name (English)"]:
            raise RegisterFormatError(f"general line {line}: English name is empty")
        entries[reg_no] = RegisterEntry(
            reg_no=reg_no,
            name_en=row["Name (English)"],
            name_zh=row["Name (Chinese)"],
            address=row["Address"],
            qualifications=tuple(q.strip() for q in row["Qualifications"].split(";") if q),
            status=_status(row.get(STATUS_COLUMN, ""), "general", line),
        )
    if specialist_csv:
        rows = _rows(specialist_csv, SPECIALIST_COLUMNS, "specialist")
        for line, row in enumerate(rows, start=2):
            reg_no = _reg_no(row["Registration No."], "specialist", line)
            specialty = row["Specialty"].strip().lower()
            if reg_no not in entries:
                raise RegisterFormatError(f"specialist line {line}: not on the general register")
            if not specialty:
                raise RegisterFormatError(f"specialist line {line}: specialty is empty")
            entry = entries[reg_no]
            if specialty not in entry.specialties:
                entries[reg_no] = RegisterEntry(
                    **{**entry.__dict__, "specialties": (*entry.specialties, specialty)}
                )
    return list(entries.values())


class RegisterStore(DynamoRegister):
    """The register table: lookups (strongly consistent) plus the importer's writes."""

    def __init__(self, table: Any):
        super().__init__(table)
        self.table = table

    def entry(self, reg_no: str) -> RegisterEntry | None:
        item = self.table.get_item(Key={"reg_no": reg_no}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        try:
            status = RegistrationStatus(str(item.get("status", "")))
        except ValueError:
            status = RegistrationStatus.REMOVED
        return RegisterEntry(
            reg_no=str(item["reg_no"]),
            name_en=str(item.get("name_en", "")),
            name_zh=str(item.get("name_zh", "")),
            address=str(item.get("address", "")),
            qualifications=tuple(str(q) for q in item.get("qualifications", [])),
            status=status,
            specialties=tuple(str(s) for s in item.get("specialties", [])),
        )

    def all_reg_nos(self) -> set[str]:
        out: set[str] = set()
        kwargs: dict[str, Any] = {"ProjectionExpression": "reg_no", "ConsistentRead": True}
        while True:
            page = self.table.scan(**kwargs)
            out.update(str(i["reg_no"]) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_entries(self, entries: Iterable[RegisterEntry], imported_at: str) -> int:
        count = 0
        with self.table.batch_writer() as batch:
            for entry in entries:
                batch.put_item(Item=entry.to_item(imported_at))
                count += 1
        return count

    def set_status(self, reg_no: str, status: RegistrationStatus) -> None:
        self.table.update_item(
            Key={"reg_no": reg_no},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status.value},
            ConditionExpression="attribute_exists(reg_no)",
        )


def import_register(
    store: RegisterStore,
    general_csv: str,
    specialist_csv: str | None = None,
    *,
    mark_missing_removed: bool = True,
    now: datetime | None = None,
) -> ImportSummary:
    """Load the published lists into the store. Parses everything before writing.

    Raises:
        RegisterFormatError: the files are malformed; nothing was written.
    """
    entries = parse_register(general_csv, specialist_csv)
    stamp = (now or datetime.now(UTC)).isoformat()
    summary = ImportSummary()
    summary.imported = store.put_entries(entries, stamp)
    summary.specialists = sum(1 for e in entries if e.specialties)
    for entry in entries:
        summary.by_status[entry.status.value] = summary.by_status.get(entry.status.value, 0) + 1
    if mark_missing_removed:
        listed = {e.reg_no for e in entries}
        for reg_no in sorted(store.all_reg_nos() - listed):
            store.set_status(reg_no, RegistrationStatus.REMOVED)
            summary.marked_removed += 1
    return summary
