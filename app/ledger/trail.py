"""The audit trail the service writes through: audit events become ledger entries.

:class:`LedgerTrail` implements :class:`~app.audit.events.AuditTrail` and
:class:`~app.audit.events.TransactionalAuditTrail` on the ledger table
(:mod:`app.ledger.store`). What it guarantees:

- **Durable before return.** ``append`` and ``transact_append`` return a receipt only
  after DynamoDB acknowledged the entry's write; the receipt carries the entry's leaf
  index (= its sequence number).
- **Gap-free, unique sequence numbers under concurrent writers**, by the argument in
  :mod:`app.ledger.store`: a writer tries ``n`` only after observing ``n - 1`` stored
  (its own write, a collision on it, or a read), the slot write is conditional on the
  slot being free, and in a transaction a ``ConditionCheck`` on ``n - 1`` is added. A
  collision on the ledger's own items is retried here with the next number; it never
  reaches the caller. A failed condition on the caller's items raises
  :class:`~app.audit.events.AuditedTransactionConflict` (the caller's 409).
- **Never content, never names.** :func:`entry_for` maps an event to an
  :class:`~app.ledger.entries.AuditEntry`: ids, codes and keyed patient references only;
  the event's ``details`` (free-form ids) are not copied, its ``facts`` (a closed
  vocabulary of codes, :mod:`app.audit.facts`) are, and an event that does not fit the
  entry's strict shape fails loudly rather than being logged loosely.
- **Batched sequencing (group commit).** Plain appends that wait while another thread
  of the process holds the tail are written together by whichever thread gets the turn:
  one ``TransactWriteItems`` of up to :data:`BATCH_MAX` entries at ``n .. n+k-1``, each
  ``Put`` conditional on its slot being free, plus the ``ConditionCheck`` that ``n - 1``
  exists. It commits all ``k`` slots or none, so the argument above holds for the batch
  as for one entry (the stored numbers stay exactly ``0 .. k-1``), and one round trip to
  the tail sequences up to 99 entries instead of one. A lone append still costs one
  conditional ``PutItem``. Entries, tree, proofs and the verifier are unchanged.
- **Several trails.** :class:`ShardedTrail` spreads events over ``N`` such trails (each
  gap-free on its own, each its own tree) by a stable hash of the actor
  (:func:`trail_for`), so one subject's entries stay in one trail, in order; a receipt
  names its trail.
- **Receipts per request.** Every receipt issued while a request is being served is
  collected (:mod:`app.ledger.receipts`) so the response carries an ``Audit-Receipt``
  header without each route knowing about it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    Outcome,
)
from app.ledger import receipts
from app.ledger.entries import (
    Action,
    Actor,
    AuditEntry,
    Resource,
    ResourceType,
    Role,
    timestamp_ms,
)
from app.ledger.entries import Outcome as EntryOutcome
from app.ledger.errors import InvalidEntry, LedgerBusy, LedgerError
from app.ledger.store import LedgerTable

log = logging.getLogger(__name__)

STORE_NAME = "ledger"
_MAX_ATTEMPTS = 64
# TransactWriteItems takes at most 100 items: 99 entries and the ConditionCheck on n - 1.
BATCH_MAX = 99
_RETRYABLE = ("None", "ConditionalCheckFailed", "TransactionConflict")

# Service actions (Cedar action ids) -> ledger action. Actions added later map by verb.
ACTIONS: dict[str, Action] = {
    "Authenticate": Action.LOGIN,
    "ViewProfile": Action.READ,
    "ViewGroup": Action.READ,
    "CreateGroup": Action.CREATE,
    "InviteMember": Action.SHARE,
    "SummonExperts": Action.SHARE,
    "AcceptInvitation": Action.JOIN,
    "LeaveGroup": Action.LEAVE,
    "RemoveMember": Action.REVOKE,
    "CloseGroup": Action.UPDATE,
    "StartBreakGlass": Action.BREAK_GLASS,
    "EndBreakGlass": Action.UPDATE,
    "ListBreakGlass": Action.QUERY,
    "QueryAudit": Action.QUERY,
    "ExportAudit": Action.EXPORT,
    "CreateRecord": Action.CREATE,
    "ViewRecord": Action.READ,
    "ReadRecord": Action.READ,
    "ShareRecord": Action.SHARE,
    "CreateRecordVersion": Action.UPDATE,
    "ShredRecord": Action.SHRED,
    # Referrals (app/referrals): the transition itself is the entry's `op` fact.
    "SendReferral": Action.CREATE,
    "ViewReferral": Action.READ,
    "ListReferrals": Action.QUERY,
    "AcceptReferral": Action.JOIN,
    "DeclineReferral": Action.UPDATE,
    "RedirectReferral": Action.SHARE,
    "CancelReferral": Action.REVOKE,
    "CompleteReferral": Action.UPDATE,
    "ViewMetrics": Action.QUERY,
    # Messaging (issue 13), by the contract in app/audit/facts.py.
    "SendMessage": Action.CREATE,
    # Institutions as data (app/institutions): admission, affiliations, self-registration.
    "AdmitInstitution": Action.CREATE,
    "SetAffiliation": Action.UPDATE,
    "BindAccount": Action.UPDATE,
    "MapProvider": Action.UPDATE,
    "MapIntakeClient": Action.UPDATE,
    "SubmitRegistration": Action.CREATE,
    "ApproveRegistration": Action.UPDATE,
    "RejectRegistration": Action.UPDATE,
    # The patient index (issue 20): the change is the entry's `reason` and details.
    "RegisterPatient": Action.CREATE,
    "FindPatient": Action.QUERY,
    "LinkPatientMrn": Action.UPDATE,
    "UnlinkPatientMrn": Action.REVOKE,
    "CorrectPatientIndex": Action.UPDATE,
    "InviteToRoom": Action.SHARE,
    "JoinRoom": Action.JOIN,
    "LeaveRoom": Action.LEAVE,
    "RemoveFromRoom": Action.REVOKE,
    "BanFromRoom": Action.REVOKE,
    "KnockOnRoom": Action.QUERY,
    "UploadMedia": Action.CREATE,
    "OpenMessagingSession": Action.LOGIN,
    "SetNotificationPreference": Action.UPDATE,
    # Sharing consent (issue 20): the entry's `op` fact says grant or withdraw.
    "RecordConsent": Action.CREATE,
    "WithdrawConsent": Action.REVOKE,
    "ViewConsents": Action.READ,
}
_VERBS: tuple[tuple[str, Action], ...] = (
    ("View", Action.READ),
    ("Read", Action.READ),
    ("Get", Action.READ),
    ("Download", Action.READ),
    ("List", Action.QUERY),
    ("Search", Action.QUERY),
    ("Query", Action.QUERY),
    ("Create", Action.CREATE),
    ("Upload", Action.CREATE),
    ("Add", Action.CREATE),
    ("Update", Action.UPDATE),
    ("Amend", Action.UPDATE),
    ("Replace", Action.UPDATE),
    ("Share", Action.SHARE),
    ("Grant", Action.SHARE),
    ("Revoke", Action.REVOKE),
    ("Unshare", Action.REVOKE),
    ("Remove", Action.REVOKE),
    ("Shred", Action.SHRED),
    ("Delete", Action.SHRED),
    ("Destroy", Action.SHRED),
    ("Export", Action.EXPORT),
    ("Leave", Action.LEAVE),
    ("Join", Action.JOIN),
    ("Accept", Action.JOIN),
)
_RESOURCE_TYPES: dict[str, ResourceType] = {
    "Group": ResourceType.GROUP,
    "Patient": ResourceType.PATIENT,
    "Record": ResourceType.RECORD,
    "RecordVersion": ResourceType.RECORD,
    "Share": ResourceType.SHARE,
    "Referral": ResourceType.REFERRAL,
    "Message": ResourceType.MESSAGE,
    "Media": ResourceType.MEDIA,
    "Institution": ResourceType.INSTITUTION,
    "Affiliation": ResourceType.MEMBERSHIP,
    "Registration": ResourceType.PRACTITIONER,
    "Account": ResourceType.PRACTITIONER,
    "Provider": ResourceType.SERVICE,
    "IntakeClient": ResourceType.SERVICE,
    "Service": ResourceType.SERVICE,
    "User": ResourceType.PRACTITIONER,
    "Audit": ResourceType.AUDIT,
}
_REASON_BAD = re.compile(r"[^a-z0-9_.:-]")


def ledger_action(action: str) -> Action:
    """The ledger action for a service action id (Cedar action name)."""
    if action in ACTIONS:
        return ACTIONS[action]
    for verb, mapped in _VERBS:
        if action.startswith(verb):
            return mapped
    raise InvalidEntry("the audit event's action has no ledger mapping")


def _resource(event: AuditEvent) -> Resource:
    patient = event.patient_ref
    if event.resource is None:
        # Refusals before any policy ran (authentication) are about the session itself.
        return Resource(ResourceType.SESSION, "login", patient)
    kind, sep, ident = event.resource.partition("::")
    if not sep or kind not in _RESOURCE_TYPES:
        raise InvalidEntry("the audit event's resource type has no ledger mapping")
    target = event.details.get("target") if event.details else None
    if kind == "Group" and isinstance(target, str) and target:
        # A membership change names whose membership: group id and registration number.
        return Resource(ResourceType.MEMBERSHIP, f"{ident}:{target}", patient)
    return Resource(_RESOURCE_TYPES[kind], ident, patient)


def _reason(reason: str) -> str:
    joined = ":".join(r.strip() for r in reason.split(",") if r.strip()) or "unspecified"
    cleaned = _REASON_BAD.sub("-", joined.lower())
    if not cleaned[0].isalpha():
        cleaned = "r" + cleaned
    return cleaned[:64]


def entry_for(event: AuditEvent, seq: int, request_id: str | None = None) -> AuditEntry:
    """The ledger entry that records ``event`` at sequence ``seq``.

    Raises:
        InvalidEntry: if the event carries something an entry may not hold.
    """
    roles = tuple(Role(r) for r in sorted(set(event.actor_roles)) if r in Role.__members__.values())
    return AuditEntry(
        sequence=seq,
        timestamp_ms=timestamp_ms(event.at),
        actor=Actor(event.actor, roles, event.actor_reg_no, event.institution),
        action=ledger_action(event.action),
        resource=_resource(event),
        outcome=EntryOutcome.SUCCESS if event.outcome is Outcome.ALLOW else EntryOutcome.DENIED,
        reason=_reason(event.reason),
        request_id=request_id or event.event_id,
        facts=dict(event.facts),
    )


@dataclass(eq=False)
class _Waiting:
    """One plain append waiting for its turn (or for another thread to write it)."""

    event: AuditEvent
    request_id: str | None
    seq: int | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _cancellation_codes(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


class LedgerTrail:
    """Appends audit events to the durable ledger; see the module docstring."""

    name = STORE_NAME

    def __init__(
        self,
        table: LedgerTable,
        *,
        on_append: Callable[[int], None] | None = None,
        batch_max: int = BATCH_MAX,
    ):
        if not 1 <= batch_max <= BATCH_MAX:
            raise ValueError(f"batch_max must be in [1, {BATCH_MAX}]")
        self.table = table
        # 1 switches batching off: every append is its own conditional PutItem.
        self.batch_max = batch_max
        self._waiting: deque[_Waiting] = deque()
        self._queue = threading.Condition(threading.Lock())  # guards _waiting, _leading
        self._leading = False
        self.batches = 0  # round trips that sequenced entries (for benchmarks and tests)
        self._lock = threading.Lock()
        # Threads of one process take turns: they would only collide with each other
        # (a wasted round trip each); other processes are handled by the retry.
        self._turn = threading.Lock()
        self._next: int | None = None  # next sequence number, as last observed
        self._on_append = on_append

    def set_on_append(self, callback: Callable[[int], None] | None) -> None:
        self._on_append = callback

    # -- sequence hint ----------------------------------------------------------------

    def _start(self) -> int:
        with self._lock:
            if self._next is not None:
                return self._next
        head = self.table.read_head()
        found = self.table.find_tail(head.size if head else 0)
        return self._observed(found)

    def _observed(self, next_free_at_least: int) -> int:
        """Record that every entry below ``next_free_at_least`` exists; the new hint."""
        with self._lock:
            self._next = max(self._next or 0, next_free_at_least)
            return self._next

    def _after_collision(self, seq: int, collisions: int) -> int:
        # seq exists (our conditional write saw it). Mostly step to the next slot: a
        # writer that reads the tail first arrives one write behind a writer appending
        # in a loop, every time, and starves. Read forward to the tail only now and then
        # (our hint may be far behind, e.g. another process appended in batches).
        if collisions % 4 != 2:
            return self._observed(seq + 1)
        return self._observed(self.table.find_tail(seq + 1))

    # -- writes -----------------------------------------------------------------------

    def append(self, event: AuditEvent) -> AuditReceipt:
        """Store ``event`` as the next entry; returns once it is durably stored.

        Threads that arrive while another one writes queue up; one of them (the leader)
        writes every waiting entry (up to ``batch_max``) in one transaction, and hands
        the lead on once its own entry is stored.
        """
        waiting = _Waiting(event, receipts.current_request_id())
        with self._queue:
            self._waiting.append(waiting)
            # One thread at a time leads; the others wait to be written (or to lead).
            while self._leading and not waiting.done.is_set():
                self._queue.wait()
            lead = not waiting.done.is_set()
            if lead:
                self._leading = True
        if lead:
            try:
                while not waiting.done.is_set():
                    with self._turn:
                        with self._queue:
                            batch = [
                                self._waiting.popleft()
                                for _ in range(min(self.batch_max, len(self._waiting)))
                            ]
                        self._write(batch)
                    with self._queue:
                        self._queue.notify_all()
            finally:
                with self._queue:
                    # Hand over: a thread whose entry is still waiting leads next.
                    self._leading = False
                    self._queue.notify_all()
        if waiting.error is not None:
            raise waiting.error
        assert waiting.seq is not None
        return self._accepted(event, waiting.seq)

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditReceipt]:
        """Store ``events`` as consecutive entries, ``batch_max`` per round trip, in order.

        All-or-nothing per batch; an event that does not fit an entry fails the call
        before anything of its batch is written.
        """
        request_id = receipts.current_request_id()
        for e in events:
            entry_for(e, 0, request_id)  # raises InvalidEntry before anything is written
        out: list[AuditReceipt] = []
        for start in range(0, len(events), self.batch_max):
            batch = [_Waiting(e, request_id) for e in events[start : start + self.batch_max]]
            with self._turn:
                self._write(batch)
            for w in batch:
                if w.error is not None:
                    raise w.error
            out.extend(self._accepted(w.event, w.seq or 0) for w in batch)
        return out

    def _write(self, batch: list[_Waiting]) -> None:
        """Sequence ``batch`` (holding the turn); every item ends done, with a seq or error.

        An event that does not fit an entry fails its own append only, never its batch's.
        """
        fit = []
        for w in batch:
            try:
                entry_for(w.event, 0, w.request_id)
                fit.append(w)
            except InvalidEntry as exc:
                w.error = exc
                w.done.set()
        batch = fit
        try:
            if len(batch) == 1:
                batch[0].seq = self._put_one(batch[0])
            elif batch:
                for offset, seq in enumerate(self._put_batch(batch)):
                    batch[offset].seq = seq
        except BaseException as exc:
            for w in batch:
                w.error = exc
        finally:
            for w in batch:
                w.done.set()

    def _put_one(self, waiting: _Waiting) -> int:
        seq = self._start()
        for collisions in range(1, _MAX_ATTEMPTS + 1):
            entry = entry_for(waiting.event, seq, waiting.request_id)
            if self.table.put_entry(seq, entry.to_bytes()):
                self.batches += 1
                return self._observed(seq + 1) - 1
            seq = self._after_collision(seq, collisions)
        raise LedgerBusy()  # pragma: no cover

    def _put_batch(self, batch: list[_Waiting]) -> range:
        """Entries ``n .. n+k-1`` in one TransactWriteItems: every slot free and ``n - 1``
        stored, or nothing written."""
        seq, collisions = self._start(), 0
        for attempt in range(_MAX_ATTEMPTS):
            ledger: list[dict[str, Any]] = [
                {
                    "Put": self.table.entry_put(
                        seq + i, entry_for(w.event, seq + i, w.request_id).to_bytes()
                    )
                }
                for i, w in enumerate(batch)
            ]
            if seq > 0:
                ledger.append({"ConditionCheck": self.table.previous_exists(seq)})
            try:
                self.table.client.transact_write_items(TransactItems=ledger)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                codes = _cancellation_codes(exc)
                if any(c not in _RETRYABLE for c in codes):
                    raise  # the ledger itself failed (missing table, access, size)
                taken = [
                    i for i, c in enumerate(codes[: len(batch)]) if c == "ConditionalCheckFailed"
                ]
                if taken or not codes:
                    # Slot n + i exists, hence (gap-free) every slot below it: step past it.
                    last = seq + (taken[-1] if taken else 0)
                    if not taken and not self.table.entry_exists(seq):
                        raise
                    collisions += 1
                    seq = self._after_collision(last, collisions)
                    continue
                if len(codes) > len(batch) and codes[len(batch)] == "ConditionalCheckFailed":
                    seq = self._observed(0) if seq == 0 else self._refind(seq)
                    continue
                time.sleep(0.005 * (attempt + 1))  # TransactionConflict: try again
                continue
            self.batches += 1
            self._observed(seq + len(batch))
            return range(seq, seq + len(batch))
        raise LedgerBusy()  # pragma: no cover

    def transact_append(
        self, event: AuditEvent, items: Sequence[Mapping[str, Any]]
    ) -> AuditReceipt:
        """Commit ``items`` and the event's entry in one ``TransactWriteItems``.

        Raises:
            AuditedTransactionConflict: a condition on one of ``items`` failed.
        """
        own = list(items)
        if len(own) > 98:
            raise LedgerError("a transaction holds at most 98 items besides the entry")
        with self._turn:
            seq = self._transact(event, own)
        return self._accepted(event, seq)

    def _transact(self, event: AuditEvent, own: list[Mapping[str, Any]]) -> int:
        request_id = receipts.current_request_id()
        seq, collisions = self._start(), 0
        for attempt in range(_MAX_ATTEMPTS):
            entry = entry_for(event, seq, request_id)
            ledger = [{"Put": self.table.entry_put(seq, entry.to_bytes())}]
            if seq > 0:
                ledger.append({"ConditionCheck": self.table.previous_exists(seq)})
            try:
                self.table.client.transact_write_items(TransactItems=[*own, *ledger])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                codes = _cancellation_codes(exc)
                if codes and len(codes) == len(own) + len(ledger):
                    theirs, mine = codes[: len(own)], codes[len(own) :]
                    if any(c == "ConditionalCheckFailed" for c in theirs):
                        raise AuditedTransactionConflict() from exc
                    if any(c not in _RETRYABLE for c in mine):
                        raise  # the ledger itself failed (missing table, access, size)
                    if mine[0] == "ConditionalCheckFailed":
                        collisions += 1
                        seq = self._after_collision(seq, collisions)
                        continue
                    if len(mine) > 1 and mine[1] == "ConditionalCheckFailed":
                        seq = self._observed(0) if seq == 0 else self._refind(seq)
                        continue
                    # TransactionConflict: another transaction held an item; try again.
                    if all(c in ("None", "TransactionConflict") for c in codes):
                        time.sleep(0.005 * (attempt + 1))
                        continue
                    raise AuditedTransactionConflict() from exc
                # No per-item reasons: decide from the log itself.
                if self.table.entry_exists(seq):
                    collisions += 1
                    seq = self._after_collision(seq, collisions)
                    continue
                raise AuditedTransactionConflict() from exc
            self._observed(seq + 1)
            return seq
        raise LedgerBusy()  # pragma: no cover

    def _refind(self, seq: int) -> int:
        # Our hint was ahead of the log (n - 1 missing): only possible after a restore.
        with self._lock:
            self._next = None
        return self._observed(self.table.find_tail(0 if seq <= 1 else seq - 1))

    def _accepted(self, event: AuditEvent, seq: int) -> AuditReceipt:
        trail = self.table.trail
        position = str(seq) if trail == 0 else f"{trail}/{seq}"
        receipt = AuditReceipt(event.event_id, STORE_NAME, position, seq, trail)
        receipts.record(receipt)
        if self._on_append is not None:
            self._on_append(seq)
        return receipt


def trail_for(actor: str, trails: int) -> int:
    """The trail an actor's entries go to: a stable hash of the actor id, modulo ``trails``.

    Stable (SHA-256, not Python's salted ``hash``), so every process and every Lambda
    environment sends one actor to the same trail and that actor's entries keep their
    order in one gap-free sequence.
    """
    if trails <= 1:
        return 0
    digest = hashlib.sha256(actor.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % trails


class ShardedTrail:
    """The audit trail over ``N`` trails of one ledger table; see the module docstring.

    Each event goes to :func:`trail_for` of its actor; each trail keeps every guarantee of
    :class:`LedgerTrail` on its own (gap-free, unique, durable before return). Throughput
    adds up: ``N`` tails take ``N`` writes at once where one tail serialises them.
    """

    name = STORE_NAME

    def __init__(self, trails: Sequence[LedgerTrail]):
        if not trails:
            raise ValueError("a sharded trail needs at least one trail")
        for number, trail in enumerate(trails):
            if trail.table.trail != number:
                raise ValueError("trails must be trails 0 .. N-1 of the ledger, in order")
        self.trails = list(trails)

    def set_on_append(self, callback: Callable[[int], None] | None) -> None:
        for trail in self.trails:
            trail.set_on_append(callback)

    def trail_of(self, event: AuditEvent) -> LedgerTrail:
        return self.trails[trail_for(event.actor, len(self.trails))]

    def append(self, event: AuditEvent) -> AuditReceipt:
        return self.trail_of(event).append(event)

    def transact_append(
        self, event: AuditEvent, items: Sequence[Mapping[str, Any]]
    ) -> AuditReceipt:
        return self.trail_of(event).transact_append(event, items)

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditReceipt]:
        """Each trail's share of ``events`` in batches (in order within a trail); the
        receipts in the order of ``events``."""
        shares: dict[int, list[int]] = {}
        for position, event in enumerate(events):
            shares.setdefault(trail_for(event.actor, len(self.trails)), []).append(position)
        out: list[AuditReceipt | None] = [None] * len(events)
        for number, positions in shares.items():
            got = self.trails[number].append_many([events[p] for p in positions])
            for position, receipt in zip(positions, got, strict=True):
                out[position] = receipt
        return [r for r in out if r is not None]
