"""EMR interoperability: HL7 v2, CDA R2 and FHIR R4/R4B sources to canonical FHIR R4B.

One entry point, :func:`convert`, chooses the adapter from the declared media type:

=============================================  ==========================================
media type                                     adapter
=============================================  ==========================================
``application/hl7-v2``,                        :func:`app.interop.hl7v2.convert_hl7v2`
``x-application/hl7-v2+er7``                   (ADT A01/A04/A08, ORU R01)
``application/cda+xml``, ``application/xml``,  :func:`app.interop.cda.convert_cda`
``text/xml``
``application/fhir+json`` (``fhirVersion``     :func:`app.interop.fhir.convert_fhir`
4.0 = R4, 4.3 or none = R4B)
=============================================  ==========================================

Every adapter returns a :class:`~app.interop.canonical.ConvertedRecord`: the canonical
R4B Bundle (validated), the source bytes and media type to seal beside it, and the
subject's identifiers for the patient index. Every failure is a 4xx
:class:`~app.errors.HubError` from :mod:`app.interop.errors` whose message names where
the input is wrong and never repeats it. This package is pure: no storage, no AWS, no
clock; the routes and the machine-to-machine intake channel wire it in.
"""

from __future__ import annotations

from collections.abc import Callable

from app.content import UnsupportedContent, parse_content_type
from app.interop import cda, fhir, hl7v2
from app.interop.canonical import ConvertedRecord, SubjectIdentifiers
from app.interop.errors import (
    InvalidSource,
    Reason,
    SourceFormat,
    SourceTooLarge,
    UnsupportedSource,
    UnsupportedSourceContent,
)

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "ConvertedRecord",
    "InvalidSource",
    "Reason",
    "SourceFormat",
    "SourceTooLarge",
    "SubjectIdentifiers",
    "UnsupportedSource",
    "UnsupportedSourceContent",
    "convert",
]

Adapter = Callable[..., ConvertedRecord]

_ADAPTERS: dict[str, Adapter] = {
    **{media: hl7v2.convert_hl7v2 for media in hl7v2.MEDIA_TYPES},
    **{media: cda.convert_cda for media in cda.MEDIA_TYPES},
    **{media: fhir.convert_fhir for media in fhir.MEDIA_TYPES},
}
ACCEPTED_MEDIA_TYPES: tuple[str, ...] = tuple(sorted(_ADAPTERS))


def convert(source: bytes, media_type: str, *, institution: str) -> ConvertedRecord:
    """Convert a source document to canonical FHIR R4B, with the source kept beside it.

    Args:
        source: the document as received.
        media_type: its declared ``Content-Type``.
        institution: the submitting institution's id, from its authenticated identity.

    Raises:
        UnsupportedSource: a media type no adapter reads (415).
        SourceTooLarge: above the format's cap (413).
        InvalidSource: malformed, naming the segment/field or element path (422).
        UnsupportedSourceContent: well formed, of a kind the hub does not convert (422).
    """
    try:
        essence = parse_content_type(media_type).essence
    except UnsupportedContent:
        raise UnsupportedSource(", ".join(ACCEPTED_MEDIA_TYPES), "malformed") from None
    adapter = _ADAPTERS.get(essence)
    if adapter is None:
        raise UnsupportedSource(", ".join(ACCEPTED_MEDIA_TYPES))
    return adapter(source, media_type, institution=institution)
