"""Which content a record may hold, and the checks an upload passes before it is sealed.

The clinical set of accepted media types (``ALLOWED_CONTENT_TYPES``):

=========================  ====================================================  ==========
media type                 what it carries                                       body check
=========================  ====================================================  ==========
``application/fhir+json``  FHIR R4B resources and Bundles (labs, notes, reports)  full FHIR
``application/dicom``      DICOM Part 10 files (imaging)                          none
``image/jpeg``             photographs, scans, exported key images                none
``image/png``              screenshots, scans, exported key images                none
``application/pdf``        letters, discharge summaries, scanned reports          none
``text/plain``             free-text clinical notes                               none
=========================  ====================================================  ==========

Deliberate choices:

- FHIR JSON must be declared ``application/fhir+json`` (the media type the FHIR
  specification registers). Plain ``application/json`` and the pre-R4 ``application/json+fhir``
  are refused, so no JSON document is ever stored without passing FHIR validation.
- ``application/fhir+json`` accepts ``charset=utf-8`` (FHIR JSON is always UTF-8) and
  ``fhirVersion=4.3`` (R4B, the version we validate against); any other value of either is
  refused as an unsupported type. ``text/plain`` accepts ``charset`` utf-8 or us-ascii only.
  Parameters of other names are ignored; a parameter given twice is refused.
- Only FHIR bodies are inspected (and therefore buffered, up to ``MAX_FHIR_BYTES``). The other
  types are opaque to the service: they are sealed as sent and may be streamed, so
  :func:`validate_upload` checks only their declared type.

What it guarantees:

- :func:`validate_upload` raises :class:`UnsupportedContent` (415) for a type outside the set,
  :class:`InvalidContent` (422) for a FHIR body that is not valid R4B, and
  :class:`FhirContentTooLarge` (413, a subclass of :class:`InvalidContent`) above the cap.
- FHIR validation picks the R4B model from ``resourceType`` and rejects a missing or unknown
  ``resourceType`` (including abstract types such as ``DomainResource``), a body that is not
  one JSON object, malformed or non-UTF-8 JSON, duplicate keys, ``NaN``/``Infinity`` and every
  element the R4B model refuses (wrong types, unknown elements, bad primitives, nested
  resources of unknown type).
- Error messages never echo the document: they name the element path (FHIR element names
  drawn from the R4B models, never keys taken from the document) and the kind of error, from a
  fixed vocabulary. Pydantic's ``input`` values and its free-text messages (which may quote
  the value) are never used. Exceptions are raised ``from None`` so no inner error carries
  document content into logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.errors import HubError

FHIR_JSON = "application/fhir+json"

ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        FHIR_JSON,
        "application/dicom",
        "image/jpeg",
        "image/png",
        "application/pdf",
        "text/plain",
    }
)

# FHIR JSON is parsed and validated in memory, so it is bounded well below the record limit.
# 16 MiB holds a Bundle of tens of thousands of resources; larger exports belong in several
# records. Validation is CPU-bound in fhir.resources/pydantic: about 0.8 s per MiB measured on
# the 2-core build machine, so a bundle at the cap costs ~13 s of one core (see the report).
MAX_FHIR_BYTES: int = 16 * 1024 * 1024

FHIR_VERSION = "4.3"  # R4B, the models fhir.resources.R4B provides

# Parameters we interpret, per media type, and the values we accept (compared lowercased).
_ACCEPTED_PARAMETERS: dict[str, dict[str, frozenset[str]]] = {
    FHIR_JSON: {"charset": frozenset({"utf-8"}), "fhirversion": frozenset({FHIR_VERSION})},
    "text/plain": {"charset": frozenset({"utf-8", "us-ascii"})},
}

# How many element errors a message lists before summarising the rest.
_MAX_REPORTED_ERRORS = 5

# RFC 9110: token, quoted-string, and media-type = type "/" subtype *( OWS ";" OWS parameter ).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x09\x20-\x7e\x80-\xff])*"'
_OWS = r"[ \t]*"  # optional whitespace is SP / HTAB only (RFC 9110 §5.6.3)
_MEDIA_TYPE = re.compile(
    rf"{_OWS}({_TOKEN})/({_TOKEN}){_OWS}((?:;{_OWS}(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?{_OWS})*)"
)
_PARAMETER = re.compile(rf";{_OWS}(?:({_TOKEN})=({_TOKEN}|{_QUOTED}))?{_OWS}")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})


class UnsupportedContent(HubError):
    """The declared content type is not one a record may hold (or is malformed)."""

    status_code = 415
    code = "unsupported_content_type"

    def __init__(self, content_type: str, reason: str | None = None):
        self.content_type = content_type
        accepted = ", ".join(sorted(ALLOWED_CONTENT_TYPES))
        declared = _printable_essence(content_type)
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"Content type {declared} is not accepted{detail}; accepted types: {accepted}."
        )


class InvalidContent(HubError):
    """The body does not match its declared content type (e.g. invalid FHIR)."""

    status_code = 422
    code = "invalid_content"

    def __init__(self, message: str):
        super().__init__(message)


class FhirContentTooLarge(InvalidContent):
    """A FHIR body above ``MAX_FHIR_BYTES`` (it would be buffered whole to validate)."""

    status_code = 413
    code = "content_too_large"

    def __init__(self) -> None:
        super().__init__(
            f"FHIR JSON is validated in memory and is limited to {MAX_FHIR_BYTES} bytes; "
            "split larger exports into several records."
        )


@dataclass(frozen=True)
class MediaType:
    """A parsed ``Content-Type``: lowercased essence and parameters (names lowercased)."""

    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str) -> str | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None


def parse_content_type(value: str) -> MediaType:
    """Parse a ``Content-Type`` header value (RFC 9110 §8.3.1).

    Type, subtype and parameter names are case-insensitive and returned lowercased; parameter
    values are unquoted and keep their case.

    Raises:
        UnsupportedContent: the value is not a well-formed media type, or names a parameter
            twice (which reading would win is ambiguous).
    """
    match = _MEDIA_TYPE.fullmatch(value)
    if match is None:
        raise UnsupportedContent(value)
    parameters: list[tuple[str, str]] = []
    for name, raw in _PARAMETER.findall(match.group(3)):
        if not name:
            continue  # an empty ";" is allowed by the grammar
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        key = name.lower()
        if any(existing == key for existing, _ in parameters):
            raise UnsupportedContent(value, f"parameter {key} is given twice")
        parameters.append((key, raw))
    return MediaType(match.group(1).lower(), match.group(2).lower(), tuple(parameters))


def check_content_type(content_type: str) -> MediaType:
    """Accept or refuse a declared content type, before any of the body is read.

    Raises:
        UnsupportedContent: outside ``ALLOWED_CONTENT_TYPES``, malformed, or with a charset or
            fhirVersion parameter we do not accept.
    """
    media = parse_content_type(content_type)
    if media.essence not in ALLOWED_CONTENT_TYPES:
        raise UnsupportedContent(content_type)
    for name, accepted in _ACCEPTED_PARAMETERS.get(media.essence, {}).items():
        given = media.parameter(name)
        if given is not None and given.lower() not in accepted:
            allowed = " or ".join(sorted(accepted))
            raise UnsupportedContent(
                content_type, f"{name} {_printable_token(given)} is not supported; use {allowed}"
            )
    return media


def is_fhir(content_type: str) -> bool:
    """Whether the declared type is FHIR JSON (whose body is validated and buffered)."""
    try:
        return parse_content_type(content_type).essence == FHIR_JSON
    except UnsupportedContent:
        return False


def validate_upload(content_type: str, body: bytes) -> None:
    """Check an upload before it is sealed.

    The body is inspected only when the type is FHIR JSON; for the opaque types callers may
    pass ``b""`` and stream the body afterwards.

    Raises:
        UnsupportedContent: the type is not accepted (see :func:`check_content_type`).
        FhirContentTooLarge: a FHIR body above ``MAX_FHIR_BYTES``.
        InvalidContent: a FHIR body that is not one valid R4B resource.
    """
    media = check_content_type(content_type)
    if media.essence == FHIR_JSON:
        validate_fhir(body)


def validate_fhir(body: bytes) -> str:
    """Validate a FHIR R4B JSON document and return its ``resourceType``.

    Raises:
        FhirContentTooLarge: above ``MAX_FHIR_BYTES``.
        InvalidContent: not UTF-8, not JSON, not one object, unknown ``resourceType``, or any
            element the R4B model refuses. The message never contains document content.
    """
    if len(body) > MAX_FHIR_BYTES:
        raise FhirContentTooLarge()
    document = _parse_json_object(body)
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidContent("FHIR JSON must carry a string resourceType naming an R4B resource.")
    model = _resource_model(resource_type)
    if model is None:
        raise InvalidContent("FHIR resourceType is not an R4B resource type.")
    _validate_model(model, resource_type, document)
    return resource_type


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        # utf-8-sig: a leading byte-order mark is tolerated (RFC 8259 §8.1 lets parsers do so).
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        raise InvalidContent(f"FHIR JSON must be UTF-8; invalid byte at offset {offset}.") from None
    try:
        document = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as exc:
        # JSONDecodeError.msg is a fixed phrase from the parser; the document is in exc.doc.
        raise InvalidContent(
            f"FHIR JSON is malformed: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except _JsonRefused as exc:
        raise InvalidContent(f"FHIR JSON is not valid: {exc.reason}.") from None
    except (RecursionError, ValueError):
        # Nesting deeper than the interpreter allows, or an integer too long to convert.
        raise InvalidContent(
            "FHIR JSON is not valid: nesting or a number exceeds limits."
        ) from None
    if not isinstance(document, dict):
        raise InvalidContent(
            "FHIR JSON must be one JSON object (a resource), not an array or value."
        )
    return document


class _JsonRefused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let the stored document mean something other than what we validated.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _JsonRefused("an object repeats a key")
    return document


def _refuse_constant(_name: str) -> Any:
    raise _JsonRefused("NaN and Infinity are not JSON numbers")


def _resource_model(resource_type: str) -> type[Any] | None:
    """The R4B model class for a concrete resource type, or None.

    Looked up in ``fhir.resources.R4B.fhirtypes`` directly rather than through the
    ``lru_cache``-d ``get_fhir_model_class``, so arbitrary names sent by clients cannot grow a
    cache; data types (``HumanName``) and abstract bases are refused.
    """
    if not _RESOURCE_TYPE.fullmatch(resource_type) or resource_type in _ABSTRACT_RESOURCES:
        return None
    from fhir.resources.R4B import fhirtypes
    from fhir.resources.R4B.resource import Resource

    fhir_type = getattr(fhirtypes, f"{resource_type}Type", None)
    if fhir_type is None or not hasattr(fhir_type, "get_model_klass"):
        return None
    model: type[Any] = fhir_type.get_model_klass()
    if not issubclass(model, Resource) or model.get_resource_type() != resource_type:
        return None
    return model


def _validate_model(model: type[Any], resource_type: str, document: dict[str, Any]) -> None:
    from pydantic import ValidationError

    try:
        model.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidContent(_describe(resource_type, errors)) from None
    except (KeyError, TypeError, AttributeError):
        # fhir_core looks nested resources up by their resourceType and fails with a raw
        # KeyError/TypeError (whose text is the client's value) when the type is unknown.
        raise InvalidContent(
            f"FHIR {resource_type} is not valid: a contained or entry resource has an "
            "unknown or invalid resourceType."
        ) from None
    except (ValueError, RecursionError):
        raise InvalidContent(f"FHIR {resource_type} is not valid.") from None


# Pydantic and fhir_core error types -> what a client is told. Fixed strings only: pydantic's
# own messages may quote the offending value.
_ERROR_KINDS: dict[str, str] = {
    "missing": "required element is missing",
    "model_field_validation.missing": "required element is missing",
    "extra_forbidden": "contains an element R4B does not define",
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "list_type": "must be an array of elements (no nulls)",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "value_error": "value does not match its FHIR data type",
    "string_pattern_mismatch": "value does not match its FHIR data type",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "enum": "is not one of the permitted codes",
    "literal_error": "is not one of the permitted codes",
    "fhir-validation-wrong-resource-type": "resourceType does not match the element",
    "model_validation_format": "holds a resource of the wrong kind",
    "date_type": "must be a FHIR date",
    "date_parsing": "must be a FHIR date",
    "datetime_type": "must be a FHIR dateTime",
    "datetime_parsing": "must be a FHIR dateTime",
    "time_type": "must be a FHIR time",
    "time_parsing": "must be a FHIR time",
    "assertion_error": "violates a FHIR constraint",
}


def _describe(resource_type: str, errors: Iterable[Any]) -> str:
    errors = list(errors)
    names = _element_names()
    described: dict[str, None] = {}  # ordered and O(1) per error: a bundle can carry many
    for error in errors:
        kind = str(error.get("type", ""))
        loc = tuple(error.get("loc", ()))
        if kind == "extra_forbidden" and loc:
            # The last segment is the client's unknown key: report where it is, not what it is.
            loc = loc[:-1]
        path = _element_path(resource_type, loc, names)
        if kind == "value_error" and not loc:
            # A model-level validator: fhir_core's choice-type and invariant checks.
            reason = "violates a FHIR rule (e.g. more than one type given for a value[x] choice)"
        else:
            reason = _ERROR_KINDS.get(kind, f"is not valid ({_safe_kind(kind)})")
        entry = f"{path}: {reason}"
        described[entry] = None
    shown = list(described)[:_MAX_REPORTED_ERRORS]
    more = len(described) - len(shown)
    tail = f"; and {more} more" if more > 0 else ""
    count = len(described)
    return (
        f"FHIR {resource_type} is not valid R4B ({count} error{'s' if count != 1 else ''}): "
        + "; ".join(shown)
        + tail
        + "."
    )


def _element_path(resource_type: str, loc: tuple[Any, ...], names: frozenset[str]) -> str:
    path = resource_type
    for segment in loc:
        if isinstance(segment, int):
            path += f"[{segment}]"
        elif isinstance(segment, str) and segment in names:
            path += f".{segment}"
        # Anything else (union tags, internal markers) is dropped: only schema names are shown.
    return path


def _safe_kind(kind: str) -> str:
    return kind if re.fullmatch(r"[a-z_.\-]{1,64}", kind) else "unknown"


def _element_names() -> frozenset[str]:
    """Every element name (alias) and field name of the FHIR models loaded so far.

    Validation only descends into loaded models, so any legitimate path segment is in here;
    a key the client invented is not, and is never echoed.
    """
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    names: set[str] = set()
    seen: set[type[Any]] = set()
    stack: list[type[Any]] = [FHIRAbstractModel]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
        for name, field in getattr(cls, "model_fields", {}).items():
            names.add(name)
            if field.alias:
                names.add(field.alias)
    return frozenset(names)


def _printable_essence(content_type: str) -> str:
    """The declared type/subtype for an error message, or a placeholder.

    Headers are client input; only a well-formed, short type/subtype is repeated back.
    """
    match = re.match(rf"{_OWS}({_TOKEN}/{_TOKEN})", content_type)
    if match is None or len(match.group(1)) > 80:
        return "(malformed)"
    return repr(match.group(1).lower())


def _printable_token(value: str) -> str:
    return repr(value.lower()) if re.fullmatch(r"[A-Za-z0-9.\-_]{1,40}", value) else "(value)"
