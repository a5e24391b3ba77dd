"""The audit-event interface the service writes through, and its event shape.

An :class:`AuditEvent` holds identifiers, codes and keyed hashes only: never patient
content, names or free text typed by a user. Patient ids enter audit events only as
:func:`patient_reference` values (HMAC-SHA256 under the deployment's audit hash key),
so the ledger can link events about one patient without revealing who the patient is;
the mapping can be recomputed only by someone holding the key.

:class:`AuditTrail` is the interface: ``append(event) -> AuditReceipt``. The ledger
issue plugs its Merkle ledger in behind it. Stores that can join a DynamoDB
transaction also implement :class:`TransactionalAuditTrail`, so a membership change
and its audit event commit together or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol


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
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "event_id": self.event_id,
            "at": self.at.isoformat(),
            "action": self.action,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "actor": self.actor,
            "details": dict(self.details),
        }
        for name in ("actor_reg_no", "institution", "resource", "patient_ref"):
            value = getattr(self, name)
            if value is not None:
                item[name] = value
        return item


@dataclass(frozen=True)
class AuditReceipt:
    """Proof of acceptance: which store took the event and where it sits."""

    event_id: str
    store: str
    position: str


class AuditTrail(Protocol):
    def append(self, event: AuditEvent) -> AuditReceipt: ...


class TransactionalAuditTrail(AuditTrail, Protocol):
    def transact_put(self, event: AuditEvent) -> tuple[dict[str, Any], AuditReceipt]:
        """A TransactWriteItems ``Put`` that appends ``event``, and its receipt."""
        ...


def patient_reference(patient_id: str, key: bytes) -> str:
    """The opaque reference that stands for a patient in audit events."""
    digest = hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"pref:{digest}"
