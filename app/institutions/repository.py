"""The ``institutions`` table: listings and audited writes (key design in
:mod:`app.identity.affiliations`, whose reader this extends).

Guarantees:
- every listing reads all pages of its partition, strongly consistent
  (:func:`app.dynamo.query_partition`), so nothing is dropped at a page boundary;
- every change commits together with its audit event in one transaction run by the audit
  trail (``transact_append``), each item conditioned on the state it was decided on; a
  failed condition is :class:`ConcurrentChange` (the caller's 409), and nothing is
  written;
- nothing is ever deleted except a pending-review queue item once its application is
  decided: institutions and affiliations change status, keeping their history in the
  ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    TransactionalAuditTrail,
)
from app.dynamo import query_partition, serialize
from app.identity.affiliations import (
    INSTITUTION_PARTITION,
    PENDING_PARTITION,
    Account,
    AccountStatus,
    Affiliation,
    AffiliationStatus,
    DynamoAffiliations,
    Institution,
    IntakeClient,
    ProviderMapping,
    account_key,
    affiliation_key,
    hospital_key,
    institution_key,
    intake_client_key,
    pending_key,
    provider_key,
    reg_no_key,
)
from app.institutions.registrations import PendingRegistration

Item = dict[str, Any]


class ConcurrentChange(Exception):
    """A condition of the transaction failed: the state changed since it was read."""


def _key(key: Mapping[str, str]) -> dict[str, Any]:
    return serialize(key)


class InstitutionRepository(DynamoAffiliations):
    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        super().__init__(client, table_name)
        self._page_size = page_size

    # -- reads ----------------------------------------------------------------------------

    def _partition(self, pk: str) -> list[dict[str, Any]]:
        return query_partition(self._client, self.table_name, pk, page_size=self._page_size)

    def list_institutions(self) -> list[Institution]:
        """Every institution of every phase, by id."""
        return [Institution.from_item(i) for i in self._partition(INSTITUTION_PARTITION)]

    def list_affiliations(self, institution: str) -> list[Affiliation]:
        return [Affiliation.from_item(i) for i in self._partition(f"AFFILIATION#{institution}")]

    def pending(self) -> list[PendingRegistration]:
        """Every application awaiting review, by registration id."""
        return [_pending(i) for i in self._partition(PENDING_PARTITION)]

    def pending_one(self, registration_id: str) -> PendingRegistration | None:
        item = self._get(pending_key(registration_id))
        return _pending(item) if item else None

    def bound_account(self, reg_no: str) -> str | None:
        """The sub of the native account bound to ``reg_no``, if any."""
        item = self._get(reg_no_key(reg_no))
        return str(item["sub"]) if item else None

    def provider_mapping(self, name: str) -> ProviderMapping | None:
        return self.provider(name, None)[0]

    # -- writes: TransactWriteItems items --------------------------------------------------

    def commit(
        self, trail: TransactionalAuditTrail, event: AuditEvent, items: Sequence[Item]
    ) -> AuditReceipt:
        """Commit ``items`` with ``event``'s ledger entry, atomically.

        Raises:
            ConcurrentChange: if a condition of one of ``items`` failed.
        """
        try:
            return trail.transact_append(event, list(items))
        except AuditedTransactionConflict as exc:
            raise ConcurrentChange() from exc

    def _put(
        self,
        item: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Item:
        put: Item = {"TableName": self.table_name, "Item": serialize(item)}
        if condition:
            put["ConditionExpression"] = condition
        if names:
            put["ExpressionAttributeNames"] = dict(names)
        if values:
            put["ExpressionAttributeValues"] = serialize(values)
        return {"Put": put}

    def _update(
        self,
        key: Mapping[str, str],
        expression: str,
        values: Mapping[str, Any],
        condition: str | None,
        names: Mapping[str, str] | None = None,
    ) -> Item:
        update: Item = {
            "TableName": self.table_name,
            "Key": _key(key),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": serialize(values),
        }
        if condition:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = dict(names)
        return {"Update": update}

    def new_institution(
        self, institution: Institution, at: str, *, overwrite: bool = False
    ) -> Item:
        item: Item = {
            **institution_key(institution.id),
            "name": institution.name,
            "type": institution.type.value,
            "phase": institution.phase,
            "status": institution.status.value,
            "provider": institution.provider,
            "hospital_code": institution.hospital_code,
            "admitted_at": at,
            "changed_at": at,
        }
        return self._put(item, None if overwrite else "attribute_not_exists(pk)")

    def change_institution(
        self, institution: Institution, at: str, *, name: str | None, status: str | None
    ) -> Item:
        sets = ["changed_at = :at"]
        values: dict[str, Any] = {":at": at, ":was": institution.status.value}
        if name is not None:
            sets.append("#n = :name")
            values[":name"] = name
        if status is not None:
            sets.append("#s = :status")
            values[":status"] = status
        return self._update(
            institution_key(institution.id),
            "SET " + ", ".join(sets),
            values,
            "attribute_exists(pk) AND #s = :was",
            {"#s": "status", **({"#n": "name"} if name is not None else {})},
        )

    def hospital_code(self, provider: str, code: str, institution: str, at: str) -> Item:
        return self._put(
            {**hospital_key(provider, code), "institution": institution, "mapped_at": at},
            "attribute_not_exists(pk)",
        )

    def put_intake_client(self, client: IntakeClient, at: str) -> Item:
        return self._put(
            {
                **intake_client_key(client.client_id),
                "institution": client.institution,
                "system": client.system,
                "changed_at": at,
            }
        )

    def put_provider(self, mapping: ProviderMapping, at: str) -> Item:
        return self._put(
            {
                **provider_key(mapping.name),
                "institution": mapping.institution,
                "claim": mapping.claim,
                "group_roles": dict(mapping.group_roles) or None,
                "changed_at": at,
            }
        )

    def set_affiliation(
        self, institution: str, member: str, roles: Sequence[str], at: str, by: str
    ) -> Item:
        return self._put(
            {
                **affiliation_key(institution, member),
                "roles": sorted(set(roles)),
                "status": AffiliationStatus.ACTIVE.value,
                "changed_at": at,
                "changed_by": by,
            }
        )

    def activate_affiliation(
        self, institution: str, member: str, roles: Sequence[str], at: str, by: str
    ) -> Item:
        """Active, keeping the roles an existing affiliation already holds."""
        return self._update(
            affiliation_key(institution, member),
            "SET #s = :active, #r = if_not_exists(#r, :roles), changed_at = :at, changed_by = :by",
            {":active": "active", ":roles": sorted(set(roles)), ":at": at, ":by": by},
            None,
            {"#s": "status", "#r": "roles"},
        )

    def remove_affiliation(self, affiliation: Affiliation, at: str, by: str) -> Item:
        return self._update(
            affiliation_key(affiliation.institution, affiliation.member),
            "SET #s = :removed, changed_at = :at, changed_by = :by",
            {":removed": "removed", ":at": at, ":by": by, ":active": "active"},
            "#s = :active",
            {"#s": "status"},
        )

    def bind_account(self, account: Account, at: str, *, was: Account | None) -> list[Item]:
        """The account item (active or pending) and, for a practitioner made active, the
        number binding (one native account per number)."""
        item: Item = {
            **account_key(account.sub),
            "member": account.member,
            "institution": account.institution,
            "status": account.status.value,
            "registration_id": account.registration_id,
            "new_institution_name": account.new_institution_name,
            "submitted_at": account.submitted_at,
            "decided_at": account.decided_at,
            "changed_at": at,
        }
        if was is None:
            items = [self._put(item, "attribute_not_exists(pk)")]
        else:
            condition = "#s = :was"
            values: dict[str, Any] = {":was": was.status.value}
            if was.registration_id:
                condition += " AND registration_id = :rid"
                values[":rid"] = was.registration_id
            items = [self._put(item, condition, {"#s": "status"}, values)]
        if account.status is AccountStatus.ACTIVE and account.reg_no:
            items.append(
                self._put(
                    {**reg_no_key(account.reg_no), "sub": account.sub, "bound_at": at},
                    "attribute_not_exists(pk) OR #sub = :sub",
                    {"#sub": "sub"},
                    {":sub": account.sub},
                )
            )
        return items

    def enqueue(self, pending: PendingRegistration) -> Item:
        return self._put(
            {
                **pending_key(pending.registration_id),
                "sub": pending.sub,
                "reg_no": pending.reg_no,
                "institution": pending.institution,
                "new_institution_name": pending.new_institution_name,
                "submitted_at": pending.submitted_at,
            },
            "attribute_not_exists(pk)",
        )

    def dequeue(self, registration_id: str) -> Item:
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": _key(pending_key(registration_id)),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }


def _pending(item: Mapping[str, Any]) -> PendingRegistration:
    return PendingRegistration(
        registration_id=str(item["sk"]),
        sub=str(item["sub"]),
        reg_no=str(item["reg_no"]),
        institution=str(item["institution"]),
        submitted_at=str(item["submitted_at"]),
        new_institution_name=str(item["new_institution_name"])
        if item.get("new_institution_name")
        else None,
    )
