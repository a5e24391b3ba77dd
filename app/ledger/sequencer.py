"""The sequencer: integrates stored entries into the Merkle tree and signs tree heads.

:meth:`Sequencer.integrate` takes the entries after the current head (in order, up to
``batch``), computes every tree node they complete from the O(log n) nodes on the old
tree's right border, writes the nodes and the query index rows, signs the new head with
KMS, archives it in the Object Lock bucket (``ledger-checkpoints/``), and last moves the
head with a write conditioned on the head it replaces.

What it guarantees:

- **No fork.** Nodes are a pure function of immutable entries; the head advances only
  from the size it was read at. Two sequencers racing write identical nodes, and only
  one of them moves the head (the other gets :class:`~app.ledger.store.HeadMoved` and
  simply re-reads).
- **Never signs a head that does not extend the last one.** Before extending, the old
  head's root is recomputed from the stored border nodes and compared; a mismatch
  (tampered nodes) raises instead of signing. An entry whose stored bytes are not a
  canonical entry with its own sequence number stops integration before it.
- **Crash-safe.** The head moves last: a sequencer killed (or failing) after any of
  its writes leaves the head where it was, and the next integration redoes the same
  batch (nodes and index rows are idempotent puts of values fixed by the entries), so
  no entry is integrated twice, none is left out of the index, and every head a reader
  could ever see is already in the archive. What a crash can leave behind is harmless:
  index rows beyond the head (listings stop at the head) and an archived head the table
  never held (signed, and consistent with every later head).
- **Freshness.** :class:`SequencerThread` integrates at least every ``interval``
  seconds (0.5 s by default) and at once when ``batch_trigger`` entries are waiting,
  so an entry is covered by a signed head within about a second (the contract: 2 s).
"""

from __future__ import annotations

import builtins
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from app.ledger._hashing import leaf_hash, node_hash
from app.ledger.checkpoint import (
    ALGORITHM,
    CHECKPOINT_PREFIX,
    LEDGER_CHECKPOINT_PREFIX,
    TRAIL_FOLDERS_PREFIX,
    HeadSigner,
    LedgerCheckpoint,
    SignedTreeHead,
    TrailHead,
    checkpoint_message,
    checkpoint_object_key,
    ledger_checkpoint_message,
    ledger_checkpoint_object_key,
    trail_checkpoint_prefix,
)
from app.ledger.entries import AuditEntry
from app.ledger.errors import InvalidEntry, LedgerError
from app.ledger.merkle import EMPTY_ROOT, NodeId, _fold, _range_nodes
from app.ledger.store import DAY_SHARDS, MAX_TRAILS, HeadMoved, LedgerTable

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CheckpointArchive:
    """Appends a trail's signed heads to the audit bucket (Object Lock keeps them
    immutable): trail 0 under ``ledger-checkpoints/``, trail ``k`` under
    ``ledger-checkpoints/trail-<kkk>/``."""

    def __init__(self, s3: Any, bucket: str, trail: int = 0):
        self._s3 = s3
        self.bucket = bucket
        self.trail = trail
        self.prefix = trail_checkpoint_prefix(trail)

    def for_trail(self, trail: int) -> CheckpointArchive:
        return CheckpointArchive(self._s3, self.bucket, trail)

    def put(self, head: SignedTreeHead) -> str:
        key = self.prefix + checkpoint_object_key(head.size, head.timestamp_ms).removeprefix(
            CHECKPOINT_PREFIX
        )
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(head.to_json(), sort_keys=True).encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )
        return key

    def list(self) -> list[SignedTreeHead]:
        """Every archived head of this trail, oldest first (the live verifier's input)."""
        return [SignedTreeHead.from_json(json.loads(b)) for b in self._bodies(self.prefix)]

    def put_ledger_checkpoint(self, checkpoint: LedgerCheckpoint) -> str:
        key = ledger_checkpoint_object_key(checkpoint.timestamp_ms, checkpoint.heads)
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(checkpoint.to_json(), sort_keys=True).encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )
        return key

    def ledger_checkpoints(self) -> builtins.list[LedgerCheckpoint]:
        """Every archived ledger checkpoint (all trails' heads), oldest first."""
        return [
            LedgerCheckpoint.from_json(json.loads(b))
            for b in self._bodies(LEDGER_CHECKPOINT_PREFIX)
        ]

    def archived_trails(self) -> builtins.list[int]:
        """Every trail ``k`` >= 1 (below :data:`MAX_TRAILS`) that has archived heads, in
        order: the ``trail-<kkk>/`` folders of the archive, named by one paginated
        ``ListObjectsV2`` with a ``/`` delimiter (one request: a page holds 1,000 names,
        there are at most 63 folders). Object Lock keeps every archived head, so this is
        every trail that was ever signed, whatever the table still holds."""
        found: set[int] = set()
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=TRAIL_FOLDERS_PREFIX, Delimiter="/")
        for page in pages:
            for folder in page.get("CommonPrefixes", []):
                number = folder["Prefix"].removeprefix(TRAIL_FOLDERS_PREFIX).removesuffix("/")
                # Only names the archive itself writes (trail_checkpoint_prefix).
                if len(number) == 3 and number.isdigit() and 0 < int(number) < MAX_TRAILS:
                    found.add(int(number))
        return sorted(found)

    def _bodies(self, prefix: str) -> builtins.list[bytes]:
        # Delimiter: trail 0's listing must not take in the trail-<k>/ and ledger/ folders.
        bodies = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                bodies.append(
                    self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                )
        return bodies


class Sequencer:
    """Integrates entries into the tree; see the module docstring."""

    def __init__(
        self,
        table: LedgerTable,
        signer: HeadSigner,
        origin: str,
        *,
        archive: CheckpointArchive | None = None,
        batch: int = 1024,
        clock_ms: Callable[[], int] | None = None,
    ):
        self.table = table
        self.signer = signer
        self.origin = origin
        self.archive = archive
        self.batch = batch
        self._clock_ms = clock_ms or _now_ms
        self._lock = threading.Lock()  # one integration at a time per process
        self.latest: SignedTreeHead | None = None
        self.last_batch = 0  # entries integrated by the last call

    def integrate(self, covering: int | None = None) -> SignedTreeHead | None:
        """Integrate the waiting entries (up to ``batch``); returns the latest head.

        With ``covering``, a head that already covers leaf ``covering`` when this call's
        turn comes is returned as is: callers that queued behind an integration that
        covered them do not integrate (and sign) again.
        """
        with self._lock:
            head = self.table.read_head()
            if covering is not None and head is not None and head.size > covering:
                self.latest, self.last_batch = head, 0
                return head
            size = head.size if head else 0
            pending = self.table.read_entries(size, self.batch)
            leaves = self._valid_prefix(pending, size)
            self.last_batch = len(leaves)
            if not leaves:
                if head is not None:
                    self.latest = head
                return head
            border = _range_nodes(0, size)
            hashes = self.table.read_node_hashes(border) if border else []
            old_root = _fold(hashes) if hashes else EMPTY_ROOT
            if head is not None and not hmac.compare_digest(old_root, head.root):
                raise LedgerError(
                    f"stored nodes do not reproduce the signed root at size {size}: "
                    "refusing to extend a tampered tree"
                )
            nodes, root = _extend(list(zip(border, hashes, strict=True)), size, leaves)
            new_size = size + len(leaves)
            # Everything the new head stands for is written before the head itself moves
            # (see "Crash-safe" above): a crash in between leaves only redoable work.
            self.table.write_nodes(nodes)
            ts = max(self._clock_ms(), head.timestamp_ms if head else 0)
            message = checkpoint_message(self.origin, new_size, root, ts)
            signed = SignedTreeHead(
                origin=self.origin,
                size=new_size,
                root=root,
                timestamp_ms=ts,
                signature=self.signer.sign(message),
                key_id=self.signer.key_id,
                algorithm=ALGORITHM,
            )
            self.table.write_index(
                [
                    row
                    for seq, raw in pending[: len(leaves)]
                    for row in _index_rows(seq, raw, self.table.trail)
                ]
            )
            if self.archive is not None:
                self.archive.put(signed)
            try:
                self.table.advance_head(signed, size if head else None)
            except HeadMoved:
                self.latest = self.table.read_head()
                return self.latest
            self.latest = signed
            return signed

    def integrate_all(self, covering: int | None = None) -> SignedTreeHead | None:
        """Integrate until less than a full batch was waiting: everything stored before the
        call is covered when it returns (entries appended meanwhile may be too). With
        ``covering``, stop as soon as a head covers that leaf."""
        while True:
            head = self.integrate(covering)
            if self.last_batch < self.batch:
                return head

    @staticmethod
    def _valid_prefix(pending: list[tuple[int, bytes]], size: int) -> list[bytes]:
        leaves = []
        for offset, (seq, raw) in enumerate(pending):
            try:
                entry = AuditEntry.from_bytes(raw)
            except InvalidEntry:
                log.error("ledger entry %d is not canonical: integration stops before it", seq)
                break
            if entry.sequence != seq or seq != size + offset:
                log.error("ledger entry %d carries another sequence number: stopping", seq)
                break
            leaves.append(leaf_hash(raw))
        return leaves


def _extend(
    border: list[tuple[NodeId, bytes]], size: int, leaves: list[bytes]
) -> tuple[dict[NodeId, bytes], bytes]:
    """New nodes completed by appending ``leaves`` after ``size``, and the new root."""
    stack = list(border)
    nodes: dict[NodeId, bytes] = {}
    for offset, h in enumerate(leaves):
        node = NodeId(0, size + offset)
        nodes[node] = h
        stack.append((node, h))
        while len(stack) >= 2 and stack[-1][0].level == stack[-2][0].level:
            (left, lh), (_, rh) = stack[-2], stack[-1]
            parent = NodeId(left.level + 1, left.index // 2)
            ph = node_hash(lh, rh)
            nodes[parent] = ph
            stack[-2:] = [(parent, ph)]
    return nodes, _fold([h for _, h in stack])


def _index_rows(seq: int, raw: bytes, trail: int = 0) -> list[tuple[str, str, int, int, bytes]]:
    entry = AuditEntry.from_bytes(raw)
    ts = entry.timestamp_ms
    day = entry.timestamp.date().isoformat()
    rows = [
        ("ACTOR", entry.actor.sub, ts, seq, raw),
        ("RESOURCE", f"{entry.resource.type.value}:{entry.resource.id}", ts, seq, raw),
        ("DAY", f"{day}#{(seq + trail) % DAY_SHARDS}", ts, seq, raw),
    ]
    if entry.resource.type.value == "membership":
        group = entry.resource.id.split(":", 1)[0]
        rows.append(("RESOURCE", f"group:{group}", ts, seq, raw))
    if entry.resource.patient_ref:
        rows.append(("PATIENT", entry.resource.patient_ref, ts, seq, raw))
    return rows


class LedgerCheckpointer:
    """Signs ledger checkpoints: every trail's current head, under one signature and one
    root (:class:`~app.ledger.checkpoint.LedgerCheckpoint`).

    Guarantees: a checkpoint lists trails ``0 .. N-1`` with ``N`` never below the trails
    the last stored checkpoint listed (a trail, once part of the ledger, is never dropped
    even if ``hub:ledgerTrails`` is lowered); each listed head is the trail's stored
    signed head (size 0 and the empty root for a trail without one); timestamps increase.
    A new checkpoint is signed only when some trail head moved, and, with
    ``min_interval_ms``, at most that often unless forced (one KMS ``Sign`` per interval
    on the request path, not one per request).
    """

    def __init__(
        self,
        tables: Sequence[LedgerTable],
        signer: HeadSigner,
        origin: str,
        *,
        archive: CheckpointArchive | None = None,
        min_interval_ms: int = 0,
        clock_ms: Callable[[], int] | None = None,
    ):
        self.tables = list(tables)
        self.signer = signer
        self.origin = origin
        self.archive = archive
        self.min_interval_ms = min_interval_ms
        self._clock_ms = clock_ms or _now_ms
        self._lock = threading.Lock()
        self.latest: LedgerCheckpoint | None = None

    def checkpoint(self, *, force: bool = False) -> LedgerCheckpoint | None:
        with self._lock:
            first = self.tables[0]
            stored = first.read_checkpoint()
            count = max(len(self.tables), stored.trails if stored else 0)
            stored_heads = first.read_heads(range(count))  # one read, not one per trail
            heads = []
            for trail in range(count):
                head = stored_heads.get(trail)
                heads.append(
                    TrailHead(trail, head.size, head.root)
                    if head is not None
                    else TrailHead(trail, 0, EMPTY_ROOT)
                )
            now = self._clock_ms()
            if stored is not None and (
                stored.heads == tuple(heads)
                or (not force and now - stored.timestamp_ms < self.min_interval_ms)
            ):
                self.latest = stored
                return stored
            ts = max(now, stored.timestamp_ms + 1 if stored else 0)
            message = ledger_checkpoint_message(self.origin, ts, heads)
            signed = LedgerCheckpoint(
                self.origin,
                ts,
                tuple(heads),
                self.signer.sign(message),
                self.signer.key_id,
                ALGORITHM,
            )
            if not first.store_checkpoint(signed):
                self.latest = first.read_checkpoint()  # a later one is stored already
                return self.latest
            if self.archive is not None:
                self.archive.put_ledger_checkpoint(signed)
            self.latest = signed
            return signed


class Integrates(Protocol):
    def integrate_all(self, covering: int | None = None) -> Any: ...


class LedgerIntegrator:
    """Integrates every trail, then signs a ledger checkpoint over their heads."""

    def __init__(self, sequencers: Sequence[Sequencer], checkpointer: LedgerCheckpointer):
        self.sequencers = list(sequencers)
        self.checkpointer = checkpointer

    def integrate_all(self, covering: int | None = None) -> LedgerCheckpoint | None:
        for sequencer in self.sequencers:
            sequencer.integrate_all()
        return self.checkpointer.checkpoint(force=True)


class SequencerThread:
    """Runs :meth:`Sequencer.integrate` in the background (started with the app); with
    several trails, a :class:`LedgerIntegrator` (every trail, then a ledger checkpoint)."""

    def __init__(self, sequencer: Integrates, interval: float = 0.5, batch_trigger: int = 256):
        self.sequencer = sequencer
        self.interval = interval
        self.batch_trigger = batch_trigger
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def notify(self, _seq: int) -> None:
        """Called after each append: wake early once ``batch_trigger`` entries wait."""
        self._pending += 1
        if self._pending >= self.batch_trigger:
            self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._pending = 0
            if self._stop.is_set():
                return
            try:
                self.sequencer.integrate_all()
            except Exception:  # keep integrating; the failure is logged for operators
                log.exception("ledger integration failed")
