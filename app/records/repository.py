"""Record manifests, versions, shares, upload markers and idempotency keys in the records table.

Item layout (``pk`` / ``sk``, single-table design):

- ``RECORD#<id>`` / ``META``: patient id and keyed reference, owning institution, author
  (sub and registration number), category, optional title, created at, ``latest_version``;
- ``RECORD#<id>`` / ``VERSION#<10-digit n>``: one version: content type, length, the
  sealed manifest (``app.crypto`` canonical bytes: encrypted data key, encryption
  context, shard digests, commitment, MAC), the upload id and the shard object keys and
  S3 version ids in order, status ``active`` or ``shredded`` (a shredded version has no
  manifest: its wrapped data key is gone);
- ``RECORD#<id>`` / ``SHARE#<group id>``: the record is shared into that group;
- ``UPLOAD#<upload id>`` / ``UPLOAD``: the marker of one upload (one S3 prefix):
  ``pending`` when written (before any shard is put), then ``committed`` (with the record
  id and version), ``abandoned`` (the upload failed and cleaned up), ``swept`` (the
  sweeper reclaimed it) or ``shredded``;
- ``IDEMPOTENCY#<keyed hash>`` / ``IDEMPOTENCY``: a client's ``Idempotency-Key`` (hashed
  with the principal's sub, so keys of different users never collide), with a keyed
  fingerprint of the request and the record id and version it produced.
- The ``UPLOAD`` item of an upload session (a record sealed on the doctor's device) also
  holds who started it, the record version it will commit (context, type, length, shard
  layout, category and title), the wrapped data key (KMS ``EDK``), its deadline, and per
  shard index the random key and CRC64NVME of the last URL issued for it.
- ``PATIENT#<patient reference>`` / ``RECORD#<created at>#<id>`` and
  ``GROUPSHARE#<group id>`` / ``RECORD#<shared at>#<id>``: index items, written in the
  transaction that creates the record or the share, so a patient's records and a group's
  shared records are one paginated query away (no scan, no secondary index).

Guarantees: a record or version becomes visible only through one ``TransactWriteItems``
(committed by the audit trail's ``transact_append`` with the event's ledger entry)
that writes the version, flips its upload marker from ``pending`` to ``committed``,
claims the idempotency key (put only if absent) and appends the audit event, so it is
all-or-nothing; a marker leaves ``pending`` exactly once, which makes commit and sweep
mutually exclusive (the sweeper never deletes shards a manifest references). Reads are
strongly consistent, so an access decision sees the latest shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from app.crypto.context import RecordContext
from app.dynamo import deserialize, query_page, query_partition, serialize
from app.records.shards import StoredShard, shard_key


class TransactionRefused(Exception):
    """A transaction's condition failed (concurrent change, duplicate key, swept upload)."""


def version_sk(version: int) -> str:
    return f"VERSION#{version:010d}"


@dataclass(frozen=True)
class RecordMeta:
    record_id: str
    patient_id: str
    patient_ref: str
    institution: str
    author_sub: str
    author_reg_no: str
    category: str
    title: str
    created_at: datetime
    latest_version: int


@dataclass(frozen=True)
class RecordVersion:
    record_id: str
    version: int
    content_type: str
    length: int
    status: str
    created_at: datetime
    created_by: str
    upload_id: str
    shards: tuple[StoredShard, ...]
    manifest: bytes | None
    shredded_at: datetime | None = None
    shredded_by: str | None = None
    shred_reason: str | None = None
    # The plaintext's SHA-256 sealed under the data key (app.crypto.digest), when the
    # uploader computed it.
    content_digest: bytes | None = None

    @property
    def shredded(self) -> bool:
        return self.status == "shredded"


@dataclass(frozen=True)
class RecordShare:
    group_id: str
    shared_by: str
    shared_at: datetime


@dataclass(frozen=True)
class RecordState:
    meta: RecordMeta
    versions: list[RecordVersion] = field(default_factory=list)
    shares: list[RecordShare] = field(default_factory=list)

    def version(self, n: int) -> RecordVersion | None:
        return next((v for v in self.versions if v.version == n), None)


@dataclass(frozen=True)
class IssuedShard:
    """The last URL issued for one shard of an upload session: its random object key id
    (the key is ``shards/<upload id>/<key id>``), the CRC64NVME signed into it, and, once
    the service has checked the stored object (``HeadObject``), its S3 version id."""

    key_id: str
    crc64nvme: str
    version_id: str | None = None


@dataclass(frozen=True)
class UploadSession:
    """An upload sealed on the doctor's device, from start to commit (``UPLOAD#`` item)."""

    upload_id: str
    status: str
    owner_sub: str
    owner_reg_no: str
    record_id: str
    version: int
    new_record: bool
    patient_id: str
    patient_ref: str
    institution: str
    content_type: str
    length: int
    shard_size: int
    shard_count: int
    category: str
    title: str
    encrypted_data_key: bytes
    created_at: datetime
    expires_at: datetime
    shards: dict[int, IssuedShard] = field(default_factory=dict)

    def context(self) -> RecordContext:
        return RecordContext(self.record_id, self.patient_ref, self.version, self.institution)

    def key_of(self, index: int) -> str:
        return shard_key(self.upload_id, self.shards[index].key_id)


def session_item(session: UploadSession) -> dict[str, Any]:
    return {
        "pk": f"UPLOAD#{session.upload_id}",
        "sk": "UPLOAD",
        "kind": "client",
        "status": session.status,
        "created_at": session.created_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "owner_sub": session.owner_sub,
        "owner_reg_no": session.owner_reg_no,
        "record_id": session.record_id,
        "version": session.version,
        "new_record": session.new_record,
        "patient_id": session.patient_id,
        "patient_ref": session.patient_ref,
        "institution": session.institution,
        "content_type": session.content_type,
        "length": session.length,
        "shard_size": session.shard_size,
        "shard_count": session.shard_count,
        "category": session.category,
        "title": session.title or None,
        "edk": session.encrypted_data_key,
        "shards": {},
        "verified": {},
    }


def _checked_version(entry: Mapping[str, Any], verified: Mapping[str, Any]) -> str | None:
    """The S3 version id checked for a shard's current key (``"null"``: unversioned)."""
    version = verified.get(str(entry["k"]))
    if version is None:
        return None
    return "" if version == "null" else str(version)


def _session(item: Mapping[str, Any]) -> UploadSession:
    verified = item.get("verified") or {}
    shards = {
        int(index): IssuedShard(str(entry["k"]), str(entry["c"]), _checked_version(entry, verified))
        for index, entry in (item.get("shards") or {}).items()
    }
    return UploadSession(
        upload_id=str(item["pk"]).removeprefix("UPLOAD#"),
        status=str(item["status"]),
        owner_sub=str(item["owner_sub"]),
        owner_reg_no=str(item["owner_reg_no"]),
        record_id=str(item["record_id"]),
        version=int(item["version"]),
        new_record=bool(item["new_record"]),
        patient_id=str(item["patient_id"]),
        patient_ref=str(item["patient_ref"]),
        institution=str(item["institution"]),
        content_type=str(item["content_type"]),
        length=int(item["length"]),
        shard_size=int(item["shard_size"]),
        shard_count=int(item["shard_count"]),
        category=str(item["category"]),
        title=str(item.get("title") or ""),
        encrypted_data_key=bytes(item["edk"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        expires_at=datetime.fromisoformat(str(item["expires_at"])),
        shards=shards,
    )


@dataclass(frozen=True)
class IdempotencyEntry:
    fingerprint: str
    record_id: str
    version: int


def meta_item(meta: RecordMeta) -> dict[str, Any]:
    return {
        "pk": f"RECORD#{meta.record_id}",
        "sk": "META",
        "record_id": meta.record_id,
        "patient_id": meta.patient_id,
        "patient_ref": meta.patient_ref,
        "institution": meta.institution,
        "author_sub": meta.author_sub,
        "author_reg_no": meta.author_reg_no,
        "category": meta.category,
        "title": meta.title or None,
        "created_at": meta.created_at.isoformat(),
        "latest_version": meta.latest_version,
    }


def version_item(v: RecordVersion) -> dict[str, Any]:
    return {
        "pk": f"RECORD#{v.record_id}",
        "sk": version_sk(v.version),
        "record_id": v.record_id,
        "version": v.version,
        "content_type": v.content_type,
        "length": v.length,
        "status": v.status,
        "created_at": v.created_at.isoformat(),
        "created_by": v.created_by,
        "upload_id": v.upload_id,
        "shard_keys": [s.key.rsplit("/", 1)[1] for s in v.shards],
        "shard_versions": [s.version_id or "" for s in v.shards],
        "manifest": v.manifest,
        "content_digest": v.content_digest,
    }


def _meta(item: Mapping[str, Any]) -> RecordMeta:
    return RecordMeta(
        record_id=str(item["record_id"]),
        patient_id=str(item["patient_id"]),
        patient_ref=str(item["patient_ref"]),
        institution=str(item["institution"]),
        author_sub=str(item["author_sub"]),
        author_reg_no=str(item["author_reg_no"]),
        category=str(item["category"]),
        title=str(item.get("title") or ""),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        latest_version=int(item["latest_version"]),
    )


def _version(item: Mapping[str, Any]) -> RecordVersion:
    upload_id = str(item["upload_id"])
    keys = [str(k) for k in item.get("shard_keys", [])]
    versions = [str(v) for v in item.get("shard_versions", [""] * len(keys))]
    shards = tuple(
        StoredShard(f"shards/{upload_id}/{k}", v or None)
        for k, v in zip(keys, versions, strict=True)
    )
    shredded_at = item.get("shredded_at")
    return RecordVersion(
        record_id=str(item["record_id"]),
        version=int(item["version"]),
        content_type=str(item["content_type"]),
        length=int(item["length"]),
        status=str(item["status"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        created_by=str(item["created_by"]),
        upload_id=upload_id,
        shards=shards,
        manifest=item.get("manifest"),
        shredded_at=datetime.fromisoformat(str(shredded_at)) if shredded_at else None,
        shredded_by=str(item["shredded_by"]) if item.get("shredded_by") else None,
        shred_reason=str(item["shred_reason"]) if item.get("shred_reason") else None,
        content_digest=item.get("content_digest"),
    )


class RecordRepository:
    """Every query on the records table. ``client`` is a boto3 DynamoDB client; every
    query reads all its pages (``page_size`` only sets how many items one page holds)."""

    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    # -- building blocks ----------------------------------------------------------------

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return serialize({"pk": pk, "sk": sk})

    def put(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # -- upload markers -----------------------------------------------------------------

    def mark_upload_pending(self, upload_id: str, at: datetime) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item=serialize(
                {
                    "pk": f"UPLOAD#{upload_id}",
                    "sk": "UPLOAD",
                    "status": "pending",
                    "created_at": at.isoformat(),
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def commit_upload(self, upload_id: str, record_id: str, version: int) -> dict[str, Any]:
        """Transaction item: the upload goes ``pending`` -> ``committed`` (or the commit
        fails, e.g. because the sweeper reclaimed it first)."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(f"UPLOAD#{upload_id}", "UPLOAD"),
                "UpdateExpression": "SET #s = :committed, record_id = :r, version = :v",
                "ConditionExpression": "#s = :pending",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialize(
                    {
                        ":committed": "committed",
                        ":pending": "pending",
                        ":r": record_id,
                        ":v": version,
                    }
                ),
            }
        }

    def start_session(self, session: UploadSession) -> dict[str, Any]:
        """Transaction item: the session's ``UPLOAD`` item (``pending``), only if new."""
        return self.put(session_item(session))

    def load_session(self, upload_id: str) -> UploadSession | None:
        """An upload session as stored now (strongly consistent); ``None`` for an unknown
        id or an upload the service sealed itself."""
        item = self.upload_status(upload_id)
        if item is None or item.get("kind") != "client":
            return None
        return _session(item)

    def issue_shards(
        self,
        upload_id: str,
        issued: Mapping[int, IssuedShard],
        verified: Mapping[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """Transaction item, only while the session is pending: the key and CRC64NVME of
        newly issued shard URLs (by index), and the S3 version id of shard objects checked
        as stored (by key id: a shard issued again gets a new key, unchecked)."""
        names: dict[str, str] = {"#s": "status"}
        values: dict[str, Any] = {":pending": "pending"}
        sets = []
        for n, (index, shard) in enumerate(sorted(issued.items())):
            names[f"#i{n}"] = str(index)
            values[f":i{n}"] = {"k": shard.key_id, "c": shard.crc64nvme}
            sets.append(f"shards.#i{n} = :i{n}")
        for n, (key_id, version_id) in enumerate(sorted((verified or {}).items())):
            names[f"#k{n}"] = key_id
            values[f":k{n}"] = version_id or "null"
            sets.append(f"verified.#k{n} = :k{n}")
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(f"UPLOAD#{upload_id}", "UPLOAD"),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": "#s = :pending",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }

    def upload_status(self, upload_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self.table_name,
            Key=self._key(f"UPLOAD#{upload_id}", "UPLOAD"),
            ConsistentRead=True,
        ).get("Item")
        return deserialize(item) if item else None

    def upload_statuses(self, upload_ids: Sequence[str]) -> dict[str, str]:
        """Marker status of each upload that has one (strongly consistent, batched)."""
        out: dict[str, str] = {}
        ids = list(dict.fromkeys(upload_ids))
        for start in range(0, len(ids), 100):  # BatchGetItem's limit
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [self._key(f"UPLOAD#{u}", "UPLOAD") for u in ids[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                page = self._client.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self.table_name, []):
                    data = deserialize(item)
                    out[str(data["pk"]).removeprefix("UPLOAD#")] = str(data["status"])
                request = page.get("UnprocessedKeys") or {}
        return out

    def release_upload(
        self, upload_id: str, to_status: str, *, older_than: datetime | None = None
    ) -> bool:
        """Move an upload that was never committed to ``to_status`` (``abandoned``,
        ``swept``); creates the marker if it is missing. Returns False when the upload
        is committed (or already released by someone else, or younger than the cutoff)."""
        values: dict[str, Any] = {":to": to_status, ":pending": "pending"}
        condition = "attribute_not_exists(pk) OR #s = :pending"
        if older_than is not None:
            condition = "attribute_not_exists(pk) OR (#s = :pending AND created_at < :cutoff)"
            values[":cutoff"] = older_than.isoformat()
        if to_status == "swept":
            # Leftovers of abandoned, swept or shredded uploads hold no live shard either.
            condition += " OR #s IN (:abandoned, :swept, :shredded)"
            values.update({":abandoned": "abandoned", ":swept": "swept", ":shredded": "shredded"})
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(f"UPLOAD#{upload_id}", "UPLOAD"),
                UpdateExpression="SET #s = :to",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialize(values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- idempotency --------------------------------------------------------------------

    def idempotency(self, key_hash: str) -> IdempotencyEntry | None:
        item = self._client.get_item(
            TableName=self.table_name,
            Key=self._key(f"IDEMPOTENCY#{key_hash}", "IDEMPOTENCY"),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        data = deserialize(item)
        return IdempotencyEntry(
            str(data["fingerprint"]), str(data["record_id"]), int(data["version"])
        )

    def claim_idempotency(
        self, key_hash: str, entry: IdempotencyEntry, at: datetime
    ) -> dict[str, Any]:
        return self.put(
            {
                "pk": f"IDEMPOTENCY#{key_hash}",
                "sk": "IDEMPOTENCY",
                "fingerprint": entry.fingerprint,
                "record_id": entry.record_id,
                "version": entry.version,
                "created_at": at.isoformat(),
            }
        )

    # -- records ------------------------------------------------------------------------

    def load(self, record_id: str) -> RecordState | None:
        """The record, every version and every share, from one strongly consistent query."""
        items = query_partition(
            self._client, self.table_name, f"RECORD#{record_id}", page_size=self._page_size
        )
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        versions = sorted(
            (_version(i) for i in items if str(i["sk"]).startswith("VERSION#")),
            key=lambda v: v.version,
        )
        shares = [
            RecordShare(
                str(i["group_id"]),
                str(i["shared_by"]),
                datetime.fromisoformat(str(i["shared_at"])),
            )
            for i in items
            if str(i["sk"]).startswith("SHARE#")
        ]
        return RecordState(_meta(meta), versions, shares)

    def create_items(self, meta: RecordMeta, version: RecordVersion) -> list[dict[str, Any]]:
        """Transaction items that make a new record visible (with version 1)."""
        index = {
            "pk": f"PATIENT#{meta.patient_ref}",
            "sk": f"RECORD#{meta.created_at.isoformat()}#{meta.record_id}",
            "record_id": meta.record_id,
        }
        return [
            self.put(meta_item(meta)),
            self.put(version_item(version)),
            self.commit_upload(version.upload_id, meta.record_id, version.version),
            self.put(index),
        ]

    def version_items(self, version: RecordVersion) -> list[dict[str, Any]]:
        """Transaction items that add version n (only if the latest is still n - 1)."""
        bump = {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(f"RECORD#{version.record_id}", "META"),
                "UpdateExpression": "SET latest_version = :n",
                "ConditionExpression": "latest_version = :previous",
                "ExpressionAttributeValues": serialize(
                    {":n": version.version, ":previous": version.version - 1}
                ),
            }
        }
        return [
            bump,
            self.put(version_item(version)),
            self.commit_upload(version.upload_id, version.record_id, version.version),
        ]

    def share_items(self, record_id: str, share: RecordShare) -> list[dict[str, Any]]:
        item = {
            "pk": f"RECORD#{record_id}",
            "sk": f"SHARE#{share.group_id}",
            "group_id": share.group_id,
            "shared_by": share.shared_by,
            "shared_at": share.shared_at.isoformat(),
        }
        index = {
            "pk": f"GROUPSHARE#{share.group_id}",
            "sk": f"RECORD#{share.shared_at.isoformat()}#{record_id}",
            "record_id": record_id,
        }
        return [self.put(item), self.put(index)]

    # -- listings -----------------------------------------------------------------------

    def patient_records(
        self, patient_ref: str, *, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """One page of a patient's record ids, oldest first, and the position after it."""
        return self._index_page(f"PATIENT#{patient_ref}", limit, after)

    def group_records(
        self, group_id: str, *, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """One page of the ids of records shared into a group, and the position after it."""
        return self._index_page(f"GROUPSHARE#{group_id}", limit, after)

    def _index_page(self, pk: str, limit: int, after: str | None) -> tuple[list[str], str | None]:
        items, last = query_page(self._client, self.table_name, pk, limit=limit, after=after)
        return [str(i["record_id"]) for i in items], last

    def shred_items(
        self, version: RecordVersion, *, actor: str, reason: str, at: datetime
    ) -> list[dict[str, Any]]:
        """Remove the version's manifest (its only copy of the wrapped data key) and mark
        it shredded, with its upload, in one transaction; only from ``active``."""
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(f"RECORD#{version.record_id}", version_sk(version.version)),
                "UpdateExpression": (
                    "REMOVE manifest, content_digest SET #s = :shredded, shredded_at = :at, "
                    "shredded_by = :by, shred_reason = :reason"
                ),
                "ConditionExpression": "#s = :active",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialize(
                    {
                        ":shredded": "shredded",
                        ":active": "active",
                        ":at": at.isoformat(),
                        ":by": actor,
                        ":reason": reason,
                    }
                ),
            }
        }
        marker = {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(f"UPLOAD#{version.upload_id}", "UPLOAD"),
                "UpdateExpression": "SET #s = :shredded",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialize({":shredded": "shredded"}),
            }
        }
        return [update, marker]

    def raw_items(self, record_id: str) -> list[dict[str, Any]]:
        """Every stored item of a record, as stored (tests and audits), all pages."""
        return query_partition(
            self._client, self.table_name, f"RECORD#{record_id}", page_size=self._page_size
        )
