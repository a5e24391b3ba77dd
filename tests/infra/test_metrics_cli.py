"""``hub metrics``: the report and the table from each source; usage errors exit 2."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.ledger.verify import write_export
from infra.cli import app
from infra.workload import WorkloadConfig, generate, ledger_entries

runner = CliRunner()


def _export(directory: Path, days: int = 3) -> Path:
    """An export as ``hub audit export`` writes it (its writer, without heads)."""
    workload = ledger_entries(generate(WorkloadConfig(days=days, referrals_per_day=20)))
    write_export(directory, {e.sequence: e.to_bytes() for e in workload}, {}, [], b"")
    return directory


def test_report_writes_a_page_of_plots_with_the_seed_figures_and_the_csv(tmp_path: Path) -> None:
    result = runner.invoke(app, ["metrics", "report", str(tmp_path / "out"), "--synthetic", "6"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 7
    assert "referral_decision_hours" in page and "series.csv" in page
    with (tmp_path / "out" / "series.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["metric"] for r in rows} >= {
        "referral_decision_hours",
        "message_response_rate",
        "record_accesses_per_episode",
    }
    assert {r["period"] for r in rows} == {"day", "week", "all"}
    everything = page + (tmp_path / "out" / "series.csv").read_text(encoding="utf-8")
    assert "pt1-" not in everything and "pt-synthetic" not in everything and "ZZ1" not in everything


def test_show_reads_an_export(tmp_path: Path) -> None:
    export = _export(tmp_path / "export")
    result = runner.invoke(app, ["metrics", "show", "--export", str(export)])
    assert result.exit_code == 0, result.output
    assert "referral_decision_hours" in result.output and "referrals_sent" in result.output
    scoped = runner.invoke(
        app, ["metrics", "show", "--export", str(export), "--institution", "lion-rock-oncology"]
    )
    assert scoped.exit_code == 0 and scoped.output != result.output


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    export = _export(tmp_path / "export", days=1)
    none = runner.invoke(app, ["metrics", "show"])
    both = runner.invoke(app, ["metrics", "show", "--export", str(export), "--synthetic", "2"])
    missing = runner.invoke(app, ["metrics", "show", "--export", str(tmp_path / "nowhere")])
    lines = (export / "entries.ndjson").read_text().splitlines()
    not_an_entry = json.dumps({"leaf_index": 3, "canonical": "bm90IGFuIGVudHJ5"})
    (export / "entries.ndjson").write_text("\n".join([*lines[:3], not_an_entry]))
    corrupt = runner.invoke(app, ["metrics", "show", "--export", str(export)])
    for result in (none, both, missing, corrupt):
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert "entries.ndjson:4" in corrupt.output


def test_the_live_source_reads_the_ledger_table(tmp_path: Path, moto_endpoint: str) -> None:
    import uuid

    import boto3

    from app import local
    from app.ledger.store import LedgerTable

    client = boto3.session.Session(region_name="ap-east-1").client(
        "dynamodb", endpoint_url=moto_endpoint
    )
    name = f"hubtest-metrics-cli-{uuid.uuid4().hex[:6]}"
    local.create_service_tables(client, {"ledger": name})
    table = LedgerTable(client, name)
    entries = list(itertools.islice(ledger_entries(generate(WorkloadConfig(days=1))), 300))
    for entry in entries:
        table.put_entry(entry.sequence, entry.to_bytes())
    result = _show_live(name, moto_endpoint, tmp_path)
    assert result.exit_code == 0, result.output
    from app.metrics.engine import compute_metrics

    sent = compute_metrics(entries).counters["referrals_sent"]
    assert f"referrals_sent: {sent}" in result.output and sent > 0


def test_the_live_source_reads_every_trail(tmp_path: Path, moto_endpoint: str) -> None:
    """The same entries spread over two trails (docs/ledger.md, "Trails") give the same
    metrics as one trail: the live source reads every trail, merged by time."""
    from app.metrics.engine import compute_metrics

    name, entries = _two_trail_ledger(moto_endpoint, "trails")
    result = _show_live(name, moto_endpoint, tmp_path)
    assert result.exit_code == 0, result.output
    sent = compute_metrics(entries).counters["referrals_sent"]
    assert sent > 0 and f"referrals_sent: {sent}" in result.output


def _show_live(table: str, endpoint: str, state_dir: Path) -> Any:
    """``hub metrics show --live`` on one ledger table."""
    args = ["metrics", "show", "--live", "--table", table, "--endpoint", endpoint]
    return runner.invoke(app, [*args, "--state-dir", str(state_dir)])


def _two_trail_ledger(moto_endpoint: str, label: str) -> tuple[str, list[Any]]:
    """A ledger table holding 300 workload entries spread over two trails."""
    import dataclasses
    import uuid

    import boto3

    from app import local
    from app.ledger.store import LedgerTable

    client = boto3.session.Session(region_name="ap-east-1").client(
        "dynamodb", endpoint_url=moto_endpoint
    )
    name = f"hubtest-metrics-{label}-{uuid.uuid4().hex[:6]}"
    local.create_service_tables(client, {"ledger": name})
    entries = list(itertools.islice(ledger_entries(generate(WorkloadConfig(days=1))), 300))
    counts = [0, 0]
    for n, entry in enumerate(entries):
        trail = n % 2
        moved = dataclasses.replace(entry, sequence=counts[trail])
        LedgerTable(client, name, trail).put_entry(counts[trail], moved.to_bytes())
        counts[trail] += 1
    return name, entries


def test_metrics_of_an_audit_export_are_the_live_ledgers(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """End to end: ``hub audit export`` of a two-trail ledger, then ``hub metrics show
    --export`` on what it wrote, gives the figures ``--live`` gives on the same table."""
    import boto3

    session = boto3.session.Session(region_name="ap-east-1")
    table, entries = _two_trail_ledger(moto_endpoint, "export")
    session.client("s3", endpoint_url=moto_endpoint).create_bucket(
        Bucket=table,
        CreateBucketConfiguration={"LocationConstraint": "ap-east-1"},
        ObjectLockEnabledForBucket=True,
    )
    key = session.client("kms", endpoint_url=moto_endpoint).create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"
    )["KeyMetadata"]["Arn"]
    where = ["--table", table, "--endpoint", moto_endpoint]
    out = tmp_path / "export"
    exported = runner.invoke(
        app, ["audit", "export", str(out), *where, "--bucket", table, "--key-id", key]
    )
    assert exported.exit_code == 0, exported.output
    from_export = runner.invoke(app, ["metrics", "show", "--export", str(out)])
    live = runner.invoke(app, ["metrics", "show", "--live", *where, "--state-dir", str(tmp_path)])
    assert from_export.exit_code == 0, from_export.output
    assert live.exit_code == 0, live.output
    assert f"{len(entries)} entries" in from_export.output.replace("\n", " ")
    from app.metrics.engine import compute_metrics

    sent = compute_metrics(entries).counters["referrals_sent"]
    assert sent > 0 and f"referrals_sent: {sent}" in from_export.output

    def figures(output: str) -> list[str]:
        lines = output.splitlines()  # the title above the grid names the source
        return lines[next(n for n, line in enumerate(lines) if line.startswith("┏")) :]

    assert figures(from_export.output) == figures(live.output)
