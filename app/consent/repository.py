"""Sharing consents on DynamoDB, in the patient index's table under their own key prefix.

Layout (table ``HUB_TABLE_PATIENTS``, keys ``pk``/``sk``; the index's own items are
``INDEX``/``PATIENT#``/``HKID#``/``MRN#``/``CONFIG#``, so nothing overlaps)::

    pk=CONSENT#<patient_id>   sk=CONSENT#<consent_id>   one SharingConsent

Guarantees:

- one patient's consents are one partition: :meth:`consents` is one strongly
  consistent query that follows ``LastEvaluatedKey`` to the end, so a withdrawal
  committed before a request is seen by that request;
- nothing is deleted: a withdrawal rewrites the item with its withdrawal fields, on
  condition that it exists and is not yet withdrawn (a concurrent withdrawal cancels the
  transaction, :class:`~app.consent.model.ConsentConflict` ``concurrent_change``);
- a new consent is written on condition that its key is free;
- items hold the patient's hub id (opaque), institution ids and keyed SDM references;
  no name, HKID or MRN.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.consent.model import (
    SdmRelationship,
    SharingConsent,
    SubstituteBasis,
    SubstituteDecisionMaker,
)
from app.dynamo import deserialize, query_partition, serialize


def _pk(patient_id: str) -> str:
    return f"CONSENT#{patient_id}"


def _key(patient_id: str, consent_id: str) -> dict[str, str]:
    return {"pk": _pk(patient_id), "sk": f"CONSENT#{consent_id}"}


class DynamoConsentRepository:
    """The consents of each patient, read and written in one DynamoDB table."""

    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    def consents(self, patient_id: str) -> list[SharingConsent]:
        """Every consent of the patient (in force or not), page by page, strongly consistent."""
        items = query_partition(
            self._client, self.table_name, _pk(patient_id), page_size=self._page_size
        )
        return [_consent(item) for item in items]

    def get(self, patient_id: str, consent_id: str) -> SharingConsent | None:
        found = self._client.get_item(
            TableName=self.table_name,
            Key=serialize(_key(patient_id, consent_id)),
            ConsistentRead=True,
        ).get("Item")
        return _consent(deserialize(found)) if found else None

    def new_item(self, patient_id: str, consent: SharingConsent) -> dict[str, Any]:
        """The TransactWriteItems item that stores a new consent (its key must be free)."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": serialize({**_key(patient_id, consent.consent_id), **_item(consent)}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def withdrawal_item(self, patient_id: str, consent: SharingConsent) -> dict[str, Any]:
        """The item that stores ``consent`` as withdrawn, if it is stored and not yet so."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": serialize({**_key(patient_id, consent.consent_id), **_item(consent)}),
                "ConditionExpression": (
                    "attribute_exists(pk) AND attribute_not_exists(withdrawn_at)"
                ),
            }
        }


def _sdm_item(sdm: SubstituteDecisionMaker | None) -> dict[str, str] | None:
    if sdm is None:
        return None
    return {"ref": sdm.sdm_ref, "relationship": sdm.relationship.value, "basis": sdm.basis.value}


def _sdm(item: Any) -> SubstituteDecisionMaker | None:
    if not item:
        return None
    return SubstituteDecisionMaker(
        sdm_ref=str(item["ref"]),
        relationship=SdmRelationship(str(item["relationship"])),
        basis=SubstituteBasis(str(item["basis"])),
    )


def _item(consent: SharingConsent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "consent_id": consent.consent_id,
        "patient_ref": consent.patient_ref,
        "institution": consent.institution,
        "given_at": consent.given_at.isoformat(),
        "recorded_by": consent.recorded_by,
    }
    optional: dict[str, Any] = {
        "valid_until": consent.valid_until.isoformat() if consent.valid_until else None,
        "given_by": _sdm_item(consent.given_by),
        "withdrawn_at": consent.withdrawn_at.isoformat() if consent.withdrawn_at else None,
        "withdrawn_by": consent.withdrawn_by,
        "withdrawn_via": _sdm_item(consent.withdrawn_via),
    }
    # Absent, not null: the withdrawal condition tests attribute_not_exists(withdrawn_at).
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value is not None else None


def _consent(item: Mapping[str, Any]) -> SharingConsent:
    given_at = _time(item["given_at"])
    assert given_at is not None
    withdrawn_by = item.get("withdrawn_by")
    return SharingConsent(
        consent_id=str(item["consent_id"]),
        patient_ref=str(item["patient_ref"]),
        institution=str(item["institution"]),
        given_at=given_at,
        valid_until=_time(item.get("valid_until")),
        recorded_by=str(item["recorded_by"]),
        given_by=_sdm(item.get("given_by")),
        withdrawn_at=_time(item.get("withdrawn_at")),
        withdrawn_by=str(withdrawn_by) if withdrawn_by is not None else None,
        withdrawn_via=_sdm(item.get("withdrawn_via")),
    )
