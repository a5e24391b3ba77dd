"""Referrals in the ``groups`` table (single-table design, beside groups and grants).

Item layout (``pk`` / ``sk``):

- ``REFERRAL#<id>`` / ``META``: the referral (patient id and keyed reference, group,
  referrer, target, urgency, legal basis, status and times, attachments) with a
  ``version`` for optimistic locking; the clinical question and any decline note only
  as sealed bytes (``question_manifest``/``question_shard``; see
  :mod:`app.referrals.sealing`);
- ``REFERRAL#<id>`` / ``HIST#<iso time>#<uuid>``: one item per transition, append-only;
- ``REFERRALS#FROM#<reg no>`` / ``<iso time>#<id>``: the referrer's outbox index;
- ``REFERRALS#TO#<institution>`` / ``<iso time>#<id>``: an institution's inbox index
  (written at send and at every redirect to that institution).

Guarantees: a referral comes back from one strongly consistent query of its
partition; listing reads every page of an index partition it needs (newest first, up
to a limit) and then the referrals by ``BatchGetItem`` (unprocessed keys retried).
Every transition is one ``TransactWriteItems`` run by the audit trail: the referral
(conditioned on the version it was read at), its history item, any index row, any
group membership change and the ledger entry commit together or not at all; a
concurrent transition makes it fail (:class:`ConcurrentChange`), never interleave.
Nothing is deleted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    TransactionalAuditTrail,
)
from app.audit.facts import LegalBasis, Urgency
from app.dynamo import deserialize, query_partition, serialize
from app.referrals.lifecycle import (
    DeclineReason,
    PatientNotice,
    Referral,
    ReferralStatus,
    Target,
    Transition,
)


class ConcurrentChange(Exception):
    """The transaction's conditions failed: the referral (or its group) changed first."""


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def referral_item(r: Referral, sealed: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "pk": f"REFERRAL#{r.referral_id}",
        "sk": "META",
        "referral_id": r.referral_id,
        "patient_id": r.patient_id,
        "patient_ref": r.patient_ref,
        "group_id": r.group_id,
        "referrer": r.referrer,
        "from_institution": r.from_institution,
        "from_department": r.from_department,
        "urgency": r.urgency.value,
        "legal_basis": r.legal_basis.value,
        "patient_notice": r.patient_notice.value,
        "to_institution": r.target.institution,
        "to_specialty": r.target.specialty,
        "to_team": r.target.team,
        "to_practitioner": r.target.practitioner,
        "to_department": r.to_department,
        "status": r.status.value,
        "created_at": _dt(r.created_at),
        "updated_at": _dt(r.updated_at),
        "phase": r.phase,
        "attachments": list(r.attachments),
        "accepted_by": r.accepted_by,
        "accepted_at": _dt(r.accepted_at),
        "granted_membership": r.granted_membership,
        "declined_by": r.declined_by,
        "declined_at": _dt(r.declined_at),
        "decline_reason": r.decline_reason.value if r.decline_reason else None,
        "cancelled_at": _dt(r.cancelled_at),
        "completed_by": r.completed_by,
        "completed_at": _dt(r.completed_at),
        "redirect_count": r.redirect_count,
        "version": r.version,
        **dict(sealed),
    }


def _referral(item: Mapping[str, Any]) -> Referral:
    created = _parse_dt(item["created_at"])
    assert created is not None
    reason = item.get("decline_reason")
    return Referral(
        referral_id=str(item["referral_id"]),
        patient_id=str(item["patient_id"]),
        patient_ref=str(item["patient_ref"]),
        group_id=str(item["group_id"]),
        referrer=str(item["referrer"]),
        from_institution=str(item["from_institution"]),
        from_department=str(item["from_department"]),
        urgency=Urgency(str(item["urgency"])),
        legal_basis=LegalBasis(str(item["legal_basis"])),
        patient_notice=PatientNotice(str(item["patient_notice"])),
        target=Target(
            institution=str(item["to_institution"]),
            specialty=str(item.get("to_specialty", "")),
            team=str(item.get("to_team", "")),
            practitioner=str(item.get("to_practitioner", "")),
        ),
        to_department=str(item["to_department"]),
        status=ReferralStatus(str(item["status"])),
        created_at=created,
        phase=int(item["phase"]),
        attachments=tuple(str(a) for a in item.get("attachments", [])),
        updated_at=_parse_dt(item.get("updated_at")),
        accepted_by=str(item.get("accepted_by", "")),
        accepted_at=_parse_dt(item.get("accepted_at")),
        granted_membership=bool(item.get("granted_membership", False)),
        declined_by=str(item.get("declined_by", "")),
        declined_at=_parse_dt(item.get("declined_at")),
        decline_reason=DeclineReason(str(reason)) if reason else None,
        cancelled_at=_parse_dt(item.get("cancelled_at")),
        completed_by=str(item.get("completed_by", "")),
        completed_at=_parse_dt(item.get("completed_at")),
        redirect_count=int(item.get("redirect_count", 0)),
        version=int(item["version"]),
    )


SEALED_FIELDS = ("question_manifest", "question_shard", "note_manifest", "note_shard")


class StoredReferral:
    """A referral as read, with its sealed fields (bytes) and its transition history."""

    def __init__(self, referral: Referral, sealed: dict[str, bytes], history: list[dict[str, Any]]):
        self.referral = referral
        self.sealed = sealed
        self.history = history


class ReferralRepository:
    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    # -- transaction items --------------------------------------------------------------

    def _put(self, item: Mapping[str, Any], condition: Mapping[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table_name, "Item": serialize(item), **condition}}

    def referral_put(self, r: Referral, sealed: Mapping[str, bytes]) -> dict[str, Any]:
        """The referral's ``Put``: new only if absent, else only at the version read."""
        if r.version == 1:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(r.version - 1)}},
            }
        return self._put(referral_item(r, sealed), condition)

    def history_put(self, t: Transition) -> dict[str, Any]:
        item = {
            "pk": f"REFERRAL#{t.referral_id}",
            "sk": f"HIST#{t.at.isoformat()}#{uuid.uuid4().hex}",
            "operation": t.operation.value,
            "actor": t.actor,
            "at": t.at.isoformat(),
            "from_status": t.from_status.value if t.from_status else None,
            "to_status": t.to_status.value,
        }
        return self._put(item, {"ConditionExpression": "attribute_not_exists(pk)"})

    def index_puts(self, r: Referral, *, outgoing: bool) -> list[dict[str, Any]]:
        at = (r.updated_at or r.created_at).isoformat()
        rows = [(f"REFERRALS#TO#{r.target.institution}", f"{at}#{r.referral_id}")]
        if outgoing:
            rows.append((f"REFERRALS#FROM#{r.referrer}", f"{at}#{r.referral_id}"))
        return [
            self._put(
                {"pk": pk, "sk": sk, "referral_id": r.referral_id},
                {"ConditionExpression": "attribute_not_exists(pk)"},
            )
            for pk, sk in rows
        ]

    def emergency_put(self, r: Referral) -> dict[str, Any]:
        """The row saying the accepting doctor joined ``r``'s group on an emergency
        referral (read by :meth:`emergency_basis`; the referral's own state decides
        whether the basis still stands, so the row is never updated or deleted)."""
        item = {
            "pk": f"REFERRALS#EMERGENCY#{r.group_id}",
            "sk": f"{r.accepted_by}#{r.referral_id}",
            "referral_id": r.referral_id,
        }
        return self._put(item, {"ConditionExpression": "attribute_not_exists(pk)"})

    # -- commit ---------------------------------------------------------------------------

    def transact(
        self,
        items: Sequence[Mapping[str, Any]],
        trail: TransactionalAuditTrail,
        event: AuditEvent,
    ) -> AuditReceipt:
        """Commit ``items`` with ``event``'s ledger entry in one transaction.

        Raises:
            ConcurrentChange: a condition of ``items`` failed.
        """
        try:
            return trail.transact_append(event, items)
        except AuditedTransactionConflict as exc:
            raise ConcurrentChange() from exc

    # -- reads ----------------------------------------------------------------------------

    def load(self, referral_id: str) -> StoredReferral | None:
        """The referral, its sealed fields and its history, from one consistent query."""
        items = query_partition(
            self._client, self.table_name, f"REFERRAL#{referral_id}", page_size=self._page_size
        )
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        sealed = {k: bytes(meta[k]) for k in SEALED_FIELDS if meta.get(k) is not None}
        history = [i for i in items if str(i["sk"]).startswith("HIST#")]
        return StoredReferral(_referral(meta), sealed, history)

    def emergency_basis(self, reg_no: str, group_id: str) -> bool:
        """Whether ``reg_no`` joined ``group_id`` by accepting a referral on the
        ``emergency`` legal basis that is still accepted (not completed or cancelled):
        :class:`app.consent.model.EmergencyBasis`. Strongly consistent, every page."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :doctor)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"REFERRALS#EMERGENCY#{group_id}"},
                ":doctor": {"S": f"{reg_no}#"},
            },
            "ConsistentRead": True,
        }
        if self._page_size:
            kwargs["Limit"] = self._page_size
        while True:
            page = self._client.query(**kwargs)
            ids.extend(str(item["referral_id"]["S"]) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return any(
            r.status is ReferralStatus.ACCEPTED
            and r.legal_basis is LegalBasis.EMERGENCY
            and r.accepted_by == reg_no
            and r.group_id == group_id
            for r in self.referrals(ids)
        )

    def list_ids(self, pk: str, limit: int) -> list[str]:
        """Referral ids under an index partition, newest first, at most ``limit`` (pages
        are read until ``limit`` ids are found or the partition ends)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": self._page_size or 100,
        }
        while len(ids) < limit:
            page = self._client.query(**kwargs)
            for item in page["Items"]:
                rid = str(item["referral_id"]["S"])
                if rid not in ids:
                    ids.append(rid)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return ids[:limit]

    def referrals(self, ids: Sequence[str]) -> list[Referral]:
        """The referrals ``ids`` (missing ones left out), in the order asked, without
        their sealed fields."""
        found: dict[str, Referral] = {}
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        serialize({"pk": f"REFERRAL#{i}", "sk": "META"})
                        for i in ids[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(10):
                response = self._client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table_name, []):
                    r = _referral(deserialize(raw))
                    found[r.referral_id] = r
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.01 * 2**attempt)
        return [found[i] for i in ids if i in found]
