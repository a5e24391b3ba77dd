"""Record operations: seal and store, open and stream, share, version, crypto-shred.

Every operation is decided by Cedar through the access gate (a deny is audited and is a
403 naming the deciding policy) on state read for this request: the record, its shares
and the groups it is shared into are read strongly consistent each time, so a doctor
removed from a group is refused on the very next request.

Upload (new record or new version), in this order:

1. authorize; check the declared type (415), Content-Length (411, 413); FHIR JSON is
   buffered (up to ``MAX_FHIR_BYTES``) and validated (422) before anything is stored;
2. with an ``Idempotency-Key`` already used by this principal: the body is hashed and
   compared, and the original record is returned (same key, other content: 409);
3. write the upload marker (``pending``), seal the body as it streams in (a fresh KMS
   data key per version, bound to the record's encryption context) and put the shards
   to S3, ``upload_parallelism`` at a time, under random keys;
4. commit last, in one DynamoDB transaction: the version (its manifest), the marker
   flip ``pending -> committed``, the idempotency key and the audit event. Before that
   commit nothing is visible; after it everything is.

A failure before the commit abandons the marker and deletes the shards already put
(best effort; the sweeper reclaims whatever a crash leaves behind). A commit whose
outcome is unknown (a timeout) is resolved by the marker: if it reads ``committed`` the
upload succeeded and its shards are kept, otherwise it is abandoned first, which makes a
late commit impossible, and only then are the shards deleted.

The KMS encryption context is ``{record_id, patient_id: <patient reference>, version,
institution}``: the keyed patient reference (``pref:...``) rather than the patient id,
because CloudTrail logs the context on every use and the audit trail holds no patient
ids. Patient ids appear in audit events only as that reference, and never a title.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.access.engine import Action
from app.access.entities import (
    NO_GROUP_ID,
    no_group_entity,
    record_entity,
    simple_entity,
    uid,
)
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.breakglass.service import BreakGlassService
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord, KeyServiceUnavailable
from app.crypto.errors import LengthMismatch as SealedLengthMismatch
from app.crypto.kms import KmsDataKeyProvider
from app.dynamo import serialize
from app.errors import Conflict, HubError, NotFound
from app.groups.entities import group_entity
from app.groups.membership import GroupStatus, MembershipState
from app.groups.repository import GroupRepository
from app.identity.principal import Principal
from app.records import errors
from app.records.content import MAX_FHIR_BYTES, is_fhir, validate_upload
from app.records.repository import (
    IdempotencyEntry,
    RecordMeta,
    RecordRepository,
    RecordShare,
    RecordState,
    RecordVersion,
    TransactionRefused,
)
from app.records.schemas import RecordCategory, ShredReason
from app.records.shards import ShardStore, StoredShard, new_upload_id
from app.settings import REGION, Settings

log = logging.getLogger(__name__)

# Errors of AWS calls that a later retry may fix (after botocore's own bounded retries).
_RETRYABLE = (KeyServiceUnavailable, ClientError, BotoCoreError)


@dataclass(frozen=True)
class Upload:
    """A request body on its way in: declared type and length, and its bytes."""

    content_type: str
    length: int | None
    chunks: Iterable[bytes]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class OpenedContent:
    version: RecordVersion
    chunks: Iterator[bytes]
    receipt: AuditReceipt


class _Hashing:
    """Wraps a chunk source: SHA-256 of what passed through, and its byte count."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks
        self.digest = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.digest.update(chunk)
            self.count += len(chunk)
            yield chunk


class RecordService:
    def __init__(
        self,
        repository: RecordRepository,
        shards: ShardStore,
        envelope: ShardedEnvelope,
        groups: GroupRepository,
        gate: AccessGate,
        audit: TransactionalAuditTrail,
        break_glass: BreakGlassService,
        hash_key: bytes,
        clock: Callable[[], datetime],
        max_record_bytes: int,
    ):
        self._repo = repository
        self._shards = shards
        self._envelope = envelope
        self._groups = groups
        self._gate = gate
        self._audit = audit
        self._break_glass = break_glass
        self._key = hash_key
        self._clock = clock
        self.max_record_bytes = max_record_bytes

    # -- authorization ------------------------------------------------------------------

    def _load(self, principal: Principal, record_id: str, action: Action) -> RecordState:
        state = self._repo.load(record_id)
        if state is None:
            self._gate.audit.append(
                AuditEvent(
                    action=action.value,
                    outcome=Outcome.DENY,
                    reason="record-not-found",
                    actor=principal.sub,
                    actor_reg_no=principal.reg_no,
                    institution=principal.institution,
                    resource=f"Record::{record_id}",
                    at=self._clock(),
                )
            )
            raise NotFound("No such record.")
        return state

    def _via_group(
        self, principal: Principal, state: RecordState
    ) -> tuple[str, dict[str, Any] | None]:
        """The shared group the principal reads through, read fresh: an open one where
        they are active if any, else one they belong to (Cedar then says why not)."""
        if principal.reg_no is None or principal.reg_no == state.meta.author_reg_no:
            return NO_GROUP_ID, None
        fallback: tuple[str, dict[str, Any]] | None = None
        for share in state.shares:
            loaded = self._groups.load(share.group_id)
            if loaded is None:
                continue
            group, memberships = loaded
            mine = next((m for m in memberships if m.reg_no == principal.reg_no), None)
            if mine is None:
                continue
            entity = group_entity(group, memberships, slice_for=(principal.reg_no,))
            if group.status is GroupStatus.OPEN and mine.state is MembershipState.ACTIVE:
                return group.group_id, entity
            fallback = fallback or (group.group_id, entity)
        return fallback or (NO_GROUP_ID, None)

    def _decide(
        self,
        principal: Principal,
        action: Action,
        state: RecordState,
        *,
        target: tuple[str, dict[str, Any]] | None = None,
        details: dict[str, str | int | list[str]] | None = None,
    ) -> Allowed:
        meta = state.meta
        via_id, via_entity = (
            self._via_group(principal, state)
            if action in (Action.VIEW_RECORD, Action.READ_RECORD)
            else (NO_GROUP_ID, None)
        )
        patients = (
            self._break_glass.live_patient_refs(principal)
            if action in (Action.VIEW_RECORD, Action.READ_RECORD)
            else []
        )
        target_id, target_entity = target or (NO_GROUP_ID, None)
        entities: dict[str, dict[str, Any]] = {NO_GROUP_ID: no_group_entity()}
        for gid, entity in ((via_id, via_entity), (target_id, target_entity)):
            if entity is not None:
                entities[gid] = entity
        return self._gate.check(
            principal,
            action,
            uid("Record", meta.record_id),
            [
                record_entity(
                    meta.record_id,
                    institution=meta.institution,
                    patient_ref=meta.patient_ref,
                    author_reg_no=meta.author_reg_no,
                    shared_groups=[s.group_id for s in state.shares],
                ),
                *entities.values(),
            ],
            context={
                "break_glass_patients": patients,
                "via": {"__entity": uid("Group", via_id)},
                "target": {"__entity": uid("Group", target_id)},
            },
            patient_ref=meta.patient_ref,
            details=details,
        )

    # -- upload -------------------------------------------------------------------------

    def _check_upload(self, upload: Upload) -> Upload:
        """Type, length and (for FHIR) content, before anything is stored."""
        if upload.length is None:
            raise errors.LengthRequired()
        if upload.length > self.max_record_bytes:
            raise errors.RecordTooLarge(
                f"A record version is limited to {self.max_record_bytes} bytes."
            )
        if not is_fhir(upload.content_type):
            validate_upload(upload.content_type, b"")  # the type only: opaque bodies stream
            return upload
        if upload.length > MAX_FHIR_BYTES:
            raise errors.RecordTooLarge(
                f"FHIR JSON is validated in memory and is limited to {MAX_FHIR_BYTES} bytes."
            )
        body = bytearray()
        for chunk in upload.chunks:
            body += chunk
            if len(body) > upload.length:
                raise errors.LengthMismatch()
        if len(body) != upload.length:
            raise errors.LengthMismatch()
        validate_upload(upload.content_type, bytes(body))
        return replace(upload, chunks=[bytes(body)])

    def _fingerprint(self, operation: str, subject: str, upload: Upload, body_sha256: str) -> str:
        message = "\x1f".join(
            ["hub-records-idempotency/1", operation, subject, upload.content_type,
             str(upload.length), body_sha256]
        )  # fmt: skip
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _idempotency_hash(self, principal: Principal, key: str) -> str:
        message = f"hub-records-idempotency-key/1\x1f{principal.sub}\x1f{key}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _drain_hash(self, upload: Upload) -> str:
        hashing = _Hashing(upload.chunks)
        for _ in hashing:
            if hashing.count > (upload.length or 0):
                raise errors.LengthMismatch()
        if hashing.count != upload.length:
            raise errors.LengthMismatch()
        return hashing.digest.hexdigest()

    def _earlier(self, principal: Principal, upload: Upload) -> tuple[str, IdempotencyEntry | None]:
        """(key hash, the earlier outcome) for an Idempotency-Key; ("", None) without one."""
        if upload.idempotency_key is None:
            return "", None
        key_hash = self._idempotency_hash(principal, upload.idempotency_key)
        return key_hash, self._repo.idempotency(key_hash)

    def _replay(
        self,
        entry: IdempotencyEntry,
        upload: Upload,
        operation: str,
        subject: str,
        body_sha256: str | None = None,
    ) -> RecordState:
        """The state an earlier request with this key produced, if this one is the same
        request (same operation, subject, type, length and body); else 409."""
        digest = body_sha256 if body_sha256 is not None else self._drain_hash(upload)
        if not hmac.compare_digest(
            self._fingerprint(operation, subject, upload, digest), entry.fingerprint
        ):
            raise errors.IdempotencyKeyReused()
        state = self._repo.load(entry.record_id)
        if state is None:  # pragma: no cover - the entry commits with the record
            raise NotFound("No such record.")
        return state

    def _seal_and_store(
        self, context: RecordContext, upload: Upload
    ) -> tuple[str, list[StoredShard], bytes, str]:
        """Seal and put every shard; returns (upload id, shards, manifest, body SHA-256).

        On any failure, abandons the upload and deletes what was put, then raises.
        """
        upload_id = new_upload_id()
        stored: list[StoredShard] = []
        self._repo.mark_upload_pending(upload_id, self._clock())
        hashing = _Hashing(upload.chunks)
        try:
            stream = self._envelope.seal(context, hashing, upload.length or 0)
            shards = self._shards.put_all(upload_id, stream, on_stored=stored.append)
            manifest = stream.manifest.to_bytes()
        except Exception as exc:
            self._abandon(upload_id, stored)
            mapped = _upload_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return upload_id, shards, manifest, hashing.digest.hexdigest()

    def _abandon(self, upload_id: str, stored: Sequence[StoredShard]) -> bool:
        """Give up an upload: abandon its marker, then delete its shards. Returns False
        (and deletes nothing) if the upload turns out to be committed."""
        try:
            if not self._repo.release_upload(upload_id, "abandoned"):
                return False
            self._shards.delete(stored)
        except Exception as exc:  # the sweeper reclaims what is left
            log.warning("upload %s cleanup incomplete: %s", upload_id, type(exc).__name__)
        return True

    def _transact(self, event: AuditEvent, items: Sequence[Mapping[str, Any]]) -> AuditReceipt:
        """Commit ``items`` with the audit event's ledger entry in one transaction; a
        failed condition of one of ``items`` raises ``TransactionRefused``."""
        try:
            return self._audit.transact_append(event, items)
        except AuditedTransactionConflict as exc:
            raise TransactionRefused() from exc

    def _commit(
        self,
        upload_id: str,
        stored: Sequence[StoredShard],
        event: AuditEvent,
        items: Sequence[Mapping[str, Any]],
    ) -> AuditReceipt | None:
        """Run the commit transaction; on failure, make sure it cannot commit later and
        clean up. A commit that in fact succeeded (lost response) returns normally, with
        no receipt in hand (the event is in the trail all the same)."""
        try:
            return self._transact(event, items)
        except TransactionRefused:
            self._abandon(upload_id, stored)
            raise
        except Exception as exc:
            if self._abandon(upload_id, stored) or (
                (self._repo.upload_status(upload_id) or {}).get("status") != "committed"
            ):
                mapped = _upload_error(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            log.info("upload %s commit outcome recovered: committed", upload_id)
            return None

    def create(
        self,
        principal: Principal,
        patient_id: str,
        upload: Upload,
        *,
        category: RecordCategory = RecordCategory.OTHER,
        title: str = "",
    ) -> tuple[RecordState, AuditReceipt | None, bool]:
        """Store a new record (version 1). Returns (state, receipt, replayed)."""
        ref = patient_reference(patient_id, self._key)
        allowed = self._gate.check(
            principal,
            Action.CREATE_RECORD,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
        )
        upload = self._check_upload(upload)
        operation, subject = "create", patient_id
        key_hash, earlier = self._earlier(principal, upload)
        if earlier is not None:
            return self._replay(earlier, upload, operation, subject), None, True
        now = self._clock()
        assert principal.reg_no is not None  # CreateRecord is for clinicians only
        record_id = uuid.uuid4().hex
        context = RecordContext(record_id, ref, 1, principal.institution)
        upload_id, shards, manifest, digest = self._seal_and_store(context, upload)
        meta = RecordMeta(
            record_id=record_id,
            patient_id=patient_id,
            patient_ref=ref,
            institution=principal.institution,
            author_sub=principal.sub,
            author_reg_no=principal.reg_no,
            category=category.value,
            title=title,
            created_at=now,
            latest_version=1,
        )
        version = self._version(record_id, 1, upload, upload_id, shards, manifest, principal)
        event = self._event(allowed, meta.record_id, version, upload)
        items = self._repo.create_items(meta, version)
        fingerprint = self._fingerprint(operation, subject, upload, digest)
        if key_hash:
            entry = IdempotencyEntry(fingerprint, record_id, 1)
            items.append(self._repo.claim_idempotency(key_hash, entry, now))
        try:
            receipt = self._commit(upload_id, shards, event, items)
        except TransactionRefused as refused:
            entry = self._after_refusal(refused, key_hash)
            return self._replay(entry, upload, operation, subject, digest), None, True
        return RecordState(meta, [version], []), receipt, False

    def add_version(
        self, principal: Principal, record_id: str, upload: Upload
    ) -> tuple[RecordState, RecordVersion, AuditReceipt | None, bool]:
        """Store version n+1 under a fresh data key. Returns (state, version, receipt,
        replayed)."""
        state = self._load(principal, record_id, Action.CREATE_RECORD_VERSION)
        allowed = self._decide(principal, Action.CREATE_RECORD_VERSION, state)
        upload = self._check_upload(upload)
        operation, subject = "version", record_id
        key_hash, earlier = self._earlier(principal, upload)
        if earlier is not None:
            replayed = self._replay(earlier, upload, operation, subject)
            return replayed, _version_of(replayed, earlier.version), None, True
        meta = state.meta
        n = meta.latest_version + 1
        context = RecordContext(record_id, meta.patient_ref, n, meta.institution)
        upload_id, shards, manifest, digest = self._seal_and_store(context, upload)
        version = self._version(record_id, n, upload, upload_id, shards, manifest, principal)
        event = self._event(allowed, record_id, version, upload)
        items = self._repo.version_items(version)
        fingerprint = self._fingerprint(operation, subject, upload, digest)
        if key_hash:
            entry = IdempotencyEntry(fingerprint, record_id, n)
            items.append(self._repo.claim_idempotency(key_hash, entry, self._clock()))
        try:
            receipt = self._commit(upload_id, shards, event, items)
        except TransactionRefused as refused:
            entry = self._after_refusal(refused, key_hash)
            replayed = self._replay(entry, upload, operation, subject, digest)
            return replayed, _version_of(replayed, entry.version), None, True
        new_state = RecordState(
            replace(meta, latest_version=n), [*state.versions, version], state.shares
        )
        return new_state, version, receipt, False

    def _after_refusal(self, refused: TransactionRefused, key_hash: str) -> IdempotencyEntry:
        """A refused commit: a concurrent request with the same Idempotency-Key won (its
        entry is returned, to answer as its replay), or the record changed meanwhile."""
        entry = self._repo.idempotency(key_hash) if key_hash else None
        if entry is None:
            raise Conflict(
                "The record changed meanwhile; retry.", code="concurrent_change"
            ) from refused
        return entry

    def _version(
        self,
        record_id: str,
        n: int,
        upload: Upload,
        upload_id: str,
        shards: Sequence[StoredShard],
        manifest: bytes,
        principal: Principal,
    ) -> RecordVersion:
        return RecordVersion(
            record_id=record_id,
            version=n,
            content_type=upload.content_type,
            length=upload.length or 0,
            status="active",
            created_at=self._clock(),
            created_by=principal.reg_no or principal.sub,
            upload_id=upload_id,
            shards=tuple(shards),
            manifest=manifest,
        )

    @staticmethod
    def _event(
        allowed: Allowed, record_id: str, version: RecordVersion, upload: Upload
    ) -> AuditEvent:
        # Ids, codes and sizes only: never the title or any of the content.
        resource = (
            f"Record::{record_id}"
            if version.version == 1
            else f"RecordVersion::{record_id}:{version.version}"
        )
        return AuditEvent(
            **{
                **allowed.event.__dict__,
                "resource": resource,
                "details": {
                    "version": version.version,
                    "content_type": _media_essence(upload.content_type),
                    "length": version.length,
                    "shards": len(version.shards),
                },
            }
        )

    # -- reads --------------------------------------------------------------------------

    def get(self, principal: Principal, record_id: str) -> tuple[RecordState, AuditReceipt]:
        state = self._load(principal, record_id, Action.VIEW_RECORD)
        allowed = self._decide(principal, Action.VIEW_RECORD, state)
        return state, self._gate.record(allowed)

    def open_content(
        self, principal: Principal, record_id: str, version: int | None
    ) -> OpenedContent:
        """Authorize, verify the manifest (KMS Decrypt with the context, commitment, MAC)
        and the first shard, audit the read, then hand back the verified stream.

        A failure up to the first shard is a clean error (nothing released). A later
        shard that fails verification ends the stream with ``InvalidRecord`` before any
        of its bytes; the response then stops short of its Content-Length.
        """
        state = self._load(principal, record_id, Action.READ_RECORD)
        wanted = version if version is not None else state.meta.latest_version
        allowed = self._decide(principal, Action.READ_RECORD, state, details={"version": wanted})
        chosen = state.version(wanted)
        if chosen is None:
            raise NotFound("No such record version.")
        if chosen.shredded or chosen.manifest is None:
            raise errors.RecordGone()
        meta = state.meta
        context = RecordContext(record_id, meta.patient_ref, chosen.version, meta.institution)
        shards = chosen.shards

        def fetch(index: int) -> bytes | None:
            if not 0 <= index < len(shards):
                return None
            return self._shards.get(shards[index])

        try:
            chunks = self._envelope.open(chosen.manifest, fetch, context)
            first = next(chunks, b"")
        except InvalidRecord:
            log.warning("record %s version %s failed verification", record_id, wanted)
            raise errors.RecordIntegrityError() from None
        except _RETRYABLE as exc:
            raise errors.StorageUnavailable() from exc
        receipt = self._gate.record(
            _relabel(allowed, f"RecordVersion::{record_id}:{chosen.version}")
        )

        def stream() -> Iterator[bytes]:
            if first:
                yield first
            try:
                yield from chunks
            except InvalidRecord:
                log.warning("record %s version %s failed verification", record_id, wanted)
                raise

        return OpenedContent(chosen, stream(), receipt)

    # -- share --------------------------------------------------------------------------

    def share(
        self, principal: Principal, record_id: str, group_id: str
    ) -> tuple[RecordShare, AuditReceipt]:
        state = self._load(principal, record_id, Action.SHARE_RECORD)
        self._decide(principal, Action.READ_RECORD, state)
        loaded = self._groups.load(group_id)
        if loaded is None:
            raise NotFound("No such group.")
        group, memberships = loaded
        target = (
            group.group_id,
            group_entity(group, memberships, slice_for=(principal.reg_no or "",)),
        )
        allowed = self._decide(
            principal,
            Action.SHARE_RECORD,
            state,
            target=target,
            details={"group_id": group_id},
        )
        if any(s.group_id == group_id for s in state.shares):
            raise Conflict("The record is already shared into that group.", code="already_shared")
        share = RecordShare(group_id, principal.reg_no or principal.sub, self._clock())
        mine = next(m for m in memberships if m.reg_no == principal.reg_no)
        conditions = [
            {
                "ConditionCheck": {
                    "TableName": self._groups.table_name,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": "META"}),
                    "ConditionExpression": "#s = :open",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":open": {"S": GroupStatus.OPEN.value}},
                }
            },
            {
                # The sharer's membership is exactly as read: still active, unchanged.
                "ConditionCheck": {
                    "TableName": self._groups.table_name,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": f"MEMBER#{mine.reg_no}"}),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(mine.version)}},
                }
            },
        ]
        try:
            receipt = self._transact(
                _relabel(allowed, f"Share::{record_id}:{group_id}").event,
                [*self._repo.share_items(record_id, share), *conditions],
            )
        except TransactionRefused as exc:
            again = self._repo.load(record_id)
            if again is not None and any(s.group_id == group_id for s in again.shares):
                raise Conflict(
                    "The record is already shared into that group.", code="already_shared"
                ) from exc
            raise Conflict("The group changed meanwhile; retry.", code="concurrent_change") from exc
        return share, receipt

    # -- shred --------------------------------------------------------------------------

    def shred(
        self, principal: Principal, record_id: str, version: int, reason: ShredReason
    ) -> tuple[RecordVersion, AuditReceipt]:
        """Crypto-shred one version: its wrapped data key (the manifest) is removed and
        the version marked shredded, with the audit event, in one transaction; then its
        shards are deleted (what a failure leaves, the sweeper reclaims)."""
        state = self._load(principal, record_id, Action.SHRED_RECORD)
        allowed = self._decide(
            principal,
            Action.SHRED_RECORD,
            state,
            details={"version": version, "reason": reason.value},
        )
        chosen = state.version(version)
        if chosen is None:
            raise NotFound("No such record version.")
        if chosen.shredded:
            raise errors.RecordGone()
        now = self._clock()
        actor = principal.reg_no or principal.sub
        try:
            event = _relabel(
                allowed, f"RecordVersion::{record_id}:{version}", reason_code=reason.value
            ).event
            receipt = self._transact(
                event, self._repo.shred_items(chosen, actor=actor, reason=reason.value, at=now)
            )
        except TransactionRefused as exc:
            raise errors.RecordGone() from exc
        try:
            self._shards.delete(chosen.shards)
        except Exception as exc:  # key gone; the sweeper finishes
            log.warning("shred of %s v%s left shards: %s", record_id, version, type(exc).__name__)
        shredded = replace(
            chosen,
            status="shredded",
            manifest=None,
            shredded_at=now,
            shredded_by=actor,
            shred_reason=reason.value,
        )
        return shredded, receipt


def _relabel(allowed: Allowed, resource: str, *, reason_code: str | None = None) -> Allowed:
    """The allow event about a narrower resource (a version, a share) and, for a shred,
    with its reason code appended to the deciding policy (the ledger keeps the reason)."""
    event = allowed.event
    reason = f"{event.reason},{reason_code}" if reason_code else event.reason
    return Allowed(allowed.decision, replace(event, resource=resource, reason=reason))


def _version_of(state: RecordState, n: int) -> RecordVersion:
    found = state.version(n)
    if found is None:  # pragma: no cover - an idempotency entry commits with its version
        raise NotFound("No such record version.")
    return found


def _media_essence(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _upload_error(exc: Exception) -> Exception:
    """The client-facing error for a failed upload (nothing was stored)."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, SealedLengthMismatch):
        return errors.LengthMismatch()
    if isinstance(exc, _RETRYABLE):
        return errors.StorageUnavailable()
    return exc


def build_record_service(
    settings: Settings,
    session: Any,
    clients: Mapping[str, Any],
    *,
    groups: GroupRepository,
    gate: AccessGate,
    audit: TransactionalAuditTrail,
    break_glass: BreakGlassService,
    hash_key: bytes,
    clock: Callable[[], datetime],
) -> RecordService:
    """The record service on the configured bucket, key and table.

    Its S3, KMS and DynamoDB clients retry throttling (S3 ``SlowDown``/503, DynamoDB
    ``ProvisionedThroughputExceeded``/``ThrottlingException``, KMS ``ThrottlingException``)
    with botocore's ``standard`` retry mode: at most ``aws_max_attempts`` attempts with
    exponential backoff and full jitter. ``clients`` overrides any of them (tests).
    """
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts},
        max_pool_connections=max(10, 2 * settings.upload_parallelism),
    )

    def client(name: str) -> Any:
        if name in clients:
            return clients[name]
        return session.client(name, region_name=REGION, config=config)

    return RecordService(
        RecordRepository(client("dynamodb"), settings.table_records),
        ShardStore(
            client("s3"),
            settings.shard_bucket,
            settings.records_key_arn,
            settings.upload_parallelism,
        ),
        ShardedEnvelope(
            KmsDataKeyProvider(client("kms"), settings.records_key_arn),
            shard_size=settings.shard_size,
            parallelism=settings.upload_parallelism,
        ),
        groups,
        gate,
        audit,
        break_glass,
        hash_key,
        clock,
        settings.max_record_bytes,
    )
