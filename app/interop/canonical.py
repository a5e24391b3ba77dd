"""What every adapter returns: the canonical FHIR R4B Bundle, with the source beside it.

:class:`ConvertedRecord` holds

- ``bundle``: the canonical form, a FHIR R4B ``Bundle`` as UTF-8 JSON bytes, already
  validated by the project's one FHIR validator (:func:`app.content.validate_fhir`),
  so the bytes a later step seals are exactly the bytes that were validated;
- ``source`` and ``source_media_type``: the input exactly as received, for sealing
  alongside (a conversion can be re-run or audited against its source);
- ``subject``: the identifiers the patient index needs to file the record (the
  institution's MRN and, when present, the validated HKID), kept out of ``repr``.

Canonical JSON is deterministic: keys in the order the adapter builds them, no
insignificant whitespace, non-ASCII as UTF-8, and ``fullUrl`` values that are UUIDv5
derived from the SHA-256 of the source and the position of what they came from, so
converting the same bytes twice gives the same bytes. Decimal values keep the exact
digits of the source (FHIR decimals carry their precision: ``5.50`` is not ``5.5``).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from app.content import InvalidContent, validate_fhir
from app.interop import systems
from app.interop.errors import InvalidSource, Reason, SourceFormat
from app.patients.hkid import CHECK_DIGIT, Hkid, InvalidHkid, parse_hkid

CANONICAL_MEDIA_TYPE = "application/fhir+json; fhirVersion=4.3"

# A fixed namespace for the hub's UUIDv5 fullUrls (itself a UUIDv5 of the hub's base URI).
_FULL_URL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fhir.health-collab-hub.invalid")
_DECIMAL_MARK = "\u0000decimal:"
_DECIMAL_PLACEHOLDER = re.compile(r'"\\u0000decimal:(-?[0-9]+(?:\.[0-9]+)?)"')


@dataclass(frozen=True)
class SubjectIdentifiers:
    """Who the record is about, as the submitting institution names them.

    ``mrn`` is the institution's medical record number; ``hkid`` the patient's HKID when
    the source carries one (check digit validated). Neither appears in ``repr``.
    """

    institution: str
    mrn: str | None = field(default=None, repr=False)
    hkid: Hkid | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ConvertedRecord:
    """An adapter's output: canonical Bundle bytes, the untouched source, the subject."""

    bundle: bytes = field(repr=False)
    source: bytes = field(repr=False)
    source_media_type: str
    source_format: SourceFormat
    subject: SubjectIdentifiers
    # The message's own identifier, as its sender assigned it (HL7 v2 MSH-3/4/10, the CDA
    # ClinicalDocument/id, a FHIR Bundle.identifier or resource id + meta.versionId), for
    # filing each message once (app/intake); None when the message carries none.
    message_id: str | None = field(default=None, repr=False)

    bundle_media_type: ClassVar[str] = CANONICAL_MEDIA_TYPE

    def bundle_json(self) -> dict[str, Any]:
        """The canonical Bundle parsed (decimals as ``Decimal``, to keep their digits)."""
        document: dict[str, Any] = json.loads(self.bundle, parse_float=Decimal)
        return document


class BundleBuilder:
    """Collects resources into a Bundle with deterministic ``urn:uuid`` fullUrls.

    Args:
        source: the source bytes (their SHA-256 seeds the fullUrls).
        bundle_type: ``collection`` or ``document``.
    """

    def __init__(self, source: bytes, bundle_type: str):
        self._seed = hashlib.sha256(source).hexdigest()
        self._type = bundle_type
        self._entries: list[dict[str, Any]] = []
        self.header: dict[str, Any] = {}

    def reference(self, key: str) -> str:
        """The fullUrl a resource added under ``key`` has (usable before it is added)."""
        return f"urn:uuid:{uuid.uuid5(_FULL_URL_NAMESPACE, f'{self._seed}|{key}')}"

    def add(self, key: str, resource: dict[str, Any], *, first: bool = False) -> str:
        """Add a resource (``first``: before all others, as a document's Composition)."""
        full_url = self.reference(key)
        entry = {"fullUrl": full_url, "resource": resource}
        if first:
            self._entries.insert(0, entry)
        else:
            self._entries.append(entry)
        return full_url

    def bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", **self.header, "type": self._type, "entry": self._entries}


def canonical_json(document: dict[str, Any], *, indent: int | None = None) -> bytes:
    """Serialise to canonical JSON bytes; ``Decimal`` values are written digit for digit.

    ``indent`` pretty-prints (for golden files people read); canonical bytes have none.
    """
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(
        document, ensure_ascii=False, indent=indent, separators=separators, default=_decimal
    )
    # Decimals were written as marked strings; put the exact digits back as JSON numbers.
    return _DECIMAL_PLACEHOLDER.sub(r"\1", text).encode("utf-8")


def validated_bundle(document: dict[str, Any], source_format: SourceFormat) -> bytes:
    """Serialise a Bundle the adapter built and validate it as FHIR R4B.

    The adapters check every value they take from the source before putting it in the
    Bundle, so a failure here means a value passed those checks but FHIR still refuses it;
    the error names the FHIR element path (the records validator's wording, content-free).

    Raises:
        InvalidSource: the Bundle is not valid R4B.
    """
    body = canonical_json(document)
    try:
        validate_fhir(body)
    except InvalidContent as exc:
        raise InvalidSource.with_message(
            source_format,
            "Bundle",
            f"{source_format.label} does not convert to valid FHIR R4B: {exc.message}",
        ) from None
    return body


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = format(value, "f")
        if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", text):
            raise ValueError("decimal is not finite")
        return _DECIMAL_MARK + text
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def mrn_identifier(institution: str, mrn: str) -> dict[str, Any]:
    """``Patient.identifier`` for an institution's medical record number."""
    return {
        "use": "usual",
        "type": identifier_type("MR", "Medical record number"),
        "system": systems.mrn_system(institution),
        "value": mrn,
    }


def hkid_identifier(hkid: Hkid) -> dict[str, Any]:
    """``Patient.identifier`` for an HKID (inside sealed record content only)."""
    return {
        "use": "official",
        "type": identifier_type("NI", "National unique individual identifier"),
        "system": systems.HKID_SYSTEM,
        "value": hkid.value,
    }


def identifier_type(code: str, display: str) -> dict[str, Any]:
    """An identifier type from HL7 table 0203."""
    return {"coding": [{"system": systems.V2_0203, "code": code, "display": display}]}


def checked_hkid(value: str, source_format: SourceFormat, location: str) -> Hkid:
    """Validate an HKID found in a source; the error names ``location``, never the value.

    Raises:
        InvalidSource: not an HKID, or its check digit does not match.
    """
    try:
        return parse_hkid(value)
    except InvalidHkid as exc:
        reason = Reason.HKID_CHECK_DIGIT if exc.reason == CHECK_DIGIT else Reason.HKID_FORMAT
        raise InvalidSource(source_format, location, reason) from None
