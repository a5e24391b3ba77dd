"""HL7 timestamps (v2 ``DTM``/``TS``, CDA ``TS``) and their FHIR forms.

Both formats write ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. FHIR wants
``dateTime`` as ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or a full time with seconds and an
offset. The conversions:

- a date of any precision stays a date of that precision;
- a time without seconds (``HHMM`` or ``HH``) is padded with zeros, as the HL7 v2-to-FHIR
  implementation guide does, since FHIR has no minute-precision dateTime;
- a time without an offset is Hong Kong local time (``+08:00``): every institution the
  hub admits is in Hong Kong and sends local time, and FHIR refuses a time without one;
- an ``instant`` (e.g. ``DiagnosticReport.issued``) needs seconds; a coarser value has none.

What it guarantees: :func:`parse_timestamp` accepts only real calendar dates and clock
times (no February 30th, no hour 24) and raises ``ValueError`` with a fixed message
otherwise; callers turn that into an error naming the field, never the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

HONG_KONG_OFFSET = "+08:00"

_TS = re.compile(
    r"(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?"
)


@dataclass(frozen=True)
class Timestamp:
    """A parsed HL7 timestamp; absent parts are None (precision is what is present)."""

    year: int
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    fraction: str | None = None
    offset: str | None = None  # "+HH:MM"

    def fhir_date(self) -> str:
        """The date part as a FHIR ``date`` of the same precision (time is dropped)."""
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
            if self.day is not None:
                text += f"-{self.day:02d}"
        return text

    def fhir_datetime(self) -> str:
        """A FHIR ``dateTime``: a date, or a full time padded to seconds with an offset."""
        if self.hour is None:
            return self.fhir_date()
        minute = self.minute or 0
        second = self.second or 0
        fraction = f".{self.fraction}" if self.fraction and self.second is not None else ""
        offset = self.offset or HONG_KONG_OFFSET
        return f"{self.fhir_date()}T{self.hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"

    def fhir_instant(self) -> str | None:
        """A FHIR ``instant`` when the timestamp is precise to the second, else None."""
        return self.fhir_datetime() if self.second is not None else None


def parse_timestamp(text: str) -> Timestamp:
    """Parse an HL7 v2 ``DTM``/``TS`` or CDA ``TS`` value.

    Raises:
        ValueError: not of the form above, or not a real date and time (fixed message).
    """
    match = _TS.fullmatch(text)
    if match is None or (match.group("fraction") and not match.group("second")):
        raise ValueError("not an HL7 timestamp")
    parts = match.groupdict()
    year = int(parts["year"])
    month = _int(parts["month"])
    day = _int(parts["day"])
    hour = _int(parts["hour"])
    minute = _int(parts["minute"])
    second = _int(parts["second"])
    if year < 1 or (month is not None and not 1 <= month <= 12):
        raise ValueError("not a calendar date")
    if day is not None:
        try:
            date(year, month or 1, day)
        except ValueError:
            raise ValueError("not a calendar date") from None
    if hour is not None and hour > 23:
        raise ValueError("not a clock time")
    if (minute is not None and minute > 59) or (second is not None and second > 59):
        raise ValueError("not a clock time")
    offset = parts["offset"]
    if offset is not None:
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            raise ValueError("not a time-zone offset")
        offset = f"{offset[0]}{offset[1:3]}:{offset[3:5]}"
        if hour is None:
            offset = None  # an offset on a bare date says nothing FHIR can carry
    return Timestamp(year, month, day, hour, minute, second, parts["fraction"], offset)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None
