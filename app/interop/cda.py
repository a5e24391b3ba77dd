"""HL7 CDA R2 clinical documents (eHRSS-style) to a canonical FHIR R4B ``document`` Bundle.

The XML is parsed by the standard library's expat through ``defusedxml``, which refuses
any DTD, entity declaration or external reference before it can be expanded: a CDA
document never needs one, and refusing them closes XXE, billion-laughs and quadratic
blow-up in one rule. The mapping (tabled in ``docs/interop.md``):

- the header -> ``Composition`` (type, title, date, confidentiality, author, custodian) and
  the Bundle's ``identifier``/``timestamp``; ``recordTarget/patientRole`` -> ``Patient``
  (``id`` with the HKID root is the HKID, check digit validated; the first other ``id`` is
  the institution's MRN, required); ``componentOf/encompassingEncounter`` -> ``Encounter``;
- ``structuredBody`` sections -> ``Composition.section`` (title, code, the narrative block
  as XHTML text, nested sections), their ``observation`` entries (also inside result
  ``organizer``\\s) -> ``Observation`` resources referenced from the section;
- ``nonXMLBody`` -> a ``DocumentReference`` carrying the attachment, referenced from one
  section.

What it guarantees: malformed input raises :class:`InvalidSource` with an XPath-like
location built from the CDA schema's element names (``/ClinicalDocument/recordTarget/
patientRole/patient/birthTime/@value``, repeated elements numbered from 1:
``.../component[2]/section/entry[3]/observation``), or ``line L column C`` for XML that is
not well-formed; never a value, a tag or text from the document. Entries the hub does not
map (substance administrations, procedures, acts) stay in the sealed source and in the
section's narrative.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from app.interop import systems
from app.interop.canonical import (
    BundleBuilder,
    ConvertedRecord,
    SubjectIdentifiers,
    checked_hkid,
    hkid_identifier,
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

FORMAT = SourceFormat.CDA
MEDIA_TYPES = ("application/cda+xml", "application/xml", "text/xml")
MAX_CDA_BYTES = 16 * 1024 * 1024

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
CDA_TYPE_ID = ("2.16.840.1.113883.1.3", "POCD_HD000040")

GENDER = {"M": "male", "F": "female", "UN": "unknown"}
CONFIDENTIALITY = frozenset({"U", "L", "M", "N", "R", "V"})
NAME_USE = {"L": "official", "P": "nickname", "A": "usual", "C": "official", "ASGN": "usual"}
ADDRESS_USE = {"H": "home", "HP": "home", "HV": "home", "WP": "work", "TMP": "temp"}
TELECOM_USE = {"H": "home", "HP": "home", "HV": "home", "WP": "work", "MC": "mobile"}
TELECOM_USE |= {"TMP": "temp"}
TELECOM_SCHEMES = {"tel": "phone", "fax": "fax", "mailto": "email", "http": "url", "https": "url"}
OBSERVATION_STATUS = {
    "completed": "final",
    "active": "preliminary",
    "aborted": "cancelled",
    "cancelled": "cancelled",
    "nullified": "entered-in-error",
}
ENCOUNTER_CLASSES = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "FLD": "field",
    "HH": "home health",
    "IMP": "inpatient encounter",
    "ACUTE": "inpatient acute",
    "NONAC": "inpatient non-acute",
    "OBSENC": "observation encounter",
    "PRENC": "pre-admission",
    "SS": "short stay",
    "VR": "virtual",
}
VALUE_TYPES = ("PQ", "CD", "CE", "CV", "CO", "ST", "INT", "REAL", "BL", "TS", "IVL_PQ")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_REAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_UCUM = re.compile(r"[!-~]{1,64}")  # UCUM codes are printable ASCII without spaces


def convert_cda(source: bytes, media_type: str, *, institution: str) -> ConvertedRecord:
    """Convert one CDA R2 document to a canonical FHIR R4B ``document`` Bundle.

    Args:
        source: the XML document bytes (any encoding its XML declaration names).
        media_type: the declared media type, kept with the source.
        institution: the submitting institution's id, from its authenticated identity.

    Raises:
        SourceTooLarge: above ``MAX_CDA_BYTES``.
        InvalidSource: not well-formed XML, a DTD or entity, not a CDA document, or a
            malformed element (named by its path).
        UnsupportedSourceContent: an observation value type the hub does not map.
    """
    if len(source) > MAX_CDA_BYTES:
        raise SourceTooLarge(FORMAT, MAX_CDA_BYTES)
    if not systems.valid_institution(institution):
        raise ValueError("institution ids are lowercase tokens")
    root = _Node(parse_cda(source), "/ClinicalDocument")
    if root.element.tag != f"{{{V3}}}ClinicalDocument":
        raise InvalidSource(FORMAT, "/", Reason.NOT_CDA)
    builder = BundleBuilder(source, "document")
    return _Converter(root, builder, institution).convert(source, media_type)


def parse_cda(source: bytes) -> Element:
    """Parse XML with DTDs, entities and external references refused (the plain parse).

    Raises:
        InvalidSource: not well-formed (``line L column C``), or declares a DTD/entity.
    """
    try:
        return defusedxml.ElementTree.fromstring(source, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise InvalidSource(FORMAT, "document type declaration", Reason.DTD_FORBIDDEN) from None
    except ParseError as exc:
        line, column = exc.position
        raise InvalidSource(FORMAT, f"line {line} column {column}", Reason.NOT_XML) from None


class _Node:
    """An element with the path that names it (schema names and positions only)."""

    def __init__(self, element: Element, path: str):
        self.element = element
        self.path = path

    def child(self, name: str) -> _Node | None:
        found = self.element.find(f"{{{V3}}}{name}")
        return _Node(found, f"{self.path}/{name}") if found is not None else None

    def children(self, name: str) -> list[_Node]:
        found = self.element.findall(f"{{{V3}}}{name}")
        if len(found) == 1:
            return [_Node(found[0], f"{self.path}/{name}")]
        return [_Node(e, f"{self.path}/{name}[{i}]") for i, e in enumerate(found, start=1)]

    def required(self, name: str) -> _Node:
        node = self.child(name)
        if node is None:
            raise InvalidSource(FORMAT, f"{self.path}/{name}", Reason.MISSING)
        return node

    def attr(self, name: str) -> str:
        return (self.element.get(name) or "").strip()

    def required_attr(self, name: str) -> str:
        value = self.attr(name)
        if not value:
            raise InvalidSource(FORMAT, self.at(name), Reason.MISSING)
        return value

    def at(self, name: str) -> str:
        return f"{self.path}/@{name}"

    def text(self) -> str:
        return " ".join("".join(self.element.itertext()).split())

    def timestamp(self, attribute: str = "value") -> Timestamp | None:
        value = self.attr(attribute)
        if not value:
            return None
        try:
            return parse_timestamp(value)
        except ValueError:
            raise InvalidSource(FORMAT, self.at(attribute), Reason.NOT_A_DATE) from None

    def xsi_type(self) -> str:
        value = (self.element.get(XSI_TYPE) or "").strip()
        return value.rsplit(":", 1)[-1]


@dataclass
class _Converter:
    root: _Node
    builder: BundleBuilder
    institution: str
    message_id: str | None = None

    def convert(self, source: bytes, media_type: str) -> ConvertedRecord:
        root = self.root
        type_id = root.required("typeId")
        if (type_id.attr("root"), type_id.attr("extension")) != CDA_TYPE_ID:
            raise InvalidSource(FORMAT, type_id.path, Reason.NOT_CDA)
        id_node = root.required("id")
        document_id = _identifier(id_node)
        # The document's own id (root + extension): each CDA instance has its own.
        self.message_id = f"cda:{id_node.attr('root')}|{id_node.attr('extension')}"
        self.builder.header["identifier"] = document_id
        effective = root.required("effectiveTime").timestamp()
        if effective is None:
            raise InvalidSource(FORMAT, f"{root.path}/effectiveTime/@value", Reason.MISSING)
        if effective.fhir_instant() is not None:
            self.builder.header["timestamp"] = effective.fhir_instant()
        document_type = _concept(root.required("code"), required=True)

        patient, subject = self._patient()
        composition: dict[str, Any] = {"resourceType": "Composition"}
        set_id = root.child("setId")
        composition["identifier"] = _identifier(set_id) if set_id is not None else document_id
        composition["status"] = "final"
        composition["type"] = document_type
        composition["subject"] = {"reference": patient}
        encounter = self._encounter()
        if encounter is not None:
            composition["encounter"] = {"reference": encounter}
        composition["date"] = effective.fhir_datetime()
        composition["author"] = self._authors()
        title = root.child("title")
        composition["title"] = (
            title.text() if title is not None and title.text() else _title_of(document_type)
        )
        confidentiality = root.child("confidentialityCode")
        if confidentiality is not None and confidentiality.attr("code"):
            code = confidentiality.attr("code")
            if code not in CONFIDENTIALITY:
                raise InvalidSource(FORMAT, confidentiality.at("code"), Reason.NOT_IN_TABLE)
            composition["confidentiality"] = code
        custodian = self._custodian()
        if custodian is not None:
            composition["custodian"] = custodian
        body = root.required("component")
        sections = self._body(body, patient, encounter)
        if sections:
            composition["section"] = sections
        # A FHIR document's first entry is its Composition.
        self.builder.add("Composition", composition, first=True)
        bundle = validated_bundle(self.builder.bundle(), FORMAT)
        return ConvertedRecord(
            bundle, source, media_type, FORMAT, subject, message_id=self.message_id
        )

    # -- recordTarget -> Patient ---------------------------------------------------------

    def _patient(self) -> tuple[str, SubjectIdentifiers]:
        targets = self.root.children("recordTarget")
        if not targets:
            raise InvalidSource(FORMAT, f"{self.root.path}/recordTarget", Reason.MISSING)
        if len(targets) > 1:
            raise InvalidSource(FORMAT, targets[1].path, Reason.REPEATED)
        role = targets[0].required("patientRole")
        identifiers: list[dict[str, Any]] = []
        mrn: str | None = None
        hkid: Hkid | None = None
        for node in role.children("id"):
            root_oid = node.required_attr("root")
            extension = node.attr("extension")
            if root_oid == systems.HKID_OID:
                found = checked_hkid(extension, FORMAT, node.at("extension"))
                if hkid is not None and hkid != found:
                    raise InvalidSource(FORMAT, node.path, Reason.REPEATED)
                hkid = found
            elif mrn is None and extension:
                mrn = extension
            elif extension:
                identifiers.append(_identifier(node))
        if mrn is None:
            raise InvalidSource(FORMAT, f"{role.path}/id", Reason.NO_MRN)
        patient: dict[str, Any] = {"resourceType": "Patient"}
        patient["identifier"] = [mrn_identifier(self.institution, mrn)]
        if hkid is not None:
            patient["identifier"].append(hkid_identifier(hkid))
        patient["identifier"].extend(identifiers)
        person = role.required("patient")
        names = [n for n in (_name(node) for node in person.children("name")) if n]
        if names:
            patient["name"] = names
        telecom = [t for t in (_telecom(node) for node in role.children("telecom")) if t]
        if telecom:
            patient["telecom"] = telecom
        gender = person.child("administrativeGenderCode")
        if gender is not None and gender.attr("code"):
            if gender.attr("code") not in GENDER:
                raise InvalidSource(FORMAT, gender.at("code"), Reason.NOT_IN_TABLE)
            patient["gender"] = GENDER[gender.attr("code")]
        birth = person.child("birthTime")
        born = birth.timestamp() if birth is not None else None
        if born is not None:
            patient["birthDate"] = born.fhir_date()
        addresses = [a for a in (_address(node) for node in role.children("addr")) if a]
        if addresses:
            patient["address"] = addresses
        reference = self.builder.add("Patient", patient)
        return reference, SubjectIdentifiers(self.institution, mrn, hkid)

    # -- header participants -------------------------------------------------------------

    def _authors(self) -> list[dict[str, Any]]:
        authors = self.root.children("author")
        if not authors:
            raise InvalidSource(FORMAT, f"{self.root.path}/author", Reason.MISSING)
        references = []
        for author in authors:
            assigned = author.required("assignedAuthor")
            reference: dict[str, Any] = {}
            person = assigned.child("assignedPerson")
            organisation = assigned.child("representedOrganization")
            ident = next((n for n in assigned.children("id") if n.attr("extension")), None)
            if person is not None:
                reference["type"] = "Practitioner"
            if ident is not None:
                if ident.attr("root") == systems.MCHK_OID:
                    reference["identifier"] = {
                        "system": systems.MCHK_REGISTRATION_SYSTEM,
                        "value": ident.attr("extension"),
                    }
                else:
                    reference["identifier"] = _identifier(ident)
            display = ""
            if person is not None and person.child("name") is not None:
                display = _display_name(person.required("name"))
            elif organisation is not None and organisation.child("name") is not None:
                display = organisation.required("name").text()
            if display:
                reference["display"] = display
            if not reference.get("identifier") and not display:
                raise InvalidSource(FORMAT, assigned.path, Reason.MISSING)
            references.append(reference)
        return references

    def _custodian(self) -> dict[str, Any] | None:
        custodian = self.root.child("custodian")
        if custodian is None:
            return None
        organisation = custodian.required("assignedCustodian").required(
            "representedCustodianOrganization"
        )
        reference: dict[str, Any] = {"type": "Organization"}
        ident = next((n for n in organisation.children("id") if n.attr("root")), None)
        if ident is not None:
            reference["identifier"] = _identifier(ident)
        name = organisation.child("name")
        if name is not None and name.text():
            reference["display"] = name.text()
        return reference if len(reference) > 1 else None

    def _encounter(self) -> str | None:
        component_of = self.root.child("componentOf")
        if component_of is None:
            return None
        node = component_of.required("encompassingEncounter")
        encounter: dict[str, Any] = {"resourceType": "Encounter"}
        identifiers = [_identifier(n) for n in node.children("id") if n.attr("root")]
        if identifiers:
            encounter["identifier"] = identifiers
        time = node.required("effectiveTime")
        start = _low_high(time, "low") or time.timestamp()
        end = _low_high(time, "high")
        encounter["status"] = "finished" if end is not None else "in-progress"
        code = node.child("code")
        if code is not None and code.attr("code"):
            if code.attr("code") not in ENCOUNTER_CLASSES:
                raise InvalidSource(FORMAT, code.at("code"), Reason.NOT_IN_TABLE)
            encounter["class"] = {
                "system": systems.V3_ACT_CODE,
                "code": code.attr("code"),
                "display": ENCOUNTER_CLASSES[code.attr("code")],
            }
        else:
            encounter["class"] = {"system": systems.V3_NULL_FLAVOR, "code": "UNK"}
        encounter["subject"] = {"reference": self.builder.reference("Patient")}
        period = {}
        if start is not None:
            period["start"] = start.fhir_datetime()
        if end is not None:
            period["end"] = end.fhir_datetime()
        if period:
            encounter["period"] = period
        return self.builder.add("Encounter", encounter)

    # -- body -> sections and entries ----------------------------------------------------

    def _body(self, body: _Node, patient: str, encounter: str | None) -> list[dict[str, Any]]:
        structured = body.child("structuredBody")
        if structured is not None:
            return [
                self._section(node.required("section"), patient, encounter)
                for node in structured.children("component")
            ]
        non_xml = body.child("nonXMLBody")
        if non_xml is None:
            raise InvalidSource(FORMAT, f"{body.path}/structuredBody", Reason.MISSING)
        return [self._attachment(non_xml.required("text"), patient)]

    def _section(self, node: _Node, patient: str, encounter: str | None) -> dict[str, Any]:
        section: dict[str, Any] = {}
        title = node.child("title")
        if title is not None and title.text():
            section["title"] = title.text()
        code = node.child("code")
        if code is not None:
            concept = _concept(code, required=False)
            if concept:
                section["code"] = concept
        text = node.child("text")
        if text is not None and text.text():
            section["text"] = {"status": "additional", "div": _xhtml(text)}
        entries = []
        for observation in self._observations(node):
            key = f"Observation:{observation.path}"
            self.builder.add(key, self._observation(observation, patient, encounter))
            entries.append({"reference": self.builder.reference(key)})
        if entries:
            section["entry"] = entries
        children = [
            self._section(c.required("section"), patient, encounter)
            for c in node.children("component")
        ]
        if children:
            section["section"] = children
        if not (entries or children or "text" in section):
            section["emptyReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                    }
                ]
            }
        return section

    def _observations(self, section: _Node) -> Iterator[_Node]:
        for entry in section.children("entry"):
            observation = entry.child("observation")
            if observation is not None and observation.attr("moodCode") in ("", "EVN"):
                yield observation
            organizer = entry.child("organizer")
            if organizer is not None:
                for component in organizer.children("component"):
                    inner = component.child("observation")
                    if inner is not None and inner.attr("moodCode") in ("", "EVN"):
                        yield inner

    def _observation(self, node: _Node, patient: str, encounter: str | None) -> dict[str, Any]:
        observation: dict[str, Any] = {"resourceType": "Observation"}
        identifiers = [_identifier(n) for n in node.children("id") if n.attr("root")]
        if identifiers:
            observation["identifier"] = identifiers
        status = node.child("statusCode")
        status_code = status.attr("code") if status is not None else ""
        if status_code and status_code not in OBSERVATION_STATUS:
            raise InvalidSource(FORMAT, f"{node.path}/statusCode/@code", Reason.NOT_IN_TABLE)
        observation["status"] = OBSERVATION_STATUS.get(status_code, "unknown")
        observation["code"] = _concept(node.required("code"), required=True)
        observation["subject"] = {"reference": patient}
        if encounter:
            observation["encounter"] = {"reference": encounter}
        time = node.child("effectiveTime")
        if time is not None:
            when = time.timestamp() or _low_high(time, "low")
            if when is not None:
                observation["effectiveDateTime"] = when.fhir_datetime()
        value = node.child("value")
        if value is not None:
            observation.update(_value(value))
        interpretations = [
            c for c in (_concept(n, required=False) for n in node.children("interpretationCode"))
        ]
        if any(interpretations):
            observation["interpretation"] = [c for c in interpretations if c]
        ranges = []
        for reference_range in node.children("referenceRange"):
            observation_range = reference_range.required("observationRange")
            text = observation_range.child("text")
            if text is not None and text.text():
                ranges.append({"text": text.text()})
        if ranges:
            observation["referenceRange"] = ranges
        return observation

    def _attachment(self, text: _Node, patient: str) -> dict[str, Any]:
        media_type = text.attr("mediaType") or "text/plain"
        if not re.fullmatch(r"[a-z]+/[a-z0-9.+\-]{1,64}", media_type):
            raise InvalidSource(FORMAT, text.at("mediaType"), Reason.MALFORMED)
        content = "".join(text.element.itertext())
        if text.attr("representation") == "B64":
            try:
                data = base64.b64decode("".join(content.split()), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidSource(FORMAT, text.path, Reason.NOT_BASE64) from None
        else:
            data = content.encode("utf-8")
        reference = self.builder.add(
            "DocumentReference",
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": patient},
                "content": [
                    {
                        "attachment": {
                            "contentType": media_type,
                            "data": base64.b64encode(data).decode("ascii"),
                        }
                    }
                ],
            },
        )
        return {"title": "Attached document", "entry": [{"reference": reference}]}


# -- data types ----------------------------------------------------------------------------


def _identifier(node: _Node) -> dict[str, Any]:
    root = node.required_attr("root")
    extension = node.attr("extension")
    if _UUID.fullmatch(root):
        system, value = "urn:ietf:rfc:3986", f"urn:uuid:{root.lower()}"
    elif _OID.fullmatch(root) and len(root) <= 128:
        system, value = "urn:ietf:rfc:3986", f"urn:oid:{root}"
    else:
        raise InvalidSource(FORMAT, node.at("root"), Reason.MALFORMED)
    if extension:
        return {"system": systems.oid_system(root) or value, "value": extension}
    return {"system": system, "value": value}


def _concept(node: _Node, *, required: bool) -> dict[str, Any] | None:
    code = node.attr("code")
    display = node.attr("displayName")
    original = node.child("originalText")
    text = original.text() if original is not None else ""
    if not code:
        if required and not text:
            raise InvalidSource(FORMAT, node.at("code"), Reason.MISSING)
        return {"text": text} if text else None
    coding: dict[str, Any] = {}
    code_system = node.attr("codeSystem")
    if code_system:
        system = systems.oid_system(code_system)
        if system is None:
            raise InvalidSource(FORMAT, node.at("codeSystem"), Reason.MALFORMED)
        coding["system"] = system
    coding["code"] = code
    if display:
        coding["display"] = display
    concept: dict[str, Any] = {"coding": [coding]}
    if text:
        concept["text"] = text
    return concept


def _title_of(concept: dict[str, Any] | None) -> str:
    if concept:
        coding = concept.get("coding", [{}])[0]
        return str(coding.get("display") or concept.get("text") or "Clinical document")
    return "Clinical document"


def _name(node: _Node) -> dict[str, Any] | None:
    name: dict[str, Any] = {}
    use = node.attr("use").split(" ")[0] if node.attr("use") else ""
    if use in NAME_USE:
        name["use"] = NAME_USE[use]
    family = node.child("family")
    if family is not None and family.text():
        name["family"] = family.text()
    given = [g.text() for g in node.children("given") if g.text()]
    if given:
        name["given"] = given
    for part in ("prefix", "suffix"):
        values = [p.text() for p in node.children(part) if p.text()]
        if values:
            name[part] = values
    if "family" not in name and "given" not in name:
        text = node.text()
        if not text:
            return None
        name["text"] = text
    return name


def _display_name(node: _Node) -> str:
    family = node.child("family")
    parts = [family.text()] if family is not None else []
    parts += [g.text() for g in node.children("given")]
    shown = " ".join(p for p in parts if p)
    return shown or node.text()


def _address(node: _Node) -> dict[str, Any] | None:
    address: dict[str, Any] = {}
    use = node.attr("use").split(" ")[0] if node.attr("use") else ""
    if use in ADDRESS_USE:
        address["use"] = ADDRESS_USE[use]
    lines = [line.text() for line in node.children("streetAddressLine") if line.text()]
    if lines:
        address["line"] = lines
    for part, key in (
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postalCode"),
        ("country", "country"),
    ):
        child = node.child(part)
        if child is not None and child.text():
            address[key] = child.text()
    if set(address) <= {"use"}:
        text = node.text()
        if not text:
            return None
        address["text"] = text
    return address


def _telecom(node: _Node) -> dict[str, Any] | None:
    value = node.attr("value")
    if not value:
        return None
    scheme, _, rest = value.partition(":")
    system = TELECOM_SCHEMES.get(scheme.lower())
    if system is None or not rest:
        raise InvalidSource(FORMAT, node.at("value"), Reason.MALFORMED)
    point: dict[str, Any] = {"system": system, "value": value if system == "url" else rest}
    use = node.attr("use").split(" ")[0] if node.attr("use") else ""
    if use in TELECOM_USE:
        point["use"] = TELECOM_USE[use]
    return point


def _low_high(node: _Node, which: str) -> Timestamp | None:
    child = node.child(which)
    return child.timestamp() if child is not None else None


def _value(node: _Node) -> dict[str, Any]:
    kind = node.xsi_type()
    if kind == "PQ":
        return {"valueQuantity": _quantity(node)}
    if kind in ("CD", "CE", "CV", "CO"):
        concept = _concept(node, required=True)
        return {"valueCodeableConcept": concept}
    if kind == "ST":
        return {"valueString": node.text()} if node.text() else {}
    if kind == "INT":
        value = node.required_attr("value")
        if not _INT.fullmatch(value):
            raise InvalidSource(FORMAT, node.at("value"), Reason.NOT_A_NUMBER)
        return {"valueInteger": int(value)}
    if kind == "REAL":
        return {"valueQuantity": {"value": _real(node)}}
    if kind == "BL":
        value = node.required_attr("value")
        if value not in ("true", "false"):
            raise InvalidSource(FORMAT, node.at("value"), Reason.MALFORMED)
        return {"valueBoolean": value == "true"}
    if kind == "TS":
        stamp = node.timestamp()
        if stamp is None:
            raise InvalidSource(FORMAT, node.at("value"), Reason.MISSING)
        return {"valueDateTime": stamp.fhir_datetime()}
    if kind == "IVL_PQ":
        value_range: dict[str, Any] = {}
        for part in ("low", "high"):
            child = node.child(part)
            if child is not None:
                value_range[part] = _quantity(child)
        return {"valueRange": value_range} if value_range else {}
    raise UnsupportedSourceContent(FORMAT, f"the value type at {node.path}", ", ".join(VALUE_TYPES))


def _real(node: _Node) -> Decimal:
    value = node.required_attr("value")
    if not _REAL.fullmatch(value):
        raise InvalidSource(FORMAT, node.at("value"), Reason.NOT_A_NUMBER)
    number = Decimal(value)
    # Exponent forms are written out as plain digits; FHIR JSON decimals keep their digits.
    return number if "e" not in value.lower() else Decimal(format(number, "f"))


def _quantity(node: _Node) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": _real(node)}
    unit = node.attr("unit")
    if unit and unit != "1":
        if not _UCUM.fullmatch(unit):
            raise InvalidSource(FORMAT, node.at("unit"), Reason.MALFORMED)
        quantity |= {"unit": unit, "system": systems.UCUM, "code": unit}
    return quantity


def _xhtml(text: _Node) -> str:
    """The narrative block as an XHTML div: one paragraph per CDA block (escaped text).

    CDA's narrative markup is flattened: each ``paragraph``, list ``item`` and ``caption``
    becomes a paragraph, each table row one paragraph with its cells joined by `` | ``;
    the sealed source keeps the original layout.
    """
    lines: list[str] = []
    _narrative_lines(text.element, lines)
    paragraphs = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs}</div>'


def _narrative_lines(element: Element, lines: list[str]) -> None:
    _append(lines, element.text)
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "tr":
            cells = [_words(" ".join(cell.itertext())) for cell in child]
            _append(lines, " | ".join(c for c in cells if c))
        elif name in ("paragraph", "item", "caption"):
            _append(lines, " ".join(child.itertext()))
        else:
            _narrative_lines(child, lines)
        _append(lines, child.tail)


def _append(lines: list[str], text: str | None) -> None:
    words = _words(text or "")
    if words:
        lines.append(words)


def _words(text: str) -> str:
    return " ".join(text.split())
