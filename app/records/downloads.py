"""Download tickets: a record version opened on the doctor's device, its shards read
straight from S3.

``POST /records/{id}/downloads`` (with the client's ephemeral public key): Cedar decides
``ReadRecord`` on state read for this request (a removed member is refused here, on the
very next request for a key); the version's manifest is checked as opening checks it
before any shard (expected context, KMS ``Decrypt`` under it, key commitment, MAC:
``verify_manifest``) and the stored shard list must hold exactly the manifest's shard
count; the read is audited; then the answer carries the manifest, the data key wrapped
for the client (HPKE, :mod:`app.crypto.handover`), the sealed content digest if the
uploader made one, and presigned GETs (each pinned to the shard's stored S3 version) for
a window of at most 256 shards, valid ``HUB_PRESIGN_SECONDS``. A client asks again for
the next window, and each ask is decided and audited anew, so a URL outlives a
membership by at most that lifetime, and yields only ciphertext whose key the service no
longer hands out.

Sizes, count and order come from the authenticated manifest only: the client opens with
``ShardedEnvelope`` (tags, sizes and the total from the manifest), never from the stored
``length``. A manifest that fails the checks is refused here, audited, with the one opaque
``record_integrity_failure``; nothing is handed out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.access.engine import Action
from app.access.gate import AccessGate, Allowed
from app.audit.events import AuditEvent, AuditReceipt, Outcome
from app.crypto.envelope import RecordContext, ShardedEnvelope, VerifiedManifest
from app.crypto.errors import InvalidRecord, KeyServiceUnavailable
from app.crypto.handover import recipient_public_key, wrap_data_key
from app.errors import NotFound
from app.identity.principal import Principal
from app.records import errors
from app.records.authorization import RecordAuthorization, relabel
from app.records.repository import RecordState, RecordVersion
from app.records.shards import ShardStore

log = logging.getLogger(__name__)

MAX_URLS_PER_TICKET = 256


@dataclass(frozen=True)
class Ticket:
    version: RecordVersion
    context: RecordContext
    encrypted_data_key: bytes
    manifest: bytes
    total_length: int
    shard_count: int
    wrapped_data_key: bytes
    first: int
    urls: list[str]
    urls_expire_at: datetime
    receipt: AuditReceipt


class DownloadTickets:
    def __init__(
        self,
        shards: ShardStore,
        envelope: ShardedEnvelope,
        authorization: RecordAuthorization,
        gate: AccessGate,
        clock: Callable[[], datetime],
    ):
        self._shards = shards
        self._envelope = envelope
        self._authz = authorization
        self._gate = gate
        self._clock = clock

    def ticket(
        self,
        principal: Principal,
        record_id: str,
        version: int | None,
        public_key: bytes,
        first: int = 0,
        count: int = MAX_URLS_PER_TICKET,
    ) -> Ticket:
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
        try:
            recipient_public_key(public_key)
        except ValueError:
            raise errors.InvalidPublicKey() from None
        context = context_of(state, chosen)
        verified = self.verified(principal, state, chosen, context, allowed)
        count = max(0, min(count, MAX_URLS_PER_TICKET, verified.manifest.shard_count - first))
        wrapped = wrap_data_key(verified.data_key, public_key, context)
        urls = [self._shards.presign_get(chosen.shards[i]) for i in range(first, first + count)]
        expires = self._clock() + timedelta(seconds=self._shards.presign_seconds)
        event = relabel(allowed, f"RecordVersion::{record_id}:{chosen.version}").event
        details = {**event.details, "shards_from": first, "shards": count}
        receipt = self._gate.record(
            Allowed(allowed.decision, AuditEvent(**{**event.__dict__, "details": details}))
        )
        return Ticket(
            version=chosen,
            context=context,
            encrypted_data_key=verified.manifest.encrypted_data_key,
            manifest=verified.manifest.to_bytes(),
            total_length=verified.total_length,
            shard_count=verified.manifest.shard_count,
            wrapped_data_key=wrapped,
            first=first,
            urls=urls,
            urls_expire_at=expires,
            receipt=receipt,
        )

    def verified(
        self,
        principal: Principal,
        state: RecordState,
        version: RecordVersion,
        context: RecordContext,
        allowed: Allowed,
    ) -> VerifiedManifest:
        """The version's manifest, authenticated, with a stored shard list of exactly its
        shard count and a stored length equal to its total; else an audited, opaque
        integrity refusal. (The service writes both from the manifest at commit, so a
        difference is an edit of the table: refused rather than ignored.)"""
        assert version.manifest is not None
        try:
            verified = self._envelope.verify_manifest(version.manifest, context)
            if (
                len(version.shards) != verified.manifest.shard_count
                or version.length != verified.total_length
            ):
                raise InvalidRecord()
        except InvalidRecord:
            refuse_integrity(self._gate, principal, allowed, state, version, self._clock)
            raise errors.RecordIntegrityError() from None
        except KeyServiceUnavailable as exc:
            raise errors.StorageUnavailable() from exc
        return verified


def context_of(state: RecordState, version: RecordVersion) -> RecordContext:
    """The context a version's data key is bound to, from the service's own state."""
    meta = state.meta
    return RecordContext(meta.record_id, meta.patient_ref, version.version, meta.institution)


def refuse_integrity(
    gate: AccessGate,
    principal: Principal,
    allowed: Allowed,
    state: RecordState,
    version: RecordVersion,
    clock: Callable[[], datetime],
) -> None:
    """Audit a read refused because the stored record failed verification (no detail of
    which check: the ledger gets the same one code the client does)."""
    log.warning("record %s version %s failed verification", state.meta.record_id, version.version)
    gate.audit.append(
        AuditEvent(
            **{
                **allowed.event.__dict__,
                "outcome": Outcome.DENY,
                "reason": "record-integrity-failure",
                "resource": f"RecordVersion::{state.meta.record_id}:{version.version}",
                "at": clock(),
            }
        )
    )
