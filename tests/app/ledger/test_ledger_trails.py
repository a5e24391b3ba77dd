"""A ledger of several trails: each trail gap-free with its own tree, one signed ledger
checkpoint over every trail's head, and ``hub audit verify`` checking all of it.

Each tampering test is paired with the clean case, so the check that catches it is shown
to be what decides (remove the check in app/ledger/verify.py and the test fails).
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ledger_testkit import LedgerEnv
from typer.testing import CliRunner

from app.audit.events import AuditEvent, Outcome
from app.ledger.checkpoint import (
    LedgerCheckpoint,
    TrailHead,
    load_public_key,
    trail_origin,
    verify_head,
    verify_ledger_checkpoint,
    verify_trail_head_in,
)
from app.ledger.errors import LedgerVerificationError
from app.ledger.merkle import leaf_hash, verify_inclusion
from app.ledger.service import Ledger
from app.ledger.store import CHECKPOINT_KEY, MAX_TRAILS, LedgerTable, head_key
from app.ledger.trail import LedgerTrail, trail_for
from app.ledger.verify import (
    read_export,
    snapshot_from_deployment,
    verify_snapshot,
    write_export,
)
from infra.cli import app as hub_cli

TRAILS = 3
# Actors chosen so that every trail gets some: trail_for is a stable hash.
ACTORS = [f"0b6f7c1e-2d3a-4c5b-8e9f-{n:012d}" for n in range(12)]


def _event(actor: str, n: int) -> AuditEvent:
    return AuditEvent(
        action="ViewGroup",
        outcome=Outcome.ALLOW,
        reason="member-views-open-group",
        actor=actor,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n}",
        actor_roles=("doctor",),
    )


@pytest.fixture
def sharded(ledger_env: LedgerEnv) -> Ledger:
    ledger = ledger_env.ledger(trails=TRAILS)
    for n in range(24):
        ledger.trail.append(_event(ACTORS[n % len(ACTORS)], n))
        if n % 8 == 7:
            ledger.integrate()
    return ledger


def _verify(env: LedgerEnv, ledger: Ledger) -> Any:
    snapshot = snapshot_from_deployment(env.dynamodb, env.s3, env.table_name, env.bucket)
    return verify_snapshot(snapshot, load_public_key(ledger.public_key_pem()))


def _sign_checkpoint(ledger: Ledger, heads: list[TrailHead], ts: int) -> LedgerCheckpoint:
    """A checkpoint signed with the deployment's own key (an insider's or a bug's)."""
    from app.ledger.checkpoint import ledger_checkpoint_message

    assert ledger.sequencer is not None
    signer = ledger.sequencer.signer
    message = ledger_checkpoint_message("test-ledger", ts, heads)
    return LedgerCheckpoint("test-ledger", ts, tuple(heads), signer.sign(message), signer.key_id)


def test_actors_spread_over_every_trail_and_each_trail_is_gap_free(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    assert {trail_for(a, TRAILS) for a in ACTORS} == set(range(TRAILS))
    for trail in range(TRAILS):
        table = LedgerTable(ledger_env.dynamodb, ledger_env.table_name, trail)
        stored = sorted(table.all_entries())
        assert stored == list(range(len(stored))) and stored
    report = _verify(ledger_env, sharded)
    assert report.ok, report.findings
    assert report.trails == TRAILS and report.checkpoints_verified >= 3
    assert report.size == 24


def test_concurrent_appends_over_trails_stay_gap_free_and_one_actor_stays_in_order(
    ledger_env: LedgerEnv,
) -> None:
    ledger = ledger_env.ledger(trails=TRAILS)
    events = [_event(ACTORS[n % 5], n) for n in range(60)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        receipts = list(pool.map(ledger.trail.append, events))
    ledger.integrate()
    by_trail: dict[int, list[int]] = {}
    for r in receipts:
        by_trail.setdefault(r.trail, []).append(r.leaf_index or 0)
    for trail, indices in by_trail.items():
        assert sorted(indices) == list(range(len(indices))), trail
    # One actor: one trail (its entries keep one order).
    first = {r.trail for r, e in zip(receipts, events, strict=True) if e.actor == ACTORS[0]}
    assert len(first) == 1
    assert _verify(ledger_env, ledger).ok


def test_a_gap_in_any_trail_is_detected(ledger_env: LedgerEnv, sharded: Ledger) -> None:
    assert _verify(ledger_env, sharded).ok
    table = LedgerTable(ledger_env.dynamodb, ledger_env.table_name, 2)
    ledger_env.dynamodb.delete_item(TableName=ledger_env.table_name, Key={**_entry_key(table, 1)})
    report = _verify(ledger_env, sharded)
    assert not report.ok
    assert report.first_bad == (2, 1), report.findings
    assert any(f.kind == "deleted" and f.trail == 2 for f in report.findings)


def _entry_key(table: LedgerTable, seq: int) -> dict[str, Any]:
    from app.ledger.store import entry_key

    return entry_key(seq, table.trail)


def test_a_trail_head_swapped_for_another_trails_is_detected(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    ddb, name = ledger_env.dynamodb, ledger_env.table_name
    two = ddb.get_item(TableName=name, Key=head_key(2), ConsistentRead=True)["Item"]
    # Trail 2's genuine signed head, stored as trail 1's.
    ddb.put_item(TableName=name, Item={**two, **head_key(1)})
    report = _verify(ledger_env, sharded)
    assert not report.ok
    assert any(f.kind == "swapped" and f.trail == 1 for f in report.findings), report.findings


def test_a_checkpoint_listing_another_trails_head_is_detected(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    good = sharded.ledger_checkpoint()
    assert good is not None
    heads = list(good.heads)
    heads[1] = TrailHead(1, heads[2].size, heads[2].root)
    forged = _sign_checkpoint(sharded, heads, good.timestamp_ms + 10)
    assert LedgerTable(ledger_env.dynamodb, ledger_env.table_name).store_checkpoint(forged)
    report = _verify(ledger_env, sharded)
    assert not report.ok
    assert any(f.trail == 1 and f.kind in ("fork", "deleted") for f in report.findings)


def test_a_checkpoint_omitting_a_trail_is_detected(ledger_env: LedgerEnv, sharded: Ledger) -> None:
    good = sharded.ledger_checkpoint()
    assert good is not None and good.trails == TRAILS
    short = _sign_checkpoint(sharded, list(good.heads[:2]), good.timestamp_ms + 10)
    assert LedgerTable(ledger_env.dynamodb, ledger_env.table_name).store_checkpoint(short)
    report = _verify(ledger_env, sharded)
    assert not report.ok
    omitted = [f for f in report.findings if f.kind == "omitted"]
    assert omitted and all(f.trail == 2 for f in omitted), report.findings
    key = load_public_key(sharded.public_key_pem())
    snapshot = snapshot_from_deployment(
        ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
    )
    # Only the short one (no earlier, wider checkpoint to compare with): the latest
    # checkpoint must list every trail that holds entries.
    snapshot.checkpoints = [short]
    alone = verify_snapshot(snapshot, key)
    assert [(f.kind, f.trail) for f in alone.findings] == [("omitted", 2)], alone.findings
    # Wide, short, wide again: the latest lists every trail, the narrowing is still found.
    wide_again = _sign_checkpoint(sharded, list(good.heads), good.timestamp_ms + 20)
    snapshot.checkpoints = [good, short, wide_again]
    narrowed = verify_snapshot(snapshot, key)
    assert [(f.kind, f.trail) for f in narrowed.findings] == [("omitted", 2)], narrowed.findings
    assert str(short.timestamp_ms) in narrowed.findings[0].message


def _four_trail_ledger(env: LedgerEnv) -> Ledger:
    ledger = env.ledger(trails=4)
    for n in range(24):
        ledger.trail.append(_event(ACTORS[n % len(ACTORS)], n))
    ledger.integrate()
    return ledger


def test_live_verify_reads_the_trails_the_checkpoint_lists_not_every_possible_one(
    ledger_env: LedgerEnv,
) -> None:
    """The latest signed ledger checkpoint says which trails exist: a 4-trail ledger is
    read as 4 trails, and the trails beyond it (up to MAX_TRAILS) are probed in one
    batched read, not one GetItem each (probing all 64 cost 124 GetItems here)."""
    ledger = _four_trail_ledger(ledger_env)
    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, json.dumps(params, default=str)))

    listings: list[dict[str, Any]] = []

    def record_listing(params: dict[str, Any], **_: Any) -> None:
        listings.append(params)

    events = ledger_env.dynamodb.meta.events
    events.register("before-call.dynamodb", record, unique_id="count-verify-calls")
    s3_events = ledger_env.s3.meta.events
    s3_events.register(
        "provide-client-params.s3.ListObjectsV2", record_listing, unique_id="count-verify-listings"
    )
    try:
        report = _verify(ledger_env, ledger)
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-verify-calls")
        s3_events.unregister(
            "provide-client-params.s3.ListObjectsV2", unique_id="count-verify-listings"
        )
    assert report.ok, report.findings
    assert report.trails == 4
    beyond = [
        (name, trail)
        for name, params in calls
        if name != "BatchGetItem"
        for trail in map(int, re.findall(r"LEDGER#T(\d{3})#", params))
        if trail >= 4
    ]
    assert beyond == [], beyond[:5]
    probes = [params for name, params in calls if name == "BatchGetItem"]
    assert len(probes) <= 2  # trails 4..63: 120 keys, 100 a call
    assert len(calls) < MAX_TRAILS, [name for name, _ in calls]
    # The archive: one listing per trail's heads, one of the ledger checkpoints, and the
    # one that names every trail-<k>/ folder (the only request the folder check adds).
    prefixes = sorted(p["Prefix"] for p in listings)
    assert len(prefixes) == 4 + 2, prefixes
    assert prefixes.count("ledger-checkpoints/trail-") == 1


def test_a_trail_no_checkpoint_lists_is_still_found_and_reported_omitted(
    ledger_env: LedgerEnv,
) -> None:
    """A writer outside the service's trails (a tool with the wrong trail count, an
    insider) stores entries in trail 6 of a 4-trail ledger: no checkpoint commits to it,
    and the batched probe finds it."""
    ledger = _four_trail_ledger(ledger_env)
    assert _verify(ledger_env, ledger).ok
    stray = LedgerTrail(LedgerTable(ledger_env.dynamodb, ledger_env.table_name, 6))
    stray.append(_event(ACTORS[0], 99))
    report = _verify(ledger_env, ledger)
    assert [(f.kind, f.trail) for f in report.findings] == [("omitted", 6)], report.findings


def test_trails_without_any_ledger_checkpoint_are_reported(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    snapshot = snapshot_from_deployment(
        ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
    )
    snapshot.checkpoints = []
    report = verify_snapshot(snapshot, load_public_key(sharded.public_key_pem()))
    assert {f.trail for f in report.findings if f.kind == "omitted"} == {1, 2}


def test_a_checkpoint_with_fewer_trails_than_an_earlier_one_is_detected(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    # Lowering hub:ledgerTrails never drops a trail: the checkpointer keeps listing it.
    fewer = ledger_env.ledger(trails=2)
    fewer.trail.append(_event(ACTORS[0], 99))
    fewer.integrate()
    checkpoint = fewer.ledger_checkpoint()
    assert checkpoint is not None and checkpoint.trails == TRAILS
    assert _verify(ledger_env, fewer).ok


def test_an_inclusion_proof_chains_entry_to_trail_head_to_the_ledger_checkpoint(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    key = load_public_key(sharded.public_key_pem())
    checkpoint = sharded.ledger_checkpoint()
    assert checkpoint is not None
    verify_ledger_checkpoint(checkpoint, key)
    from app.ledger.checkpoint import trail_head_proof

    for trail in range(TRAILS):
        listed = checkpoint.heads[trail]
        assert listed.size > 0
        index = listed.size - 1
        tree_leaf, raw, path = sharded.inclusion(index, listed.size, trail)
        assert leaf_hash(raw) == tree_leaf
        verify_inclusion(tree_leaf, index, listed.size, path, listed.root)
        verify_trail_head_in(
            listed, trail_head_proof(checkpoint.heads, trail), checkpoint.trails, checkpoint.root
        )
        # The trail head is also signed on its own, under the trail's origin.
        head = sharded.head(trail)
        assert head.origin == trail_origin("test-ledger", trail)
        verify_head(head, key)
    # A head listed for the wrong trail does not verify in the checkpoint tree.
    wrong = TrailHead(1, checkpoint.heads[2].size, checkpoint.heads[2].root)
    with pytest.raises(LedgerVerificationError):
        verify_trail_head_in(
            wrong, trail_head_proof(checkpoint.heads, 1), checkpoint.trails, checkpoint.root
        )


def test_a_single_trail_ledger_stays_valid_as_trail_zero(ledger_env: LedgerEnv) -> None:
    one = ledger_env.ledger()
    for n in range(5):
        one.trail.append(_event(ACTORS[n], n))
    one.integrate()
    assert one.ledger_checkpoint() is None
    assert _verify(ledger_env, one).ok
    # Migration: the same table, now with three trails; old entries stay trail 0's.
    three = ledger_env.ledger(trails=TRAILS)
    for n in range(12):
        three.trail.append(_event(ACTORS[n], n))
    three.integrate()
    report = _verify(ledger_env, three)
    assert report.ok, report.findings
    assert sorted(LedgerTable(ledger_env.dynamodb, ledger_env.table_name).all_entries())[:5] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_export_and_cli_verify_every_trail_offline_and_live(
    ledger_env: LedgerEnv, sharded: Ledger, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = [
        "--table",
        ledger_env.table_name,
        "--bucket",
        ledger_env.bucket,
        "--key-id",
        ledger_env.key_arn,
        "--endpoint",
        ledger_env.endpoint,
    ]
    out = tmp_path / "export"
    exported = runner.invoke(hub_cli, ["audit", "export", str(out), *args])
    assert exported.exit_code == 0, exported.output
    snapshot, _ = read_export(out)
    assert sorted(snapshot.trails) == [1, 2] and snapshot.checkpoints
    ok = runner.invoke(hub_cli, ["audit", "verify", str(out), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["trails"] == TRAILS
    live = runner.invoke(hub_cli, ["audit", "verify", "--live", *args])
    assert live.exit_code == 0, live.output
    # Drop one trail-2 row from the export: offline verification names the trail.
    lines = (out / "entries.ndjson").read_text().splitlines()
    kept = [
        line
        for line in lines
        if not (json.loads(line).get("trail") == 2 and json.loads(line)["leaf_index"] == 0)
    ]
    (out / "entries.ndjson").write_text("\n".join(kept) + "\n")
    failed = runner.invoke(hub_cli, ["audit", "verify", str(out)])
    assert failed.exit_code == 1
    assert "first bad index: 0 in trail 2" in failed.output, failed.output
    # The export round-trips through write_export too.
    again, _ = read_export(out)
    write_export(
        tmp_path / "copy",
        again.entries,
        again.tree_leaves or {},
        again.heads,
        (out / "public-key.pem").read_bytes(),
        trails=again.trails,
        ledger_checkpoints=again.checkpoints,
    )
    copy, _ = read_export(tmp_path / "copy")
    assert sorted(copy.trails) == [1, 2] and len(copy.checkpoints) == len(again.checkpoints)


def test_the_stored_checkpoint_never_goes_back(ledger_env: LedgerEnv, sharded: Ledger) -> None:
    table = LedgerTable(ledger_env.dynamodb, ledger_env.table_name)
    current = table.read_checkpoint()
    assert current is not None
    older = _sign_checkpoint(sharded, list(current.heads), current.timestamp_ms - 1)
    assert not table.store_checkpoint(older)
    stored = ledger_env.dynamodb.get_item(
        TableName=ledger_env.table_name, Key=CHECKPOINT_KEY, ConsistentRead=True
    )["Item"]
    assert json.loads(stored["checkpoint"]["S"])["timestamp_ms"] == current.timestamp_ms
    assert base64.b64decode(json.loads(stored["checkpoint"]["S"])["root"]) == current.root


def test_inline_mode_covers_each_response_and_signs_a_ledger_checkpoint(
    ledger_env: LedgerEnv,
) -> None:
    """On Lambda (inline) a response's entries are covered by their trail's signed head
    before it is sent, whichever trail they are on, and a ledger checkpoint is signed
    (at most once per interval; 0 here) over every trail's head."""
    ledger = ledger_env.ledger(trails=TRAILS, checkpoint_interval_ms=0)
    ledger.inline = True
    on_zero = next(a for a in ACTORS if trail_for(a, TRAILS) == 0)
    on_two = next(a for a in ACTORS if trail_for(a, TRAILS) == 2)
    first = ledger.trail.append(_event(on_zero, 1))
    head = ledger.response_head(first.leaf_index)
    assert not isinstance(head, list) and head is not None and head.size > 0
    checkpoint = ledger.ledger_checkpoint()
    assert checkpoint is not None and checkpoint.heads[0].size == 1
    second = ledger.trail.append(_event(on_two, 2))
    heads = ledger.response_head({second.trail: second.leaf_index or 0})
    assert isinstance(heads, list) and [(t, h.size) for t, h in heads] == [(2, 1)]
    checkpoint = ledger.ledger_checkpoint()
    assert checkpoint is not None
    assert [h.size for h in checkpoint.heads] == [1, 0, 1]
    assert _verify(ledger_env, ledger).ok


def test_the_operator_channel_audits_into_trail_zero_which_every_service_signs(
    ledger_env: LedgerEnv,
) -> None:
    """The operator CLI (one actor) writes to OPERATOR_TRAIL, 0, not to its hashed trail:
    on a hub of 8 trails whose service is later lowered to 4, every operator entry is
    still in one gap-free sequence, in order, and covered by a head the service signs.
    With the hash (trail 4 of 8) the entries written after the lowering would sit on a
    trail no sequencer integrates, never signed."""
    from app.dependencies import OPERATOR_TRAIL, build_operator_institutions
    from app.identity.affiliations import Institution, InstitutionStatus, InstitutionType
    from app.institutions.service import OPERATOR, CohortInstitution
    from app.ledger.entries import AuditEntry
    from app.local import create_service_tables

    assert trail_for(OPERATOR.sub, 8) != 0  # so trail 0 is a choice here, not the hash's
    institutions = f"{ledger_env.table_name}-institutions"
    create_service_tables(ledger_env.dynamodb, {"institutions": institutions})
    operator = build_operator_institutions(
        ledger_env.dynamodb,
        None,
        institutions_table=institutions,
        ledger_table=ledger_env.table_name,
        phase=3,
    )

    def admit(*ids: str) -> None:
        operator.seed(
            OPERATOR,
            [
                CohortInstitution(
                    Institution(
                        i,
                        f"{i} (synthetic)",
                        InstitutionType.PRIVATE_CLINIC,
                        3,
                        InstitutionStatus.ADMITTED,
                    )
                )
                for i in ids
            ],
            [],
        )

    eight = ledger_env.ledger(trails=8)
    for n in range(8):
        eight.trail.append(_event(ACTORS[n], n))
    admit("zz-clinic-a", "zz-clinic-b")
    eight.integrate()
    four = ledger_env.ledger(trails=4)  # hub:ledgerTrails lowered: trails 4-7 stay, unwritten
    admit("zz-clinic-c")
    four.integrate()

    by_trail: dict[int, list[int]] = {}
    for trail in range(8):
        table = LedgerTable(ledger_env.dynamodb, ledger_env.table_name, trail)
        for seq, raw in sorted(table.all_entries().items()):
            if AuditEntry.from_bytes(raw).actor.sub == OPERATOR.sub:
                by_trail.setdefault(trail, []).append(seq)
    assert list(by_trail) == [OPERATOR_TRAIL], by_trail
    operator_entries = by_trail[OPERATOR_TRAIL]
    assert len(operator_entries) >= 3  # an admission each
    head = LedgerTable(ledger_env.dynamodb, ledger_env.table_name, OPERATOR_TRAIL).read_head()
    assert head is not None and head.size > max(operator_entries)
    assert _verify(ledger_env, four).ok


# --- a trail erased from the table, its archived heads still in the bucket ---------------

CLOCK_START = 1_760_000_000_000


def _erase_trail(env: LedgerEnv, trail: int, *, keep_from: int | None = None) -> int:
    """Delete every item of ``trail`` from the table (entries, nodes, head, its query
    index rows), as someone with write access to the table but not to the Object Lock
    bucket could; with ``keep_from``, entries from that leaf index on are left."""
    prefix = f"LEDGER#T{trail:03d}#"
    doomed = []
    for page in env.dynamodb.get_paginator("scan").paginate(TableName=env.table_name):
        for item in page["Items"]:
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if not (pk.startswith(prefix) or item.get("trail") == {"N": str(trail)}):
                continue
            if keep_from is not None and pk.startswith(f"{prefix}ENTRY#") and int(sk) >= keep_from:
                continue
            doomed.append({"pk": item["pk"], "sk": item["sk"]})
    for key in doomed:
        env.dynamodb.delete_item(TableName=env.table_name, Key=key)
    return len(doomed)


def _trail_two_archived_but_never_checkpointed(
    env: LedgerEnv, how: str
) -> tuple[Ledger, dict[str, Any]]:
    """``hub:ledgerTrails`` raised from 2 to 3 on the inline (Lambda) path: trail 2's
    entries are covered by its signed heads, archived in the bucket, while no archived
    ledger checkpoint lists trail 2 yet. ``window``: the checkpoint is not due yet (at
    most one a second; none at all once traffic stops). ``archive-lost``: a checkpoint
    over 3 trails was stored in the table but its archive copy failed (an S3 error
    after the table write). Returns the 3-trail ledger and the table item of the last
    checkpoint over 2 trails (genuine, signed before trail 2 existed)."""
    clock = [CLOCK_START]
    two = env.ledger(trails=2, clock_ms=lambda: clock[0])
    for n in range(6):
        two.trail.append(_event(ACTORS[n], n))
    two.integrate()
    older = env.dynamodb.get_item(TableName=env.table_name, Key=CHECKPOINT_KEY)["Item"]
    assert LedgerCheckpoint.from_json(json.loads(older["checkpoint"]["S"])).trails == 2
    three = env.ledger(trails=3, clock_ms=lambda: clock[0], checkpoint_interval_ms=1000)
    three.inline = True
    on_two = next(a for a in ACTORS if trail_for(a, 3) == 2)
    clock[0] += 200  # within the checkpoint interval
    for n in range(3):
        last = three.trail.append(_event(on_two, 10 + n))
        heads = three.response_head({last.trail: last.leaf_index or 0})
        assert isinstance(heads, list) and [(t, h.size) for t, h in heads] == [(2, n + 1)]
    stored = three.ledger_checkpoint()
    assert stored is not None and stored.trails == 2  # not due yet
    if how == "archive-lost":
        clock[0] += 5_000
        assert three.checkpointer is not None

        class S3Down:
            def put_ledger_checkpoint(self, checkpoint: LedgerCheckpoint) -> str:
                raise OSError("S3 unavailable")

        three.checkpointer.archive = S3Down()  # type: ignore[assignment]
        with pytest.raises(OSError):
            three.integrate()
        stored = three.ledger_checkpoint()
        assert stored is not None and stored.trails == 3  # in the table, not in the bucket
    archived = [
        obj["Key"]
        for obj in env.s3.list_objects_v2(
            Bucket=env.bucket, Prefix="ledger-checkpoints/trail-002/"
        )["Contents"]
    ]
    assert len(archived) == 3, archived
    return three, older


@pytest.mark.parametrize(
    ("how", "keep_from"),
    [("window", None), ("archive-lost", None), ("archive-lost", 2)],
    ids=["checkpoint-not-due", "checkpoint-archive-lost", "only-the-tail-kept"],
)
def test_a_trail_erased_from_the_table_is_found_from_its_archived_heads(
    ledger_env: LedgerEnv, how: str, keep_from: int | None
) -> None:
    """The threat: write access to the table, not to the Object Lock bucket. Every item
    of trail 2 (entries, nodes, head, index rows) is deleted, or all but its last entry,
    and the older genuine checkpoint over 2 trails is put back: no checkpoint and no
    table item points at trail 2 any more. Its archived heads still do, and
    ``hub audit verify --live`` lists the archive's ``trail-<k>/`` folders and reports
    the trail **deleted** (and **omitted** by the checkpoints). Remove the folder
    listing from snapshot_from_deployment and this passes as OK: the attack works."""
    ledger, older = _trail_two_archived_but_never_checkpointed(ledger_env, how)
    assert _erase_trail(ledger_env, 2, keep_from=keep_from) > 0
    ledger_env.dynamodb.put_item(TableName=ledger_env.table_name, Item=older)
    snapshot = snapshot_from_deployment(
        ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
    )
    assert all(c.trails == 2 for c in snapshot.checkpoints)  # none lists trail 2
    report = verify_snapshot(snapshot, load_public_key(ledger.public_key_pem()))
    assert not report.ok
    assert report.first_bad == (2, 0), report.findings
    assert {f.trail for f in report.findings} == {2}, report.findings
    kinds = {f.kind for f in report.findings}
    assert {"deleted", "omitted"} <= kinds, report.findings
    whole = [f for f in report.findings if "the trail was deleted" in f.message]
    if keep_from is None:
        # One finding for the whole trail, not one per entry.
        assert [(f.kind, f.index) for f in whole] == [("deleted", 0)], report.findings
        assert not any("entry" in f.message and "missing" in f.message for f in report.findings)
    else:
        assert not whole and any(f.kind == "deleted" for f in report.findings)
    runner = CliRunner()
    args = ["--table", ledger_env.table_name, "--bucket", ledger_env.bucket]
    args += ["--key-id", ledger_env.key_arn, "--endpoint", ledger_env.endpoint]
    cli = runner.invoke(hub_cli, ["audit", "verify", "--live", *args])
    assert cli.exit_code == 1, cli.output
    assert "first bad index: 0 in trail 2" in cli.output, cli.output


def test_a_trail_in_the_archive_and_the_table_alike_is_not_reported(
    ledger_env: LedgerEnv,
) -> None:
    """The honest counterpart: the same ledger once its checkpoint over 3 trails is
    signed and archived verifies OK, every archived trail folder read, none reported."""
    ledger, _ = _trail_two_archived_but_never_checkpointed(ledger_env, "window")
    assert ledger.checkpointer is not None
    ledger.checkpointer.checkpoint(force=True)
    folders = ledger_env.s3.list_objects_v2(
        Bucket=ledger_env.bucket, Prefix="ledger-checkpoints/trail-", Delimiter="/"
    )["CommonPrefixes"]
    assert [p["Prefix"] for p in folders] == [
        "ledger-checkpoints/trail-001/",
        "ledger-checkpoints/trail-002/",
    ]
    report = _verify(ledger_env, ledger)
    assert report.ok, report.findings
    assert report.trails == 3 and report.size == 9


def test_the_archive_names_only_the_trail_folders_it_writes(ledger_env: LedgerEnv) -> None:
    """archived_trails reads folder names only of the form the archive writes
    (``trail-<kkk>/``, 1 <= k < MAX_TRAILS); trail 0's heads and the ledger checkpoints
    sit beside them and are not trails."""
    from app.ledger.sequencer import CheckpointArchive

    names = ["000000000001-1760000000000.json", "ledger/x.json", "trail-002/a.json"]
    names += ["trail-063/a.json", "trail-064/a.json", "trail-7/a.json", "trail-abc/a.json"]
    for name in names:
        ledger_env.s3.put_object(
            Bucket=ledger_env.bucket, Key=f"ledger-checkpoints/{name}", Body=b"{}"
        )
    archive = CheckpointArchive(ledger_env.s3, ledger_env.bucket)
    assert archive.archived_trails() == [2, 63]


def test_the_checkpoint_and_a_listing_read_every_trails_head_in_one_request(
    ledger_env: LedgerEnv, sharded: Ledger
) -> None:
    """The ledger checkpoint (once a second under inline signing) and every listing read
    all the trails' heads: one BatchGetItem, not one GetItem per trail (on AWS each
    GetItem is a round trip; the same heads are read either way)."""
    from app.ledger.service import EntryQuery

    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, json.dumps(params, default=str)))

    sharded.trail.append(_event(ACTORS[0], 99))
    sharded.integrate()  # a trail moved: the checkpoint is signed anew
    events = sharded.table.client.meta.events
    events.register("before-call.dynamodb", record, unique_id="count-head-reads")
    try:
        checkpoint = sharded.checkpointer.checkpoint(force=True) if sharded.checkpointer else None
        by_actor = sharded.entries(EntryQuery(actor=ACTORS[0], limit=5))
        by_day = sharded.entries(EntryQuery(limit=5))
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-head-reads")
    assert checkpoint is not None and checkpoint.trails == TRAILS
    assert by_actor and by_day
    head_gets = [p for name, p in calls if name == "GetItem" and "HEAD" in p]
    assert head_gets == []  # no head read one by one
    batched = [p for name, p in calls if name == "BatchGetItem" and p.count("HEAD") >= TRAILS]
    assert len(batched) >= 3  # the checkpoint's, the actor listing's, the day listing's
