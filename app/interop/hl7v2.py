"""HL7 v2 (ER7, pipe-delimited) messages to canonical FHIR R4B: ADT A01/A04/A08, ORU R01.

Parsing is python-hl7's (``hl7``): it splits the message with the separators its MSH
declares; this module decides what the parts mean. The mapping (segment/field -> FHIR
element) is tabled in ``docs/interop.md``; in short:

- ``PID`` -> ``Patient`` (PID-3 identifiers: type ``MR`` is the institution's MRN, required
  and unique; type ``NNHKG`` is the HKID, check digit validated), PID-5 name, PID-7 birth
  date, PID-8 gender, PID-11 address, PID-13/14 telecom, PID-29/30 death;
- ``PV1`` -> ``Encounter`` (class, status, period, location, attending/admitting doctor,
  visit number), omitted when PV1-2 is ``N`` (not applicable);
- ``OBR`` -> ``DiagnosticReport`` and each following ``OBX`` -> ``Observation`` (its
  result), ``NTE`` after an ``OBX`` -> that Observation's note.

What it guarantees:

- the input is decoded with the character set MSH-18 declares (ASCII, UTF-8, ISO 8859-1 or
  Big5-HKSCS) and refused at the first byte that does not decode;
- every value taken into the Bundle is checked first (dates, numbers, codes, HKID, escape
  sequences), so a malformed message fails with :class:`InvalidSource` naming the segment
  and field (``PID-7``, ``OBX[2]-5``, ``PID-3[2].1``); segments that may repeat are
  numbered from 1 in the order they occur (``OBX[2]`` is the message's second OBX);
- escape sequences are checked before python-hl7 unescapes them: python-hl7 logs the
  whole field when it meets one it does not know, and repeats ``\\.sp<n>\\`` without
  bound, so unknown sequences and counts above 99 are refused here and never reach it;
- the message is never echoed: errors carry locations and fixed reasons only.

Segments the hub does not map (``EVN``, ``NK1``, ``ORC``, ``Z..``...) are kept in the sealed
source and do not appear in the Bundle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import hl7  # type: ignore[import-untyped]

from app.interop import systems
from app.interop.canonical import (
    BundleBuilder,
    ConvertedRecord,
    SubjectIdentifiers,
    checked_hkid,
    hkid_identifier,
    identifier_type,
    mrn_identifier,
    validated_bundle,
)
from app.interop.errors import (
    InvalidSource,
    Reason,
    SourceFormat,
    SourceTooLarge,
    UnsupportedSourceContent,
)
from app.interop.timestamps import Timestamp, parse_timestamp
from app.patients.hkid import Hkid

FORMAT = SourceFormat.HL7V2
MEDIA_TYPES = ("application/hl7-v2", "x-application/hl7-v2+er7")
MAX_HL7_BYTES = 4 * 1024 * 1024

SUPPORTED_MESSAGES = frozenset({("ADT", "A01"), ("ADT", "A04"), ("ADT", "A08"), ("ORU", "R01")})
SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
# MSH-18 (HL7 table 0211) -> Python codec. Empty means the default, ASCII; UTF-8 is its
# superset, so decoding as UTF-8 accepts ASCII too.
CHARACTER_SETS = {
    "": "utf-8",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "8859/1": "latin-1",
    "BIG-5": "big5hkscs",
}

# Segments that may occur more than once in the structures we read: always numbered.
_REPEATING = frozenset({"OBX", "OBR", "NTE", "NK1", "ORC", "SPM", "AL1", "DG1", "PR1", "ROL"})
_KNOWN_SEGMENTS = frozenset(
    {"MSH", "EVN", "PID", "PD1", "PV1", "PV2", "MRG", "SFT", "UAC", "TQ1", "TQ2", "CTD", "CTI"}
    | {"IN1", "IN2", "IN3", "GT1", "ACC", "UB1", "UB2", "PDA", "DB1", "OBX", "OBR", "NTE"}
    | {"NK1", "ORC", "SPM", "AL1", "DG1", "PR1", "ROL", "DRG", "GT1", "FT1", "BLG", "PRT"}
)
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TIME = re.compile(r"([01][0-9]|2[0-3])([0-5][0-9])?([0-5][0-9])?(?:\.[0-9]{1,4})?([+-][0-9]{4})?")
_ESCAPE_NAMES = frozenset({"F", "S", "T", "R", "E", "H", "N", ".br", ".fi", ".nf", ".sk", ".ce"})
_ESCAPE_COUNTED = re.compile(r"\.(?:sp|in|ti)(?:[+-]?[0-9]{1,2})?")
_ESCAPE_HEX = re.compile(r"X(?:[0-9A-Fa-f]{2}){1,64}")

# Table 0001 administrative sex -> FHIR gender.
GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
# Table 0004 patient class -> v3 ActCode encounter class ("N": no encounter).
PATIENT_CLASS = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("IMP", "inpatient encounter"),
}
# Table 0200 name type -> HumanName.use.
NAME_USE = {"L": "official", "D": "usual", "N": "nickname", "M": "maiden", "S": "anonymous"}
NAME_USE |= {"B": "old", "A": "usual"}
# Table 0190 address type -> Address.use.
ADDRESS_USE = {"H": "home", "B": "work", "O": "work", "C": "temp", "BA": "billing"}
# Table 0201 telecom use and 0202 equipment type -> ContactPoint use and system.
TELECOM_USE = {"PRN": "home", "ORN": "home", "WPN": "work", "VHN": "home", "EMR": "temp"}
TELECOM_SYSTEM = {"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "Internet": "email"}
TELECOM_SYSTEM |= {"X.400": "email"}
# Table 0123 result status (OBR-25) -> DiagnosticReport.status.
REPORT_STATUS = {
    "O": "registered",
    "I": "registered",
    "S": "partial",
    "A": "partial",
    "P": "preliminary",
    "R": "preliminary",
    "C": "corrected",
    "F": "final",
    "X": "cancelled",
    "": "unknown",
}
# Table 0085 observation result status (OBX-11) -> Observation.status.
OBSERVATION_STATUS = {
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "W": "entered-in-error",
    "X": "cancelled",
}
# Table 0078 abnormal flags that are also v3 ObservationInterpretation codes.
INTERPRETATION = frozenset(
    {"L", "H", "LL", "HH", "N", "A", "AA", "<", ">", "S", "R", "I", "POS", "NEG", "U", "D", "B"}
    | {"W", "IND", "E", "EX", "HX", "LX", "NR", "RR", "MS", "VS"}
)
VALUE_TYPES = ("NM", "ST", "TX", "FT", "CE", "CWE", "CNE", "SN", "DT", "DTM", "TS", "TM")
QUANTITY_COMPARATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "=": None, "": None}


def convert_hl7v2(source: bytes, media_type: str, *, institution: str) -> ConvertedRecord:
    """Convert one HL7 v2 message to a canonical FHIR R4B ``collection`` Bundle.

    Args:
        source: the message bytes (segments ended by CR; LF and CRLF are accepted).
        media_type: the declared media type, kept with the source.
        institution: the submitting institution's id, from its authenticated identity
            (never from MSH-4, which the sender writes): it scopes MRNs and local codes.

    Raises:
        SourceTooLarge: above ``MAX_HL7_BYTES``.
        InvalidSource: malformed, naming the segment and field.
        UnsupportedSourceContent: a message type, version or character set not converted.
    """
    if len(source) > MAX_HL7_BYTES:
        raise SourceTooLarge(FORMAT, MAX_HL7_BYTES)
    if not systems.valid_institution(institution):
        raise ValueError("institution ids are lowercase tokens")
    message = _Message(_parse(_decode(source)))
    kind = message.check_header()
    builder = BundleBuilder(source, "collection")
    control_id = message.msh.text(10)
    builder.header["identifier"] = {
        "system": f"{systems.HUB_FHIR_BASE}/sid/institution/{institution}/hl7v2-message",
        "value": control_id,
    }
    sent = message.msh.timestamp(7)
    if sent is not None and sent.fhir_instant() is not None:
        builder.header["timestamp"] = sent.fhir_instant()

    converter = _Converter(message, builder, institution)
    subject = converter.patient()
    encounter = converter.encounter(kind)
    if kind[0] == "ORU":
        converter.results(encounter)
    body = validated_bundle(builder.bundle(), FORMAT)
    # MSH-10 is unique within its sending application and facility (MSH-3, MSH-4).
    sender = f"{message.msh.text(3)}|{message.msh.text(4)}"
    return ConvertedRecord(
        body, source, media_type, FORMAT, subject, message_id=f"hl7v2:{sender}|{control_id}"
    )


def parse_hl7v2(source: bytes) -> Any:
    """The plain parse (decode and split, no conversion): the benchmark's baseline."""
    return _parse(_decode(source))


# -- decoding and parsing --------------------------------------------------------------


def _decode(source: bytes) -> str:
    if not source.startswith(b"MSH") or len(source) < 8:
        raise InvalidSource(FORMAT, "MSH", Reason.MISSING)
    end = min((i for i in (source.find(b"\r"), source.find(b"\n")) if i >= 0), default=-1)
    header = source[:end] if end >= 0 else source
    separator = header[3:4]
    fields = header.split(separator)
    # MSH-1 is the separator itself, so MSH-n is the n-1th piece of the split.
    charset = fields[17].strip().decode("latin-1") if len(fields) > 17 else ""
    if "~" in charset or "^" in charset:  # MSH-18 repeats only for alternate sets
        charset = re.split(r"[~^]", charset)[0]
    codec = CHARACTER_SETS.get(charset)
    if codec is None:
        raise UnsupportedSourceContent(
            FORMAT, "the MSH-18 character set", "empty (ASCII), ASCII, UNICODE UTF-8, 8859/1, BIG-5"
        )
    try:
        text = source.decode(codec)
    except UnicodeDecodeError as exc:
        raise InvalidSource(FORMAT, f"byte {exc.start}", Reason.NOT_UTF8) from None
    # Blank lines between segments are tolerated (files are often written with LF or CRLF).
    lines = [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]
    for index, line in enumerate(lines, start=1):
        if _CONTROL.search(line):
            raise InvalidSource(FORMAT, f"segment {index}", Reason.NOT_TEXT)
    return "\r".join(lines)


def _parse(text: str) -> Any:
    try:
        return hl7.parse(text)
    except Exception:
        # python-hl7's exception texts quote the message; only the fact is kept.
        raise InvalidSource(FORMAT, "MSH-2", Reason.MALFORMED) from None


class _Segment:
    """One segment with its label (``PID``, ``OBX[2]``) and checked, unescaped access."""

    def __init__(self, label: str, segment: Any, message: Any):
        self.label = label
        self.id = label[:3]
        self._segment = segment
        self._message = message

    def location(self, field: int, rep: int = 1, comp: int | None = None) -> str:
        text = f"{self.label}-{field}"
        if rep > 1:
            text += f"[{rep}]"
        if comp is not None:
            text += f".{comp}"
        return text

    def repetitions(self, field: int) -> list[list[list[str]]]:
        """Field ``field`` as repetitions of components of raw (escaped) subcomponents."""
        if field >= len(self._segment):
            return []
        reps: list[list[list[str]]] = []
        for rep in self._segment[field]:
            if isinstance(rep, str):
                reps.append([[rep]])
            else:
                reps.append([[c] if isinstance(c, str) else [str(s) for s in c] for c in rep])
        if all(_empty(r) for r in reps):
            return []
        return reps

    def text(self, field: int, rep: int = 1, comp: int = 1) -> str:
        """One component's value, unescaped ('' when absent)."""
        reps = self.repetitions(field)
        if rep > len(reps) or comp > len(reps[rep - 1]):
            return ""
        raw = self._message.separators[4].join(reps[rep - 1][comp - 1])
        return self.unescape(raw, self.location(field, rep, comp if comp > 1 else None))

    def component_texts(self, field: int, rep: int) -> list[str]:
        reps = self.repetitions(field)
        if rep > len(reps):
            return []
        location = self.location(field, rep)
        return [
            self.unescape(self._message.separators[4].join(comp), location)
            for comp in reps[rep - 1]
        ]

    def required(self, field: int) -> str:
        value = self.text(field)
        if not value:
            raise InvalidSource(FORMAT, self.location(field), Reason.MISSING)
        return value

    def timestamp(self, field: int, comp: int = 1) -> Timestamp | None:
        value = self.text(field, 1, comp)
        if not value:
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            location = self.location(field, 1, comp if comp > 1 else None)
            raise InvalidSource(FORMAT, location, Reason.NOT_A_DATE) from None

    def unescape(self, raw: str, location: str) -> str:
        esc = self._message.esc
        if esc not in raw:
            return raw
        parts = raw.split(esc)
        if len(parts) % 2 == 0:  # an escape sequence that is never closed
            raise InvalidSource(FORMAT, location, Reason.BAD_ESCAPE)
        for name in parts[1::2]:
            if not (
                name in _ESCAPE_NAMES
                or _ESCAPE_COUNTED.fullmatch(name)
                or _ESCAPE_HEX.fullmatch(name)
            ):
                raise InvalidSource(FORMAT, location, Reason.BAD_ESCAPE)
        return str(self._message.unescape(raw))


def _empty(rep: list[list[str]]) -> bool:
    return all(s == "" for comp in rep for s in comp)


class _Message:
    def __init__(self, parsed: Any):
        self.parsed = parsed
        self.segments: list[_Segment] = []
        counts: dict[str, int] = {}
        for index, segment in enumerate(parsed, start=1):
            raw_id = str(segment[0][0]) if len(segment) and len(segment[0]) else ""
            if not _SEGMENT_ID.fullmatch(raw_id):
                raise InvalidSource(FORMAT, f"segment {index}", Reason.MALFORMED)
            counts[raw_id] = counts.get(raw_id, 0) + 1
            if raw_id in _REPEATING:
                label = f"{raw_id}[{counts[raw_id]}]"
            elif counts[raw_id] > 1:
                where = raw_id if raw_id in _KNOWN_SEGMENTS else f"segment {index}"
                raise InvalidSource(FORMAT, where, Reason.REPEATED)
            else:
                label = raw_id
            self.segments.append(_Segment(label, segment, parsed))
        self.msh = self.segments[0]

    def first(self, segment_id: str) -> _Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def all(self, segment_id: str) -> Iterator[_Segment]:
        return (s for s in self.segments if s.id == segment_id)

    def check_header(self) -> tuple[str, str]:
        if self.msh.id != "MSH":
            raise InvalidSource(FORMAT, "MSH", Reason.MISSING)
        code = self.msh.text(9, 1, 1)
        trigger = self.msh.text(9, 1, 2)
        if not code:
            raise InvalidSource(FORMAT, "MSH-9", Reason.MISSING)
        if (code, trigger) not in SUPPORTED_MESSAGES:
            raise UnsupportedSourceContent(
                FORMAT, "the MSH-9 message type", "ADT^A01, ADT^A04, ADT^A08, ORU^R01"
            )
        self.msh.required(10)
        version = self.msh.text(12, 1, 1)
        if not version:
            raise InvalidSource(FORMAT, "MSH-12", Reason.MISSING)
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedSourceContent(FORMAT, "the MSH-12 version", "2.3 to 2.8.2")
        if self.msh.timestamp(7) is None:
            raise InvalidSource(FORMAT, "MSH-7", Reason.MISSING)
        return code, trigger


@dataclass
class _Converter:
    message: _Message
    builder: BundleBuilder
    institution: str

    # -- PID -> Patient ---------------------------------------------------------------

    def patient(self) -> SubjectIdentifiers:
        pids = [s for s in self.message.segments if s.id == "PID"]
        if not pids:
            raise InvalidSource(FORMAT, "PID", Reason.MISSING)
        pid = pids[0]
        identifiers, mrn, hkid = self._patient_identifiers(pid)
        patient: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers}
        names = [n for n in (self._name(pid, 5, r) for r in _reps(pid, 5)) if n]
        if names:
            patient["name"] = names
        telecom = [t for t in (self._telecom(pid, 13, r, "home") for r in _reps(pid, 13)) if t]
        telecom += [t for t in (self._telecom(pid, 14, r, "work") for r in _reps(pid, 14)) if t]
        if telecom:
            patient["telecom"] = telecom
        gender = pid.text(8)
        if gender:
            if gender not in GENDER:
                raise InvalidSource(FORMAT, "PID-8", Reason.NOT_IN_TABLE)
            patient["gender"] = GENDER[gender]
        birth = pid.timestamp(7)
        if birth is not None:
            patient["birthDate"] = birth.fhir_date()
        death = pid.timestamp(29)
        indicator = pid.text(30)
        if indicator not in ("", "Y", "N"):
            raise InvalidSource(FORMAT, "PID-30", Reason.NOT_IN_TABLE)
        if death is not None:
            patient["deceasedDateTime"] = death.fhir_datetime()
        elif indicator:
            patient["deceasedBoolean"] = indicator == "Y"
        addresses = [a for a in (self._address(pid, 11, r) for r in _reps(pid, 11)) if a]
        if addresses:
            patient["address"] = addresses
        self.builder.add("PID", patient)
        return SubjectIdentifiers(self.institution, mrn, hkid)

    def _patient_identifiers(self, pid: _Segment) -> tuple[list[dict[str, Any]], str, Hkid | None]:
        mrns: list[tuple[int, str]] = []
        hkids: list[tuple[int, Hkid]] = []
        for rep in _reps(pid, 3):
            kind = pid.text(3, rep, 5)
            value = pid.text(3, rep, 1)
            if kind == "MR":
                if not value:
                    raise InvalidSource(FORMAT, pid.location(3, rep, 1), Reason.MISSING)
                mrns.append((rep, value))
            elif kind == "NNHKG":
                hkids.append((rep, checked_hkid(value, FORMAT, pid.location(3, rep, 1))))
        if not mrns:
            raise InvalidSource(FORMAT, "PID-3", Reason.NO_MRN)
        if len({v for _, v in mrns}) > 1:
            raise InvalidSource(FORMAT, pid.location(3, mrns[1][0], 1), Reason.REPEATED)
        if len({h.value for _, h in hkids}) > 1:
            raise InvalidSource(FORMAT, pid.location(3, hkids[1][0], 1), Reason.REPEATED)
        mrn = mrns[0][1]
        identifiers = [mrn_identifier(self.institution, mrn)]
        hkid = hkids[0][1] if hkids else None
        if hkid is not None:
            identifiers.append(hkid_identifier(hkid))
        return identifiers, mrn, hkid

    def _name(self, seg: _Segment, field: int, rep: int) -> dict[str, Any] | None:
        family = seg.text(field, rep, 1)
        given = [g for g in (seg.text(field, rep, 2), seg.text(field, rep, 3)) if g]
        name: dict[str, Any] = {}
        use = seg.text(field, rep, 7)
        if use:
            if use not in NAME_USE and use not in {"C", "I", "P", "R", "T", "U"}:
                raise InvalidSource(FORMAT, seg.location(field, rep, 7), Reason.NOT_IN_TABLE)
            if use in NAME_USE:
                name["use"] = NAME_USE[use]
        if family:
            name["family"] = family
        if given:
            name["given"] = given
        prefix = seg.text(field, rep, 5)
        if prefix:
            name["prefix"] = [prefix]
        suffix = seg.text(field, rep, 4)
        if suffix:
            name["suffix"] = [suffix]
        return name if (family or given) else None

    def _address(self, seg: _Segment, field: int, rep: int) -> dict[str, Any] | None:
        address: dict[str, Any] = {}
        kind = seg.text(field, rep, 7)
        if kind in ADDRESS_USE:
            address["use"] = ADDRESS_USE[kind]
        lines = [x for x in (seg.text(field, rep, 1), seg.text(field, rep, 2)) if x]
        if lines:
            address["line"] = lines
        for comp, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
            value = seg.text(field, rep, comp)
            if value:
                address[key] = value
        return address if (set(address) - {"use"}) else None

    def _telecom(self, seg: _Segment, field: int, rep: int, default_use: str) -> Any:
        equipment = seg.text(field, rep, 3)
        use = seg.text(field, rep, 2)
        system = TELECOM_SYSTEM.get(equipment)
        if equipment and system is None:
            raise InvalidSource(FORMAT, seg.location(field, rep, 3), Reason.NOT_IN_TABLE)
        if system == "email":
            value = seg.text(field, rep, 4)
        else:
            value = seg.text(field, rep, 12) or seg.text(field, rep, 1)
            if not value:
                parts = [seg.text(field, rep, c) for c in (5, 6, 7)]
                value = " ".join(p for p in parts if p)
                if parts[0]:
                    value = "+" + value
        if not value:
            return None
        point: dict[str, Any] = {"system": system or "phone", "value": value}
        point["use"] = "mobile" if equipment == "CP" else TELECOM_USE.get(use, default_use)
        return point

    # -- PV1 -> Encounter -------------------------------------------------------------

    def encounter(self, kind: tuple[str, str]) -> str | None:
        pv1 = self.message.first("PV1")
        if pv1 is None:
            if kind[0] == "ADT":
                raise InvalidSource(FORMAT, "PV1", Reason.MISSING)
            return None
        patient_class = pv1.required(2)
        if patient_class == "N":
            return None
        if patient_class not in PATIENT_CLASS:
            raise InvalidSource(FORMAT, "PV1-2", Reason.NOT_IN_TABLE)
        code, display = PATIENT_CLASS[patient_class]
        admitted = pv1.timestamp(44)
        discharged = pv1.timestamp(45)
        if discharged is not None:
            status = "finished"
        elif kind == ("ADT", "A04"):
            status = "arrived"
        else:
            status = "in-progress"
        encounter: dict[str, Any] = {"resourceType": "Encounter"}
        visit = pv1.text(19)
        if visit:
            encounter["identifier"] = [
                {"system": systems.visit_system(self.institution), "value": visit}
            ]
        encounter["status"] = status
        encounter["class"] = {"system": systems.V3_ACT_CODE, "code": code, "display": display}
        encounter["subject"] = {"reference": self.builder.reference("PID")}
        participants = []
        for field, role, role_display in ((7, "ATND", "attender"), (17, "ADM", "admitter")):
            for rep in _reps(pv1, field):
                doctor = self._doctor(pv1, field, rep)
                if doctor is not None:
                    participants.append(
                        {
                            "type": [
                                {
                                    "coding": [
                                        {
                                            "system": systems.V3_PARTICIPATION_TYPE,
                                            "code": role,
                                            "display": role_display,
                                        }
                                    ]
                                }
                            ],
                            "individual": doctor,
                        }
                    )
        if participants:
            encounter["participant"] = participants
        period = {}
        if admitted is not None:
            period["start"] = admitted.fhir_datetime()
        if discharged is not None:
            period["end"] = discharged.fhir_datetime()
        if period:
            encounter["period"] = period
        location = " ".join(x for x in (pv1.text(3, 1, c) for c in (4, 1, 2, 3)) if x)
        if location:
            encounter["location"] = [{"location": {"display": location}}]
        return self.builder.add("PV1", encounter)

    def _doctor(self, seg: _Segment, field: int, rep: int) -> dict[str, Any] | None:
        ident = seg.text(field, rep, 1)
        family = seg.text(field, rep, 2)
        given = seg.text(field, rep, 3)
        if not (ident or family or given):
            return None
        reference: dict[str, Any] = {"type": "Practitioner"}
        if ident:
            authority = seg.text(field, rep, 9)
            system = (
                systems.MCHK_REGISTRATION_SYSTEM
                if authority == "MCHK"
                else systems.staff_system(self.institution)
            )
            reference["identifier"] = {"system": system, "value": ident}
        display = " ".join(x for x in (family, given) if x)
        if display:
            reference["display"] = display
        return reference

    # -- OBR/OBX -> DiagnosticReport/Observation -------------------------------------

    def results(self, encounter: str | None) -> None:
        current: tuple[_Segment, dict[str, Any]] | None = None
        last_observation: dict[str, Any] | None = None
        for seg in self.message.segments:
            if seg.id == "OBR":
                current = (seg, self._report(seg, encounter))
                last_observation = None
            elif seg.id == "OBX":
                if current is None:
                    raise InvalidSource(FORMAT, seg.label, Reason.OUT_OF_ORDER)
                obr, report = current
                last_observation = self._observation(seg, obr, encounter)
                reference = self.builder.add(seg.label, last_observation)
                report.setdefault("result", []).append({"reference": reference})
            elif seg.id == "NTE" and last_observation is not None:
                sep = self.message.parsed.separators[3]
                comment = "\n".join(
                    sep.join(seg.component_texts(3, rep)) for rep in _reps(seg, 3)
                ).strip()
                if comment:
                    last_observation.setdefault("note", []).append({"text": comment})
        if current is None:
            raise InvalidSource(FORMAT, "OBR", Reason.MISSING)

    def _report(self, obr: _Segment, encounter: str | None) -> dict[str, Any]:
        status = obr.text(25)
        if status not in REPORT_STATUS:
            raise InvalidSource(FORMAT, obr.location(25), Reason.NOT_IN_TABLE)
        report: dict[str, Any] = {"resourceType": "DiagnosticReport"}
        identifiers = []
        for field, kind, type_code in ((2, "placer", "PLAC"), (3, "filler", "FILL")):
            value = obr.text(field)
            if value:
                identifiers.append(
                    {
                        "type": identifier_type(type_code, f"{kind.capitalize()} identifier"),
                        "system": systems.order_system(self.institution, kind),
                        "value": value,
                    }
                )
        if identifiers:
            report["identifier"] = identifiers
        report["status"] = REPORT_STATUS[status]
        code = self._codeable(obr, 4, 1)
        if code is None:
            raise InvalidSource(FORMAT, obr.location(4), Reason.MISSING)
        report["code"] = code
        report["subject"] = {"reference": self.builder.reference("PID")}
        if encounter:
            report["encounter"] = {"reference": encounter}
        observed = obr.timestamp(7)
        if observed is not None:
            report["effectiveDateTime"] = observed.fhir_datetime()
        reported = obr.timestamp(22)
        if reported is not None and reported.fhir_instant() is not None:
            report["issued"] = reported.fhir_instant()
        self.builder.add(obr.label, report)
        return report

    def _observation(self, obx: _Segment, obr: _Segment, encounter: str | None) -> dict[str, Any]:
        status = obx.text(11)
        if not status:
            raise InvalidSource(FORMAT, obx.location(11), Reason.MISSING)
        if status not in OBSERVATION_STATUS:
            raise InvalidSource(FORMAT, obx.location(11), Reason.NOT_IN_TABLE)
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": OBSERVATION_STATUS[status],
        }
        code = self._codeable(obx, 3, 1)
        if code is None:
            raise InvalidSource(FORMAT, obx.location(3), Reason.MISSING)
        observation["code"] = code
        observation["subject"] = {"reference": self.builder.reference("PID")}
        if encounter:
            observation["encounter"] = {"reference": encounter}
        effective = obx.timestamp(14) or obr.timestamp(7)
        if effective is not None:
            observation["effectiveDateTime"] = effective.fhir_datetime()
        value = self._value(obx)
        if value is not None:
            observation.update(value)
        flags = [obx.text(8, rep) for rep in _reps(obx, 8)]
        interpretations: list[dict[str, Any]] = []
        for flag in (f for f in flags if f):
            if flag in INTERPRETATION:
                interpretations.append(
                    {"coding": [{"system": systems.V3_OBSERVATION_INTERPRETATION, "code": flag}]}
                )
            else:
                interpretations.append({"text": flag})
        if interpretations:
            observation["interpretation"] = interpretations
        reference_range = obx.text(7)
        if reference_range:
            observation["referenceRange"] = [{"text": reference_range}]
        return observation

    def _value(self, obx: _Segment) -> dict[str, Any] | None:
        reps = _reps(obx, 5)
        value_type = obx.text(2)
        if not reps:
            return None
        if not value_type:
            raise InvalidSource(FORMAT, obx.location(2), Reason.MISSING)
        if value_type not in VALUE_TYPES:
            raise UnsupportedSourceContent(FORMAT, f"the {obx.label}-2 value type", _TYPES)
        location = obx.location(5)
        if value_type == "NM":
            number = _decimal(obx.text(5), location)
            return {"valueQuantity": self._quantity(obx, number)}
        if value_type in ("ST", "TX", "FT"):
            sep = self.message.parsed.separators[3]
            text = "\n".join(sep.join(obx.component_texts(5, rep)) for rep in reps)
            return {"valueString": text}
        if value_type in ("CE", "CWE", "CNE"):
            concept = self._codeable(obx, 5, 1)
            return {"valueCodeableConcept": concept} if concept else None
        if value_type == "SN":
            return self._structured_numeric(obx)
        if value_type == "TM":
            match = _TIME.fullmatch(obx.text(5))
            if match is None:
                raise InvalidSource(FORMAT, location, Reason.NOT_A_DATE)
            hour, minute, second = match.group(1), match.group(2) or "00", match.group(3) or "00"
            return {"valueTime": f"{hour}:{minute}:{second}"}
        stamp = obx.timestamp(5)
        assert stamp is not None  # reps is not empty
        if value_type == "DT":
            return {"valueDateTime": stamp.fhir_date()}
        return {"valueDateTime": stamp.fhir_datetime()}

    def _quantity(self, obx: _Segment, number: Decimal) -> dict[str, Any]:
        quantity: dict[str, Any] = {"value": number}
        unit_code = obx.text(6, 1, 1)
        unit_text = obx.text(6, 1, 2)
        unit_system = obx.text(6, 1, 3)
        if unit_text or unit_code:
            quantity["unit"] = unit_text or unit_code
        if unit_code and unit_system in ("UCUM", "ANSI+UCUM"):
            quantity["system"] = systems.UCUM
            quantity["code"] = unit_code
        return quantity

    def _structured_numeric(self, obx: _Segment) -> dict[str, Any]:
        location = obx.location(5)
        comparator = obx.text(5, 1, 1)
        first = obx.text(5, 1, 2)
        separator = obx.text(5, 1, 3)
        second = obx.text(5, 1, 4)
        if comparator not in QUANTITY_COMPARATORS:
            raise InvalidSource(FORMAT, obx.location(5, 1, 1), Reason.NOT_IN_TABLE)
        if not separator and not second:
            quantity = self._quantity(obx, _decimal(first, obx.location(5, 1, 2)))
            if QUANTITY_COMPARATORS[comparator]:
                quantity["comparator"] = QUANTITY_COMPARATORS[comparator]
            return {"valueQuantity": quantity}
        if comparator or separator not in ("-", ":", "/"):
            raise InvalidSource(FORMAT, location, Reason.MALFORMED)
        low = self._quantity(obx, _decimal(first, obx.location(5, 1, 2)))
        high = self._quantity(obx, _decimal(second, obx.location(5, 1, 4)))
        if separator == "-":
            return {"valueRange": {"low": low, "high": high}}
        for part in (low, high):  # a ratio's units are in its numerator and denominator text
            for key in ("unit", "system", "code"):
                part.pop(key, None)
        return {"valueRatio": {"numerator": low, "denominator": high}}

    def _codeable(self, seg: _Segment, field: int, rep: int) -> dict[str, Any] | None:
        codings = []
        for offset in (0, 3):
            code = seg.text(field, rep, 1 + offset)
            display = seg.text(field, rep, 2 + offset)
            system_name = seg.text(field, rep, 3 + offset)
            if not code:
                continue
            coding: dict[str, Any] = {}
            system = self._code_system(system_name)
            if system:
                coding["system"] = system
            coding["code"] = code
            if display:
                coding["display"] = display
            codings.append(coding)
        text = seg.text(field, rep, 9) or seg.text(field, rep, 2)
        if not codings and not text:
            return None
        concept: dict[str, Any] = {}
        if codings:
            concept["coding"] = codings
        if text and not codings:
            concept["text"] = text
        return concept

    def _code_system(self, name: str) -> str | None:
        if not name:
            return None
        if name in systems.V2_CODING_SYSTEMS:
            return systems.V2_CODING_SYSTEMS[name]
        return systems.local_code_system(self.institution, name)


_TYPES = ", ".join(VALUE_TYPES)


def _reps(seg: _Segment, field: int) -> range:
    return range(1, len(seg.repetitions(field)) + 1)


def _decimal(text: str, location: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise InvalidSource(FORMAT, location, Reason.NOT_A_NUMBER)
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-")
    whole, _, fraction = digits.partition(".")
    whole = whole.lstrip("0") or "0"
    normalised = f"{sign}{whole}" + (f".{fraction}" if fraction else "")
    return Decimal(normalised)
