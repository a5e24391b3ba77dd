"""Audit entries: what one ledger leaf says, and its one canonical byte encoding.

An :class:`AuditEntry` records who did what to which resource, when, with what outcome and
why (the policy decision's reason code), and under which request. It never holds content
and never holds names: every field is an enum member, a number, or an identifier matching
a strict pattern, and patient identifiers appear only as keyed hashes
(:func:`patient_ref`). Unknown fields are refused, both by the constructor and the parser.

Canonical encoding (format version 1), the bytes that are hashed into the Merkle leaf:

- a JSON object, keys sorted, no insignificant whitespace (``,`` and ``:`` separators);
- only ASCII; integers only (no floats), each within ±(2**53 - 1);
- optional fields are omitted when absent (never ``null``); ``roles`` sorted, unique;
- the top-level keys are ``version``, ``sequence``, ``timestamp_ms``, ``actor``
  (``sub``, ``roles``, optional ``mchk_reg_no`` and ``institution_id``), ``action``,
  ``resource`` (``type``, ``id``, optional ``patient_ref``), ``outcome``, ``reason`` and
  ``request_id``.

Format version 2 adds one optional key, ``facts``: an object of coded facts from the
closed vocabulary of :mod:`app.audit.facts` (keys such as ``op``, ``urgency``,
``to_institution``; every value a code, never free text), which the metrics read. An
entry is version 2 exactly when it carries facts and version 1 otherwise, so every
entry written before facts existed keeps its bytes and its leaf hash, and a version-1
reader refuses a version-2 entry rather than silently dropping its facts.

Because all strings are restricted to printable ASCII without escapes, this is also the
RFC 8785 (JCS) canonical form of the object, so other languages can reproduce it. The
parser accepts exactly the canonical bytes: a re-ordered, re-spaced or otherwise
re-encoded entry is rejected, so one entry has one leaf hash.

Error messages name the offending field, never its value, so they are safe to log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from app.audit.events import InvalidPatientReferenceInput, patient_reference
from app.audit.facts import InvalidFacts, validate_facts
from app.ledger._hashing import leaf_hash
from app.ledger.errors import InvalidEntry

FORMAT_VERSION = 1
FACTS_FORMAT_VERSION = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
MAX_ENTRY_BYTES = 2048
_MAX_JSON_INT = 2**53 - 1


class Action(StrEnum):
    """What the actor did (or tried to do)."""

    LOGIN = "login"
    LOGOUT = "logout"
    READ = "read"
    QUERY = "query"
    CREATE = "create"
    UPDATE = "update"
    SHARE = "share"
    REVOKE = "revoke"
    JOIN = "join"
    LEAVE = "leave"
    SHRED = "shred"
    BREAK_GLASS = "break_glass"
    DENY = "deny"
    EXPORT = "export"


class ResourceType(StrEnum):
    RECORD = "record"
    PATIENT = "patient"
    GROUP = "group"
    MEMBERSHIP = "membership"
    SHARE = "share"
    REFERRAL = "referral"
    MESSAGE = "message"
    MEDIA = "media"
    SESSION = "session"
    PRACTITIONER = "practitioner"
    AUDIT = "audit"
    INSTITUTION = "institution"
    SERVICE = "service"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class Role(StrEnum):
    """The hub's roles (Cognito groups, see ``app.identity.triggers``) plus service actors."""

    DOCTOR = "doctor"
    SPECIALIST = "specialist"
    INSTITUTION_ADMIN = "institution_admin"
    AUDITOR = "auditor"
    PLATFORM_ADMIN = "platform_admin"
    SERVICE = "service"


# A user pool `sub` (a UUID), a named service, an app client acting for itself on the
# client-credentials grant (community-care intake: `client:<app client id>`), or nobody
# known (e.g. a failed login, where recording the username typed could record a name).
_SUB = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|service:[a-z][a-z0-9-]{0,39}|client:[a-z0-9]{1,128}|anonymous)$"
)
# Same shapes as app.identity.registration.REG_NO_PATTERN and infra.stage's institution ids.
_MCHK_REG_NO = re.compile(r"^[A-Z]{1,2}\d{4,6}$")
_INSTITUTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# System-generated identifiers (UUIDs, ULIDs, prefixed ids): no spaces, no free text.
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_REQUEST_ID = _RESOURCE_ID
# Policy ids and reason codes, e.g. "group-member", "registration_suspended".
_REASON = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
# Hong Kong Identity Card numbers (with or without the check digit's brackets): refused as
# resource ids so a raw patient identifier cannot be logged by mistake.
_HKID_SHAPE = re.compile(r"^[A-Z]{1,2}[0-9]{6}[0-9A]?$")
_PATIENT_REF = re.compile(r"^pt1-[0-9a-f]{64}$")


def patient_ref(patient_id: str, key: bytes) -> str:
    """The ledger's pseudonym for a patient: the audit interface's
    :func:`app.audit.events.patient_reference` (``"pt1-"`` + HMAC-SHA256(key, patient id)),
    whose shape :class:`Resource` accepts as a patient reference.

    Raises:
        InvalidEntry: if the key is too short or the identifier is empty.
    """
    try:
        return patient_reference(patient_id, key)
    except InvalidPatientReferenceInput as exc:
        raise InvalidEntry(str(exc)) from None


def timestamp_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, UTC, from a timezone-aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEntry("timestamp must be timezone-aware")
    return (moment.astimezone(UTC) - _EPOCH) // _ONE_MS


def _text(name: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidEntry(f"{name} is not a valid identifier")
    return value


def _count(name: str, value: object) -> int:
    # bool is an int in Python; a boolean sequence number is a bug, not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_JSON_INT:
        raise InvalidEntry(f"{name} must be an integer in [0, 2**53 - 1]")
    return value


_E = TypeVar("_E", bound=StrEnum)


def _member(name: str, enum: type[_E], value: object) -> _E:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise InvalidEntry(f"{name} is not one of {[m.value for m in enum]}")


def _fields(name: str, data: object, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidEntry(f"{name} must be an object")
    keys = set(data)
    unknown = keys - required - optional
    if unknown:
        raise InvalidEntry(f"{name} has unknown fields {sorted(map(str, unknown))}")
    missing = required - keys
    if missing:
        raise InvalidEntry(f"{name} lacks fields {sorted(missing)}")
    return dict(data)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: identifiers only (never a name, never an email address)."""

    sub: str
    roles: tuple[Role, ...] = ()
    mchk_reg_no: str | None = None
    institution_id: str | None = None

    def __post_init__(self) -> None:
        _text("actor.sub", self.sub, _SUB)
        if isinstance(self.roles, str | bytes) or not isinstance(self.roles, Iterable):
            raise InvalidEntry("actor.roles must be a list of roles")
        roles = [_member("actor.roles[]", Role, r) for r in self.roles]
        if len(set(roles)) != len(roles):
            raise InvalidEntry("actor.roles has duplicates")
        object.__setattr__(self, "roles", tuple(sorted(roles)))
        if self.mchk_reg_no is not None:
            _text("actor.mchk_reg_no", self.mchk_reg_no, _MCHK_REG_NO)
        if self.institution_id is not None:
            _text("actor.institution_id", self.institution_id, _INSTITUTION_ID)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sub": self.sub, "roles": [r.value for r in self.roles]}
        if self.mchk_reg_no is not None:
            out["mchk_reg_no"] = self.mchk_reg_no
        if self.institution_id is not None:
            out["institution_id"] = self.institution_id
        return out

    @classmethod
    def from_dict(cls, data: object) -> Actor:
        d = _fields("actor", data, {"sub", "roles"}, {"mchk_reg_no", "institution_id"})
        if not isinstance(d["roles"], list):
            raise InvalidEntry("actor.roles must be a list of roles")
        return cls(d["sub"], tuple(d["roles"]), d.get("mchk_reg_no"), d.get("institution_id"))


@dataclass(frozen=True, slots=True)
class Resource:
    """What was acted on. A patient appears only as a :func:`patient_ref`."""

    type: ResourceType
    id: str
    patient_ref: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _member("resource.type", ResourceType, self.type))
        if self.type is ResourceType.PATIENT:
            _text("resource.id", self.id, _PATIENT_REF)
        else:
            _text("resource.id", self.id, _RESOURCE_ID)
            if _HKID_SHAPE.match(self.id):
                raise InvalidEntry("resource.id looks like an identity card number")
        if self.patient_ref is not None:
            _text("resource.patient_ref", self.patient_ref, _PATIENT_REF)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value, "id": self.id}
        if self.patient_ref is not None:
            out["patient_ref"] = self.patient_ref
        return out

    @classmethod
    def from_dict(cls, data: object) -> Resource:
        d = _fields("resource", data, {"type", "id"}, {"patient_ref"})
        return cls(d["type"], d["id"], d.get("patient_ref"))


_OPTIONAL_ENTRY_FIELDS = {"facts"}
_ENTRY_FIELDS = {
    "version",
    "sequence",
    "timestamp_ms",
    "actor",
    "action",
    "resource",
    "outcome",
    "reason",
    "request_id",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One ledger entry. Immutable; validated on construction; see the module docstring."""

    sequence: int
    timestamp_ms: int
    actor: Actor
    action: Action
    resource: Resource
    outcome: Outcome
    reason: str
    request_id: str
    version: int = field(default=FORMAT_VERSION)
    facts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            facts = validate_facts(self.facts)
        except InvalidFacts as exc:
            raise InvalidEntry(str(exc)) from None
        object.__setattr__(self, "facts", facts)
        expected = FACTS_FORMAT_VERSION if facts else FORMAT_VERSION
        if self.version == FORMAT_VERSION and facts and type(self.version) is int:
            # Callers state facts; the format version follows from them.
            object.__setattr__(self, "version", FACTS_FORMAT_VERSION)
        elif type(self.version) is not int or self.version != expected:
            raise InvalidEntry("version must be 1 without facts, 2 with")
        _count("sequence", self.sequence)
        _count("timestamp_ms", self.timestamp_ms)
        if not isinstance(self.actor, Actor):
            raise InvalidEntry("actor must be an Actor")
        if not isinstance(self.resource, Resource):
            raise InvalidEntry("resource must be a Resource")
        object.__setattr__(self, "action", _member("action", Action, self.action))
        object.__setattr__(self, "outcome", _member("outcome", Outcome, self.outcome))
        _text("reason", self.reason, _REASON)
        _text("request_id", self.request_id, _REQUEST_ID)

    @property
    def timestamp(self) -> datetime:
        return _EPOCH + self.timestamp_ms * _ONE_MS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "sequence": self.sequence,
            "timestamp_ms": self.timestamp_ms,
            "actor": self.actor.to_dict(),
            "action": self.action.value,
            "resource": self.resource.to_dict(),
            "outcome": self.outcome.value,
            "reason": self.reason,
            "request_id": self.request_id,
        }
        if self.facts:
            out["facts"] = dict(self.facts)
        return out

    @classmethod
    def from_dict(cls, data: object) -> AuditEntry:
        d = _fields("entry", data, _ENTRY_FIELDS, _OPTIONAL_ENTRY_FIELDS)
        if "facts" in d and (d["version"] != FACTS_FORMAT_VERSION or not d["facts"]):
            # Version 1 has no facts; version 2 states at least one.
            raise InvalidEntry("facts appear only, and never empty, in version 2")
        if d["version"] == FACTS_FORMAT_VERSION and "facts" not in d:
            raise InvalidEntry("version must be 1 without facts, 2 with")
        return cls(
            sequence=d["sequence"],
            timestamp_ms=d["timestamp_ms"],
            actor=Actor.from_dict(d["actor"]),
            action=d["action"],
            resource=Resource.from_dict(d["resource"]),
            outcome=d["outcome"],
            reason=d["reason"],
            request_id=d["request_id"],
            version=d["version"],
            facts=d.get("facts", {}),
        )

    def to_bytes(self) -> bytes:
        """The canonical encoding: the exact bytes hashed into the ledger."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditEntry:
        """Parse canonical bytes; anything but the canonical encoding is refused.

        Raises:
            InvalidEntry: on malformed, non-canonical, oversized or unknown-field input.
        """
        if not isinstance(data, bytes | bytearray):
            raise InvalidEntry("entry must be bytes")
        if len(data) > MAX_ENTRY_BYTES:
            raise InvalidEntry(f"entry exceeds {MAX_ENTRY_BYTES} bytes")
        try:
            text = bytes(data).decode("ascii")
            parsed = json.loads(
                text,
                object_pairs_hook=_no_duplicate_keys,
                parse_float=_no_floats,
                parse_constant=_no_floats,
            )
        except InvalidEntry:
            raise
        except ValueError:
            # Not chained: decoder messages may quote the input.
            raise InvalidEntry("entry is not ASCII JSON") from None
        entry = cls.from_dict(parsed)
        if entry.to_bytes() != data:
            raise InvalidEntry("entry is not in canonical form")
        return entry

    def leaf_hash(self) -> bytes:
        """SHA-256(0x00 || canonical bytes): this entry's Merkle leaf."""
        return leaf_hash(self.to_bytes())


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidEntry("entry has a duplicate key")
        out[key] = value
    return out


def _no_floats(_: str) -> Any:
    raise InvalidEntry("entry has a non-integer number")
