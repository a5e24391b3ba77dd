"""Record operations: seal and store, open and stream, share, version, crypto-shred.

Every operation is decided by Cedar through the access gate on state read for this
request (:mod:`app.records.authorization`): the record, its shares and the groups it is
shared into are read strongly consistent each time, so a doctor removed from a group is
refused on the very next request; a deny is audited and is a 403 naming the deciding
policy.

Upload (new record or new version), in this order:

1. authorize; check the declared type (415), Content-Length (411, 413); FHIR JSON is
   buffered and validated (422) before anything is stored (:mod:`app.records.uploads`);
2. with an ``Idempotency-Key`` already used by this principal, answer as the original
   request did, or 409 for other content (:mod:`app.records.idempotency`);
3. seal, store and commit by the commit protocol (:mod:`app.records.commit`): before the
   commit nothing is visible; after it everything is.

Sharing and shredding are :mod:`app.records.sharing` and :mod:`app.records.shredding`;
this module composes them into the one service the routes call.

The KMS encryption context is ``{record_id, patient_id: <patient reference>, version,
institution}``: the keyed patient reference (``pref:...``) rather than the patient id,
because CloudTrail logs the context on every use and the audit trail holds no patient
ids. Patient ids appear in audit events only as that reference, and never a title.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.access.engine import Action
from app.access.entities import simple_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import (
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
    patient_reference,
)
from app.breakglass.service import BreakGlassService
from app.consent.model import ConsentRegistry, EmergencyBasis
from app.crypto.digest import open_content_digest
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.kms import DataKeyProvider, KmsDataKeyProvider
from app.errors import NotFound
from app.groups.reading import GroupReading
from app.groups.repository import GroupRepository
from app.identity.principal import Principal
from app.patients.index import PatientRegistry, UnknownPatient
from app.records import errors
from app.records.authorization import RecordAuthorization, relabel
from app.records.commit import RETRYABLE, SealedUpload, UploadCommit
from app.records.downloads import DownloadTickets, context_of, refuse_integrity
from app.records.idempotency import Idempotency
from app.records.listing import RecordListing
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
from app.records.sessions import UploadSessions
from app.records.shards import ShardStore
from app.records.sharing import RecordSharing
from app.records.shredding import RecordShredding
from app.records.uploads import Upload, check_upload, media_essence
from app.settings import REGION, Settings

log = logging.getLogger(__name__)

__all__ = ["OpenedContent", "RecordService", "Upload", "build_record_service"]


@dataclass(frozen=True, repr=False)
class OpenedContent:
    """A whole record version, verified: its bytes and their ``Repr-Digest``."""

    version: RecordVersion
    plaintext: bytes
    repr_digest: str
    receipt: AuditReceipt

    @property
    def length(self) -> int:
        """The length announced: the authenticated manifest's (what was opened)."""
        return len(self.plaintext)


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
        *,
        patients: PatientRegistry,
        consents: ConsentRegistry,
        emergency: EmergencyBasis,
        provider: DataKeyProvider,
        max_inline_record_bytes: int,
        session_seconds: int,
        client_shard_size: int,
        record_cards: bool = False,
    ):
        self._repo = repository
        self._patients = patients
        self._shards = shards
        self._envelope = envelope
        self._gate = gate
        self._key = hash_key
        self._clock = clock
        self.max_record_bytes = max_record_bytes
        self.max_inline_record_bytes = min(max_inline_record_bytes, max_record_bytes)
        self._authz = RecordAuthorization(
            repository, groups, gate, break_glass, clock, consents=consents, emergency=emergency
        )
        self._idempotency = Idempotency(repository, hash_key)
        self._commit = UploadCommit(repository, shards, envelope, audit, clock)
        self._sharing = RecordSharing(
            repository, groups, self._authz, self._commit, clock, record_cards=record_cards
        )
        self._shredding = RecordShredding(repository, shards, self._authz, self._commit, clock)
        self.sessions = UploadSessions(
            repository,
            shards,
            provider,
            envelope,
            self._authz,
            gate,
            self._commit,
            hash_key,
            clock,
            max_record_bytes=max_record_bytes,
            shard_size=client_shard_size,
            session_seconds=session_seconds,
            patients=patients,
        )
        self.downloads = DownloadTickets(shards, envelope, self._authz, gate, clock)
        self.listing = RecordListing(
            repository,
            groups,
            self._authz,
            gate,
            break_glass,
            hash_key,
            clock,
            reading=GroupReading(consents, emergency),
        )

    @property
    def presign_seconds(self) -> int:
        """How long the presigned shard URLs this service issues live."""
        return self._shards.presign_seconds

    # -- upload -------------------------------------------------------------------------

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
        if not self._patients.is_registered(patient_id):
            self._gate.audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="patient-not-indexed")
            )
            raise UnknownPatient()
        upload = check_upload(upload, self.max_inline_record_bytes)
        operation, subject = "create", patient_id
        key_hash, earlier = self._idempotency.earlier(principal, upload)
        if earlier is not None:
            return self._idempotency.replay(earlier, upload, operation, subject), None, True
        now = self._clock()
        assert principal.reg_no is not None  # CreateRecord is for clinicians only
        record_id = uuid.uuid4().hex
        context = RecordContext(record_id, ref, 1, principal.institution)
        sealed = self._commit.seal_and_store(context, upload)
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
        version = self._version(record_id, 1, upload, sealed, principal)
        event = self._event(allowed, meta.record_id, version, upload)
        items = self._repo.create_items(meta, version)
        digest = sealed.body_sha256
        fingerprint = self._idempotency.fingerprint(operation, subject, upload, digest)
        claim = IdempotencyEntry(fingerprint, record_id, 1)
        receipt, winner = self._commit_claiming(sealed, event, items, key_hash, claim, now)
        if winner is not None:
            return self._idempotency.replay(winner, upload, operation, subject, digest), None, True
        return RecordState(meta, [version], []), receipt, False

    def intake_fingerprint(self, principal: Principal, source: Upload, sha256: str) -> str:
        """What identifies one intake submission under its key: the source as received
        (type, length, SHA-256) and the institution, as an HMAC (:meth:`file_intake`)."""
        return self._idempotency.fingerprint("intake", principal.institution, source, sha256)

    def intake_replay(
        self, principal: Principal, key: str, fingerprint: str
    ) -> tuple[RecordState, RecordState] | None:
        """(bundle, source) an earlier submission under ``key`` filed, when it filed both;
        None when there is none. Asked before the patient is resolved, so a retry changes
        nothing (no index lookup, no link). Decided by Cedar again, like any upload replay.

        Raises:
            IdempotencyKeyReused: the key filed another message (409).
        """
        entry = self._idempotency.entry(self._idempotency.key_hash(principal, key))
        if entry is None:
            return None
        bundle = self._idempotency.replay_entry(entry, fingerprint)
        source_entry = self._idempotency.entry(
            self._idempotency.key_hash(principal, _source_key(key))
        )
        if source_entry is None:  # pragma: no cover - the source commits before the bundle
            raise NotFound("No such record.")
        source = self._idempotency.replay_entry(source_entry, fingerprint)
        ref = bundle.meta.patient_ref
        self._gate.check(
            principal,
            Action.CREATE_RECORD,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
        )
        return bundle, source

    def file_intake(
        self,
        principal: Principal,
        patient_id: str,
        upload: Upload,
        *,
        category: RecordCategory,
        title: str,
        source: bool = False,
        key: str | None = None,
        fingerprint: str = "",
    ) -> tuple[RecordState, AuditReceipt | None, bool]:
        """Store a record a clinic management system submitted (community-care intake):
        sealed here, by the service (the system has no doctor's device), under the
        institution the system is mapped to, its author ``intake:<client id>``. Returns
        (state, receipt, replayed).

        The canonical FHIR bundle is checked as any FHIR upload is; a ``source`` (HL7 v2,
        CDA, FHIR R4 or R4B as received) was accepted by its adapter (type and size), so
        only its length is checked. The caller has resolved the patient through the index.

        With ``key`` (the submission's idempotency key) the record claims it in its commit
        (the source under ``<key>/source``), with ``fingerprint``
        (:meth:`intake_fingerprint`): a record already filed under it is returned instead
        (a retry after a partial filing, or a concurrent one that won), or 409 for another
        message.
        """
        ref = patient_reference(patient_id, self._key)
        allowed = self._gate.check(
            principal,
            Action.CREATE_RECORD,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
        )
        if not source:
            upload = check_upload(upload, self.max_inline_record_bytes)
        elif upload.length is None or upload.length > self.max_inline_record_bytes:
            raise errors.RecordTooLarge(
                f"A record version is limited to {self.max_inline_record_bytes} bytes."
            )
        key_hash = ""
        if key is not None:
            key_hash = self._idempotency.key_hash(principal, _source_key(key) if source else key)
            earlier = self._idempotency.entry(key_hash)
            if earlier is not None:
                return self._idempotency.replay_entry(earlier, fingerprint), None, True
        now = self._clock()
        record_id = uuid.uuid4().hex
        context = RecordContext(record_id, ref, 1, principal.institution)
        sealed = self._commit.seal_and_store(context, upload)
        meta = RecordMeta(
            record_id=record_id,
            patient_id=patient_id,
            patient_ref=ref,
            institution=principal.institution,
            author_sub=principal.sub,
            author_reg_no=f"intake:{principal.sub.removeprefix('client:')}",
            category=category.value,
            title=title,
            created_at=now,
            latest_version=1,
        )
        version = self._version(record_id, 1, upload, sealed, principal)
        event = self._event(allowed, meta.record_id, version, upload)
        items = self._repo.create_items(meta, version)
        claim = IdempotencyEntry(fingerprint, record_id, 1)
        receipt, winner = self._commit_claiming(sealed, event, items, key_hash, claim, now)
        if winner is not None:
            return self._idempotency.replay_entry(winner, fingerprint), None, True
        return RecordState(meta, [version], []), receipt, False

    def add_version(
        self, principal: Principal, record_id: str, upload: Upload
    ) -> tuple[RecordState, RecordVersion, AuditReceipt | None, bool]:
        """Store version n+1 under a fresh data key. Returns (state, version, receipt,
        replayed)."""
        state = self._authz.load(principal, record_id, Action.CREATE_RECORD_VERSION)
        allowed = self._authz.decide(principal, Action.CREATE_RECORD_VERSION, state)
        upload = check_upload(upload, self.max_inline_record_bytes)
        operation, subject = "version", record_id
        key_hash, earlier = self._idempotency.earlier(principal, upload)
        if earlier is not None:
            replayed = self._idempotency.replay(earlier, upload, operation, subject)
            return replayed, _version_of(replayed, earlier.version), None, True
        meta = state.meta
        n = meta.latest_version + 1
        context = RecordContext(record_id, meta.patient_ref, n, meta.institution)
        sealed = self._commit.seal_and_store(context, upload)
        version = self._version(record_id, n, upload, sealed, principal)
        event = self._event(allowed, record_id, version, upload)
        items = self._repo.version_items(version)
        digest = sealed.body_sha256
        fingerprint = self._idempotency.fingerprint(operation, subject, upload, digest)
        claim = IdempotencyEntry(fingerprint, record_id, n)
        receipt, winner = self._commit_claiming(
            sealed, event, items, key_hash, claim, self._clock()
        )
        if winner is not None:
            replayed = self._idempotency.replay(winner, upload, operation, subject, digest)
            return replayed, _version_of(replayed, winner.version), None, True
        new_state = RecordState(
            replace(meta, latest_version=n), [*state.versions, version], state.shares
        )
        return new_state, version, receipt, False

    def _commit_claiming(
        self,
        sealed: SealedUpload,
        event: AuditEvent,
        items: list[dict[str, Any]],
        key_hash: str,
        claim: IdempotencyEntry,
        now: datetime,
    ) -> tuple[AuditReceipt | None, IdempotencyEntry | None]:
        """Commit a stored upload: its items, its ledger entry and, under an
        Idempotency-Key, the key's claim, in one transaction. ``(receipt, None)``, or
        ``(None, winner)`` when a concurrent request under the same key committed first
        (the caller answers as its replay).

        Raises:
            Conflict: the commit was refused and no request holds the key (the record
                changed meanwhile; ``concurrent_change``).
        """
        if key_hash:
            items.append(self._repo.claim_idempotency(key_hash, claim, now))
        try:
            return self._commit.commit(sealed.upload_id, sealed.shards, event, items), None
        except TransactionRefused as refused:
            return None, self._idempotency.after_refusal(refused, key_hash)

    def _version(
        self,
        record_id: str,
        n: int,
        upload: Upload,
        sealed: SealedUpload,
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
            upload_id=sealed.upload_id,
            shards=tuple(sealed.shards),
            manifest=sealed.manifest,
            content_digest=sealed.content_digest,
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
                    "content_type": media_essence(upload.content_type),
                    "length": version.length,
                    "shards": len(version.shards),
                },
            }
        )

    # -- reads --------------------------------------------------------------------------

    def get(self, principal: Principal, record_id: str) -> tuple[RecordState, AuditReceipt]:
        state = self._authz.load(principal, record_id, Action.VIEW_RECORD)
        allowed = self._authz.decide(principal, Action.VIEW_RECORD, state)
        return state, self._gate.record(allowed)

    def open_content(
        self, principal: Principal, record_id: str, version: int | None
    ) -> OpenedContent:
        """Authorize, verify the manifest (KMS Decrypt with the context, commitment, MAC),
        open every shard and the sealed content digest, audit the read, then hand back the
        whole plaintext with its ``Repr-Digest``.

        Only records within ``HUB_MAX_INLINE_RECORD_BYTES`` (what one API response
        carries) are served whole here, so the response is complete before it starts: a
        length, shard list or order edited in the table, another version's manifest or a
        deleted shard version is the opaque 500 with no byte sent, never a shorter body
        that looks complete. The length announced is the authenticated manifest's. Larger
        records are opened on the client (:mod:`app.records.downloads`).
        """
        state = self._authz.load(principal, record_id, Action.READ_RECORD)
        wanted = version if version is not None else state.meta.latest_version
        allowed = self._authz.decide(
            principal, Action.READ_RECORD, state, details={"version": wanted}
        )
        chosen = state.version(wanted)
        if chosen is None:
            raise NotFound("No such record version.")
        if chosen.shredded or chosen.manifest is None:
            raise errors.RecordGone()
        context = context_of(state, chosen)
        verified = self.downloads.verified(principal, state, chosen, context, allowed)
        if verified.total_length > self.max_inline_record_bytes:
            self._gate.audit.append(
                replace(
                    allowed.event,
                    outcome=Outcome.DENY,
                    reason="record-too-large-for-inline",
                    resource=f"RecordVersion::{record_id}:{chosen.version}",
                )
            )
            raise errors.TooLargeForInline()
        shards = chosen.shards

        def fetch(index: int) -> bytes | None:
            if not 0 <= index < len(shards):
                return None
            return self._shards.get(shards[index])

        try:
            opened = self._envelope.open_verified(verified.manifest, fetch, context)
            if chosen.content_digest is not None:
                sealed = open_content_digest(
                    verified.data_key, verified.manifest, chosen.content_digest
                )
                if not equal_digest(sealed, opened.sha256):
                    raise InvalidRecord()
        except InvalidRecord:
            refuse_integrity(self._gate, principal, allowed, state, chosen, self._clock)
            raise errors.RecordIntegrityError() from None
        except RETRYABLE as exc:
            raise errors.StorageUnavailable() from exc
        receipt = self._gate.record(
            relabel(allowed, f"RecordVersion::{record_id}:{chosen.version}")
        )
        return OpenedContent(chosen, opened.plaintext, opened.repr_digest, receipt)

    # -- share and shred ----------------------------------------------------------------

    def card_facts(self, record_id: str) -> tuple[str, str] | None:
        """(type, title) for the record's card in a group's room; None if it is gone.

        The type is the category and the latest version's media type; never content.
        """
        state = self._repo.load(record_id)
        if state is None:
            return None
        latest = state.version(state.meta.latest_version)
        kind = state.meta.category + (f", {latest.content_type}" if latest else "")
        return kind, state.meta.title

    def share(
        self, principal: Principal, record_id: str, group_id: str
    ) -> tuple[RecordShare, AuditReceipt]:
        return self._sharing.share(principal, record_id, group_id)

    def shred(
        self, principal: Principal, record_id: str, version: int, reason: ShredReason
    ) -> tuple[RecordVersion, AuditReceipt]:
        """Crypto-shred one version (:mod:`app.records.shredding`)."""
        return self._shredding.shred(principal, record_id, version, reason)


def equal_digest(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def _source_key(key: str) -> str:
    """The key an intake submission's source record claims (its bundle claims ``key``)."""
    return f"{key}/source"


def _version_of(state: RecordState, n: int) -> RecordVersion:
    found = state.version(n)
    if found is None:  # pragma: no cover - an idempotency entry commits with its version
        raise NotFound("No such record version.")
    return found


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
    patients: PatientRegistry,
    consents: ConsentRegistry,
    emergency: EmergencyBasis,
) -> RecordService:
    """The record service on the configured bucket, key and table.

    Its S3, KMS and DynamoDB clients retry throttling (S3 ``SlowDown``/503, DynamoDB
    ``ProvisionedThroughputExceeded``/``ThrottlingException``, KMS ``ThrottlingException``)
    with botocore's ``standard`` retry mode: at most ``aws_max_attempts`` attempts with
    exponential backoff and full jitter. ``clients`` overrides any of them (tests).
    """

    config = settings.aws_config(max_pool_connections=max(10, 2 * settings.upload_parallelism))

    def client(name: str) -> Any:
        if name in clients:
            return clients[name]
        return session.client(name, region_name=REGION, config=config)

    provider = KmsDataKeyProvider(client("kms"), settings.records_key_arn)
    return RecordService(
        RecordRepository(client("dynamodb"), settings.table_records),
        ShardStore(
            client("s3"),
            settings.shard_bucket,
            settings.records_key_arn,
            settings.upload_parallelism,
            presign_seconds=settings.presign_seconds,
        ),
        ShardedEnvelope(
            provider, shard_size=settings.shard_size, parallelism=settings.upload_parallelism
        ),
        groups,
        gate,
        audit,
        break_glass,
        hash_key,
        clock,
        settings.max_record_bytes,
        patients=patients,
        consents=consents,
        emergency=emergency,
        provider=provider,
        max_inline_record_bytes=settings.max_inline_record_bytes,
        session_seconds=settings.upload_session_seconds,
        client_shard_size=settings.client_shard_size,
        record_cards=settings.messaging_enabled,
    )
