"""The audit-event interface the service writes through, and its event shape.

An :class:`AuditEvent` holds identifiers, codes and keyed hashes only: never patient
content, names or free text typed by a user. Patient ids enter audit events only as
:func:`patient_reference` values (HMAC-SHA256 under the deployment's audit hash key),
so the ledger can link events about one patient without revealing who the patient is;
the mapping can be recomputed only by someone holding the key.

This package owns the interface and imports no implementation of it: :class:`AuditTrail`
is ``append(event) -> AuditReceipt``; the Merkle ledger
(:class:`app.ledger.trail.LedgerTrail`) implements it and depends on this module, never
the reverse (the import contract in ``pyproject.toml`` holds it). It also implements
:class:`TransactionalAuditTrail`: ``transact_append(event, items)`` commits the caller's
``TransactWriteItems`` items *and* the event's ledger entry in one transaction, so a
membership change and its audit event commit together or not at all. The trail owns the
transaction because the entry's sequence number is only known to be free when it
commits: a collision with another writer's entry is retried inside the trail and never
surfaces; a failed condition of the caller's own items raises
:class:`AuditedTransactionConflict` (callers map it to their 409). The returned receipt
carries the entry's leaf index, durably stored before the call returns.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

PATIENT_REF_PREFIX = "pt1-"
# The HMAC's domain separation. It names the ledger because the ledger's entry format
# (format version 1) fixed these bytes; changing them would change every reference.
_PATIENT_REF_CONTEXT = b"hub/ledger/patient-ref/v1\x00"
MIN_PATIENT_REF_KEY_BYTES = 32


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class AuditEvent:
    """One audited fact.

    ``actor`` is the Cognito ``sub`` (opaque), ``actor_reg_no`` the Medical Council
    number when known, ``resource`` a typed opaque id (``Group::<uuid>``),
    ``patient_ref`` a keyed hash from :func:`patient_reference`, ``reason`` the policy
    id or refusal code that decided, ``details`` only ids and codes. ``details`` stay
    with the event; ``facts`` (:mod:`app.audit.facts`: a closed vocabulary of codes) are
    recorded in the ledger entry, for the metrics computed from the ledger.
    """

    action: str
    outcome: Outcome
    reason: str
    actor: str
    actor_reg_no: str | None = None
    institution: str | None = None
    resource: str | None = None
    patient_ref: str | None = None
    details: Mapping[str, str | int | list[str]] = field(default_factory=dict)
    actor_roles: tuple[str, ...] = ()
    facts: Mapping[str, str] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class AuditReceipt:
    """Proof of acceptance: which store took the event and where it sits.

    For the ledger, ``leaf_index`` is the entry's index in its trail and ``trail`` the
    trail (0 unless the deployment runs several); ``position`` is the leaf index as text
    on trail 0 and ``<trail>/<leaf index>`` on the others. The entry is durably stored
    when the receipt exists.
    """

    event_id: str
    store: str
    position: str
    leaf_index: int | None = None
    trail: int = 0


class AuditedTransactionConflict(Exception):
    """A condition on the caller's own transaction items failed (a concurrent change)."""


class AuditTrail(Protocol):
    def append(self, event: AuditEvent) -> AuditReceipt: ...


class TransactionalAuditTrail(AuditTrail, Protocol):
    def transact_append(
        self, event: AuditEvent, items: Sequence[Mapping[str, Any]]
    ) -> AuditReceipt:
        """Commit ``items`` (TransactWriteItems items) with ``event``'s entry, atomically.

        Raises:
            AuditedTransactionConflict: if a condition of one of ``items`` failed.
        """
        ...


class InvalidPatientReferenceInput(ValueError):
    """The key is too short or the patient identifier empty (messages name no value)."""


def patient_reference(patient_id: str, key: bytes) -> str:
    """The opaque reference that stands for a patient in audit events and the ledger:
    ``"pt1-"`` + HMAC-SHA256(key, context + patient id).

    The same patient under the same key always gets the same reference, so auditors can
    find every access to one patient; without the key the reference reveals nothing and
    cannot be brute-forced from the small space of identity card numbers.

    Args:
        patient_id: the service's identifier of the patient; never stored.
        key: at least 32 secret bytes (the deployment's audit hash key).

    Raises:
        InvalidPatientReferenceInput: if the key is too short or the identifier is empty.
    """
    if not isinstance(key, bytes) or len(key) < MIN_PATIENT_REF_KEY_BYTES:
        raise InvalidPatientReferenceInput(
            f"patient_ref key must be at least {MIN_PATIENT_REF_KEY_BYTES} bytes"
        )
    if not isinstance(patient_id, str) or not patient_id:
        raise InvalidPatientReferenceInput("patient_ref needs a non-empty patient identifier")
    mac = hmac.new(key, _PATIENT_REF_CONTEXT + patient_id.encode("utf-8"), hashlib.sha256)
    return PATIENT_REF_PREFIX + mac.hexdigest()
