"""Crypto-shredding one version of a record.

The version's wrapped data key (the manifest) is removed and the version marked
shredded, with its audit event (carrying the coded reason), in one transaction; without
the wrapped key no copy of its shards can be decrypted again. Its shards are deleted
afterwards (what a failure leaves, the sweeper reclaims). Shredding a shredded version
is a 410, as is reading one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from app.access.engine import Action
from app.audit.events import AuditReceipt
from app.errors import NotFound
from app.identity.principal import Principal
from app.records import errors
from app.records.authorization import RecordAuthorization, relabel
from app.records.commit import UploadCommit
from app.records.repository import RecordRepository, RecordVersion, TransactionRefused
from app.records.schemas import ShredReason
from app.records.shards import ShardStore

log = logging.getLogger(__name__)


class RecordShredding:
    def __init__(
        self,
        repository: RecordRepository,
        shards: ShardStore,
        authorization: RecordAuthorization,
        commit: UploadCommit,
        clock: Callable[[], datetime],
    ):
        self._repo = repository
        self._shards = shards
        self._authz = authorization
        self._commit = commit
        self._clock = clock

    def shred(
        self, principal: Principal, record_id: str, version: int, reason: ShredReason
    ) -> tuple[RecordVersion, AuditReceipt]:
        state = self._authz.load(principal, record_id, Action.SHRED_RECORD)
        allowed = self._authz.decide(
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
            event = relabel(
                allowed, f"RecordVersion::{record_id}:{version}", reason_code=reason.value
            ).event
            receipt = self._commit.transact(
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
