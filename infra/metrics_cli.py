"""``hub metrics``: the pilot metrics from a ledger, in the terminal or as a report.

- ``hub metrics show SOURCE [--institution I] [--response-window M]`` prints the
  overall figures and counters;
- ``hub metrics report OUT SOURCE ...`` writes ``OUT/report.html`` (plots, the seed's
  pilot figures as reference lines) and ``OUT/series.csv``.

``SOURCE`` is one of: ``--export DIR`` (a ``hub audit export`` directory or its
``entries.ndjson``), ``--live`` (the local platform's ledger table, or ``--table`` with
``--endpoint``), or ``--synthetic DAYS`` (the synthetic pilot workload, in process).
The computation is :mod:`app.metrics.engine`; this module gathers entries and prints.
Exit status 2 with one line naming the problem on usage errors.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.ledger.entries import AuditEntry
from app.ledger.errors import InvalidEntry
from app.metrics.engine import METRICS, MetricsConfig, MetricsReport, compute_metrics

metrics_app = typer.Typer(help="Pilot metrics computed from the audit ledger.")
console = Console()

DEFAULT_STACK = "phase3-private-practice"
Export = Annotated[
    Path | None, typer.Option("--export", help="Export directory or entries.ndjson.")
]
Live = Annotated[bool, typer.Option("--live", help="Read the deployment's ledger table.")]
Synthetic = Annotated[int | None, typer.Option("--synthetic", help="Days of synthetic workload.")]
Stack = Annotated[str, typer.Option("--stack", "-s", help="The stack whose ledger --live reads.")]
TableName = Annotated[str | None, typer.Option("--table", help="Ledger table name.")]
Endpoint = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        envvar="AWS_ENDPOINT_URL",
        help="AWS-compatible endpoint for --live (default: the running `hub local up`).",
    ),
]
StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir", envvar="HUB_STATE_DIR", help="Where local.json and the records live."
    ),
]
Institution = Annotated[str | None, typer.Option("--institution", help="Only what involves it.")]
Window = Annotated[int, typer.Option("--response-window", help="Minutes.", min=1)]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"hub metrics: {message}", err=True)
    return typer.Exit(2)


def _from_export(path: Path) -> Iterator[AuditEntry]:
    """The entries of a ``hub audit export`` (rows as :class:`app.ledger.verify.ExportRow`
    reads them: base64 canonical bytes, by trail), every trail in log order, merged by
    timestamp as the live source merges them."""
    from app.ledger.verify import ENTRIES_FILE, ExportRow

    entries_file = path / ENTRIES_FILE if path.is_dir() else path
    if not entries_file.is_file():
        raise _fail(f"{entries_file} does not exist (expected a `hub audit export` directory)")
    trails: dict[int, list[tuple[int, AuditEntry]]] = {}
    with entries_file.open(encoding="ascii") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = ExportRow.from_line(line)
                entry = AuditEntry.from_bytes(row.canonical)
            except (ValueError, KeyError, TypeError, InvalidEntry):
                raise _fail(f"{entries_file}:{number} is not an exported ledger entry") from None
            trails.setdefault(row.trail, []).append((row.leaf_index, entry))
    in_order = ([e for _, e in sorted(rows, key=lambda r: r[0])] for rows in trails.values())
    yield from heapq.merge(*in_order, key=lambda e: e.timestamp_ms)


def live_entries(
    stack: str, table: str | None, endpoint: str | None, state_dir: Path
) -> Iterator[AuditEntry]:
    import boto3

    from app.ledger.store import LedgerTable
    from infra.emulator.local import read_local_json
    from infra.emulator.server import default_emulator_credentials

    local = read_local_json(state_dir) or {}
    if table is None:
        outputs = ((local.get("stacks") or {}).get(stack) or {}).get("outputs")
        if not outputs:
            raise _fail(
                "no deployment: pass --table, or start the local platform so "
                f"{state_dir}/local.json lists {stack}"
            )
        table = str(outputs["tableNames"]["ledger"])
    endpoint = endpoint or local.get("emulatorEndpoint")
    if endpoint:
        default_emulator_credentials()
    client = boto3.session.Session(region_name="ap-east-1").client(
        "dynamodb", endpoint_url=endpoint
    )
    ledger = LedgerTable(client, table)

    def trail_entries(trail: LedgerTable) -> Iterator[AuditEntry]:
        seq = 0
        while True:
            batch = trail.read_entries(seq, 1024)
            if not batch:
                return
            for number, raw in batch:
                yield AuditEntry.from_bytes(raw)
                seq = number + 1

    # Every trail of the ledger (docs/ledger.md, "Trails"), each in log order, merged by
    # timestamp; a single-trail ledger is read exactly as before.
    trails = [ledger.for_trail(k) for k in ledger.trails_present()] or [ledger]
    yield from heapq.merge(*(trail_entries(t) for t in trails), key=lambda e: e.timestamp_ms)


def _entries(
    export: Path | None,
    live: bool,
    synthetic: int | None,
    stack: str,
    table: str | None,
    endpoint: str | None,
    state_dir: Path,
) -> tuple[Iterator[AuditEntry], str]:
    chosen = [
        name
        for name, on in (("--export", export), ("--live", live), ("--synthetic", synthetic))
        if on
    ]
    if len(chosen) != 1:
        raise _fail("choose exactly one source: --export DIR, --live or --synthetic DAYS")
    if export is not None:
        return _from_export(export), f"export {export}"
    if live:
        return live_entries(stack, table, endpoint, state_dir), f"ledger table of {table or stack}"
    from infra.workload import WorkloadConfig, generate, ledger_entries

    assert synthetic is not None
    if synthetic < 1:
        raise _fail("--synthetic needs at least 1 day")
    return ledger_entries(
        generate(WorkloadConfig(days=synthetic))
    ), f"synthetic workload, {synthetic} days"


def _compute(entries: Iterator[AuditEntry], institution: str | None, window: int) -> MetricsReport:
    return compute_metrics(
        entries, MetricsConfig(response_window_ms=window * 60_000, institution=institution)
    )


@metrics_app.command("show")
def show(
    export: Export = None,
    live: Live = False,
    synthetic: Synthetic = None,
    stack: Stack = DEFAULT_STACK,
    table: TableName = None,
    endpoint: Endpoint = None,
    state_dir: StateDir = Path(".hub"),
    institution: Institution = None,
    response_window: Window = 60,
) -> None:
    """Print the overall figures of every metric and the referral counters."""
    entries, source = _entries(export, live, synthetic, stack, table, endpoint, state_dir)
    report = _compute(entries, institution, response_window)
    grid = Table(title=f"pilot metrics ({source}; {report.entries} entries)")
    for column in ("metric", "n", "mean", "p50", "p90", "p99"):
        grid.add_column(column, justify="left" if column == "metric" else "right")
    for metric in METRICS:
        for row in report.find(metric):
            grid.add_row(
                metric, str(row.count), *(_fmt(x) for x in (row.mean, row.p50, row.p90, row.p99))
            )
    console.print(grid)
    for name, value in sorted(report.counters.items()):
        console.print(f"{name}: {value}")


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


@metrics_app.command("report")
def report_command(
    out: Annotated[Path, typer.Argument(help="Directory for report.html and series.csv.")],
    export: Export = None,
    live: Live = False,
    synthetic: Synthetic = None,
    stack: Stack = DEFAULT_STACK,
    table: TableName = None,
    endpoint: Endpoint = None,
    state_dir: StateDir = Path(".hub"),
    institution: Institution = None,
    response_window: Window = 60,
) -> None:
    """Write the HTML report (plots per phase and institution) and the CSV of the series."""
    from infra.metrics_report import write_report

    entries, source = _entries(export, live, synthetic, stack, table, endpoint, state_dir)
    report = _compute(entries, institution, response_window)
    page, series = write_report(report, out, source=source)
    console.print(f"wrote {page} and {series} from {report.entries} entries ({source})")
