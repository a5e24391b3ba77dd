"""What a sealed record version's data key is bound to: its KMS encryption context.

Guarantees: a ``RecordContext`` only ever holds opaque identifier tokens and a version in
1..2**31-1 (the constructor refuses anything else), so the context can travel in the KMS
encryption context (logged by CloudTrail), object metadata and the sealed-record formats'
encodings without carrying patient content, and every identifier is ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_RECORD_VERSION = 2**31 - 1

# Identifiers travel in the KMS encryption context (logged by CloudTrail) and in object
# metadata, so they are opaque tokens: never names or other patient content.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool`` (JSON ``true`` must never pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RecordContext:
    """What a data key is bound to: the KMS encryption context of one record version.

    Raises:
        ValueError: an identifier is not an opaque token (``[A-Za-z0-9][A-Za-z0-9._:-]``,
            at most 128 characters) or the version is not an integer in 1..2**31-1.
    """

    record_id: str
    patient_id: str
    version: int
    institution: str

    def __post_init__(self) -> None:
        for name in ("record_id", "patient_id", "institution"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
                raise ValueError(f"{name} must be an opaque identifier token")
        if not is_int(self.version) or not 1 <= self.version <= MAX_RECORD_VERSION:
            raise ValueError("version must be an integer between 1 and 2**31-1")

    def encryption_context(self) -> dict[str, str]:
        """The KMS encryption context: exactly the keys the records key policy requires."""
        return {
            "record_id": self.record_id,
            "patient_id": self.patient_id,
            "version": str(self.version),
            "institution": self.institution,
        }

    @classmethod
    def from_encryption_context(cls, context: Mapping[str, Any]) -> RecordContext:
        """Parse a stored encryption context; raises ``ValueError`` unless exact."""
        if set(context) != {"record_id", "patient_id", "version", "institution"}:
            raise ValueError("encryption context must have exactly the record keys")
        version = context["version"]
        if not isinstance(version, str) or not re.fullmatch(r"[1-9][0-9]{0,9}", version):
            raise ValueError("version must be a decimal string")
        return cls(
            record_id=context["record_id"],
            patient_id=context["patient_id"],
            version=int(version),
            institution=context["institution"],
        )
