"""The ledger as the service uses it: trail (writes), sequencer (heads), reads and proofs.

:class:`Ledger` bundles the pieces built from settings (:func:`build_ledger`) and serves
the audit routes: the latest signed head, inclusion and consistency proofs (O(log n)
nodes in one ``BatchGetItem``, never the whole log), entry queries through the index
the sequencer maintains, and the signing key's public key for offline verifiers.

Only entries covered by the latest signed head are listed and proven: everything this
module returns can be checked against a head signed by KMS.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.ledger.checkpoint import KmsHeadSigner, LedgerCheckpoint, SignedTreeHead, trail_origin
from app.ledger.entries import AuditEntry
from app.ledger.errors import IndexOutOfRange, InvalidTreeSize
from app.ledger.merkle import NodeId, consistency_proof, inclusion_proof
from app.ledger.sequencer import (
    CheckpointArchive,
    LedgerCheckpointer,
    LedgerIntegrator,
    Sequencer,
    SequencerThread,
)
from app.ledger.store import DAY_SHARDS, MAX_TRAILS, DynamoNodeStore, LedgerTable
from app.ledger.trail import LedgerTrail, ShardedTrail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntryQuery:
    """A filter on entries: one facet (actor, resource, patient or nothing) and time."""

    actor: str | None = None
    resource: str | None = None  # "<type>:<id>", e.g. "group:1f2e..."
    patient_ref: str | None = None
    since_ms: int = 0
    until_ms: int = 2**53 - 1
    limit: int = 100


@dataclass(frozen=True)
class ListedEntry:
    leaf_index: int
    entry: AuditEntry
    raw: bytes
    trail: int = 0


MAX_DAYS_WITHOUT_FACET = 92


class RangeTooWide(ValueError):
    """A time range without actor, resource or patient spans too many days."""


class NoSignedHead(Exception):
    """No tree head has been signed yet (or the deployment has no signing key)."""


class Ledger:
    """One deployment's ledger: ``trails`` trails (``hub:ledgerTrails``), trail 0 being
    ``table``/``sequencer``; with more than one, ``trail`` is a
    :class:`~app.ledger.trail.ShardedTrail` and ``checkpointer`` signs ledger
    checkpoints over every trail's head."""

    def __init__(
        self,
        table: LedgerTable,
        trail: LedgerTrail | ShardedTrail,
        sequencer: Sequencer | None,
        thread: SequencerThread | None,
        *,
        sequencers: list[Sequencer] | None = None,
        checkpointer: LedgerCheckpointer | None = None,
    ):
        self.table = table
        self.trail = trail
        self.sequencer = sequencer
        self.thread = thread
        self.trail_count = len(trail.trails) if isinstance(trail, ShardedTrail) else 1
        self.tables = [table.for_trail(k) if k else table for k in range(self.trail_count)]
        self.sequencers = sequencers or ([sequencer] if sequencer is not None else [])
        self.checkpointer = checkpointer
        # Index rows read per query when listing entries (only the round trips depend on it).
        self.index_page_size = 100
        # Each trail's first entry's timestamp, once it has one (it never changes).
        self._first_ms: dict[int, int] = {}
        # Where no background thread can run between requests (AWS Lambda freezes the
        # environment after each response), heads are signed before each audited
        # response instead: see app/lambda_handler.py.
        self.inline = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self.thread is not None:
            self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()

    def integrate(self) -> SignedTreeHead | None:
        """Integrate every waiting entry now (tests and tools; the thread does it too)."""
        if self.sequencer is None:
            raise NoSignedHead("this deployment has no signing key configured")
        for sequencer in self.sequencers[1:]:
            sequencer.integrate_all()
        head = self.sequencer.integrate_all()
        if self.checkpointer is not None:
            self.checkpointer.checkpoint(force=True)
        return head

    # -- reads ------------------------------------------------------------------------

    def _trail_table(self, trail: int) -> LedgerTable:
        if not 0 <= trail < self.trail_count:
            raise InvalidTreeSize(f"trail must be in [0, {self.trail_count})")
        return self.tables[trail]

    def head(self, trail: int = 0) -> SignedTreeHead:
        head = self._trail_table(trail).read_head()
        if head is None:
            raise NoSignedHead("no tree head has been signed yet")
        return head

    def ledger_checkpoint(self) -> LedgerCheckpoint | None:
        """The latest signed ledger checkpoint (None on a single-trail ledger, whose trail
        0 head is the whole ledger's)."""
        if self.trail_count == 1:
            return None
        return self.table.read_checkpoint()

    def cached_head(self) -> SignedTreeHead | None:
        """The last head this process saw (no I/O): for response headers."""
        return self.sequencer.latest if self.sequencer is not None else None

    def response_head(
        self, covering: int | Mapping[int, int] | None = None
    ) -> SignedTreeHead | list[tuple[int, SignedTreeHead]] | None:
        """The head for a response that recorded entries up to leaf ``covering``.

        In inline mode the head covers them: when the stored head already does (another
        instance integrated them meanwhile, as happens under load) it is returned without
        signing anything; else the entries are integrated and a head signed first. Under
        load this keeps KMS ``Sign`` calls near one per integration, not one per request
        (the signing key's request quota is the deployed path's ceiling otherwise).
        Outside inline mode: the cached head.
        """
        if isinstance(covering, Mapping):
            return self._trail_heads(covering)
        if not (self.inline and self.sequencer is not None):
            return self.cached_head()
        head = self._trail_zero_head(covering)
        if self.checkpointer is not None:
            self.checkpointer.checkpoint()  # at most once per interval (see _trail_heads)
        return head

    def _trail_zero_head(self, covering: int | None) -> SignedTreeHead | None:
        assert self.sequencer is not None
        head: SignedTreeHead | None = None
        for _ in range(3):
            if covering is not None:
                head = self.table.read_head()
                if head is not None and head.size > covering:
                    self.sequencer.latest = head
                    return head
            head = self.sequencer.integrate_all(covering)
            if covering is None or (head is not None and head.size > covering):
                return head
        return head  # another sequencer kept winning: the client reads GET /audit/head

    def _trail_heads(self, covering: Mapping[int, int]) -> list[tuple[int, SignedTreeHead]]:
        """Per trail written to, its head (inline: integrated and signed to cover the
        response's entries, as for one trail), then a ledger checkpoint at most every
        ``checkpointer.min_interval_ms`` (one extra KMS ``Sign`` per interval, not per
        request)."""
        out: list[tuple[int, SignedTreeHead]] = []
        for trail, index in sorted(covering.items()):
            if not 0 <= trail < len(self.sequencers):
                continue
            sequencer = self.sequencers[trail]
            head: SignedTreeHead | None = sequencer.latest
            if self.inline:
                stored = sequencer.table.read_head()
                if stored is not None and stored.size > index:
                    sequencer.latest = head = stored
                else:
                    head = sequencer.integrate_all(index)
            if head is not None:
                out.append((trail, head))
        if self.inline and self.checkpointer is not None:
            self.checkpointer.checkpoint()
        return out

    def inclusion(self, index: int, size: int, trail: int = 0) -> tuple[bytes, bytes, list[bytes]]:
        """(the tree's leaf hash, the stored entry bytes or b"" if missing, audit path)
        for leaf ``index`` in the tree of ``size`` of ``trail``."""
        head = self.head(trail)
        table = self._trail_table(trail)
        if not 0 < size <= head.size:
            raise InvalidTreeSize(f"size must be in [1, {head.size}]")
        if not 0 <= index < size:
            raise IndexOutOfRange(f"leaf index {index} is not below tree size {size}")
        proof = inclusion_proof(DynamoNodeStore(table, head.size), index, size)
        leaf = table.read_node_hashes([NodeId(0, index)])[0]
        raw = table.entries([index]).get(index, b"")
        return leaf, raw, proof

    def consistency(self, first: int, second: int, trail: int = 0) -> list[bytes]:
        head = self.head(trail)
        if not 0 <= first <= second <= head.size:
            raise InvalidTreeSize(f"sizes must satisfy 0 <= first <= second <= {head.size}")
        table = self._trail_table(trail)
        return consistency_proof(DynamoNodeStore(table, head.size), first, second)

    def entries(self, query: EntryQuery) -> list[ListedEntry]:
        """Entries matching ``query``, oldest first, covered by the latest signed head."""
        if query.actor is not None:
            facet, value = "ACTOR", query.actor
        elif query.resource is not None:
            facet, value = "RESOURCE", query.resource
        elif query.patient_ref is not None:
            facet, value = "PATIENT", query.patient_ref
        else:
            return self._entries_by_day(query)
        # The index narrows by one facet; the other filters apply to what it yields, so
        # the index is read page after page until ``limit`` entries match (stopping at
        # ``limit`` index rows would miss matches behind non-matching ones).
        rows = self.table.iter_index(
            facet, value, query.since_ms, query.until_ms, page_size=self.index_page_size
        )
        # The sequencer writes index rows before it moves the head (crash safety): rows
        # beyond their trail's head are not covered by a signed head yet, and are not listed.
        sizes = self._head_sizes()
        listed = (
            ListedEntry(seq, AuditEntry.from_bytes(raw), raw, trail)
            for trail, seq, raw in rows
            if seq < sizes.get(trail, 0)
        )
        return list(
            itertools.islice((e for e in listed if self._matches(e.entry, query)), query.limit)
        )

    def _heads(self) -> dict[int, SignedTreeHead]:
        """Each trail's signed head (trails with no head yet are absent), in one read."""
        return self.table.read_heads(range(self.trail_count))

    def _head_sizes(self) -> dict[int, int]:
        """Each trail's signed size (trails with no head yet are absent)."""
        return {trail: head.size for trail, head in self._heads().items()}

    def _entries_by_day(self, query: EntryQuery) -> list[ListedEntry]:
        from datetime import UTC, datetime, timedelta

        heads = self._heads()
        if not heads:
            return []
        sizes = {trail: head.size for trail, head in heads.items()}
        until = min(query.until_ms, max(h.timestamp_ms for h in heads.values()) + 1)
        since = query.since_ms if query.since_ms else max(0, until - 7 * 86_400_000)
        day = datetime.fromtimestamp(since / 1000, UTC).date()
        last = datetime.fromtimestamp(max(since, until - 1) / 1000, UTC).date()
        if (last - day).days > MAX_DAYS_WITHOUT_FACET:
            raise RangeTooWide(f"at most {MAX_DAYS_WITHOUT_FACET} days without a filter")
        # Days before the ledger's first entry hold nothing: a young ledger's default week
        # would otherwise cost DAY_SHARDS + 1 empty queries per day.
        earliest = self._earliest_ms()
        if earliest is not None:
            first_day = datetime.fromtimestamp(earliest / 1000, UTC).date()
            # A day's slack: entries are timestamped by whichever instance appends them,
            # so a later entry may carry a slightly earlier time than the first one.
            day = max(day, first_day - timedelta(days=1))
        out: list[ListedEntry] = []
        while day <= last and len(out) < query.limit:
            # The day's rows: the shards and, for days indexed before the split, the day
            # itself; each stream is in (timestamp, seq) order, and so is their merge.
            want = query.limit - len(out)
            streams = [
                (
                    ListedEntry(seq, AuditEntry.from_bytes(raw), raw, trail)
                    for trail, seq, raw in self.table.iter_index(
                        "DAY", value, since, until, page_size=want
                    )
                    if seq < sizes.get(trail, 0)
                )
                for value in (day.isoformat(), *(f"{day}#{k}" for k in range(DAY_SHARDS)))
            ]
            merged = heapq.merge(
                *streams, key=lambda e: (e.entry.timestamp_ms, e.leaf_index, e.trail)
            )
            out.extend(itertools.islice(merged, want))
            day += timedelta(days=1)
        return out

    def _earliest_ms(self) -> int | None:
        """The earliest timestamp among the trails' first entries (a trail whose entry 0
        is not there yet is left out); None while no trail has one, and nothing is
        skipped. Listing only: verification reads every entry whatever this says."""
        for trail, table in enumerate(self.tables):
            if trail not in self._first_ms:
                got = table.read_entries(0, 1)
                if got:
                    self._first_ms[trail] = AuditEntry.from_bytes(got[0][1]).timestamp_ms
        return min(self._first_ms.values(), default=None)

    @staticmethod
    def _matches(entry: AuditEntry, query: EntryQuery) -> bool:
        if query.actor is not None and entry.actor.sub != query.actor:
            return False
        resource = f"{entry.resource.type.value}:{entry.resource.id}"
        if query.resource is not None and resource != query.resource:
            group = f"group:{entry.resource.id.split(':', 1)[0]}"
            if entry.resource.type.value != "membership" or group != query.resource:
                return False
        return query.patient_ref is None or entry.resource.patient_ref == query.patient_ref

    def read_range(self, start: int, end: int, trail: int = 0) -> list[tuple[int, bytes]]:
        """Stored entries ``[start, end)`` of ``trail`` in order (export; stops at a gap)."""
        table = self._trail_table(trail)
        out: list[tuple[int, bytes]] = []
        while start < end:
            got = table.read_entries(start, min(1024, end - start))
            if not got:
                break
            out.extend(got)
            start = got[-1][0] + 1
        return out

    def public_key_pem(self) -> bytes:
        if self.sequencer is None:
            raise NoSignedHead("this deployment has no signing key configured")
        return self.sequencer.signer.public_key_pem()


def build_ledger(
    dynamodb: Any,
    table_name: str,
    *,
    kms: Any = None,
    s3: Any = None,
    signing_key_arn: str = "",
    checkpoint_bucket: str = "",
    origin: str = "local",
    interval: float = 0.5,
    batch_trigger: int = 256,
    clock_ms: Callable[[], int] | None = None,
    trails: int = 1,
    checkpoint_interval_ms: int = 1000,
) -> Ledger:
    """The ledger for one deployment, over ``trails`` trails (``hub:ledgerTrails``).
    Without a signing key, entries are still appended durably, but no head is signed
    (the audit head routes answer 503)."""
    if not 1 <= trails <= MAX_TRAILS:
        raise ValueError(f"trails must be in [1, {MAX_TRAILS}]")
    table = LedgerTable(dynamodb, table_name)
    tables = [table, *(table.for_trail(k) for k in range(1, trails))]
    writers = [LedgerTrail(t) for t in tables]
    trail: LedgerTrail | ShardedTrail = writers[0] if trails == 1 else ShardedTrail(writers)
    sequencer = thread = None
    sequencers: list[Sequencer] = []
    checkpointer = None
    if signing_key_arn and kms is not None:
        archive = CheckpointArchive(s3, checkpoint_bucket) if checkpoint_bucket and s3 else None
        signer = KmsHeadSigner(kms, signing_key_arn)
        sequencers = [
            Sequencer(
                t,
                signer,
                trail_origin(origin, t.trail),
                archive=archive.for_trail(t.trail) if archive else None,
                clock_ms=clock_ms,
            )
            for t in tables
        ]
        sequencer = sequencers[0]
        integrates: Sequencer | LedgerIntegrator = sequencer
        if trails > 1:
            checkpointer = LedgerCheckpointer(
                tables,
                signer,
                origin,
                archive=archive,
                min_interval_ms=checkpoint_interval_ms,
                clock_ms=clock_ms,
            )
            integrates = LedgerIntegrator(sequencers, checkpointer)
        thread = SequencerThread(integrates, interval=interval, batch_trigger=batch_trigger)
        trail.set_on_append(thread.notify)
    else:
        log.warning("no ledger signing key configured: tree heads will not be signed")
    return Ledger(table, trail, sequencer, thread, sequencers=sequencers, checkpointer=checkpointer)
