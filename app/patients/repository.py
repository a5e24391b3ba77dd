"""The patient index on DynamoDB: the event log, and the items that keep it unique.

Layout (table ``HUB_TABLE_PATIENTS``, keys ``pk``/``sk``)::

    pk=INDEX                        sk=EVENT#<seq, 12 digits>   one IndexEvent (refs only)
    pk=PATIENT#<patient_id>         sk=PATIENT                  the patient exists (hkid_ref)
    pk=HKID#<hkid_ref>              sk=HKID                     the one patient of an HKID
    pk=MRN#<institution>#<mrn_ref>  sk=ACTIVE                   the one ACTIVE link of an MRN
    pk=CONFIG#patient-index-key     sk=v1                       the sealed key (index_key.py)

Guarantees:

- the HKID and the MRN are never stored in clear: only their keyed references
  (:func:`app.patients.index.hkid_reference`, :func:`~app.patients.index.mrn_reference`);
- an append writes its events and the uniqueness items they imply in one transaction,
  each conditioned on the state the pure core decided from (the event's ``seq`` not taken,
  the HKID not registered, the MRN's active link naming the patient it named): a
  concurrent change cancels it and nothing is written (:class:`IndexConflict`
  ``concurrent_change``; the caller reloads and decides again);
- reads that decide are strongly consistent, and :meth:`events` follows
  ``LastEvaluatedKey`` to the end of the log;
- :meth:`is_registered`, :meth:`patient_of_hkid` and :meth:`patient_of_mrn` are one
  ``GetItem`` each, whatever the size of the index (groups, records and referrals ask
  :meth:`is_registered` on every request that names a patient).

The log is one partition with one sequence: every change to the index is serialised,
which is what lets :func:`app.patients.index.as_of` replay it; loading the index for a
change reads the whole log (paged), so the cost of a change grows with the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.dynamo import deserialize, serialize
from app.patients.index import (
    ChangeReason,
    EventKind,
    IndexConflict,
    IndexEvent,
    PatientIndex,
    replay,
)

LOG_PK = "INDEX"


def _event_sk(seq: int) -> str:
    return f"EVENT#{seq:012d}"


def _patient_key(patient_id: str) -> dict[str, str]:
    return {"pk": f"PATIENT#{patient_id}", "sk": "PATIENT"}


def _hkid_key(hkid_ref: str) -> dict[str, str]:
    return {"pk": f"HKID#{hkid_ref}", "sk": "HKID"}


def _mrn_key(institution: str, mrn_ref: str) -> dict[str, str]:
    return {"pk": f"MRN#{institution}#{mrn_ref}", "sk": "ACTIVE"}


class DynamoPatientIndexRepository:
    """:class:`app.patients.index.PatientIndexRepository` on one DynamoDB table."""

    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    # -- reads --------------------------------------------------------------------------

    def events(self, after_seq: int = 0) -> Iterator[IndexEvent]:
        """The log after ``after_seq``, in order, page by page (strongly consistent)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk > :after",
            "ExpressionAttributeValues": {
                ":pk": {"S": LOG_PK},
                ":after": {"S": _event_sk(after_seq)},
            },
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            kwargs["Limit"] = self._page_size
        while True:
            page = self._client.query(**kwargs)
            for item in page["Items"]:
                yield _event(deserialize(item))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def load(self) -> PatientIndex:
        return replay(self.events())

    def _get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        found = self._client.get_item(
            TableName=self.table_name, Key=serialize(key), ConsistentRead=True
        ).get("Item")
        return deserialize(found) if found else None

    def is_registered(self, patient_id: str) -> bool:
        return self._get(_patient_key(patient_id)) is not None

    def patient_of_hkid(self, hkid_ref: str) -> str | None:
        item = self._get(_hkid_key(hkid_ref))
        return str(item["patient_id"]) if item else None

    def patient_of_mrn(self, institution: str, mrn_ref: str) -> str | None:
        item = self._get(_mrn_key(institution, mrn_ref))
        return str(item["patient_id"]) if item else None

    # -- writes -------------------------------------------------------------------------

    def append(self, event: IndexEvent) -> None:
        self.append_all([event])

    def append_all(self, events: Sequence[IndexEvent]) -> None:
        """Commit ``events`` (consecutive, decided on one loaded index) all or nothing."""
        items = self.transaction_items(events)
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException:
            raise concurrent_change() from None

    def transaction_items(self, events: Sequence[IndexEvent]) -> list[dict[str, Any]]:
        """The TransactWriteItems items that commit ``events`` with their uniqueness
        (for a caller that commits them with its audit entry in the same transaction)."""
        items: list[dict[str, Any]] = []
        touched: set[str] = set()
        for event in events:
            items.append(
                self._put(
                    {"pk": LOG_PK, "sk": _event_sk(event.seq), **_event_item(event)},
                    "attribute_not_exists(pk)",
                )
            )
            for item in self._uniqueness(event):
                operation = next(iter(item.values()))
                target = operation.get("Key") or operation["Item"]
                key = f"{target['pk']}|{target['sk']}"
                if key in touched:
                    # Two events of one append on one item (register + link of a new
                    # patient touch different items; anything else is decided separately).
                    raise ValueError("one append may touch each index item once")
                touched.add(key)
                items.append(item)
        return items

    def _uniqueness(self, event: IndexEvent) -> list[dict[str, Any]]:
        kind = event.kind
        if kind is EventKind.PATIENT_REGISTERED:
            out = [
                self._put(
                    {
                        **_patient_key(event.patient_id),
                        "patient_id": event.patient_id,
                        "hkid_ref": event.hkid_ref,
                    },
                    "attribute_not_exists(pk)",
                )
            ]
            if event.hkid_ref is not None:
                out.append(self._hkid_put(event.hkid_ref, event.patient_id))
            return out
        if kind is EventKind.HKID_CORRECTED:
            assert event.hkid_ref is not None
            out = [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize(_patient_key(event.patient_id)),
                        "UpdateExpression": "SET hkid_ref = :new",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": serialize({":new": event.hkid_ref}),
                    }
                },
                self._hkid_put(event.hkid_ref, event.patient_id),
            ]
            if event.previous_hkid_ref is not None:
                out.append(
                    self._delete(_hkid_key(event.previous_hkid_ref), "patient_id", event.patient_id)
                )
            return out
        assert event.institution is not None and event.mrn_ref is not None
        key = _mrn_key(event.institution, event.mrn_ref)
        if kind is EventKind.MRN_LINKED:
            return [
                self._put(
                    {**key, "patient_id": event.patient_id, "linked_seq": event.seq},
                    "attribute_not_exists(pk)",
                )
            ]
        if kind is EventKind.MRN_UNLINKED:
            return [self._delete(key, "linked_seq", event.supersedes)]
        # MRN_LINK_CORRECTED: the active link must still be the one corrected.
        return [
            self._put(
                {**key, "patient_id": event.patient_id, "linked_seq": event.seq},
                "linked_seq = :expected",
                {":expected": event.supersedes},
            )
        ]

    def _hkid_put(self, hkid_ref: str, patient_id: str) -> dict[str, Any]:
        return self._put(
            {**_hkid_key(hkid_ref), "patient_id": patient_id}, "attribute_not_exists(pk)"
        )

    def _put(
        self,
        item: Mapping[str, Any],
        condition: str,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": serialize(item),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = serialize(values)
        return {"Put": put}

    def _delete(self, key: Mapping[str, str], attribute: str, expected: Any) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": serialize(key),
                "ConditionExpression": f"{attribute} = :expected",
                "ExpressionAttributeValues": serialize({":expected": expected}),
            }
        }


def concurrent_change() -> IndexConflict:
    """The error an append answers when a condition failed (also for callers that commit
    :meth:`DynamoPatientIndexRepository.transaction_items` themselves)."""
    return IndexConflict("concurrent_change", "The index changed meanwhile; retry.")


_OPTIONAL = (
    "hkid_ref",
    "institution",
    "mrn_ref",
    "previous_patient_id",
    "previous_hkid_ref",
)


def _event_item(event: IndexEvent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "seq": event.seq,
        "kind": event.kind.value,
        "patient_id": event.patient_id,
        "actor": event.actor,
        "at": event.at.isoformat(),
        "reason": event.reason.value,
        "supersedes": event.supersedes,
    }
    for name in _OPTIONAL:
        item[name] = getattr(event, name)
    return item


def _event(item: Mapping[str, Any]) -> IndexEvent:
    supersedes = item.get("supersedes")
    return IndexEvent(
        seq=int(item["seq"]),
        kind=EventKind(str(item["kind"])),
        patient_id=str(item["patient_id"]),
        actor=str(item["actor"]),
        at=datetime.fromisoformat(str(item["at"])),
        reason=ChangeReason(str(item["reason"])),
        supersedes=int(supersedes) if supersedes is not None else None,
        **{name: (str(item[name]) if item.get(name) is not None else None) for name in _OPTIONAL},
    )
