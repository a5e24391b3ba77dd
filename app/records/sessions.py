"""Upload sessions: a record version sealed on the doctor's device and put straight to S3.

The content never passes API Gateway or the service: the service decides, issues a data
key and short-lived URLs, and checks the result before it commits. In order:

1. **start** (``POST /patients/{id}/uploads``, ``POST /records/{id}/uploads``): Cedar
   decides ``CreateRecord`` (or ``CreateRecordVersion``); the declared type must be
   accepted and not FHIR (FHIR is validated, so the service seals it itself), the length
   within ``HUB_MAX_RECORD_BYTES``. KMS ``GenerateDataKey`` under the version's encryption
   context gives ``K`` and ``EDK``; ``K`` goes back wrapped for the client's ephemeral
   public key (HPKE, :mod:`app.crypto.handover`) and is dropped, never logged or stored.
   The session (``UPLOAD#`` item, ``pending``, with ``EDK`` and a deadline of
   ``HUB_UPLOAD_SESSION_SECONDS``) commits with its audit entry.
2. **shard URLs** (``POST /uploads/{id}/shards``): the client seals shards with
   ``app.crypto.RecordSealer`` and, for each, declares its size and CRC64NVME; the service
   checks the size against the layout, draws a fresh random key under the upload's prefix
   and presigns a PUT that signs size, checksum, SSE-KMS with the records key and
   ``If-None-Match: *`` (:meth:`app.records.shards.ShardStore.presign_put`), valid
   ``HUB_PRESIGN_SECONDS``. The key and checksum issued last for each index are recorded
   with the audit entry. A shard sealed again (a resume) gets a new key, so no URL ever
   overwrites an object.
3. **commit** (``POST /uploads/{id}/commit``): the decision is made again on state read
   now; the manifest must be format 2, for this session's context, wrapped key and layout,
   and authenticate (KMS ``Decrypt``, key commitment, MAC: ``verify_manifest``); every
   shard must exist at its issued key with the manifest's size, the issued CRC64NVME and
   SSE-KMS under the records key (``HeadObject``). Then record, version (manifest, keys and
   the S3 version ids read now, so later writes to a key never change what opens), marker
   flip ``pending -> committed`` and ledger entry commit in one transaction, as for records
   the service seals. Committing a committed session answers its record again
   (``Idempotent-Replayed``).

Also ``GET /uploads/{id}`` (what was issued, for a client resuming) and ``POST
/uploads/{id}/key`` (the data key again, wrapped for a new key pair, after the record
decision is made again). Only the doctor who started a session continues it (Cedar
``UploadRecord``). Every refusal is audited (a deny with its reason) before it is
raised. Sessions that never commit are reclaimed by the orphan sweeper: their deadline
plus the URL lifetime is within its grace period (``app.settings``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app.access.engine import Action
from app.access.entities import record_entity, simple_entity, uid
from app.access.gate import AccessGate, Allowed
from app.audit.events import AuditEvent, AuditReceipt, Outcome, patient_reference
from app.content import check_content_type, is_fhir
from app.crypto.digest import open_content_digest
from app.crypto.envelope import ShardedEnvelope, VerifiedManifest
from app.crypto.errors import InvalidRecord, KeyServiceUnavailable
from app.crypto.handover import recipient_public_key, wrap_data_key
from app.crypto.kms import DataKeyProvider
from app.crypto.manifest import ManifestV2, plaintext_size, shard_count_for
from app.errors import Conflict, HubError, NotFound
from app.identity.principal import Principal
from app.patients.index import PatientRegistry, UnknownPatient
from app.records import errors
from app.records.authorization import RecordAuthorization
from app.records.commit import RETRYABLE, UploadCommit
from app.records.repository import (
    IssuedShard,
    RecordMeta,
    RecordRepository,
    RecordState,
    RecordVersion,
    TransactionRefused,
    UploadSession,
)
from app.records.shards import ShardHead, ShardStore, StoredShard, new_upload_id, shard_key

log = logging.getLogger(__name__)

MAX_SHARDS_PER_REQUEST = 64
# Also what keeps each update expression within DynamoDB's 4 KB expression limit.
MAX_REPORTED_PER_REQUEST = 64
HEAD_PARALLELISM = 16
TAG_BYTES = 16
# A CRC64NVME checksum as S3 takes it: base64 of its 8 bytes.
_CRC64NVME = re.compile(r"^[A-Za-z0-9+/]{11}=$")


@dataclass(frozen=True)
class SessionRequest:
    """What a client declares when it starts an upload session."""

    content_type: str
    length: int
    public_key: bytes
    category: str = "other"
    title: str = ""


@dataclass(frozen=True)
class StartedUpload:
    session: UploadSession
    wrapped_data_key: bytes
    receipt: AuditReceipt


@dataclass(frozen=True)
class ShardDeclaration:
    """A sealed shard the client is about to put: its index, size and CRC64NVME."""

    index: int
    size: int
    crc64nvme: str


@dataclass(frozen=True)
class IssuedUrl:
    index: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class CommittedUpload:
    state: RecordState
    version: RecordVersion
    receipt: AuditReceipt | None
    replayed: bool


class UploadSessions:
    def __init__(
        self,
        repository: RecordRepository,
        shards: ShardStore,
        provider: DataKeyProvider,
        envelope: ShardedEnvelope,
        authorization: RecordAuthorization,
        gate: AccessGate,
        commit: UploadCommit,
        hash_key: bytes,
        clock: Callable[[], datetime],
        *,
        max_record_bytes: int,
        shard_size: int,
        session_seconds: int,
        patients: PatientRegistry,
    ):
        self._repo = repository
        self._patients = patients
        self._shards = shards
        self._provider = provider
        self._envelope = envelope
        self._authz = authorization
        self._gate = gate
        self._commit = commit
        self._key = hash_key
        self._clock = clock
        self._max_record_bytes = max_record_bytes
        self._shard_size = shard_size
        self._session_seconds = session_seconds

    # -- start ----------------------------------------------------------------------------

    def start_record(
        self, principal: Principal, patient_id: str, request: SessionRequest
    ) -> StartedUpload:
        """A session for a new record (version 1) of ``patient_id``."""
        ref = patient_reference(patient_id, self._key)
        allowed = self._gate.check(
            principal,
            Action.CREATE_RECORD,
            uid("Patient", ref),
            [simple_entity("Patient", ref)],
            patient_ref=ref,
        )
        if not self._patients.is_registered(patient_id):
            # As the service's own upload path: only a patient the index knows.
            self._gate.audit.append(
                replace(allowed.event, outcome=Outcome.DENY, reason="patient-not-indexed")
            )
            raise UnknownPatient()
        self._check_request(request)
        assert principal.reg_no is not None  # CreateRecord is for clinicians only
        session = self._new_session(
            principal,
            record_id=uuid.uuid4().hex,
            version=1,
            new_record=True,
            patient_id=patient_id,
            patient_ref=ref,
            institution=principal.institution,
            request=request,
        )
        return self._start(session, request.public_key, allowed)

    def start_version(
        self, principal: Principal, record_id: str, request: SessionRequest
    ) -> StartedUpload:
        """A session for the next version of ``record_id``."""
        state = self._authz.load(principal, record_id, Action.CREATE_RECORD_VERSION)
        allowed = self._authz.decide(principal, Action.CREATE_RECORD_VERSION, state)
        self._check_request(request)
        meta = state.meta
        session = self._new_session(
            principal,
            record_id=record_id,
            version=meta.latest_version + 1,
            new_record=False,
            patient_id=meta.patient_id,
            patient_ref=meta.patient_ref,
            institution=meta.institution,
            request=replace(request, category=meta.category, title=""),
        )
        return self._start(session, request.public_key, allowed)

    def _check_request(self, request: SessionRequest) -> None:
        check_content_type(request.content_type)  # 415 for a type not accepted
        if is_fhir(request.content_type):
            raise errors.SealedOnService()
        if request.length > self._max_record_bytes:
            raise errors.RecordTooLarge(
                f"A record version is limited to {self._max_record_bytes} bytes."
            )
        try:
            recipient_public_key(request.public_key)
        except ValueError:
            raise errors.InvalidPublicKey() from None

    def _new_session(
        self,
        principal: Principal,
        *,
        record_id: str,
        version: int,
        new_record: bool,
        patient_id: str,
        patient_ref: str,
        institution: str,
        request: SessionRequest,
    ) -> UploadSession:
        now = self._clock()
        return UploadSession(
            upload_id=new_upload_id(),
            status="pending",
            owner_sub=principal.sub,
            owner_reg_no=principal.reg_no or "",
            record_id=record_id,
            version=version,
            new_record=new_record,
            patient_id=patient_id,
            patient_ref=patient_ref,
            institution=institution,
            content_type=request.content_type,
            length=request.length,
            shard_size=self._shard_size,
            shard_count=shard_count_for(request.length, self._shard_size),
            category=request.category,
            title=request.title,
            encrypted_data_key=b"",
            created_at=now,
            expires_at=now + timedelta(seconds=self._session_seconds),
        )

    def _start(self, session: UploadSession, public_key: bytes, allowed: Allowed) -> StartedUpload:
        context = session.context()
        try:
            data_key, encrypted = self._provider.generate_data_key(context.encryption_context())
        except KeyServiceUnavailable as exc:
            raise errors.StorageUnavailable() from exc
        wrapped = wrap_data_key(bytes(data_key), public_key, context)
        del data_key  # the service keeps only the wrapped form (EDK)
        session = replace(session, encrypted_data_key=bytes(encrypted))
        event = self._event(allowed, session, stage="started")
        try:
            receipt = self._commit.transact(event, [self._repo.start_session(session)])
        except RETRYABLE as exc:
            raise errors.StorageUnavailable() from exc
        return StartedUpload(session, wrapped, receipt)

    # -- continue -------------------------------------------------------------------------

    def status(self, principal: Principal, upload_id: str) -> tuple[UploadSession, AuditReceipt]:
        session, allowed = self._continue(principal, upload_id)
        return session, self._gate.record(self._relabel(allowed, session, stage="status"))

    def issue_urls(
        self,
        principal: Principal,
        upload_id: str,
        shards: Sequence[ShardDeclaration],
        stored: Sequence[int] = (),
    ) -> tuple[list[IssuedUrl], datetime, AuditReceipt]:
        """Presigned PUTs for shards the client has sealed (at most 64 per request).

        ``stored`` names shards the client has put since it last asked (at most 64): they
        are checked now (``HeadObject``, as the commit would) and the S3 version id read is
        kept for their key, so the commit checks only what was not reported, and a bad
        shard is refused early.
        """
        session, allowed = self._continue(principal, upload_id)
        self._live(principal, session)
        problem = self._declaration_problem(session, shards)
        reported = sorted(set(stored))
        if not problem and not shards and not reported:
            problem = "Ask for shard URLs, report stored shards, or both."
        if not problem and (
            len(reported) > MAX_REPORTED_PER_REQUEST
            or any(i not in session.shards for i in reported)
            or {s.index for s in shards} & set(reported)
        ):
            problem = (
                f"stored names at most {MAX_REPORTED_PER_REQUEST} shards, issued before and "
                "not asked for again in the same request."
            )
        if problem:
            self._refuse(principal, session, Action.UPLOAD_RECORD, "invalid-shard")
            raise errors.InvalidShardRequest(problem)
        checked = self._heads(principal, session, reported, Action.UPLOAD_RECORD)
        verified = {session.shards[i].key_id: s.version_id for i, s in checked.items()}
        issued = {s.index: IssuedShard(uuid.uuid4().hex, s.crc64nvme) for s in shards}
        urls = []
        for declared in shards:
            key = shard_key(upload_id, issued[declared.index].key_id)
            put = self._shards.presign_put(key, declared.size, declared.crc64nvme)
            urls.append(IssuedUrl(declared.index, put.url, put.headers))
        event = self._relabel(
            allowed, session, stage="shard-urls", shards=len(shards), stored=len(reported)
        ).event
        try:
            receipt = self._commit.transact(
                event, [self._repo.issue_shards(upload_id, issued, verified)]
            )
        except TransactionRefused:
            self._refuse(principal, session, Action.UPLOAD_RECORD, "upload-not-pending")
            raise errors.UploadNotPending() from None
        except RETRYABLE as exc:
            raise errors.StorageUnavailable() from exc
        expires = self._clock() + timedelta(seconds=self._shards.presign_seconds)
        return urls, expires, receipt

    def data_key(
        self, principal: Principal, upload_id: str, public_key: bytes
    ) -> tuple[UploadSession, bytes, AuditReceipt]:
        """The session's data key again, wrapped for a new key pair (a resumed upload),
        after the record decision is made again on state read now."""
        session, allowed = self._continue(principal, upload_id)
        self._live(principal, session)
        self._record_decision(principal, session)
        try:
            recipient_public_key(public_key)
        except ValueError:
            raise errors.InvalidPublicKey() from None
        context = session.context()
        try:
            data_key = self._provider.decrypt_data_key(
                session.encrypted_data_key, context.encryption_context()
            )
        except KeyServiceUnavailable as exc:
            raise errors.StorageUnavailable() from exc
        except InvalidRecord:
            self._refuse(principal, session, Action.UPLOAD_RECORD, "record-integrity-failure")
            raise errors.RecordIntegrityError() from None
        wrapped = wrap_data_key(bytes(data_key), public_key, context)
        del data_key
        receipt = self._gate.record(self._relabel(allowed, session, stage="key"))
        return session, wrapped, receipt

    # -- commit ---------------------------------------------------------------------------

    def commit(
        self,
        principal: Principal,
        upload_id: str,
        manifest: bytes,
        content_digest: bytes | None,
    ) -> CommittedUpload:
        session, _ = self._continue(principal, upload_id)
        if session.status == "committed":
            return self._replay(session)
        self._live(principal, session)
        allowed = self._record_decision(principal, session)
        action = allowed.decision.action
        parsed, verified = self._check_manifest(
            principal, session, manifest, content_digest, action
        )
        stored = self._check_shards(principal, session, parsed, action)
        now = self._clock()
        version = RecordVersion(
            record_id=session.record_id,
            version=session.version,
            content_type=session.content_type,
            length=verified.total_length,
            status="active",
            created_at=now,
            created_by=principal.reg_no or principal.sub,
            upload_id=upload_id,
            shards=tuple(stored),
            manifest=verified.manifest.to_bytes(),
            content_digest=content_digest,
        )
        if session.new_record:
            meta = RecordMeta(
                record_id=session.record_id,
                patient_id=session.patient_id,
                patient_ref=session.patient_ref,
                institution=session.institution,
                author_sub=session.owner_sub,
                author_reg_no=session.owner_reg_no,
                category=session.category,
                title=session.title,
                created_at=now,
                latest_version=1,
            )
            items = self._repo.create_items(meta, version)
        else:
            items = self._repo.version_items(version)
        resource = (
            f"Record::{session.record_id}"
            if session.new_record
            else f"RecordVersion::{session.record_id}:{session.version}"
        )
        event = AuditEvent(
            **{
                **allowed.event.__dict__,
                "resource": resource,
                "details": {
                    "version": session.version,
                    "content_type": session.content_type.split(";", 1)[0].strip().lower(),
                    "length": version.length,
                    "shards": len(stored),
                    "upload": upload_id,
                },
            }
        )
        try:
            receipt = self._commit.transact(event, items)
        except TransactionRefused:
            again = self._repo.load_session(upload_id)
            if again is not None and again.status == "committed":
                return self._replay(again)
            self._refuse(principal, session, action, "concurrent-change")
            raise Conflict("The record changed meanwhile.", code="concurrent_change") from None
        except RETRYABLE as exc:
            # Unknown outcome: the session stays pending, so the client commits again;
            # if this one did commit, that answers as its replay.
            raise errors.StorageUnavailable() from exc
        state = self._repo.load(session.record_id)
        assert state is not None
        return CommittedUpload(state, version, receipt, False)

    def _replay(self, session: UploadSession) -> CommittedUpload:
        state = self._repo.load(session.record_id)
        version = state.version(session.version) if state else None
        if state is None or version is None:  # pragma: no cover - committed together
            raise NotFound("No such record.")
        return CommittedUpload(state, version, None, True)

    def _check_manifest(
        self,
        principal: Principal,
        session: UploadSession,
        manifest: bytes,
        content_digest: bytes | None,
        action: Action,
    ) -> tuple[ManifestV2, VerifiedManifest]:
        """Format 2, this session's context, wrapped key and layout, authentic; and the
        sealed content digest, if given, opens next to it. One opaque refusal for all."""
        try:
            parsed = ManifestV2.from_bytes(manifest)
            if (
                parsed.context != session.context()
                or parsed.encrypted_data_key != session.encrypted_data_key
                or parsed.shard_size != session.shard_size
                or parsed.total_length != session.length
            ):
                raise InvalidRecord()
            verified = self._envelope.verify_manifest(parsed, session.context())
            if content_digest is not None:
                open_content_digest(verified.data_key, verified.manifest, content_digest)
        except InvalidRecord:
            self._refuse(principal, session, action, "invalid-manifest")
            raise errors.InvalidManifest() from None
        except KeyServiceUnavailable as exc:
            raise errors.StorageUnavailable() from exc
        return parsed, verified

    def _check_shards(
        self, principal: Principal, session: UploadSession, manifest: ManifestV2, action: Action
    ) -> list[StoredShard]:
        """Every shard of the manifest stored as issued: those checked when the client
        reported them (the version id read then is kept), the others checked now."""
        count = manifest.shard_count
        checked = {
            i: StoredShard(session.key_of(i), s.version_id)
            for i, s in session.shards.items()
            if s.version_id is not None and i < count
        }
        unchecked = [i for i in range(count) if i not in checked]
        stored = {**checked, **self._heads(principal, session, unchecked, action)}
        return [stored[i] for i in range(count)]

    def _heads(
        self, principal: Principal, session: UploadSession, indexes: Sequence[int], action: Action
    ) -> dict[int, StoredShard]:
        """``HeadObject`` of each shard at its issued key: the layout's size, the issued
        CRC64NVME and SSE-KMS under the records key, with the version id read; else an
        audited refusal naming the shards missing or different."""
        missing = [i for i in indexes if i not in session.shards]
        asked = [i for i in indexes if i in session.shards]
        heads: list[ShardHead | None] = []
        if asked:
            workers = min(HEAD_PARALLELISM, len(asked))
            with ThreadPoolExecutor(workers, thread_name_prefix="shard-head") as pool:
                try:
                    heads = list(pool.map(lambda i: self._shards.head(session.key_of(i)), asked))
                except RETRYABLE as exc:
                    raise errors.StorageUnavailable() from exc
        stored: dict[int, StoredShard] = {}
        different: list[int] = []
        for index, head in zip(asked, heads, strict=True):
            if head is None:
                missing.append(index)
            elif not self._as_issued(session, index, head):
                different.append(index)
            else:
                stored[index] = StoredShard(head.key, head.version_id)
        if missing or different:
            missing.sort()
            self._refuse(
                principal,
                session,
                action,
                "shard-missing" if missing else "shard-mismatch",
                missing=[str(i) for i in missing[:50]],
                different=[str(i) for i in different[:50]],
            )
            raise errors.ShardsNotStored(
                "Some shards are not stored as issued; put them again (new URLs) and commit "
                f"again. Missing: {_indexes(missing)}. Different: {_indexes(different)}."
            )
        return stored

    def _as_issued(self, session: UploadSession, index: int, head: ShardHead) -> bool:
        # The layout fixes each shard's size (a manifest must agree: _check_manifest).
        expected = (
            plaintext_size(index, session.length, session.shard_size, session.shard_count)
            + TAG_BYTES
        )
        return (
            head.size == expected
            and head.crc64nvme == session.shards[index].crc64nvme
            and head.encryption == "aws:kms"
            and head.kms_key_id == self._shards.kms_key_id
        )

    # -- shared steps ---------------------------------------------------------------------

    def _continue(self, principal: Principal, upload_id: str) -> tuple[UploadSession, Allowed]:
        """The session as stored now, and Cedar's ``ContinueUpload`` decision on it (only
        whoever started it); an unknown session is an audited 404."""
        session = self._repo.load_session(upload_id)
        if session is None:
            self._gate.audit.append(
                AuditEvent(
                    action=Action.UPLOAD_RECORD.value,
                    outcome=Outcome.DENY,
                    reason="upload-not-found",
                    actor=principal.sub,
                    actor_reg_no=principal.reg_no,
                    institution=principal.institution,
                    resource=f"Record::upload-{upload_id}",
                    at=self._clock(),
                )
            )
            raise NotFound("No such upload session.")
        # The resource is the record version the session will become; its author is the
        # doctor who started the session (a version session: the record's author).
        entity = record_entity(
            session.record_id,
            institution=session.institution,
            patient_ref=session.patient_ref,
            author_reg_no=session.owner_reg_no,
            shared_groups=(),
        )
        allowed = self._gate.check(
            principal,
            Action.UPLOAD_RECORD,
            uid("Record", session.record_id),
            [entity],
            patient_ref=session.patient_ref,
        )
        return session, allowed

    def _live(self, principal: Principal, session: UploadSession) -> None:
        """Only a pending session within its deadline may go on (refusals audited)."""
        if session.status != "pending":
            self._refuse(principal, session, Action.UPLOAD_RECORD, "upload-not-pending")
            raise errors.UploadNotPending()
        if self._clock() >= session.expires_at:
            self._refuse(principal, session, Action.UPLOAD_RECORD, "upload-expired")
            raise errors.UploadExpired()

    def _record_decision(self, principal: Principal, session: UploadSession) -> Allowed:
        """The decision the session was started under, made again on state read now."""
        if session.new_record:
            return self._gate.check(
                principal,
                Action.CREATE_RECORD,
                uid("Patient", session.patient_ref),
                [simple_entity("Patient", session.patient_ref)],
                patient_ref=session.patient_ref,
            )
        state = self._authz.load(principal, session.record_id, Action.CREATE_RECORD_VERSION)
        return self._authz.decide(principal, Action.CREATE_RECORD_VERSION, state)

    def _declaration_problem(
        self, session: UploadSession, shards: Sequence[ShardDeclaration]
    ) -> str | None:
        if len(shards) > MAX_SHARDS_PER_REQUEST:
            return f"Ask for at most {MAX_SHARDS_PER_REQUEST} shard URLs at a time."
        if len({s.index for s in shards}) != len(shards):
            return "Each shard index may appear once per request."
        for s in shards:
            if not 0 <= s.index < session.shard_count:
                return f"Shard index {s.index} is outside this record's {session.shard_count}."
            expected = (
                plaintext_size(s.index, session.length, session.shard_size, session.shard_count)
                + TAG_BYTES
            )
            if s.size != expected:
                return f"Shard {s.index} must be {expected} bytes sealed."
            if not _is_crc64nvme(s.crc64nvme):
                return f"Shard {s.index}: checksum_crc64nvme must be base64 of 8 bytes."
        return None

    def _refuse(
        self,
        principal: Principal,
        session: UploadSession,
        action: Action,
        reason: str,
        **details: str | int | list[str],
    ) -> None:
        """Audit a refusal that no policy made (state, deadline, integrity)."""
        self._gate.audit.append(
            AuditEvent(
                action=action.value,
                outcome=Outcome.DENY,
                reason=reason,
                actor=principal.sub,
                actor_reg_no=principal.reg_no,
                institution=principal.institution,
                resource=_resource(session),
                patient_ref=session.patient_ref,
                details={"upload": session.upload_id, **details},
                actor_roles=tuple(sorted(principal.roles)),
                at=self._clock(),
            )
        )

    def _event(self, allowed: Allowed, session: UploadSession, *, stage: str) -> AuditEvent:
        return AuditEvent(
            **{
                **allowed.event.__dict__,
                "resource": _resource(session),
                "details": {
                    "stage": stage,
                    "upload": session.upload_id,
                    "record": session.record_id,
                    "version": session.version,
                    "content_type": session.content_type.split(";", 1)[0].strip().lower(),
                    "length": session.length,
                    "shards": session.shard_count,
                },
            }
        )

    @staticmethod
    def _relabel(
        allowed: Allowed, session: UploadSession, *, stage: str, **details: int
    ) -> Allowed:
        event = replace(
            allowed.event,
            resource=_resource(session),
            details={"stage": stage, "upload": session.upload_id, **details},
        )
        return Allowed(allowed.decision, event)


def _resource(session: UploadSession) -> str:
    """How the ledger names what a session's events are about: the version it becomes."""
    return f"RecordVersion::{session.record_id}:{session.version}"


def _is_crc64nvme(value: str) -> bool:
    if not isinstance(value, str) or not _CRC64NVME.fullmatch(value):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 8
    except (binascii.Error, ValueError):
        return False


def _indexes(indexes: Sequence[int]) -> str:
    if not indexes:
        return "none"
    shown = ", ".join(str(i) for i in indexes[:20])
    return shown + (f" and {len(indexes) - 20} more" if len(indexes) > 20 else "")


__all__ = [
    "CommittedUpload",
    "HubError",
    "IssuedUrl",
    "SessionRequest",
    "ShardDeclaration",
    "StartedUpload",
    "UploadSessions",
]
