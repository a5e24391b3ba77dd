"""The ledger verifier: checks a copy of the log against signed tree heads, offline.

Input is a :class:`LedgerSnapshot`: the stored entries by leaf index, the tree's stored
leaf hashes (level-0 nodes) when available, and the signed heads (checkpoints). It comes
from an export directory (:func:`read_export`, written by :func:`write_export`) or,
live, straight from a deployment's table and checkpoint bucket
(:func:`snapshot_from_deployment`). Only the public key is trusted.

Checks, in order, each finding naming the leaf index where it is first visible:

1. every head's ECDSA signature (a bad one is reported and the head is not used);
2. heads of one size with different roots (a split view: **fork**);
3. every entry: canonical bytes, its ``sequence`` equal to its leaf index (else
   **reordered**), no missing index below the largest head (else **deleted**), its leaf
   hash equal to the tree's stored leaf hash (else **modified**);
4. the stored leaves reproduce every head's root, and each head is consistent with the
   next (an RFC 9162 consistency proof from the stored tree, verified with
   :func:`~app.ledger.merkle.verify_consistency`); a head the stored history cannot
   reproduce is a **fork** (or a tampered tree), located after the largest head below it
   that the history does reproduce;
5. inclusion of the chosen entries (default: all) in the smallest head covering each
   (:func:`~app.ledger.merkle.verify_inclusion`).

``report.first_bad_index`` is the smallest index of any finding; ``report.ok`` is True
only when there is no finding at all and at least one head was verified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from app.ledger._hashing import leaf_hash
from app.ledger.checkpoint import (
    BadSignature,
    MalformedHead,
    SignedTreeHead,
    load_public_key,
    verify_head,
)
from app.ledger.entries import AuditEntry
from app.ledger.errors import InvalidEntry, LedgerVerificationError
from app.ledger.fhir import audit_event_resource
from app.ledger.merkle import MerkleLog, verify_consistency, verify_inclusion

ENTRIES_FILE = "entries.ndjson"
FHIR_FILE = "auditevents.ndjson"
CHECKPOINTS_DIR = "checkpoints"
PUBLIC_KEY_FILE = "public-key.pem"


@dataclass
class LedgerSnapshot:
    entries: dict[int, bytes]
    heads: list[SignedTreeHead]
    tree_leaves: dict[int, bytes] | None = None


@dataclass(frozen=True)
class Finding:
    kind: str
    index: int | None
    message: str


@dataclass
class VerificationReport:
    findings: list[Finding] = field(default_factory=list)
    heads_verified: int = 0
    entries_checked: int = 0
    inclusions_checked: int = 0
    consistency_checked: int = 0
    size: int = 0

    @property
    def first_bad_index(self) -> int | None:
        indices = [f.index for f in self.findings if f.index is not None]
        return min(indices) if indices else None

    @property
    def ok(self) -> bool:
        return not self.findings and self.heads_verified > 0

    def add(self, kind: str, index: int | None, message: str) -> None:
        self.findings.append(Finding(kind, index, message))


def verify_snapshot(
    snapshot: LedgerSnapshot,
    public_key: ec.EllipticCurvePublicKey,
    *,
    indices: Iterable[int] | None = None,
) -> VerificationReport:
    """Run every check above; never raises on bad data, reports it."""
    report = VerificationReport()
    heads = _signed_heads(snapshot.heads, public_key, report)
    _split_views(heads, report)
    top = max((h.size for h in heads), default=0)
    report.size = top
    end = max([top, *(i + 1 for i in snapshot.entries)], default=0)
    leaves = _check_entries(snapshot, end, top, report)
    log = MerkleLog()
    stored = snapshot.tree_leaves
    for i in range(end):
        h = stored.get(i) if stored is not None else leaves.get(i)
        if h is None:
            break
        log.append_leaf_hash(h)
    reproduced = _check_heads(heads, log, report)
    chosen = sorted(set(indices)) if indices is not None else sorted(snapshot.entries)
    _check_inclusions(chosen, snapshot.entries, reproduced, log, report)
    return report


def _signed_heads(
    heads: Sequence[SignedTreeHead], key: ec.EllipticCurvePublicKey, report: VerificationReport
) -> list[SignedTreeHead]:
    good = []
    for head in heads:
        try:
            verify_head(head, key)
        except (BadSignature, MalformedHead) as exc:
            report.add("signature", None, str(exc))
            continue
        good.append(head)
    report.heads_verified = len(good)
    return sorted(good, key=lambda h: (h.size, h.timestamp_ms))


def _split_views(heads: Sequence[SignedTreeHead], report: VerificationReport) -> None:
    by_size: dict[int, bytes] = {}
    for head in heads:
        seen = by_size.setdefault(head.size, head.root)
        if seen != head.root:
            below = [h.size for h in heads if h.size < head.size]
            report.add(
                "fork",
                max(below, default=0),
                f"two signed heads of size {head.size} have different roots (split view)",
            )


def _check_entries(
    snapshot: LedgerSnapshot, end: int, top: int, report: VerificationReport
) -> dict[int, bytes]:
    leaves: dict[int, bytes] = {}
    entries = snapshot.entries
    sequences: dict[int, int] = {}
    for index in range(end):
        raw = entries.get(index)
        if raw is None:
            if index < top:
                report.add("deleted", index, f"entry {index} is missing (deleted)")
            continue
        report.entries_checked += 1
        try:
            entry = AuditEntry.from_bytes(raw)
        except InvalidEntry as exc:
            report.add("modified", index, f"entry {index} is not a canonical entry: {exc}")
            leaves[index] = leaf_hash(raw)
            continue
        sequences[index] = entry.sequence
        leaves[index] = leaf_hash(raw)
        if entry.sequence != index:
            report.add(
                "reordered",
                index,
                f"entry at index {index} carries sequence number {entry.sequence}",
            )
        stored = snapshot.tree_leaves.get(index) if snapshot.tree_leaves is not None else None
        if snapshot.tree_leaves is not None and index < top and stored != leaves[index]:
            report.add(
                "modified",
                index,
                f"entry {index} does not hash to the leaf the tree holds (edited)",
            )
    return leaves


def _check_heads(
    heads: Sequence[SignedTreeHead], log: MerkleLog, report: VerificationReport
) -> list[SignedTreeHead]:
    reproduced: list[SignedTreeHead] = []
    for head in heads:
        if head.size > log.size:
            report.add(
                "deleted",
                log.size,
                f"the signed head of size {head.size} covers entries the copy lacks "
                f"(from index {log.size})",
            )
            continue
        if log.root(head.size) != head.root:
            below = [h.size for h in reproduced if h.size < head.size]
            report.add(
                "fork",
                max(below, default=0),
                f"the stored history does not reproduce the signed head of size {head.size} "
                "(forked or rewritten history)",
            )
            continue
        if reproduced:
            previous = reproduced[-1]
            proof = log.consistency_proof(previous.size, head.size)
            try:
                verify_consistency(previous.size, head.size, proof, previous.root, head.root)
            except LedgerVerificationError as exc:  # pragma: no cover - implied by the roots
                report.add("fork", previous.size, f"heads are inconsistent: {exc}")
                continue
            report.consistency_checked += 1
        reproduced.append(head)
    return reproduced


def _check_inclusions(
    chosen: Sequence[int],
    entries: dict[int, bytes],
    heads: Sequence[SignedTreeHead],
    log: MerkleLog,
    report: VerificationReport,
) -> None:
    for index in chosen:
        raw = entries.get(index)
        head = next((h for h in heads if h.size > index), None)
        if raw is None or head is None:
            continue  # missing entries are reported above; uncovered ones are not yet signed
        try:
            verify_inclusion(
                leaf_hash(raw), index, head.size, log.inclusion_proof(index, head.size), head.root
            )
        except LedgerVerificationError:
            report.add("modified", index, f"entry {index} is not included in head {head.size}")
            continue
        report.inclusions_checked += 1


# --- export format -------------------------------------------------------------------------


def write_export(
    directory: Path,
    entries: dict[int, bytes],
    tree_leaves: dict[int, bytes],
    heads: Sequence[SignedTreeHead],
    public_key_pem: bytes,
) -> None:
    """Write an export: entries (with the tree's leaf hashes), FHIR AuditEvents (IHE
    BALP, NDJSON), every checkpoint and the public key."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CHECKPOINTS_DIR).mkdir(exist_ok=True)
    with (directory / ENTRIES_FILE).open("w", encoding="ascii") as out:
        for index in sorted(entries):
            leaf = tree_leaves.get(index)
            row = {
                "leaf_index": index,
                "canonical": base64.b64encode(entries[index]).decode(),
                "tree_leaf_hash": base64.b64encode(leaf).decode() if leaf else None,
            }
            out.write(json.dumps(row, sort_keys=True) + "\n")
    with (directory / FHIR_FILE).open("w", encoding="utf-8") as out:
        for index in sorted(entries):
            try:
                entry = AuditEntry.from_bytes(entries[index])
            except InvalidEntry:
                continue  # the verifier reports it; FHIR consumers get well-formed events
            out.write(json.dumps(audit_event_resource(entry, entries[index], index)) + "\n")
    for head in heads:
        name = f"{head.size:012d}-{head.timestamp_ms:013d}.json"
        (directory / CHECKPOINTS_DIR / name).write_text(
            json.dumps(head.to_json(), sort_keys=True), encoding="ascii"
        )
    (directory / PUBLIC_KEY_FILE).write_bytes(public_key_pem)


def read_checkpoints(path: Path) -> list[SignedTreeHead]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    return [SignedTreeHead.from_json(json.loads(f.read_text("ascii"))) for f in files]


def read_export(path: Path, checkpoints: Path | None = None) -> tuple[LedgerSnapshot, Path | None]:
    """A snapshot from an export directory (or an ``entries.ndjson`` file plus a
    checkpoints directory); also returns the export's public key file if present."""
    directory = path if path.is_dir() else path.parent
    entries_file = path / ENTRIES_FILE if path.is_dir() else path
    entries: dict[int, bytes] = {}
    leaves: dict[int, bytes] = {}
    has_leaves = False
    for line in entries_file.read_text("ascii").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        index = int(row["leaf_index"])
        entries[index] = base64.b64decode(row["canonical"])
        if row.get("tree_leaf_hash"):
            has_leaves = True
            leaves[index] = base64.b64decode(row["tree_leaf_hash"])
    heads = read_checkpoints(checkpoints or directory / CHECKPOINTS_DIR)
    key = directory / PUBLIC_KEY_FILE
    snapshot = LedgerSnapshot(entries, heads, leaves if has_leaves else None)
    return snapshot, key if key.exists() else None


def load_key_file(path: Path) -> ec.EllipticCurvePublicKey:
    return load_public_key(path.read_bytes())


def snapshot_from_deployment(
    dynamodb: Any, s3: Any, table_name: str, checkpoint_bucket: str
) -> LedgerSnapshot:
    """Everything a verifier needs, read live from a deployment (DynamoDB and S3)."""
    from app.ledger.sequencer import CheckpointArchive
    from app.ledger.store import LedgerTable

    table = LedgerTable(dynamodb, table_name)
    heads = CheckpointArchive(s3, checkpoint_bucket).list()
    current = table.read_head()
    if current is not None and all(h.to_json() != current.to_json() for h in heads):
        heads.append(current)
    return LedgerSnapshot(table.all_entries(), heads, table.all_leaf_hashes())
