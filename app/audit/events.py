"""The audit-event interface the service writes through, and its event shape.

An :class:`AuditEvent` holds identifiers, codes and keyed hashes only: never patient
content, names or free text typed by a user. Patient ids enter audit events only as
:func:`patient_reference` values (HMAC-SHA256 under the deployment's audit hash key),
so the ledger can link events about one patient without revealing who the patient is;
the mapping can be recomputed only by someone holding the key.

:class:`AuditTrail` is the interface: ``append(event) -> AuditReceipt``; the Merkle
ledger (:class:`app.ledger.trail.LedgerTrail`) implements it. It also implements
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

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from app.ledger.entries import patient_ref


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class AuditEvent:
    """One audited fact.

    ``actor`` is the Cognito ``sub`` (opaque), ``actor_reg_no`` the Medical Council
    number when known, ``resource`` a typed opaque id (``Group::<uuid>``),
    ``patient_ref`` a keyed hash from :func:`patient_reference`, ``reason`` the policy
    id or refusal code that decided, ``details`` only ids and codes.
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
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class AuditReceipt:
    """Proof of acceptance: which store took the event and where it sits.

    For the ledger, ``position`` is the leaf index (as text) and ``leaf_index`` the same
    number; the entry is durably stored when the receipt exists.
    """

    event_id: str
    store: str
    position: str
    leaf_index: int | None = None


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


def patient_reference(patient_id: str, key: bytes) -> str:
    """The opaque reference that stands for a patient in audit events and the ledger.

    The ledger's patient reference (:func:`app.ledger.entries.patient_ref`):
    ``"pt1-"`` + HMAC-SHA256 under the deployment's audit hash key (at least 32 bytes).
    """
    return patient_ref(patient_id, key)
