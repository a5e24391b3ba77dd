"""The errors an adapter raises, and the fixed vocabulary their messages are made of.

Every adapter failure is one of three :class:`~app.errors.HubError` subclasses, so the
service's central handlers turn it into ``{"error": {"code", "message"}}`` with a 4xx:

================================  ======  ============================  =========================
error                             status  code                          when
================================  ======  ============================  =========================
:class:`UnsupportedSource`        415     ``unsupported_source_type``   the media type is not one
                                                                        an adapter reads
:class:`SourceTooLarge`           413     ``content_too_large``         above the format's cap
:class:`UnsupportedSourceContent` 422     ``unsupported_source``        well formed, but a kind
                                                                        the hub does not convert
                                                                        (message type, version,
                                                                        resource type, charset)
:class:`InvalidSource`            422     ``invalid_source``            malformed: names where
================================  ======  ============================  =========================

What it guarantees: a message is built only from the format's name, a *location* and a
*reason*. Locations are made by the adapters from schema names they hold themselves
(``PID-3``, ``OBX[2]-5``, ``/ClinicalDocument/recordTarget/patientRole/id[2]/@root``,
``Bundle.entry[0].resource.birthDate``, ``line 3 column 7``) and never from the input;
reasons are constants of :class:`Reason` (or, for FHIR validation, the project's own
fixed wording from :mod:`app.content`). No error carries the input, a value
from it, or an inner exception (adapters raise ``from None``).
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import HubError


class SourceFormat(StrEnum):
    """The formats the adapters read (the ``source_format`` of a converted record)."""

    HL7V2 = "hl7v2"
    CDA = "cda"
    FHIR_R4 = "fhir-r4"
    FHIR_R4B = "fhir-r4b"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    SourceFormat.HL7V2: "HL7 v2 message",
    SourceFormat.CDA: "CDA document",
    SourceFormat.FHIR_R4: "FHIR R4 resource",
    SourceFormat.FHIR_R4B: "FHIR R4B resource",
}


class Reason(StrEnum):
    """Why a location is refused: the whole vocabulary of :class:`InvalidSource`."""

    MISSING = "required value is missing"
    REPEATED = "must occur once only"
    NOT_UTF8 = "is not valid in the declared character set"
    NOT_TEXT = "contains control characters"
    MALFORMED = "is malformed"
    BAD_ESCAPE = "contains an invalid escape sequence"
    OUT_OF_ORDER = "is out of order"
    NOT_A_DATE = "is not a valid date or timestamp"
    NOT_A_NUMBER = "is not a valid number"
    NOT_IN_TABLE = "is not a code of its table that the hub maps"
    HKID_FORMAT = "is not an HKID (one or two letters, six digits, a check digit)"
    HKID_CHECK_DIGIT = "HKID check digit does not match"
    NO_MRN = "carries no medical record number (identifier type MR)"
    NOT_XML = "is not well-formed XML"
    DTD_FORBIDDEN = "declares a DTD or entities, which are refused"
    NOT_CDA = "is not an HL7 CDA R2 ClinicalDocument"
    NOT_BASE64 = "is not valid base64"
    TOO_LONG = "is too long"
    FHIR_INVALID = "does not convert to valid FHIR R4B"


class InvalidSource(HubError):
    """The source is malformed at ``location`` (a 422 naming where, never what).

    Attributes:
        source_format: which adapter refused it.
        location: the segment and field, element path or position (schema names only).
        reason: a :class:`Reason`.
    """

    status_code = 422
    code = "invalid_source"

    def __init__(self, source_format: SourceFormat, location: str, reason: Reason):
        self.source_format = source_format
        self.location = location
        self.reason = reason
        super().__init__(f"{source_format.label} is not valid: {location}: {reason.value}.")

    @classmethod
    def with_message(
        cls, source_format: SourceFormat, location: str, message: str
    ) -> InvalidSource:
        """An error whose message is already content-free (the records FHIR validator's)."""
        error = cls(source_format, location, Reason.FHIR_INVALID)
        error.message = message
        error.args = (message,)
        return error


class UnsupportedSourceContent(HubError):
    """Well-formed input of a kind the hub does not convert (a 422 naming what is missing).

    ``what`` is a fixed phrase chosen by the adapter (``"MSH-9 message type"``), never a
    value from the input; ``supported`` lists what is converted.
    """

    status_code = 422
    code = "unsupported_source"

    def __init__(self, source_format: SourceFormat, what: str, supported: str):
        self.source_format = source_format
        self.what = what
        super().__init__(
            f"{source_format.label} is not converted: {what} is not supported "
            f"(supported: {supported})."
        )


class UnsupportedSource(HubError):
    """The declared media type is not one an adapter reads (415)."""

    status_code = 415
    code = "unsupported_source_type"

    def __init__(self, accepted: str, detail: str | None = None):
        extra = f" ({detail})" if detail else ""
        super().__init__(f"Source media type is not converted{extra}; accepted: {accepted}.")


class SourceTooLarge(HubError):
    """Above the format's cap: sources are parsed in memory (413)."""

    status_code = 413
    code = "content_too_large"

    def __init__(self, source_format: SourceFormat, limit: int):
        self.source_format = source_format
        super().__init__(f"{source_format.label} is limited to {limit} bytes.")
