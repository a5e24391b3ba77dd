"""The metrics as the API serves them: a time window of the ledger, decided by Cedar.

Institution admins see their own institution's metrics and auditors everyone's
(``app/access/policies/metrics.cedar``, action ``ViewMetrics``; the resource is the
institution asked for, or the Service ``metrics`` for all of them); the read is itself
an audited entry. Only entries covered by the latest signed tree head are read, and
they are read from the log itself, in sequence order, never from the query index (on a
ledger of several trails, each trail so, merged by timestamp):

1. the window's first sequence number is found by binary search on entry timestamps
   over ``[0, head size)`` (O(log n) single-item reads; timestamps follow sequence
   order up to writers' clock skew, which ``SKEW_MS`` absorbs);
2. entries are then read in order, a partition (1024) per query, until one is stamped
   past the window's end (plus the skew), and those inside the window are fed to the
   engine as they arrive (O(k) for the k entries read, memory independent of k).

A window that would read more than ``max_entries`` is refused (422) rather than run
past API Gateway's 29 s: the operator CLI (``hub metrics``) computes any range.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from app.access.engine import Action
from app.access.entities import institution_entity, simple_entity, uid
from app.access.gate import AccessGate
from app.audit.events import AuditReceipt
from app.errors import InvalidRequest
from app.identity.principal import Principal
from app.ledger.entries import AuditEntry
from app.ledger.service import Ledger
from app.ledger.store import LedgerTable
from app.metrics.engine import MetricsAccumulator, MetricsConfig, MetricsReport

SKEW_MS = 5_000
MAX_WINDOW_DAYS = 92
DAY_MS = 86_400_000


@dataclass(frozen=True)
class WindowRead:
    report: MetricsReport
    tree_size: int


class TooManyEntries(Exception):
    pass


def _timestamp(table: LedgerTable, seq: int) -> int:
    raw = table.entries([seq]).get(seq)
    if raw is None:  # pragma: no cover - below the signed head every entry exists
        raise LookupError(seq)
    return AuditEntry.from_bytes(raw).timestamp_ms


def first_at_or_after(table: LedgerTable, size: int, since_ms: int) -> int:
    """The first sequence number in ``[0, size)`` stamped at or after ``since_ms``."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        if _timestamp(table, middle) < since_ms:
            low = middle + 1
        else:
            high = middle
    return low


def window_entries(
    table: LedgerTable, size: int, since_ms: int, until_ms: int, max_entries: int
) -> Iterator[AuditEntry]:
    """Entries stamped in ``[since_ms, until_ms)`` among the first ``size``, in log order.

    Raises:
        TooManyEntries: more than ``max_entries`` would be read.
    """
    seq = first_at_or_after(table, size, since_ms - SKEW_MS)
    read = 0
    while seq < size:
        batch = table.read_entries(seq, min(1024, size - seq))
        if not batch:
            return
        for number, raw in batch:
            entry = AuditEntry.from_bytes(raw)
            if entry.timestamp_ms >= until_ms + SKEW_MS:
                return
            read += 1
            if read > max_entries:
                raise TooManyEntries()
            if since_ms <= entry.timestamp_ms < until_ms:
                yield entry
            seq = number + 1


class MetricsService:
    def __init__(self, ledger: Ledger, gate: AccessGate, *, max_entries: int = 200_000):
        self._ledger = ledger
        self._gate = gate
        self._max = max_entries

    def window(
        self,
        principal: Principal,
        institution: str | None,
        since_ms: int,
        until_ms: int,
        response_window_minutes: int,
    ) -> tuple[WindowRead, AuditReceipt]:
        if institution is None:
            resource, entities = uid("Service", "metrics"), [simple_entity("Service", "metrics")]
        else:
            resource, entities = uid("Institution", institution), [institution_entity(institution)]
        allowed = self._gate.check(principal, Action.VIEW_METRICS, resource, entities)
        if not 0 < until_ms - since_ms <= MAX_WINDOW_DAYS * DAY_MS:
            raise InvalidRequest(
                f"The window must be positive and at most {MAX_WINDOW_DAYS} days.",
                code="window_invalid",
            )
        # Every trail's entries, merged by timestamp (within a trail, log order).
        sizes = []
        for table in self._ledger.tables:
            head = table.read_head()
            sizes.append((table, head.size if head else 0))
        size = sum(s for _, s in sizes)
        accumulator = MetricsAccumulator(
            MetricsConfig(
                response_window_ms=response_window_minutes * 60_000, institution=institution
            )
        )
        try:
            streams = [
                window_entries(table, trail_size, since_ms, until_ms, self._max)
                for table, trail_size in sizes
            ]
            merged = heapq.merge(*streams, key=lambda e: e.timestamp_ms)
            for read, entry in enumerate(merged, start=1):
                if read > self._max:
                    raise TooManyEntries()
                accumulator.add(entry)
        except TooManyEntries:
            raise InvalidRequest(
                f"The window holds more than {self._max} ledger entries; narrow it or use "
                "`hub metrics` on an export.",
                code="window_too_large",
            ) from None
        return WindowRead(accumulator.finish(), size), self._gate.record(allowed)
