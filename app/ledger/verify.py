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

A ledger of several trails (``snapshot.trails``) gets checks 1-5 per trail, plus heads
signed under another trail's origin (**swapped**), and then its ledger checkpoints
(``snapshot.checkpoints``): each signature; each listed trail head reproduced by that
trail's stored history (else **fork**, or **deleted**); no checkpoint listing fewer
trails than an earlier one, and the latest one listing every trail that holds anything
(else **omitted**). A trail with signed heads but none of its entries in the copy (its
table items deleted; its archived heads remain) is one **deleted** finding at index 0.

``report.first_bad`` is the (trail, index) of the first finding, lowest trail first, and
``report.first_bad_index`` its index; ``report.ok`` is True only when there is no
finding at all and at least one head was verified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from app.ledger._hashing import leaf_hash
from app.ledger.checkpoint import (
    BadSignature,
    LedgerCheckpoint,
    MalformedHead,
    SignedTreeHead,
    TrailHead,
    load_public_key,
    trail_origin,
    verify_head,
    verify_ledger_checkpoint,
)
from app.ledger.entries import AuditEntry
from app.ledger.errors import InvalidEntry, LedgerVerificationError
from app.ledger.fhir import audit_event_resource
from app.ledger.merkle import MerkleLog, verify_consistency, verify_inclusion
from app.ledger.store import MAX_TRAILS

ENTRIES_FILE = "entries.ndjson"
FHIR_FILE = "auditevents.ndjson"
CHECKPOINTS_DIR = "checkpoints"
PUBLIC_KEY_FILE = "public-key.pem"
LEDGER_DIR = "ledger"  # ledger checkpoints, under checkpoints/


@dataclass
class LedgerSnapshot:
    """Trail 0 (``entries``, ``heads``, ``tree_leaves``: the whole ledger before trails),
    the other trails by number, and the signed ledger checkpoints over all of them."""

    entries: dict[int, bytes]
    heads: list[SignedTreeHead]
    tree_leaves: dict[int, bytes] | None = None
    trails: dict[int, LedgerSnapshot] = field(default_factory=dict)
    checkpoints: list[LedgerCheckpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    kind: str
    index: int | None
    message: str
    trail: int = 0


@dataclass
class VerificationReport:
    findings: list[Finding] = field(default_factory=list)
    heads_verified: int = 0
    entries_checked: int = 0
    inclusions_checked: int = 0
    consistency_checked: int = 0
    size: int = 0

    trails: int = 1
    checkpoints_verified: int = 0

    @property
    def first_bad(self) -> tuple[int, int] | None:
        """(trail, leaf index) of the first finding: the lowest trail, then index."""
        located = [(f.trail, f.index) for f in self.findings if f.index is not None]
        return min(located) if located else None

    @property
    def first_bad_index(self) -> int | None:
        first = self.first_bad
        return first[1] if first is not None else None

    @property
    def first_bad_trail(self) -> int | None:
        first = self.first_bad
        return first[0] if first is not None else None

    @property
    def ok(self) -> bool:
        return not self.findings and self.heads_verified > 0

    def add(self, kind: str, index: int | None, message: str, trail: int = 0) -> None:
        if trail:
            message = f"trail {trail}: {message}"
        self.findings.append(Finding(kind, index, message, trail))


def verify_snapshot(
    snapshot: LedgerSnapshot,
    public_key: ec.EllipticCurvePublicKey,
    *,
    indices: Iterable[int] | None = None,
) -> VerificationReport:
    """Run every check above on every trail, then the ledger checkpoints; never raises on
    bad data, reports it. ``indices`` (inclusion checks) apply to trail 0."""
    report = VerificationReport()
    trails = {0: snapshot, **{k: t for k, t in snapshot.trails.items() if k}}
    several = len(trails) > 1 or bool(snapshot.checkpoints)
    base = _base_origin(snapshot)
    logs: dict[int, tuple[MerkleLog, list[SignedTreeHead]]] = {}
    for number in sorted(trails):
        chosen = indices if number == 0 else None
        expected = trail_origin(base, number) if several and base is not None else None
        logs[number] = _verify_trail(trails[number], public_key, chosen, report, number, expected)
    report.size = sum(max((h.size for h in heads), default=0) for _, heads in logs.values())
    report.trails = len(trails)
    _check_ledger_checkpoints(snapshot, trails, logs, public_key, report)
    return report


def _base_origin(snapshot: LedgerSnapshot) -> str | None:
    if snapshot.checkpoints:
        return snapshot.checkpoints[0].origin
    return snapshot.heads[0].origin if snapshot.heads else None


def _verify_trail(
    snapshot: LedgerSnapshot,
    public_key: ec.EllipticCurvePublicKey,
    indices: Iterable[int] | None,
    report: VerificationReport,
    trail: int,
    origin: str | None,
) -> tuple[MerkleLog, list[SignedTreeHead]]:
    """Checks 1-5 on one trail; its rebuilt log and the heads its history reproduces."""
    part = VerificationReport()
    heads = _signed_heads(snapshot.heads, public_key, part)
    if origin is not None:
        for head in [h for h in heads if h.origin != origin]:
            part.add(
                "swapped",
                None,
                f"a signed head of size {head.size} is {head.origin!r}'s, not this trail's "
                f"({origin!r})",
            )
        heads = [h for h in heads if h.origin == origin]
    _split_views(heads, part)
    top = max((h.size for h in heads), default=0)
    end = max([top, *(i + 1 for i in snapshot.entries)], default=0)
    if top and not snapshot.entries:
        # One finding for the whole trail, not one per missing entry.
        part.add(
            "deleted",
            0,
            f"the copy holds none of this trail's entries, yet its signed heads reach size "
            f"{top} (the trail was deleted)",
        )
        leaves: dict[int, bytes] = {}
    else:
        leaves = _check_entries(snapshot, end, top, part)
    log = MerkleLog()
    stored = snapshot.tree_leaves
    for i in range(end):
        h = stored.get(i) if stored is not None else leaves.get(i)
        if h is None:
            break
        log.append_leaf_hash(h)
    reproduced = _check_heads(heads, log, part)
    chosen = sorted(set(indices)) if indices is not None else sorted(snapshot.entries)
    _check_inclusions(chosen, snapshot.entries, reproduced, log, part)
    for f in part.findings:
        report.add(f.kind, f.index, f.message, trail)
    report.heads_verified += part.heads_verified
    report.entries_checked += part.entries_checked
    report.inclusions_checked += part.inclusions_checked
    report.consistency_checked += part.consistency_checked
    return log, reproduced


def _check_ledger_checkpoints(
    snapshot: LedgerSnapshot,
    trails: dict[int, LedgerSnapshot],
    logs: dict[int, tuple[MerkleLog, list[SignedTreeHead]]],
    public_key: ec.EllipticCurvePublicKey,
    report: VerificationReport,
) -> None:
    """Each ledger checkpoint is signed, lists every trail the ledger has had (never
    fewer than an earlier one), and each listed trail head is reproduced by that trail's
    stored history; the latest one covers every trail that holds anything."""
    good: list[LedgerCheckpoint] = []
    for checkpoint in snapshot.checkpoints:
        try:
            verify_ledger_checkpoint(checkpoint, public_key)
        except (BadSignature, MalformedHead) as exc:
            report.add("signature", None, str(exc))
            continue
        good.append(checkpoint)
    report.checkpoints_verified = len(good)
    good.sort(key=lambda c: c.timestamp_ms)
    widest = 0
    for checkpoint in good:
        if checkpoint.trails < widest:
            for missing in range(checkpoint.trails, widest):
                report.add(
                    "omitted",
                    0,
                    f"the ledger checkpoint at {checkpoint.timestamp_ms} leaves this trail out "
                    f"(an earlier one listed {widest} trails)",
                    missing,
                )
        widest = max(widest, checkpoint.trails)
        for listed in checkpoint.heads:
            _check_listed_head(checkpoint, listed, logs, report)
    populated = [k for k, t in trails.items() if t.entries or t.heads]
    latest = good[-1] if good else None
    for number in populated:
        if number == 0 and latest is None:
            continue  # a single-trail ledger: its trail 0 heads are the ledger's
        if latest is None or number >= latest.trails:
            holds = "holds entries" if trails[number].entries else "has signed heads"
            report.add(
                "omitted",
                0,
                f"the trail {holds} but the latest ledger checkpoint does not commit to it"
                if latest is not None
                else f"the trail {holds} but no signed ledger checkpoint commits to it",
                number,
            )


def _check_listed_head(
    checkpoint: LedgerCheckpoint,
    listed: TrailHead,
    logs: dict[int, tuple[MerkleLog, list[SignedTreeHead]]],
    report: VerificationReport,
) -> None:
    where = f"the ledger checkpoint at {checkpoint.timestamp_ms}"
    log, reproduced = logs.get(listed.trail, (MerkleLog(), []))
    if listed.size > log.size:
        report.add(
            "deleted",
            log.size,
            f"{where} lists this trail at size {listed.size}; the copy holds {log.size}",
            listed.trail,
        )
        return
    if log.root(listed.size) != listed.root:
        below = [h.size for h in reproduced if h.size < listed.size]
        report.add(
            "fork",
            max(below, default=0),
            f"{where} lists a head of size {listed.size} this trail's history does not "
            "reproduce (swapped or rewritten)",
            listed.trail,
        )


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
    *,
    trails: Mapping[int, LedgerSnapshot] | None = None,
    ledger_checkpoints: Sequence[LedgerCheckpoint] = (),
) -> None:
    """Write an export: entries (with the tree's leaf hashes), FHIR AuditEvents (IHE
    BALP, NDJSON), every checkpoint and the public key. Trail 0 is written as before
    trails; rows of trail ``k`` carry ``"trail": k``, its heads go to
    ``checkpoints/trail-<kkk>/`` and ledger checkpoints to ``checkpoints/ledger/``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CHECKPOINTS_DIR).mkdir(exist_ok=True)
    parts = [(0, entries, tree_leaves, heads)]
    for number, trail in sorted((trails or {}).items()):
        if number:
            parts.append((number, trail.entries, trail.tree_leaves or {}, trail.heads))
    with (directory / ENTRIES_FILE).open("w", encoding="ascii") as out:
        for number, rows, leaves, _ in parts:
            for index in sorted(rows):
                leaf = leaves.get(index)
                row: dict[str, Any] = {
                    "leaf_index": index,
                    "canonical": base64.b64encode(rows[index]).decode(),
                    "tree_leaf_hash": base64.b64encode(leaf).decode() if leaf else None,
                }
                if number:
                    row["trail"] = number
                out.write(json.dumps(row, sort_keys=True) + "\n")
    with (directory / FHIR_FILE).open("w", encoding="utf-8") as out:
        for number, rows, _, _ in parts:
            for index in sorted(rows):
                try:
                    entry = AuditEntry.from_bytes(rows[index])
                except InvalidEntry:
                    continue  # the verifier reports it; FHIR consumers get well-formed events
                resource = audit_event_resource(entry, rows[index], index, number)
                out.write(json.dumps(resource) + "\n")
    for number, _, _, trail_heads in parts:
        folder = directory / CHECKPOINTS_DIR
        if number:
            folder = folder / f"trail-{number:03d}"
            folder.mkdir(exist_ok=True)
        for head in trail_heads:
            name = f"{head.size:012d}-{head.timestamp_ms:013d}.json"
            (folder / name).write_text(json.dumps(head.to_json(), sort_keys=True), "ascii")
    if ledger_checkpoints:
        folder = directory / CHECKPOINTS_DIR / LEDGER_DIR
        folder.mkdir(exist_ok=True)
        for checkpoint in ledger_checkpoints:
            name = f"{checkpoint.timestamp_ms:013d}.json"
            (folder / name).write_text(json.dumps(checkpoint.to_json(), sort_keys=True), "ascii")
    (directory / PUBLIC_KEY_FILE).write_bytes(public_key_pem)


@dataclass(frozen=True)
class ExportRow:
    """One line of an export's ``entries.ndjson``, as :func:`write_export` writes it:
    ``{"leaf_index": i, "canonical": <base64 of the entry's canonical bytes>,
    "tree_leaf_hash": <base64> | null}``, plus ``"trail": k`` for trails other than 0."""

    trail: int
    leaf_index: int
    canonical: bytes
    tree_leaf_hash: bytes | None

    @classmethod
    def from_line(cls, line: str) -> ExportRow:
        """Raises:
        ValueError (or KeyError, TypeError): the line is not an export row."""
        row = json.loads(line)
        index, trail = int(row["leaf_index"]), int(row.get("trail", 0))
        if not 0 <= trail < MAX_TRAILS:
            raise ValueError(f"trail {trail} out of range")
        leaf = row.get("tree_leaf_hash")
        return cls(
            trail,
            index,
            base64.b64decode(row["canonical"]),
            base64.b64decode(leaf) if leaf else None,
        )


def read_checkpoints(path: Path) -> list[SignedTreeHead]:
    if not path.exists():
        return []
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    return [SignedTreeHead.from_json(json.loads(f.read_text("ascii"))) for f in files]


def read_export(path: Path, checkpoints: Path | None = None) -> tuple[LedgerSnapshot, Path | None]:
    """A snapshot from an export directory (or an ``entries.ndjson`` file plus a
    checkpoints directory); also returns the export's public key file if present."""
    directory = path if path.is_dir() else path.parent
    entries_file = path / ENTRIES_FILE if path.is_dir() else path
    entries: dict[int, dict[int, bytes]] = {0: {}}
    leaves: dict[int, dict[int, bytes]] = {0: {}}
    has_leaves = False
    for line in entries_file.read_text("ascii").splitlines():
        if not line.strip():
            continue
        row = ExportRow.from_line(line)
        entries.setdefault(row.trail, {})[row.leaf_index] = row.canonical
        if row.tree_leaf_hash is not None:
            has_leaves = True
            leaves.setdefault(row.trail, {})[row.leaf_index] = row.tree_leaf_hash
    folder = checkpoints or directory / CHECKPOINTS_DIR
    heads = read_checkpoints(folder)
    key = directory / PUBLIC_KEY_FILE
    snapshot = LedgerSnapshot(entries[0], heads, leaves[0] if has_leaves else None)
    numbers = set(entries) | {
        int(p.name.removeprefix("trail-")) for p in folder.glob("trail-[0-9][0-9][0-9]")
    }
    for number in sorted(numbers - {0}):
        trail_heads = read_checkpoints(folder / f"trail-{number:03d}")
        trail_leaves = leaves.get(number, {}) if has_leaves else None
        snapshot.trails[number] = LedgerSnapshot(entries.get(number, {}), trail_heads, trail_leaves)
    if (folder / LEDGER_DIR).is_dir():
        snapshot.checkpoints = [
            LedgerCheckpoint.from_json(json.loads(f.read_text("ascii")))
            for f in sorted((folder / LEDGER_DIR).glob("*.json"))
        ]
    return snapshot, key if key.exists() else None


def load_key_file(path: Path) -> ec.EllipticCurvePublicKey:
    return load_public_key(path.read_bytes())


def snapshot_from_deployment(
    dynamodb: Any, s3: Any, table_name: str, checkpoint_bucket: str
) -> LedgerSnapshot:
    """Everything a verifier needs, read live from a deployment (DynamoDB and S3).

    Which trails: those the signed ledger checkpoints list (the archived ones and the
    stored one, the widest of them: the checkpointer never narrows, and a narrowed one
    must not hide a trail an earlier one listed), then any further trail holding entries
    or a head, found by one batched probe (:meth:`LedgerTable.trails_present`): it holds
    something no checkpoint commits to, which the verifier reports **omitted**; and every
    trail with a folder of archived heads (:meth:`CheckpointArchive.archived_trails`, one
    ``ListObjectsV2``), so a trail whose every table item was deleted, and which no
    archived checkpoint lists (one over it not yet signed, or its archive copy lost, and
    an older one put back in the table), is still read: its archived heads against an
    empty copy are **deleted**. The reads grow with the ledger's trails, not with
    :data:`MAX_TRAILS`.
    """
    from app.ledger.sequencer import CheckpointArchive
    from app.ledger.store import LedgerTable

    table = LedgerTable(dynamodb, table_name)
    archive = CheckpointArchive(s3, checkpoint_bucket)
    checkpoints = archive.ledger_checkpoints()
    current = table.read_checkpoint()
    if current is not None and all(c.to_json() != current.to_json() for c in checkpoints):
        checkpoints.append(current)
    snapshot = _trail_snapshot(table, archive)
    listed = max((c.trails for c in checkpoints), default=1)
    # A trail whose every table item was deleted, and which no archived checkpoint
    # lists, is still named by its archived heads' folder (Object Lock keeps them).
    numbers = set(table.trails_present(listed)) | set(archive.archived_trails())
    for number in sorted(numbers):
        if number:
            trail = _trail_snapshot(table.for_trail(number), archive.for_trail(number))
            if trail.entries or trail.heads:  # a listed trail may hold nothing yet
                snapshot.trails[number] = trail
    snapshot.checkpoints = checkpoints
    return snapshot


def _trail_snapshot(table: Any, archive: Any) -> LedgerSnapshot:
    heads: list[SignedTreeHead] = archive.list()
    current = table.read_head()
    if current is not None and all(h.to_json() != current.to_json() for h in heads):
        heads.append(current)
    return LedgerSnapshot(table.all_entries(), heads, table.all_leaf_hashes())
