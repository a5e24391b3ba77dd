"""Tampering with the stored ledger is detected by the verifier, at the right index,
offline (export) and live (``hub audit verify --live``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ledger_testkit import LedgerEnv
from typer.testing import CliRunner

from app.audit.events import AuditEvent, Outcome
from app.ledger.checkpoint import SignedTreeHead, checkpoint_message, load_public_key
from app.ledger.entries import AuditEntry
from app.ledger.fhir import validate
from app.ledger.merkle import MerkleLog, NodeId, leaf_hash
from app.ledger.service import Ledger
from app.ledger.store import entry_key, node_key
from app.ledger.verify import (
    read_export,
    snapshot_from_deployment,
    verify_snapshot,
    write_export,
)
from infra.cli import app as hub_cli

SUB = "0b6f7c1e-2d3a-4c5b-8e9f-0123456789ab"
SIZE = 10


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        action="ViewGroup" if n % 3 else "CreateGroup",
        outcome=Outcome.ALLOW if n % 4 else Outcome.DENY,
        reason="member-views-open-group",
        actor=SUB,
        actor_reg_no="M20001",
        institution="harbour-cardiac-alliance",
        resource=f"Group::g{n}",
        patient_ref=("pt1-" + "b" * 64) if n % 2 else None,
        actor_roles=("doctor",),
    )


@pytest.fixture
def signed_ledger(ledger_env: LedgerEnv) -> Ledger:
    """SIZE entries, a signed head after each one (so a fork is located exactly)."""
    ledger = ledger_env.ledger()
    for n in range(SIZE):
        ledger.trail.append(_event(n))
        ledger.integrate()
    return ledger


def _verify(env: LedgerEnv, ledger: Ledger) -> Any:
    snapshot = snapshot_from_deployment(env.dynamodb, env.s3, env.table_name, env.bucket)
    return verify_snapshot(snapshot, load_public_key(ledger.public_key_pem()))


def _raw(env: LedgerEnv, seq: int) -> bytes:
    item = env.dynamodb.get_item(TableName=env.table_name, Key=entry_key(seq))["Item"]
    return bytes(item["entry"]["B"])


def _put_raw(env: LedgerEnv, seq: int, raw: bytes) -> None:
    env.dynamodb.put_item(
        TableName=env.table_name,
        Item={**entry_key(seq), "entry": {"B": raw}, "seq": {"N": str(seq)}},
    )


def _edited(raw: bytes) -> bytes:
    """The same entry, still canonical, with a different outcome and reason."""
    data = AuditEntry.from_bytes(raw).to_dict()
    data["outcome"], data["reason"] = "success", "lead-manages-open-group"
    return AuditEntry.from_dict(data).to_bytes()


def test_an_untouched_ledger_verifies(ledger_env: LedgerEnv, signed_ledger: Ledger) -> None:
    report = _verify(ledger_env, signed_ledger)
    assert report.ok, report.findings
    assert report.heads_verified == SIZE and report.consistency_checked == SIZE - 1
    assert report.inclusions_checked == SIZE


def test_an_edited_entry_fails_at_its_index(ledger_env: LedgerEnv, signed_ledger: Ledger) -> None:
    _put_raw(ledger_env, 4, _edited(_raw(ledger_env, 4)))
    report = _verify(ledger_env, signed_ledger)
    assert not report.ok and report.first_bad_index == 4
    assert {f.kind for f in report.findings} == {"modified"}


def test_a_deleted_entry_fails_at_its_index(ledger_env: LedgerEnv, signed_ledger: Ledger) -> None:
    ledger_env.dynamodb.delete_item(TableName=ledger_env.table_name, Key=entry_key(6))
    report = _verify(ledger_env, signed_ledger)
    assert report.first_bad_index == 6
    assert [f.kind for f in report.findings if f.index == 6] == ["deleted"]


def test_reordered_entries_fail_at_the_first_moved_index(
    ledger_env: LedgerEnv, signed_ledger: Ledger
) -> None:
    a, b = _raw(ledger_env, 2), _raw(ledger_env, 3)
    _put_raw(ledger_env, 2, b)
    _put_raw(ledger_env, 3, a)
    report = _verify(ledger_env, signed_ledger)
    assert report.first_bad_index == 2
    assert "reordered" in {f.kind for f in report.findings if f.index == 2}


def test_a_forked_history_fails_where_it_forks(
    ledger_env: LedgerEnv, signed_ledger: Ledger
) -> None:
    """Someone with write access and the signing key rewrites entry 5 with its tree and
    signs a new head: the archived heads of sizes 6..10 no longer fit the history."""
    forged = _edited(_raw(ledger_env, 5))
    _put_raw(ledger_env, 5, forged)
    ledger_env.dynamodb.put_item(
        TableName=ledger_env.table_name,
        Item={**node_key(NodeId(0, 5)), "hash": {"B": leaf_hash(forged)}},
    )
    leaves = signed_ledger.table.all_leaf_hashes()
    log = MerkleLog()
    log.extend(leaves[i] for i in range(SIZE))
    signer = signed_ledger.sequencer.signer  # type: ignore[union-attr]
    head = signed_ledger.table.read_head()
    assert head is not None
    ts = head.timestamp_ms + 1
    message = checkpoint_message("test-ledger", SIZE, log.root(), ts)
    fork = SignedTreeHead("test-ledger", SIZE, log.root(), ts, signer.sign(message), "k")
    signed_ledger.sequencer.archive.put(fork)  # type: ignore[union-attr]
    report = _verify(ledger_env, signed_ledger)
    assert report.first_bad_index == 5
    assert "fork" in {f.kind for f in report.findings}


def test_a_forged_signature_is_reported(ledger_env: LedgerEnv, signed_ledger: Ledger) -> None:
    head = signed_ledger.table.read_head()
    assert head is not None
    bad = SignedTreeHead(**{**head.__dict__, "timestamp_ms": head.timestamp_ms + 5})
    signed_ledger.sequencer.archive.put(bad)  # type: ignore[union-attr]
    report = _verify(ledger_env, signed_ledger)
    assert not report.ok and [f.kind for f in report.findings] == ["signature"]


def _live_args(env: LedgerEnv) -> list[str]:
    return [
        "--table",
        env.table_name,
        "--bucket",
        env.bucket,
        "--key-id",
        env.key_arn,
        "--endpoint",
        env.endpoint,
    ]


def test_cli_verifies_offline_and_live_and_reports_the_first_bad_index(
    ledger_env: LedgerEnv, signed_ledger: Ledger, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "export"
    exported = runner.invoke(hub_cli, ["audit", "export", str(out), *_live_args(ledger_env)])
    assert exported.exit_code == 0, exported.output
    # The FHIR export is valid R4 AuditEvent, one per entry, with BALP profiles.
    events = [json.loads(line) for line in (out / "auditevents.ndjson").read_text().splitlines()]
    assert len(events) == SIZE
    for e in events:
        validate(e)
    assert any("PatientRead" in e["meta"]["profile"][0] for e in events)
    offline = runner.invoke(hub_cli, ["audit", "verify", str(out)])
    assert offline.exit_code == 0, offline.output
    assert "OK" in offline.output
    live = runner.invoke(hub_cli, ["audit", "verify", "--live", *_live_args(ledger_env)])
    assert live.exit_code == 0, live.output
    # Edit one line of the export: offline verification fails at that index.
    lines = (out / "entries.ndjson").read_text().splitlines()
    row = json.loads(lines[7])
    import base64

    row["canonical"] = base64.b64encode(_edited(base64.b64decode(row["canonical"]))).decode()
    lines[7] = json.dumps(row)
    (out / "entries.ndjson").write_text("\n".join(lines) + "\n")
    failed = runner.invoke(hub_cli, ["audit", "verify", str(out)])
    assert failed.exit_code == 1 and "first bad index: 7" in failed.output
    snapshot, _ = read_export(out)
    assert sorted(snapshot.entries) == list(range(SIZE))
    # Edit the live table: live verification fails at that index too.
    _put_raw(ledger_env, 3, _edited(_raw(ledger_env, 3)))
    live_bad = runner.invoke(hub_cli, ["audit", "verify", "--live", *_live_args(ledger_env)])
    assert live_bad.exit_code == 1 and "first bad index: 3" in live_bad.output


def test_export_without_tree_leaves_still_detects_an_edit(
    ledger_env: LedgerEnv, signed_ledger: Ledger, tmp_path: Path
) -> None:
    snapshot = snapshot_from_deployment(
        ledger_env.dynamodb, ledger_env.s3, ledger_env.table_name, ledger_env.bucket
    )
    entries = dict(snapshot.entries)
    entries[8] = _edited(entries[8])
    write_export(tmp_path, entries, {}, snapshot.heads, signed_ledger.public_key_pem())
    again, key = read_export(tmp_path)
    assert again.tree_leaves is None and key is not None
    report = verify_snapshot(again, load_public_key(key.read_bytes()))
    # Without the tree's leaves the edit is located between the heads around it.
    assert not report.ok and report.first_bad_index == 8


def test_the_tamper_demo_script_breaks_verification_at_its_index(
    ledger_env: LedgerEnv, signed_ledger: Ledger
) -> None:
    import importlib.util
    import sys

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location(
        "ledger_tamper", root / "scripts/ledger_tamper.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    before, after = module.tamper_entry(ledger_env.dynamodb, ledger_env.table_name, 2)
    assert before != after and AuditEntry.from_bytes(after).sequence == 2
    report = _verify(ledger_env, signed_ledger)
    assert report.first_bad_index == 2
